"""kill -9 on the job store's writers: nothing acknowledged is lost, and the file stays intact.

Three child processes (``tests/jobs/store_writer.py --mixed``) write to one
store at once, with names, progress, results and errors that are not
UTF-8. One at a time, a random one is killed with SIGKILL after a random
number of acknowledgements, and a new one takes its place. After each
kill the file passes ``PRAGMA integrity_check``, and a new writer opening
it finds every record the dead child acknowledged, with at least the
acknowledged status, and none of them left ``pending``/``running``: the
dead owner's live jobs became ``interrupted``. The other children keep
writing meanwhile (their live jobs are left alone).
"""

from __future__ import annotations

import importlib.util
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import troupe
from troupe import JobStatus

import faultkit

WRITER = Path(__file__).parent.parent / "jobs" / "store_writer.py"
_spec = importlib.util.spec_from_file_location("store_writer", WRITER)
assert _spec is not None
assert _spec.loader is not None
store_writer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(store_writer)
expected: Callable[..., dict[str, Any]] = store_writer.expected

_CHILDREN = 3
_FINISHED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.INTERRUPTED}


@dataclass
class _Ack:
    """What a child acknowledged of one job."""

    index: int
    running: bool = False
    done: str | None = None  # the outcome's status


@dataclass
class _Child:
    process: subprocess.Popen[str]
    acks: dict[str, _Ack] = field(default_factory=dict)

    def read(self, line: str) -> int:
        """Take one line (ignored unless whole); how many acknowledgements it made."""
        if not line.endswith("\n"):
            return 0  # cut off by the kill: not acknowledged
        what, job_id, index, *status = line.split()
        ack = self.acks.setdefault(job_id, _Ack(int(index)))
        if what == "running":
            ack.running = True
        elif what == "done":
            ack.done = status[0]
        return 1


def _start(db: Path) -> _Child:
    command = [sys.executable, str(WRITER), str(db), "0", "--mixed"]
    return _Child(subprocess.Popen(command, stdout=subprocess.PIPE, text=True, errors="strict"))


def _integrity(db: Path) -> str:
    with sqlite3.connect(db) as con:
        found = str(con.execute("PRAGMA integrity_check").fetchone()[0])
    con.close()
    return found


def _check(store: troupe.SQLiteJobStore, acks: dict[str, _Ack]) -> int:
    """Every acknowledged transition of a dead child is in the store; returns how many were lost."""
    lost = 0
    for job_id, ack in acks.items():
        record = store.get(job_id)
        if record is None:
            lost += 1
            continue
        assert record.status in _FINISHED, (job_id, record)  # its owner is gone: not live any more
        want = expected(ack.index, mixed=True)
        if want["name"] is not None:
            assert record.name == want["name"], record
        if ack.running:
            assert record.started is not None, record
        if ack.done is not None:
            assert record.status.value == ack.done == want["status"], record
            assert (record.result, record.error, record.progress_message) == (
                want["result"],
                want["error"],
                want["progress_message"],
            ), record
        elif record.status is JobStatus.INTERRUPTED:
            assert record.finished is not None
            assert record.error is not None
    return lost


def test_jobstore_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite"
    rng = faultkit.rng("jobstore kill -9")
    kills = faultkit.budget(ci=6, soak=300)
    children = [_start(db) for _ in range(_CHILDREN)]
    acknowledged = lost = 0
    try:
        for kill in range(kills):
            victim = children.pop(rng.randrange(len(children)))
            stdout = victim.process.stdout
            assert stdout is not None
            for _ in range(rng.randrange(1, 150)):  # kill after a random number of acknowledgements
                line = stdout.readline()
                assert line, f"a writer ended by itself, status {victim.process.wait()}"
                acknowledged += victim.read(line)
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait()
            for line in stdout:  # printed before it died: acknowledged too
                acknowledged += victim.read(line)
            stdout.close()
            assert _integrity(db) == "ok"
            checker = troupe.SQLiteJobStore(db)
            checker.open(f"checker-{kill}")  # a new writer: recovers what the dead one left live
            try:
                lost += _check(checker, victim.acks)
            finally:
                checker.close(f"checker-{kill}")
            children.append(_start(db))
    finally:
        for child in children:
            child.process.kill()
            child.process.wait()
            if child.process.stdout is not None:
                child.process.stdout.close()
    assert _integrity(db) == "ok"
    faultkit.report("jobstore kill -9", kills=kills, acknowledged=acknowledged, lost=lost, integrity="ok")
    assert lost == 0
    assert acknowledged >= kills
