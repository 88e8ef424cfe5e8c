"""Job records: `JobStatus`, `JobRecord`, and how results and errors are kept."""

from __future__ import annotations

import enum
import json
import subprocess
from typing import Any, final

import attrs

from ..protocol import DecodeError, codec
from ..protocol._message import is_message_class
from ..tasks import CommandResult


class JobStatus(enum.StrEnum):
    """Where a job is in its life. ``str`` values, as stored and printed.

    ``interrupted``: its process ended (crash or shutdown) while it was
    ``pending`` or ``running``; ``cancelled``: someone cancelled it.
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        """Whether the job has an outcome (it will not change any more)."""
        return self not in _LIVE_SET


LIVE = (JobStatus.PENDING, JobStatus.RUNNING)
_LIVE_SET = frozenset(LIVE)  # `finished` built a set per call: 4 per job, on the loop


@final
@attrs.frozen
class JobRecord:
    """A job as stored: from ``await system.jobs.get(id)`` and friends.

    Example:
        ```python
        t = await troupe.submit_job(build_report, "2026-11", name="report")
        await t.result()
        rec = await system.jobs.get(t.job_id)
        assert rec.status is troupe.JobStatus.SUCCEEDED
        ```
    """

    id: str
    """The job's id (a UUID), the same as its task handle's ``job_id``."""
    name: str
    """A name for people (the task's name, or ``submit_job(name=...)``)."""
    status: JobStatus
    """Where the job is."""
    created: float
    """When it was submitted (epoch seconds)."""
    started: float | None = None
    """When its work started (epoch seconds)."""
    finished: float | None = None
    """When it got its outcome (epoch seconds)."""
    progress: float = 0.0
    """The last `report_progress` fraction, 0 to 1 (1 once it succeeded)."""
    progress_message: str = ""
    """The message that came with it."""
    result: Any = None
    """The task's result: a message, plain JSON data, or (``result_is_repr``) its ``repr``."""
    result_is_repr: bool = False
    """True when ``result`` is the ``repr`` of a value that is neither a message nor JSON."""
    error: str | None = None
    """``"ExcType: message"`` when it failed (or was cancelled or interrupted), else None."""


def as_json(record: JobRecord) -> dict[str, Any]:
    """A record as JSON data, with `JobRecord`'s field names (``troupe jobs list --json``, the web API)."""
    data = attrs.asdict(record, recurse=False)
    data["status"] = record.status.value
    if is_message_class(type(record.result)):
        data["result"] = codec.encode(record.result)
    return data


def _dumps(value: object) -> str:
    """JSON text as `encode_result` writes it (not ASCII-escaped), and strict: no NaN or infinity."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def storable(value: object) -> tuple[object, bool]:
    """``value`` as a record keeps it: itself (a message or JSON), or its repr (then True).

    Never raises: a value whose ``repr`` raises is kept as a placeholder
    that says so, since the job's outcome must be recorded.
    """
    try:
        return _storable(value)
    except Exception as exc:  # noqa: BLE001 - any user code (repr, ==, a codec hook) may raise
        return f"<{type(value).__qualname__} object; its repr raised {_describe(exc)}>", True


def _storable(value: object) -> tuple[object, bool]:
    if value is None:
        return None, False
    if is_message_class(type(value)):
        try:
            _dumps(codec.encode(value))
        except Exception:  # noqa: BLE001 - not JSON (NaN, a field the codec refuses...): its repr
            return repr(value), True
        return value, False
    if isinstance(value, CommandResult):
        return _command_json(value), False
    try:
        if json.loads(_dumps(value)) == value:
            return value, False
    except Exception:  # noqa: BLE001, S110 - not JSON (TypeError, ValueError, RecursionError, ==): its repr
        pass
    return repr(value), True


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


def _command_json(result: CommandResult) -> dict[str, object]:
    return {
        "argv": list(result.argv),
        "returncode": result.returncode,
        "stdout": _text(result.stdout),
        "stderr": _text(result.stderr),
    }


_STDERR_TAIL = 2000


def error_text(error: BaseException) -> str:
    """``"ExcType: message"``; a failed command also keeps the end of its stderr. Never raises."""
    text = f"{type(error).__name__}: {_message(error)}"
    cause = error.__cause__ if error.__cause__ is not None else error
    if isinstance(cause, subprocess.CalledProcessError) and cause.stderr:
        tail = cause.stderr[-_STDERR_TAIL:]
        text += f"\nstderr: {_text(tail) if isinstance(tail, bytes) else tail}"
    return text


def _message(error: BaseException) -> str:
    try:
        return str(error)
    except Exception as exc:  # noqa: BLE001 - a user's __str__ may raise; the outcome must be recorded
        return f"<its message could not be shown: str() raised {type(exc).__name__}>"


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {_message(error)}"


_NOTE_LIMIT = 500  # characters of the reason kept in a fallback record's error


def escaped(text: str) -> str:
    r"""``text`` in ASCII: anything else as a Python escape (``\xe9``, ``\udcff``)."""
    return text.encode("ascii", "backslashreplace").decode("ascii")


def fallback(record: JobRecord, why: BaseException) -> JobRecord:
    """``record`` in a form any store keeps: ASCII texts, no result, and why, in its error.

    The job's writer stores this instead of a record its store refused,
    so that the job's status and times are still kept.
    """
    reason = escaped(_describe(why))[:_NOTE_LIMIT]
    note = (
        f"JobStoreError: this job's record could not be stored as given ({reason}); "
        "it is kept with its texts escaped and without its result"
    )
    error = note if record.error is None else f"{escaped(record.error)}\n{note}"
    return JobRecord(
        record.id,
        escaped(record.name),
        record.status,
        record.created,
        record.started,
        record.finished,
        record.progress,
        escaped(record.progress_message),
        None,
        False,  # noqa: FBT003 - result_is_repr, positional like the fields before it
        error,
    )


def encode_result(record: JobRecord) -> tuple[str | None, str | None]:
    r"""(kind, JSON text) for storage: kind is None, ``message``, ``json`` or ``repr``.

    The text is not ASCII-escaped: JSON's ``\u`` escapes would join two lone
    surrogates into one character on the way back.
    """
    value = record.result
    if value is None and not record.result_is_repr:
        return None, None
    if record.result_is_repr:
        return "repr", json.dumps(value, ensure_ascii=False)
    if is_message_class(type(value)):
        return "message", json.dumps(codec.encode(value), ensure_ascii=False)
    return "json", json.dumps(value, ensure_ascii=False)


def decode_result(kind: str | None, text: str | None) -> tuple[object, bool]:
    """The stored result back: raises ValueError if the text is not what was stored.

    A message of a type this process does not know comes back as its
    encoded dict (``{"type": ..., ...}``), so nothing is lost.
    """
    if kind is None:
        return None, False
    if kind not in {"message", "json", "repr"} or text is None:
        raise ValueError(f"unknown result kind {kind!r}")
    value = json.loads(text)
    if kind == "repr":
        if not isinstance(value, str):
            raise ValueError("a repr result is not a string")
        return value, True
    if kind == "message":
        try:
            return codec.decode(value), False
        except DecodeError:
            return value, False
    return value, False
