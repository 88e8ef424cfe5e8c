"""Messages and actors shared by the tests."""

from __future__ import annotations

import builtins
import inspect
import subprocess
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import trio

import troupe
from troupe import JobRecord, JobStatus


@troupe.message
class Increment:
    by: int = 1


@troupe.message
class GetCount:
    pass


@troupe.message
class Boom:
    text: str = "boom"


@troupe.message
class Sleep:
    seconds: float


@troupe.message
class Note:
    """Something an actor reports to a probe."""

    who: str
    what: str


CounterMsg = Increment | GetCount | Boom | Sleep


class Counter(troupe.Actor[CounterMsg]):
    """Counts; ``Boom`` makes it raise; ``Sleep`` makes it busy."""

    def __init__(self, start: int = 0) -> None:
        self.count = start

    async def receive(self, msg: CounterMsg) -> int | None:
        match msg:
            case Increment(by=n):
                self.count += n
            case GetCount():
                return self.count
            case Boom(text=text):
                raise ValueError(text)
            case Sleep(seconds=s):
                await trio.sleep(s)
        return None


class Reporter(Counter):
    """A counter that reports its lifecycle to a probe as ``Note``s."""

    def __init__(self, probe: troupe.ActorRef[Any], tag: str) -> None:
        super().__init__()
        self.probe = probe
        self.tag = tag

    async def on_start(self) -> None:
        self.probe.tell_nowait(Note(self.tag, "start"))

    async def on_stop(self) -> None:
        self.probe.tell_nowait(Note(self.tag, "stop"))


def notes(probe: troupe.TestProbe) -> list[tuple[str, str]]:
    """The ``Note``s a probe holds, as (who, what) pairs."""
    return [(n.who, n.what) for n in probe.received() if isinstance(n, Note)]


def slow_sum(lo: int, hi: int) -> int:
    """CPU-bound pure Python, for process tasks."""
    total = 0
    for i in range(lo, hi):
        total += i * i % 7
    return total


def product(lo: int, hi: int) -> int:
    result = 1
    for i in range(lo, hi):
        result *= i
    return result


def sleep_in_process(seconds: float) -> str:
    import time  # noqa: PLC0415

    time.sleep(seconds)
    return "woke"


def worker_pid() -> int:
    import os  # noqa: PLC0415

    return os.getpid()


def session_members(sid: int) -> list[int]:
    """The live processes of session ``sid`` (a command task's process group and what it started)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


async def eventually(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` is true (awaited if it returns an awaitable): for outside state.

    Processes ending, a Dask scheduler's or worker's state: no event tells
    them, so this polls; it is bounded by ``timeout`` (a hang guard, not a
    synchronisation).
    """
    with trio.fail_after(timeout):
        while True:
            holds = condition()
            if await holds if inspect.isawaitable(holds) else holds:
                return
            await trio.sleep(0.01)


def local_cluster(n_workers: int) -> Any:
    """A ``distributed.LocalCluster`` of ``n_workers`` processes, 1 thread each, for the Dask tests.

    A lost worker is ``KilledWorker`` at once (``allowed_failures=0``: troupe's
    ``retries=`` does the retrying); no dashboard; its HTTP routes on any free
    port; quiet logs. Use it as a context manager.
    """
    from distributed import LocalCluster  # noqa: PLC0415 - only the Dask tests pay for it

    return LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"allowed_failures": 0, "dashboard": False, "dashboard_address": ":0"},
        silence_logs=50,
    )


class FakeStore(troupe.JobStore):
    """A blocking JobStore over `MemoryJobStore`: ``before_save(records)`` runs first, in the worker thread.

    A test makes it fail a save (raise a `JobStoreError`) or hold one
    (wait on a ``threading.Event``).
    """

    def __init__(self, before_save: Callable[[Sequence[JobRecord]], None]) -> None:
        self.inner = troupe.MemoryJobStore()
        self.before_save = before_save

    @property
    def location(self) -> str:
        return "fake.sqlite"

    def open(self, owner: str | None) -> None:
        self.inner.open(owner)

    def save(self, records: Sequence[JobRecord], owner: str) -> None:
        self.before_save(records)
        self.inner.save(records, owner)

    def get(self, job_id: str) -> JobRecord | None:
        return self.inner.get(job_id)

    def list(
        self, *, status: Collection[JobStatus] | None = None, limit: int | None = None
    ) -> builtins.list[JobRecord]:
        return self.inner.list(status=status, limit=limit)

    def purge(self, *, older_than: float | None = None, ids: Collection[str] | None = None) -> int:
        return self.inner.purge(older_than=older_than, ids=ids)

    def request_cancel(self, job_id: str) -> JobRecord:
        return self.inner.request_cancel(job_id)

    def cancel_requests(self, owner: str) -> builtins.list[str]:
        return self.inner.cancel_requests(owner)

    def close(self, owner: str | None) -> None:
        self.inner.close(owner)


def run_python(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS...`` (a bench script, say) and assert it succeeded; its output is in the failure."""
    ran = subprocess.run(
        [sys.executable, *map(str, args)], check=False, capture_output=True, text=True, timeout=timeout
    )
    assert ran.returncode == 0, f"{args[0]} failed:\n{ran.stdout}\n{ran.stderr}"
    return ran
