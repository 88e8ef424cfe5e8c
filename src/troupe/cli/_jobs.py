"""``troupe jobs list|show|cancel|purge --db PATH``: read (and tidy) a job store."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

from rich.table import Table
from rich.text import Text

from ..jobs import JobRecord, JobStatus, JobStoreError, SQLiteJobStore
from ..jobs._record import as_json
from ._output import console, status_text

_MIN_PREFIX = 4
_IDS_SHOWN = 5  # ids named when a prefix matches several jobs
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@contextmanager
def reading(db: str) -> Iterator[SQLiteJobStore]:
    """The store at ``db``, opened read-only (never created)."""
    store = SQLiteJobStore(db)
    store.open(None)
    try:
        yield store
    finally:
        store.close(None)


def parse_age(text: str) -> float:
    """``90``, ``45s``, ``30m``, ``12h``, ``7d``, ``2w`` -> seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if found is None:
        msg = f"--older-than takes an age like 90, 45s, 30m, 12h, 7d or 2w, not {text!r}"
        raise JobStoreError(msg)
    return float(found.group(1)) * _UNITS[found.group(2) or "s"]


def shown(text: str) -> str:
    r"""``text`` as printed: what UTF-8 cannot encode (a lone surrogate) as its escape, ``\udcff``.

    A job's texts may hold lone surrogates (``os.fsdecode`` of a file name
    that is not UTF-8); printing one to a strict UTF-8 stdout would raise.
    """
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


_FIXED_COLUMNS = 60  # id, status, created, took, progress and the padding between columns


def _when(stamp: float | None, *, seconds: bool = True) -> str:
    if stamp is None:
        return "-"
    shape = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return dt.datetime.fromtimestamp(stamp).strftime(shape)  # noqa: DTZ006 - local time for people


def _took(record: JobRecord) -> str:
    if record.started is None:
        return "-"
    end = record.finished
    return "-" if end is None else f"{end - record.started:.2f} s"


def list_jobs(db: str, *, status: tuple[str, ...], limit: int | None, as_json_: bool) -> int:
    """Print the store's jobs, newest first."""
    wanted = tuple(JobStatus(s) for s in status) or None  # checked by click
    with reading(db) as store:
        records = store.list(status=wanted)
    total, records = len(records), records[:limit]
    if as_json_:
        print(json.dumps([as_json(r) for r in records], indent=2))
        return 0
    # Fixed columns keep their width; only the name is cut (`show ID` has it whole).
    out = console()
    # a long path is not folded; a path is not rich markup
    count = f"{len(records)} of {total}" if len(records) < total else str(total)
    out.print(f"jobs in {shown(db)} ({count})", soft_wrap=True, markup=False)
    table = Table(box=None, pad_edge=False, header_style="bold underline")
    table.add_column("id", no_wrap=True, min_width=8)
    room = out.width - _FIXED_COLUMNS  # rich would crop the table rather than cut the name
    table.add_column("name", no_wrap=True, overflow="ellipsis", max_width=max(12, min(48, room)))
    table.add_column("status", no_wrap=True, min_width=11)
    table.add_column("created", no_wrap=True, min_width=16)
    table.add_column("took", no_wrap=True, justify="right", min_width=7)
    table.add_column("progress", no_wrap=True, justify="right", min_width=8)
    for r in records:
        table.add_row(
            shown_id(r.id),
            Text(shown(r.name)),  # a Text: a name is not rich markup
            status_text(r.status),
            _when(r.created, seconds=False),
            _took(r),
            f"{r.progress:.0%}",
        )
    out.print(table)
    return 0


def _find(store: SQLiteJobStore, job_id: str) -> JobRecord:
    """The job whose id is ``job_id``, or the one whose id starts with it (at least 4 characters)."""
    record = store.get(job_id)
    if record is not None:
        return record
    matches = [r for r in store.list() if r.id.startswith(job_id)] if job_id else []
    if matches and len(job_id) < _MIN_PREFIX:
        msg = (
            f"an id prefix needs at least {_MIN_PREFIX} characters; "
            f"{_ids(matches)} in {store.location} start with {job_id!r}"
        )
        raise JobStoreError(msg)
    if len(matches) == 1:
        return matches[0]
    if matches:
        msg = f"{_ids(matches)} in {store.location} start with {job_id!r}; give more of the id"
        raise JobStoreError(msg)
    msg = f"no job {job_id!r} in {store.location}; `troupe jobs list --db {store.location}` shows the ids"
    raise JobStoreError(msg)


def _ids(records: list[JobRecord]) -> str:
    """``3 jobs (3f2a9c1e, 3f2b..., ...)``: how many, and the first ids as `list` shows them."""
    shown = ", ".join(shown_id(r.id) for r in records[:_IDS_SHOWN])
    return f"{len(records)} jobs ({shown}{', ...' if len(records) > _IDS_SHOWN else ''})"


def shown_id(job_id: str) -> str:
    """A job id as ``list`` shows it: its first 8 characters."""
    return job_id[:8]


def show_job(db: str, job_id: str, *, as_json_: bool) -> int:
    """Print one job's record."""
    with reading(db) as store:
        record = _find(store, job_id)
    if as_json_:
        print(json.dumps(as_json(record), indent=2))
        return 0
    table = Table(show_header=False, title=Text(f"job {shown(record.id)}"), title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("name", Text(shown(record.name)))  # Texts: the job's texts are not rich markup
    table.add_row("status", status_text(record.status))
    table.add_row("created", _when(record.created))
    table.add_row("started", _when(record.started))
    table.add_row("finished", _when(record.finished))
    table.add_row("took", _took(record))
    table.add_row("progress", Text(shown(f"{record.progress:.0%} {record.progress_message}".rstrip())))
    if record.result is not None:
        value = record.result if record.result_is_repr else json.dumps(as_json(record)["result"])
        table.add_row("result" + (" (repr)" if record.result_is_repr else ""), Text(shown(str(value))))
    if record.error:
        table.add_row("error", Text(shown(record.error), style="red"))
    console().print(table)
    return 0


def cancel_job(db: str, job_id: str, *, as_json_: bool) -> int:
    """Ask a live job's owner to cancel it; 1 if it had already finished."""
    with reading(db) as store:
        record = _find(store, job_id)
        if not record.status.finished:
            record = store.request_cancel(record.id)
    if as_json_:
        print(json.dumps(as_json(record), indent=2))
    elif record.status is JobStatus.INTERRUPTED:
        print(f"job {record.id} ({shown(record.name)}) was interrupted: the process running it is gone")
    elif record.status.finished:
        print(f"job {record.id} ({shown(record.name)}) already finished: {record.status.value}")
        return 1
    else:
        name = shown(record.name)
        print(f"cancellation of job {record.id} ({name}) requested; its process cancels it within ~1 s")
    return 0


def purge_jobs(db: str, *, older_than: str | None, ids: tuple[str, ...], as_json_: bool) -> int:
    """Delete finished jobs' records."""
    age = None if older_than is None else parse_age(older_than)
    with reading(db) as store:
        count = store.purge(older_than=age, ids=list(ids) if ids else None)
    if as_json_:
        print(json.dumps({"purged": count}))
    else:
        print(f"purged {count} finished job(s) from {shown(db)}")
    return 0
