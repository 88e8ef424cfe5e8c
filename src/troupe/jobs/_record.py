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

    Example::

        t = await troupe.submit_job(build_report, "2026-11", name="report")
        await t.result()
        rec = await system.jobs.get(t.job_id)
        assert rec.status is troupe.JobStatus.SUCCEEDED
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


def storable(value: object) -> tuple[object, bool]:
    """``value`` as a record keeps it: itself (a message or JSON), or its repr (then True)."""
    if value is None:
        return None, False
    if is_message_class(type(value)):
        try:
            json.dumps(codec.encode(value), allow_nan=False)
        except (TypeError, ValueError):
            return repr(value), True
        return value, False
    if isinstance(value, CommandResult):
        return _command_json(value), False
    try:
        if json.loads(json.dumps(value, allow_nan=False)) == value:
            return value, False
    except (TypeError, ValueError, RecursionError):
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
    """``"ExcType: message"``; a failed command also keeps the end of its stderr."""
    text = f"{type(error).__name__}: {error}"
    cause = error.__cause__ if error.__cause__ is not None else error
    if isinstance(cause, subprocess.CalledProcessError) and cause.stderr:
        tail = cause.stderr[-_STDERR_TAIL:]
        text += f"\nstderr: {_text(tail) if isinstance(tail, bytes) else tail}"
    return text


def encode_result(record: JobRecord) -> tuple[str | None, str | None]:
    """(kind, JSON text) for storage: kind is None, ``message``, ``json`` or ``repr``."""
    value = record.result
    if value is None and not record.result_is_repr:
        return None, None
    if record.result_is_repr:
        return "repr", json.dumps(value)
    if is_message_class(type(value)):
        return "message", json.dumps(codec.encode(value))
    return "json", json.dumps(value)


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
