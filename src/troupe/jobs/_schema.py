"""The SQLite job store's file format: its schema and migrations, its statements, how texts are kept."""

from __future__ import annotations

import functools

FORMAT = "troupe-jobs"
SCHEMA_VERSION = 2
READABLE_FROM = 1
"""The oldest schema version a reader (the command line) reads without a migration."""

# One entry per schema version: the statements that take a store from the
# version before to this one. Append, never edit: stores in the field went
# through the old ones.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE troupe_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE troupe_jobs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            owner TEXT NOT NULL,
            created REAL NOT NULL,
            started REAL,
            finished REAL,
            progress REAL NOT NULL DEFAULT 0,
            progress_message TEXT NOT NULL DEFAULT '',
            result_kind TEXT,
            result TEXT,
            error TEXT,
            cancel_requested INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX troupe_jobs_by_status ON troupe_jobs (status, created)",
        "CREATE INDEX troupe_jobs_by_owner ON troupe_jobs (owner, status)",
        (
            "CREATE TABLE troupe_owners (id TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL, "
            "since REAL NOT NULL)"
        ),
    ),
    # 2: the owner index goes. Every query by owner also names a live status,
    # which the status index finds (EXPLAIN QUERY PLAN), and keeping the
    # index up to date was half of each job's SQLite time: a job's insert and
    # outcome update took 12.6-15.5 us with it, 7.6-7.9 us without (5000 jobs
    # per commit, synchronous=FULL). Version-1 stores stay readable.
    ("DROP INDEX IF EXISTS troupe_jobs_by_owner",),
)
assert len(MIGRATIONS) == SCHEMA_VERSION  # noqa: S101 - one migration per version

COLUMNS = (
    "id, name, status, created, started, finished, progress, progress_message, result_kind, result, error"
)
_WRITTEN = "id, name, status, owner, " + COLUMNS.removeprefix("id, name, status, ")
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ON_CONFLICT = (
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status, "
    "started = excluded.started, finished = excluded.finished, progress = excluded.progress, "
    "progress_message = excluded.progress_message, result_kind = excluded.result_kind, "
    "result = excluded.result, error = excluded.error"
)
# Rows per INSERT statement. executemany steps one row at a time and gives up the
# GIL around each step; getting it back waits on the event loop's thread (up to
# the 5 ms switch interval). One statement per chunk is one step: in an A/B of 8
# runs each of bench/jobs.py's 5000 concurrent job tasks, median 0.85 s -> 0.80 s.
CHUNK = 200  # x WIDTH columns, well under SQLite's 32766 bound parameters
WIDTH = 12
"""Values per written row."""


@functools.cache
def upsert(rows: int) -> str:
    """The statement that inserts or updates ``rows`` records."""
    placeholders = ", ".join([_ROW] * rows)  # only "?" placeholders: the values are bound
    return f"INSERT INTO troupe_jobs ({_WRITTEN}) VALUES {placeholders} {_ON_CONFLICT}"  # noqa: S608


LIVE_SQL = "('pending', 'running')"


def sql_text(text: str | None) -> str | bytes | None:
    """Text as the file keeps it: itself, or, if UTF-8 cannot encode it, its bytes (a BLOB).

    Python's ``str`` may hold lone surrogates (``os.fsdecode`` of a file name
    that is not UTF-8 gives one), which sqlite3 refuses to bind as TEXT. Such
    a text is stored as its ``surrogatepass`` encoding, a BLOB, and `py_text`
    gives back the identical ``str``. Every other text is stored as TEXT.
    """
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")
    return text


def py_text(value: object) -> str:
    """A text column back as the ``str`` that was stored (see `sql_text`)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogatepass")
    return str(value)
