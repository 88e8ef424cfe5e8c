"""Attacks on DaskExecutor: cancels at every await, shutdowns, bad addresses, dying clusters, bad bodies.

troupe's promise under attack: nothing lost, nothing hangs, every task's
outcome is known, bad input gets a clear error. Most attacks run against a
real ``LocalCluster`` of 2 worker processes shared by this module; those that
could hang the test process (an address nobody answers on, a client whose
finaliser blocks the interpreter's exit) run in a subprocess with a timeout.
An attack that finds a bug is a strict xfail naming it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio
from distributed import Client, KilledWorker, LocalCluster
from distributed.client import ClosedClientError, FutureCancelledError

import troupe
from troupe import ActorStopped, DaskExecutor, TaskCancelled

from kit import eventually, local_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """2 worker processes of this module's own (its attacks kill workers)."""
    with local_cluster(2) as made:
        yield made


def small_cluster() -> LocalCluster:
    """A cluster of one worker of the test's own (to close or kill)."""
    made: LocalCluster = local_cluster(1)
    return made


def run_script(
    tmp_path: Path, code: str, timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (killed after ``timeout`` s); its last stdout line is JSON."""
    script = tmp_path / "attack.py"
    script.write_text(textwrap.dedent(code))
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the script hung: killed after {timeout} s; stdout: {exc.stdout!r}")
    lines = done.stdout.strip().splitlines()
    assert lines, f"no output (exit {done.returncode}): {done.stderr[-2000:]}"
    found: dict[str, Any] = json.loads(lines[-1])
    found["process_seconds"] = time.monotonic() - started
    return found


# -- bodies (module level: they travel to the workers) -------------------------------------------


def square(x: int) -> int:
    return x * x


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def wait_for_file(path: str, limit: float = 20) -> str:
    deadline = time.monotonic() + limit
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return "go"


def pid_then_wait(marker: str, go: str) -> str:
    Path(marker).write_text(str(os.getpid()))
    return wait_for_file(go)


def die_times(marker: str, times: int) -> str:
    """SIGKILL the worker running it the first ``times`` times; then succeed."""
    path = Path(marker)
    died = int(path.read_text()) if path.exists() else 0
    if died < times:
        path.write_text(str(died + 1))
        os.kill(os.getpid(), signal.SIGKILL)
    return f"survived after {died}"


class Unpicklable:
    def __reduce__(self) -> Any:
        msg = "this object refuses to be pickled"
        raise TypeError(msg)


def return_unpicklable() -> Unpicklable:
    return Unpicklable()


def return_huge(megabytes: int) -> bytes:
    return b"x" * (megabytes * 1024 * 1024)


class TwoArgError(Exception):
    """An exception whose __init__ does not take its args back (plain pickle cannot rebuild it)."""

    def __init__(self, what: str, code: int) -> None:
        super().__init__(f"{what} (code {code})")
        self.code = code


def raise_two_arg() -> None:
    raise TwoArgError("broken", 7)


class UnpicklableError(Exception):
    def __reduce__(self) -> Any:
        msg = "this error refuses to be pickled"
        raise TypeError(msg)


def raise_unpicklable() -> None:
    msg = "the real problem"
    raise UnpicklableError(msg)


def raise_worker_only_class() -> None:
    # A class that exists only on the worker: made there, never importable here.
    made = type("OnlyOnTheWorker", (Exception,), {"__module__": "not_a_module_here"})
    raise made("made on the worker")


def progress(fraction: Any, text: Any) -> str:
    troupe.report_progress(fraction, text)
    return "reported"


def exit_body() -> None:
    raise SystemExit(3)


def interrupt_body() -> None:
    raise KeyboardInterrupt


# -- bodies that go wrong ---------------------------------------------------------------------------


async def test_a_result_that_cannot_be_pickled_fails_the_task_saying_so(cluster: LocalCluster) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    async with troupe.open_system():
        task = await troupe.run_task(return_unpicklable, executor=dask)
        with trio.fail_after(20):
            error = await task.error()
    assert isinstance(error, TypeError)
    assert "Could not serialize object of type Unpicklable" in str(error)


async def test_a_huge_result_comes_back_whole(cluster: LocalCluster) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    async with troupe.open_system():
        task = await troupe.run_task(return_huge, 64, executor=dask)
        with trio.fail_after(20):
            result = await task.result()
    assert len(result) == 64 * 1024 * 1024


async def test_exceptions_that_pickle_badly_or_live_only_on_the_worker_still_fail_the_task(
    cluster: LocalCluster,
) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    async with troupe.open_system():
        with trio.fail_after(30):
            two_arg = await (await troupe.run_task(raise_two_arg, executor=dask)).error()
            unpicklable = await (await troupe.run_task(raise_unpicklable, executor=dask)).error()
            foreign = await (await troupe.run_task(raise_worker_only_class, executor=dask)).error()
    assert two_arg is not None
    assert "broken (code 7)" in str(two_arg)
    assert unpicklable is not None  # its outcome is known, whatever Dask makes of it
    assert "the real problem" in str(unpicklable) or "pickle" in str(unpicklable).lower()
    assert foreign is not None
    assert type(foreign).__name__ == "OnlyOnTheWorker"
    assert "made on the worker" in str(foreign)


async def test_system_exit_in_a_body_on_dask_is_the_tasks_error_and_the_worker_lives(
    cluster: LocalCluster,
) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    async with troupe.open_system():
        with trio.fail_after(30):
            exited = await (await troupe.run_task(exit_body, executor=dask)).error()
            assert await (await troupe.run_task(square, 4, executor=dask)).result() == 16
    assert type(exited) is SystemExit


_INTERRUPTED = """
    import json, trio, troupe
    from troupe import DaskExecutor

    def interrupt_body():
        raise KeyboardInterrupt

    async def main():
        async with troupe.open_system():
            task = await troupe.run_task(interrupt_body, executor=DaskExecutor({address!r}))
            error = await task.error()
            print(json.dumps({{"error": repr(error)}}), flush=True)

    if __name__ == "__main__":
        try:
            trio.run(main)
        except KeyboardInterrupt:
            print(json.dumps({{"error": "the system ended with KeyboardInterrupt"}}), flush=True)
"""


def test_keyboard_interrupt_in_a_body_on_dask_fails_only_its_task(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    found = run_script(tmp_path, _INTERRUPTED.format(address=cluster.scheduler_address), timeout=30)
    assert "KeyboardInterrupt" in found["error"]
    assert "the system ended" not in found["error"]


async def test_bad_progress_inside_dask_fails_the_task_and_odd_texts_are_dropped(
    cluster: LocalCluster,
) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    async with troupe.open_system(jobs=troupe.MemoryJobStore()):
        with trio.fail_after(30):
            for bad in (2.0, -0.1, float("nan"), "half", True, None):
                error = await (await troupe.run_task(progress, bad, "x", executor=dask, job=True)).error()
                assert isinstance(error, ValueError), bad
                assert "progress is a fraction from 0 to 1" in str(error)
            # a message that is not a str is not recorded, and does not break anything
            task = await troupe.run_task(progress, 0.5, {"not": "text"}, executor=dask, job=True)
            assert await task.result() == "reported"
            # outside a job (no record), progress inside Dask is fine too
            assert await (await troupe.run_task(progress, 1, "done", executor=dask)).result() == "reported"


# -- cancels at every await ----------------------------------------------------------------------------


async def test_a_forced_cancel_before_the_session_exists_ends_the_task_cancelled(
    cluster: LocalCluster,
) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    async with troupe.open_system():
        task = await troupe.run_task(square, 2, executor=dask)  # started: its first await opens the client
        with trio.fail_after(5):
            await task.cancel(force=True)
            assert isinstance(await task.error(), TaskCancelled)
        # the session opened meanwhile still serves the next task
        with trio.fail_after(20):
            assert await (await troupe.run_task(square, 3, executor=dask)).result() == 9


async def test_delayed_dask_tasks_cancelled_before_they_start_submit_nothing(cluster: LocalCluster) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    scheduler = cluster.scheduler
    assert scheduler is not None
    async with troupe.open_system():
        tasks = [await troupe.delay_task(square, i, executor=dask) for i in range(20)]
        for t in tasks:
            await t.cancel(force=True)
        for t in tasks:
            assert isinstance(await t.error(), TaskCancelled)
    assert not [k for k in scheduler.tasks if str(k).startswith("troupe-task-")]


async def test_a_forced_cancel_while_a_huge_result_is_gathered_ends_the_task_at_once(
    cluster: LocalCluster,
) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    scheduler = cluster.scheduler
    assert scheduler is not None
    async with troupe.open_system():
        task = await troupe.run_task(return_huge, 200, executor=dask)

        def done_there() -> bool:
            return any(ts.state == "memory" for ts in scheduler.tasks.values())

        await eventually(done_there, timeout=30)  # the result exists on the worker: the gather is under way
        with trio.fail_after(2):
            await task.cancel(force=True)
            assert isinstance(await task.error(), TaskCancelled)
    await eventually(lambda: not scheduler.tasks, timeout=30)  # released


async def test_a_thousand_tasks_with_some_forced_cancels_all_end_known(cluster: LocalCluster) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    scheduler = cluster.scheduler
    assert scheduler is not None
    async with troupe.open_system():
        tasks = [await troupe.run_task(square, i, executor=dask) for i in range(1000)]
        cancelled = tasks[::7]
        for t in cancelled:
            await t.cancel(force=True)
        with trio.fail_after(30):
            outcomes = [await t.error() for t in tasks]
            results = [await t.result() for i, t in enumerate(tasks) if outcomes[i] is None]
    for i, outcome in enumerate(outcomes):
        if i % 7 == 0:
            assert outcome is None or isinstance(outcome, TaskCancelled)  # it may have won the race
        else:
            assert outcome is None, outcome
    assert len(results) == sum(o is None for o in outcomes)
    assert any(isinstance(o, TaskCancelled) for o in outcomes)  # how many won the race depends on load
    await eventually(
        lambda: not [k for k in scheduler.tasks if str(k).startswith("troupe-task-")], timeout=30
    )


# -- shutdowns -----------------------------------------------------------------------------------------------


def _thread_names() -> set[str]:
    return {t.name for t in threading.enumerate()}


async def test_a_shutdown_with_many_dask_tasks_running_ends_each_known_bounded_and_clean(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    threads_before = set(threading.enumerate())
    scheduler = cluster.scheduler
    assert scheduler is not None
    dask = DaskExecutor(cluster.scheduler_address)
    started = 0.0
    async with troupe.open_system(shutdown_timeout=5):
        tasks = [await troupe.run_task(wait_for_file, str(tmp_path / "go"), executor=dask) for _ in range(52)]
        await eventually(lambda: len(scheduler.tasks) >= 52, timeout=30)  # 2 running, 50 queued
        started = time.monotonic()
    took = time.monotonic() - started
    (tmp_path / "go").write_text("the workers go free")  # a running body runs on after its cancel
    await eventually(lambda: not scheduler.tasks, timeout=30)  # each submission released at the scheduler
    assert took < 5
    errors = [await t.error() for t in tasks]
    assert all(isinstance(e, TaskCancelled) and e.shutdown for e in errors), {repr(e) for e in errors}
    await eventually(lambda: set(threading.enumerate()) <= threads_before, timeout=5)  # the client's loop


async def test_a_shutdown_during_the_embedded_clusters_start_leaves_no_process_or_thread() -> None:
    threads_before = set(threading.enumerate())
    processes_before = {p.pid for p in psutil.Process().children(recursive=True)}
    dask = DaskExecutor(n_workers=1)
    async with troupe.open_system(shutdown_timeout=20):
        task = await troupe.run_task(square, 2, executor=dask)  # the cluster starts: seconds
    error = await task.error()
    assert isinstance(error, TaskCancelled | ActorStopped), repr(error)  # known (see the test below)

    def ours() -> set[int]:
        return {
            p.pid
            for p in psutil.Process().children(recursive=True)
            if "resource_tracker" not in " ".join(p.cmdline())  # multiprocessing's own, kept for the process
        }

    await eventually(lambda: ours() <= processes_before, timeout=10)
    await eventually(lambda: set(threading.enumerate()) <= threads_before, timeout=5)


async def test_a_dask_task_started_just_before_shutdown_ends_cancelled_by_it() -> None:
    errors = []
    for _ in range(12):  # the race is lost about one time in three
        dask = DaskExecutor(n_workers=1)
        async with troupe.open_system(shutdown_timeout=20):
            task = await troupe.run_task(square, 2, executor=dask)
        errors.append(await task.error())
    assert all(isinstance(e, TaskCancelled) and e.shutdown for e in errors), {repr(e) for e in errors}


# -- the scheduler and the workers under attack ------------------------------------------------------------


@pytest.mark.parametrize("retries", [0, 1, 2])
async def test_a_worker_sigkilled_mid_task_fails_or_retries_as_retries_says(
    cluster: LocalCluster, tmp_path: Path, retries: int
) -> None:
    dask = DaskExecutor(cluster.scheduler_address, retries=retries)
    marker, go = tmp_path / "pid", tmp_path / "go"
    async with troupe.open_system():
        task = await troupe.run_task(pid_then_wait, str(marker), str(go), executor=dask)
        await eventually(lambda: marker.exists() and marker.read_text() != "", timeout=30)
        os.kill(int(marker.read_text()), signal.SIGKILL)  # from outside, mid-task
        go.write_text("go")  # the resubmission (if any) finishes at once
        with trio.fail_after(30):
            error = await task.error()
    if retries == 0:
        assert isinstance(error, KilledWorker)
        assert "troupe submitted it 1 time(s) (retries=0)" in "\n".join(getattr(error, "__notes__", []))
    else:
        assert error is None


async def test_a_body_that_kills_its_worker_twice_succeeds_with_retries_2(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    dask = DaskExecutor(cluster.scheduler_address, retries=2)
    async with troupe.open_system():
        task = await troupe.run_task(die_times, str(tmp_path / "died"), 2, executor=dask)
        with trio.fail_after(40):
            assert await task.result() == "survived after 2"


async def test_the_scheduler_dying_mid_task_ends_the_task_with_a_known_outcome() -> None:
    own = await trio.to_thread.run_sync(small_cluster)
    try:
        dask = DaskExecutor(own.scheduler_address)
        async with troupe.open_system(shutdown_timeout=5):
            with trio.fail_after(20):
                assert await (await troupe.run_task(square, 5, executor=dask)).result() == 25
            task = await troupe.run_task(nap, 20, executor=dask)
            await eventually(lambda: own.scheduler is not None and bool(own.scheduler.tasks), timeout=30)
            await trio.to_thread.run_sync(own.close)
            with trio.fail_after(20):
                error = await task.error()
            assert isinstance(error, KilledWorker | FutureCancelledError | OSError)
    finally:
        await trio.to_thread.run_sync(own.close)


# -- the user's client --------------------------------------------------------------------------------------


async def test_a_users_client_closed_before_after_or_during_a_task_gives_a_known_outcome(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    def new_client() -> Client:
        return Client(cluster.scheduler_address, set_as_default=False)  # type: ignore[no-untyped-call]

    closed_first = await trio.to_thread.run_sync(new_client)
    await trio.to_thread.run_sync(closed_first.close)
    later = await trio.to_thread.run_sync(new_client)
    during = await trio.to_thread.run_sync(new_client)
    try:
        async with troupe.open_system():
            with trio.fail_after(20):
                error = await (await troupe.run_task(square, 2, executor=DaskExecutor(closed_first))).error()
                assert error is not None
                assert "Client is closed" in str(error)

                dask = DaskExecutor(later)
                assert await (await troupe.run_task(square, 2, executor=dask)).result() == 4
                await trio.to_thread.run_sync(later.close)
                error = await (await troupe.run_task(square, 2, executor=dask)).error()
                assert isinstance(error, ClosedClientError)

                dask = DaskExecutor(during)
                task = await troupe.run_task(wait_for_file, str(tmp_path / "go"), executor=dask)
                scheduler = cluster.scheduler
                assert scheduler is not None
                await eventually(
                    lambda: any(ts.state == "processing" for ts in scheduler.tasks.values()), timeout=30
                )
                await trio.to_thread.run_sync(during.close)
                error = await task.error()
                assert isinstance(error, FutureCancelledError | ClosedClientError)
    finally:
        (tmp_path / "go").write_text("go")
        await trio.to_thread.run_sync(later.close)
        await trio.to_thread.run_sync(during.close)


# -- one executor, many systems ----------------------------------------------------------------------------


async def test_one_executor_serves_systems_one_after_the_other(cluster: LocalCluster) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    for n in range(3):
        async with troupe.open_system():
            with trio.fail_after(20):
                assert await (await troupe.run_task(square, n, executor=dask)).result() == n * n
            troupe.use_executor("dask", dask)
            with trio.fail_after(20):
                assert await (await troupe.run_task(square, n + 1, executor="dask")).result() == (n + 1) ** 2


def test_one_executor_serves_two_systems_at_once_in_two_threads(cluster: LocalCluster) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    async def one_system(n: int) -> None:
        async with troupe.open_system(name=f"sys{n}"):
            with trio.fail_after(30):
                tasks = [await troupe.run_task(square, n * 100 + i, executor=dask) for i in range(30)]
                results[n] = [await t.result() for t in tasks]

    def in_thread(n: int) -> None:
        try:
            trio.run(one_system, n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=in_thread, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert results == {n: [(n * 100 + i) ** 2 for i in range(30)] for n in (1, 2)}


# -- use_executor misuse ------------------------------------------------------------------------------------


async def test_use_executor_misuse_is_refused_clearly(cluster: LocalCluster) -> None:
    dask = DaskExecutor(cluster.scheduler_address)
    with pytest.raises(RuntimeError):
        troupe.use_executor("dask", dask)  # no system
    async with troupe.open_system():
        for bad in ("", "inline", "process", 3):
            with pytest.raises(ValueError, match="an executor's name is a non-empty str"):
                troupe.use_executor(bad, dask)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"executor must have `async def run\(self, fn, args\)`"):
            troupe.use_executor("dask", "tcp://127.0.0.1:8786")  # type: ignore[arg-type]
        # replaced: tasks made after use the new one
        troupe.use_executor("dask", troupe.ThreadExecutor())
        troupe.use_executor("dask", dask)
        with trio.fail_after(20):
            assert await (await troupe.run_task(square, 6, executor="dask")).result() == 36
        with pytest.raises(TypeError, match="channel= does not work with the dask executor"):
            await troupe.run_task(square, 1, executor="dask", channel=True)


async def test_an_executor_class_instead_of_an_instance_is_refused_where_it_is_named() -> None:
    async with troupe.open_system():
        with pytest.raises(TypeError, match=r"executor.*class DaskExecutor"):
            troupe.use_executor("dask", DaskExecutor)  # type: ignore[arg-type]


async def test_an_executor_class_passed_to_run_task_is_refused_at_the_call() -> None:
    async with troupe.open_system():
        with pytest.raises(TypeError, match=r"executor.*class DaskExecutor"):
            await troupe.run_task(square, 2, executor=DaskExecutor)  # type: ignore[call-overload]


# -- addresses nobody answers on (in subprocesses: these can hang) -----------------------------------------

_UNREACHABLE = """
    import gc, json, threading, time, trio, troupe
    from troupe import DaskExecutor

    def square(x):
        return x * x

    async def main():
        threads = {{t.name for t in threading.enumerate()}}
        out = {{}}
        try:
            dask = DaskExecutor({address!r})
        except ValueError as exc:  # refused where it is given
            out["refused"] = str(exc)
            print(json.dumps(out), flush=True)
            return
        async with troupe.open_system(shutdown_timeout={shutdown_timeout}):
            task = await troupe.run_task(square, 3, executor=dask)
            {during}
            closing = time.monotonic()
        out["shutdown_seconds"] = time.monotonic() - closing
        out["error"] = repr(await task.error())
        out["new_threads"] = sorted({{t.name for t in threading.enumerate()}} - threads)
        print(json.dumps(out), flush=True)
        gc.collect()  # a Client left half-made: its finaliser, run at exit, can block the exit for 60 s

    if __name__ == "__main__":
        trio.run(main)
"""

_CONNECT_3S = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"}


def test_a_body_on_an_unreachable_address_fails_with_an_error_naming_it(tmp_path: Path) -> None:
    during = "out['error_at'] = repr(await task.error())"
    code = _UNREACHABLE.format(shutdown_timeout=5, address="tcp://127.0.0.1:1", during=during)
    found = run_script(tmp_path, code, timeout=40, env=_CONNECT_3S)
    assert "Timed out trying to connect to tcp://127.0.0.1:1 after 3 s" in found["error_at"]


def test_a_garbage_address_fails_the_task_at_once_saying_what_is_wrong(tmp_path: Path) -> None:
    # One bad executor per system: several half-made clients in one process can block its trio thread
    # (their finalisers, run by the GC, wait up to 60 s): test_a_failed_connection_leaves_no_thread_behind.
    during = "out['error_at'] = repr(await task.error())"
    code = _UNREACHABLE.format(shutdown_timeout=5, address="garbage:notaport", during=during)
    found = run_script(tmp_path, code, timeout=40, env=_CONNECT_3S)
    if "refused" in found:  # where the address is given (better)
        assert "garbage:notaport" in found["refused"]
        return
    assert "'notaport'" in found["error_at"]
    assert found["shutdown_seconds"] < 2


@pytest.mark.parametrize("address", ["garbage", "127.0.0.1", "tcp://host"])
def test_a_garbage_address_is_refused_when_the_executor_is_made(address: str) -> None:
    with pytest.raises(ValueError, match="address"):
        DaskExecutor(address)


@pytest.mark.parametrize("address", ["garbage:notaport", "tcp://", ""])
def test_an_address_that_cannot_be_one_is_refused_when_the_executor_is_made(address: str) -> None:
    with pytest.raises(ValueError, match="address"):
        DaskExecutor(address)


@pytest.mark.parametrize(
    "address",
    [
        "garbage",
        "tcp://127.0.0.1:1",
    ],
)
def test_a_failed_connection_leaves_no_thread_behind(tmp_path: Path, address: str) -> None:
    during = "out['error_at'] = repr(await task.error())"
    code = _UNREACHABLE.format(shutdown_timeout=5, address=address, during=during)
    found = run_script(tmp_path, code, timeout=40, env=_CONNECT_3S)
    if "refused" in found:  # where the address is given: no client was made
        return
    assert "port" in found["error_at"] or "Timed out" in found["error_at"]
    assert found["new_threads"] == [n for n in found["new_threads"] if n.startswith("Trio thread")]


def test_a_forced_cancel_while_connecting_ends_the_task_at_once(tmp_path: Path) -> None:
    during = """
            await trio.sleep(0.2)  # the connection is under way (it takes 3 s to fail)
            asked = time.monotonic()
            await task.cancel(force=True)
            out['cancel_error'] = repr(await task.error())
            out['cancel_seconds'] = time.monotonic() - asked"""
    code = _UNREACHABLE.format(shutdown_timeout=10, address="tcp://127.0.0.1:1", during=during)
    found = run_script(tmp_path, code, timeout=40, env=_CONNECT_3S)
    assert "TaskCancelled" in found["cancel_error"]
    assert found["cancel_seconds"] < 1


def test_a_shutdown_while_connecting_is_bounded_by_shutdown_timeout(tmp_path: Path) -> None:
    during = "await trio.sleep(0.2)  # the connection is under way (it takes 3 s to fail)"
    code = _UNREACHABLE.format(shutdown_timeout=0.5, address="tcp://127.0.0.1:1", during=during)
    found = run_script(tmp_path, code, timeout=40, env=_CONNECT_3S)
    assert "TaskCancelled" in found["error"]
    assert found["shutdown_seconds"] < 1.5
