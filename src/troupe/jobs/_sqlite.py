"""`SQLiteJobStore`: job records in one SQLite file (WAL, one writer at a time).

Layout: ``troupe_meta`` (format and schema version), ``troupe_jobs`` (one
row per job) and ``troupe_owners`` (the open writers). Each writer holds an
exclusive ``flock`` on ``<file>.owners/<owner>.lock`` for as long as it is
open; the kernel drops it when the process dies, however it dies. So a
writer that finds an owner's lock free knows that owner is gone, and marks
its ``pending``/``running`` jobs ``interrupted``.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import os
import socket
import sqlite3
import stat
import time
import urllib.parse
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Literal, final

from ..actors import JobStoreError
from ._record import LIVE, JobRecord, JobStatus, decode_result, encode_result
from ._schema import (
    CHUNK,
    COLUMNS,
    FORMAT,
    LIVE_SQL,
    MIGRATIONS,
    READABLE_FROM,
    SCHEMA_VERSION,
    WIDTH,
    py_text,
    sql_text,
    upsert,
)
from ._store import INTERRUPTED_ERROR, JobStore, not_found

_BUSY_TIMEOUT = 10.0


def _read_only(path: Path, mode: int) -> bool:
    """Whether the file is read-only: by access, or by its mode bits (which root ignores)."""
    return not os.access(path, os.W_OK) or mode & 0o222 == 0


@final
class SQLiteJobStore(JobStore):
    """Job records in a SQLite file: WAL, batched commits, crash-safe.

    ``troupe.open_system(jobs="jobs.sqlite")`` makes one for you; build it
    yourself to choose ``synchronous``. Several processes may share one
    file; each marks the jobs a crashed one left live as ``interrupted``.

    Args:
        path: the file; created (with its folder) by a writer if missing.
        synchronous: ``"full"`` (the default) also survives power loss;
            ``"normal"`` survives any process crash and commits faster.

    Example:
        ```python
        store = troupe.SQLiteJobStore(".troupe/jobs.sqlite", synchronous="normal")
        async with troupe.open_system(jobs=store):
            t = await troupe.submit_job(render_report, "2026-11")
        ```
    """

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: Literal["full", "normal"] = "full"
    ) -> None:
        if synchronous not in {"full", "normal"}:
            msg = f"synchronous is 'full' or 'normal', got {synchronous!r}"
            raise ValueError(msg)
        self._path = Path(path)
        self._synchronous = synchronous
        self._conn: sqlite3.Connection | None = None
        self._owner: str | None = None
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"SQLiteJobStore({str(self._path)!r})"

    @property
    def location(self) -> str:
        """The file's path."""
        return str(self._path)

    @property
    def _owners(self) -> Path:
        return self._path.with_name(self._path.name + ".owners")

    def _error(self, what: str) -> JobStoreError:
        return JobStoreError(f"{self._path}: {what}", location=str(self._path))

    # -- opening -------------------------------------------------------------

    def open(self, owner: str | None) -> None:
        """Open (and create or migrate, as a writer); recover what dead owners left."""
        path = self._path
        found = self._stat()
        if owner is None:
            if found is None:
                raise self._error(
                    "no such job store; a system opened with troupe.open_system(jobs=...) creates it"
                )
            conn = self._connect("ro")
        else:
            if found is not None and _read_only(path, found.st_mode):
                raise self._error(
                    "the file is read-only, so jobs cannot be recorded in it; make it writable "
                    "(chmod u+w) or use another path (the command line only reads it)"
                )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._error(f"cannot create its folder ({exc.strerror})") from exc
            conn = self._connect(None)
        try:
            self._prepare(conn, writer=owner is not None)
            if owner is not None:
                self._lock_fd = self._take_lock(owner)
                self._register(conn, owner)
        except BaseException:
            conn.close()
            self._release_lock(owner)
            raise
        self._conn = conn
        self._owner = owner

    def _stat(self) -> os.stat_result | None:
        """The file's status; None if there is none (yet)."""
        try:
            found = self._path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None  # a writer creates it (or says why it cannot create its folder)
        except ValueError as exc:  # os.stat's "embedded null byte"
            where = str(self._path)
            msg = f"{where!r}: the path holds a NUL character; give the file's real path"
            raise JobStoreError(msg, location=where) from exc
        except OSError as exc:
            raise self._error(
                f"cannot reach it ({exc.strerror}); check the permissions of its folders, or use another path"
            ) from exc
        if stat.S_ISDIR(found.st_mode):
            example = self._path / "jobs.sqlite"
            raise self._error(
                f"this is a folder, not a job store file; point jobs=/--db at a file, like {example}"
            )
        if not stat.S_ISREG(found.st_mode):  # opening a FIFO would block, a device is not a store
            raise self._error(
                "this is not a regular file (a FIFO, socket or device); point jobs=/--db at a file"
            )
        return found

    def _connect(self, mode: Literal["ro", "rw"] | None) -> sqlite3.Connection:
        target = str(self._path)
        if mode is not None:
            # a URI is percent-encoded bytes: a path that is not UTF-8 (os.fsdecode's lone
            # surrogates) is quoted as the bytes it stands for
            target = f"file:{urllib.parse.quote(os.fsencode(target))}?mode={mode}"
        try:
            conn = sqlite3.connect(
                target,
                uri=mode is not None,
                timeout=_BUSY_TIMEOUT,
                isolation_level=None,  # explicit BEGIN IMMEDIATE / COMMIT
                check_same_thread=False,  # one actor uses it, from one worker thread at a time
            )
        except sqlite3.Error as exc:
            raise self._error(f"cannot open it ({exc})") from exc
        return conn

    def _prepare(self, conn: sqlite3.Connection, *, writer: bool) -> None:
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.OperationalError as exc:  # cannot open or read it: not a sign that it is not ours
            raise self._error(
                f"cannot read it (SQLite: {exc}); check its permissions and its folder's"
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise self._not_ours(f"SQLite says: {exc}") from exc
        version = self._read_version(conn, tables) if tables else 0
        if version > SCHEMA_VERSION:
            raise self._error(
                f"it was written by a newer troupe (store schema version {version}; this troupe reads "
                f"up to {SCHEMA_VERSION}); upgrade troupe (pip install -U trio-troupe) to use it"
            )
        if not writer:
            if version < READABLE_FROM:
                raise self._error(
                    f"its schema (version {version}) is older than this troupe's ({SCHEMA_VERSION}); "
                    "open it once with troupe.open_system(jobs=...) to migrate it"
                )
            return
        self._exec(conn, f"PRAGMA synchronous = {self._synchronous}")
        mode = self._switch_to_wal(conn)
        if mode is None or str(mode[0]).lower() != "wal":
            raise self._error(f"cannot switch it to WAL mode (journal mode: {mode})")
        if version < SCHEMA_VERSION:
            self._migrate(conn, version)

    def _switch_to_wal(self, conn: sqlite3.Connection) -> tuple[object, ...] | None:
        """``PRAGMA journal_mode = WAL``, retried while another process holds the file.

        Switching needs the file to itself. When processes open a new store
        at the same moment, SQLite answers "database is locked" at once
        instead of waiting out the busy timeout (each holds a read lock the
        other waits on), so the wait is done here: 14 of 40 rounds of three
        processes opening one new store failed before.
        """
        deadline = time.monotonic() + _BUSY_TIMEOUT
        delay = 0.001
        while True:
            try:
                row: tuple[object, ...] | None = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise self._write_error(exc, "set it up") from exc
                time.sleep(delay)  # we run in the store's worker thread, never on the trio loop
                delay = min(2 * delay, 0.05)
            except sqlite3.Error as exc:
                raise self._write_error(exc, "set it up") from exc
            else:
                return row

    def _damaged(self, why: str) -> JobStoreError:
        return self._error(
            f"its troupe_meta table is damaged ({why}); restore the file from a copy, or move it aside "
            "(a writer then makes a new store at this path)"
        )

    def _read_version(self, conn: sqlite3.Connection, tables: set[str]) -> int:
        """The schema version of a file that has tables; raises unless it is a troupe store."""
        if "troupe_meta" not in tables:
            raise self._not_ours(f"it holds other tables: {', '.join(sorted(tables))}")
        try:
            meta = dict(conn.execute("SELECT key, value FROM troupe_meta").fetchall())
        except sqlite3.Error as exc:
            raise self._damaged(f"SQLite: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise self._not_ours(f"its format is {meta.get('format')!r}")
        return self._version(meta.get("version"))

    def _version(self, raw: object) -> int:
        """The schema version as troupe_meta holds it (a text of digits)."""
        if raw is None:
            raise self._damaged("it has no schema version")
        text = str(raw)
        if not (text.isascii() and text.isdigit()):
            raise self._damaged(f"its schema version {text!r} is not a number")
        return int(text)

    def _not_ours(self, why: str) -> JobStoreError:
        return self._error(
            f"this is not a troupe job store ({why}); point jobs=/--db at a troupe store, "
            "or at a new path to create one"
        )

    def _migrate(self, conn: sqlite3.Connection, version: int) -> None:
        with self._transaction(conn, "migrate the store's schema"):
            # re-read under the write lock: another process may have migrated it meanwhile
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "troupe_meta" in tables:
                row = conn.execute("SELECT value FROM troupe_meta WHERE key = 'version'").fetchone()
                version = self._version(None if row is None else row[0])
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO troupe_meta VALUES ('format', ?)", (FORMAT,))
            conn.execute("INSERT OR REPLACE INTO troupe_meta VALUES ('version', ?)", (str(SCHEMA_VERSION),))

    def _take_lock(self, owner: str) -> int:
        try:
            self._owners.mkdir(exist_ok=True)
        except FileExistsError as exc:
            raise self._owners_not_a_folder() from exc
        except OSError as exc:
            raise self._error(f"cannot create the owner lock in {self._owners} ({exc.strerror})") from exc
        try:
            fd = os.open(self._owners / f"{owner}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._error(f"cannot create the owner lock in {self._owners} ({exc.strerror})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh uuid: nobody else holds it
        except OSError as exc:
            os.close(fd)
            raise self._error(
                f"cannot lock {self._owners / owner}.lock ({exc.strerror}); keep the store on a local disk"
            ) from exc
        return fd

    def _owners_not_a_folder(self) -> JobStoreError:
        return self._error(
            f"{self._owners} is not a folder; move it aside (troupe keeps the open writers' locks in it)"
        )

    def _release_lock(self, owner: str | None) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                (self._owners / f"{owner}.lock").unlink()
            os.close(self._lock_fd)
            self._lock_fd = None

    def _owner_gone(self, owner: str) -> bool:
        try:
            fd = os.open(self._owners / f"{owner}.lock", os.O_RDONLY)
        except FileNotFoundError:
            return True
        except NotADirectoryError as exc:
            raise self._owners_not_a_folder() from exc
        except OSError as exc:
            raise self._error(f"cannot read the owner locks in {self._owners} ({exc.strerror})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as exc:
            raise self._error(f"cannot test the owner lock of {owner} ({exc.strerror})") from exc
        finally:
            os.close(fd)  # closing drops the lock if we got it
        return True

    def _register(self, conn: sqlite3.Connection, owner: str) -> None:
        with self._transaction(conn, "open it for writing"):
            gone = [
                oid
                for (oid,) in conn.execute("SELECT id FROM troupe_owners WHERE id != ?", (owner,))
                if self._owner_gone(oid)
            ]
            conn.executemany("DELETE FROM troupe_owners WHERE id = ?", [(oid,) for oid in gone])
            conn.execute(
                f"UPDATE troupe_jobs SET status = 'interrupted', finished = ?, error = ? "  # noqa: S608 - constant
                f"WHERE status IN {LIVE_SQL} AND owner NOT IN (SELECT id FROM troupe_owners)",
                (time.time(), INTERRUPTED_ERROR),
            )
            conn.execute(
                "INSERT INTO troupe_owners VALUES (?, ?, ?, ?)",
                (owner, os.getpid(), socket.gethostname(), time.time()),
            )
        for oid in gone:
            with contextlib.suppress(OSError):
                (self._owners / f"{oid}.lock").unlink()

    # -- writing -------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, conn: sqlite3.Connection, what: str) -> Iterator[None]:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._write_error(exc, what) from exc
        try:
            yield
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._write_error(exc, what) from exc
            raise

    def _write_error(self, exc: sqlite3.Error, what: str) -> JobStoreError:
        text = str(exc)
        if "full" in text:
            why = "the disk is full; free some space (or purge old jobs) and run again"
        elif "readonly" in text or "read-only" in text:
            why = "the file (or its folder) is read-only; make it writable"
        elif "locked" in text or "busy" in text:
            why = f"another process kept it locked for more than {_BUSY_TIMEOUT:g} s; try again"
        elif isinstance(exc, sqlite3.DatabaseError) and "malformed" in text:
            why = "the file is damaged; restore it from a copy or move it aside"
        else:
            why = "see the SQLite error"
        return self._error(
            f"could not {what} (SQLite: {text}): {why}. Nothing of this operation was stored; "
            "the records already stored are intact"
        )

    def _exec(self, conn: sqlite3.Connection, sql: str) -> sqlite3.Cursor:
        try:
            return conn.execute(sql)
        except sqlite3.Error as exc:
            raise self._write_error(exc, "set it up") from exc

    def _writer(self) -> sqlite3.Connection:
        if self._conn is None or self._owner is None:
            raise self._error("the store is not open for writing")
        return self._conn

    def save(self, records: Sequence[JobRecord], owner: str) -> None:
        """Upsert the records in one transaction."""
        conn = self._writer()
        values: list[object] = []
        for r in records:
            try:
                kind, result = encode_result(r)
            except Exception as exc:  # a result that changed since it was checked, a codec hook
                raise self._error(
                    f"job {r.id}'s result cannot be stored ({type(exc).__name__}: {exc}); "
                    "nothing of this operation was stored"
                ) from exc
            values += (
                r.id,
                sql_text(r.name),
                r.status.value,
                owner,
                r.created,
                r.started,
                r.finished,
                r.progress,
                sql_text(r.progress_message),
                kind,
                sql_text(result),
                sql_text(r.error),
            )
        with self._transaction(conn, f"store {len(records)} job transition(s)"):
            for start in range(0, len(values), CHUNK * WIDTH):
                chunk = values[start : start + CHUNK * WIDTH]
                conn.execute(upsert(len(chunk) // WIDTH), chunk)

    # -- reading -------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        if self._conn is None:
            raise self._error("the store is not open")
        return self._conn

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error(f"cannot read it (SQLite: {exc}); is it damaged?") from exc

    def _record(self, row: tuple[object, ...]) -> JobRecord:
        job_id, name, status, created, started, finished, progress, message, kind, result, error = row
        try:
            value, is_repr = decode_result(kind, None if result is None else py_text(result))  # type: ignore[arg-type]
            return JobRecord(
                id=str(job_id),
                name=py_text(name),
                status=JobStatus(str(status)),
                created=float(created),  # type: ignore[arg-type]
                started=None if started is None else float(started),  # type: ignore[arg-type]
                finished=None if finished is None else float(finished),  # type: ignore[arg-type]
                progress=float(progress),  # type: ignore[arg-type]
                progress_message=py_text(message),
                result=value,
                result_is_repr=is_repr,
                error=None if error is None else py_text(error),
            )
        except (ValueError, TypeError) as exc:
            raise self._error(
                f"job {job_id} has a corrupt record ({type(exc).__name__}: {exc}); the other records "
                f"are intact: remove this one with `troupe jobs purge --db {self._path} --id {job_id}`"
            ) from exc

    def get(self, job_id: str) -> JobRecord | None:
        """One record, or None."""
        rows = self._query(f"SELECT {COLUMNS} FROM troupe_jobs WHERE id = ?", (job_id,))  # noqa: S608
        return self._record(rows[0]) if rows else None

    def list(
        self, *, status: Collection[JobStatus] | None = None, limit: int | None = None
    ) -> builtins.list[JobRecord]:
        """Records, newest first."""
        sql = f"SELECT {COLUMNS} FROM troupe_jobs"  # noqa: S608 - constant columns
        params: builtins.list[object] = []
        if status is not None:
            statuses = [JobStatus(s).value for s in status]
            sql += f" WHERE status IN ({', '.join('?' * len(statuses))})"
            params.extend(statuses)
        sql += " ORDER BY created DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [self._record(row) for row in self._query(sql, params)]

    # -- changes a reader may make too (the command line) --------------------

    @contextlib.contextmanager
    def _changing(self, what: str) -> Iterator[sqlite3.Connection]:
        if self._owner is not None:
            conn = self._writer()
            with self._transaction(conn, what):
                yield conn
            return
        found = self._stat()
        if found is not None and _read_only(self._path, found.st_mode):
            raise self._error(f"the file is read-only, so troupe cannot {what}; make it writable")
        conn = self._connect("rw")
        try:
            with self._transaction(conn, what):
                yield conn
        finally:
            conn.close()

    def purge(self, *, older_than: float | None = None, ids: Collection[str] | None = None) -> int:
        """Delete finished records; return how many."""
        sql = f"DELETE FROM troupe_jobs WHERE status NOT IN {LIVE_SQL}"  # noqa: S608 - constant
        params: builtins.list[object] = []
        if older_than is not None:
            sql += " AND coalesce(finished, created) < ?"
            params.append(time.time() - older_than)
        if ids is not None:
            wanted = list(ids)
            sql += f" AND id IN ({', '.join('?' * len(wanted))})"
            params.extend(wanted)
        with self._changing("purge jobs") as conn:
            return conn.execute(sql, params).rowcount

    def request_cancel(self, job_id: str) -> JobRecord:
        """Flag a live job for its owner to cancel; a live job whose owner is gone is interrupted."""
        with self._changing("request a cancellation") as conn:
            row = conn.execute("SELECT owner, status FROM troupe_jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise not_found(job_id, self.location)
            owner, status = row
            if status in {s.value for s in LIVE}:
                if self._owner_gone(owner):
                    conn.execute(
                        "UPDATE troupe_jobs SET status = 'interrupted', finished = ?, error = ? WHERE id = ?",
                        (time.time(), INTERRUPTED_ERROR, job_id),
                    )
                else:
                    conn.execute("UPDATE troupe_jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
        record = self.get(job_id)
        assert record is not None  # noqa: S101 - found above
        return record

    def cancel_requests(self, owner: str) -> builtins.list[str]:
        """Ids of ``owner``'s live jobs flagged for cancellation (the flags are cleared)."""
        found = [
            str(row[0])
            for row in self._query(
                f"SELECT id FROM troupe_jobs WHERE owner = ? AND cancel_requested = 1 "  # noqa: S608
                f"AND status IN {LIVE_SQL}",
                (owner,),
            )
        ]
        if not found:
            return found
        with self._changing("clear cancellation requests") as conn:
            conn.executemany(
                "UPDATE troupe_jobs SET cancel_requested = 0 WHERE id = ?", [(i,) for i in found]
            )
        return found

    def close(self, owner: str | None) -> None:
        """Mark ``owner``'s live jobs ``interrupted``, unregister, let go of the file."""
        conn = self._conn
        if conn is None:
            return
        try:
            if owner is not None:
                with self._transaction(conn, "record the jobs cut off by the shutdown"):
                    conn.execute(
                        f"UPDATE troupe_jobs SET status = 'interrupted', finished = ?, error = ? "  # noqa: S608
                        f"WHERE owner = ? AND status IN {LIVE_SQL}",
                        (time.time(), INTERRUPTED_ERROR, owner),
                    )
                    conn.execute("DELETE FROM troupe_owners WHERE id = ?", (owner,))
        finally:
            self._conn = None
            conn.close()
            self._release_lock(owner)
