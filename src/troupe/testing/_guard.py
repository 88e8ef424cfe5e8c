"""The determinism rules of an explored body: no threads, no processes.

A thread or a process runs beside trio's scheduler, so no seed can replay
what it does. While `explore` runs a schedule, starting one from the
exploring thread raises `ExploreError` at the call, naming the call and
where it was made. troupe's own blocking calls (sync task bodies on the
default thread executor, a job store's SQLite, reading a task list) do not
start threads under exploration: they run inline (``actors._explore``).

What is watched: ``trio.to_thread.run_sync`` (trio's thread cache does not
go through ``threading``), ``threading.Thread.start``,
``multiprocessing`` processes, and, through an audit hook (installed once,
on first use), ``subprocess.Popen``, ``os.fork``, ``os.posix_spawn`` and
``os.system``.
"""

from __future__ import annotations

import multiprocessing.process
import sys
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import trio._threads  # the module whose start_thread_soon trio.to_thread.run_sync calls

from ._explore_errors import ExploreError
from ._frames import origin, where

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

_AUDITED = {
    "subprocess.Popen": "a process (subprocess.Popen)",
    "os.fork": "a process (os.fork)",
    "os.forkpty": "a process (os.forkpty)",
    "os.posix_spawn": "a process (os.posix_spawn)",
    "os.spawn": "a process (os.spawn*)",
    "os.system": "a process (os.system)",
}


class _Watch:
    """Which thread is exploring, and what it started that it must not have."""

    def __init__(self) -> None:
        self.thread: int | None = None
        self.violations: list[ExploreError] = []


_watch = _Watch()  # one per interpreter: threads and processes are per interpreter too
_hooked = False


def _call_site() -> str:
    """Where the forbidden call was made: the innermost frame of user code, else of troupe."""
    frame: FrameType | None = sys._getframe(2)
    troupe_frame: FrameType | None = None
    while frame is not None:
        whose = origin(frame)
        if whose == "trio" and frame.f_code.co_name == "unrolled_run":
            break  # the bottom of the trio task: what is below is trio.run's caller
        if whose == "user":
            return where(frame, source=True)
        if whose == "troupe" and troupe_frame is None:
            troupe_frame = frame
        frame = frame.f_back
    return "an unknown place" if troupe_frame is None else f"{where(troupe_frame)} (troupe)"


def _refuse(what: str) -> None:
    if _watch.thread != threading.get_ident():
        return
    error = ExploreError(
        f"explored code started {what} at {_call_site()}: a thread or a process runs beside "
        "trio's scheduler, so no seed could replay it. Under troupe.testing.explore keep the body "
        "on trio alone: use async code, or a sync task body on troupe's default (thread) executor, "
        "which runs inline here; test the threaded part without explore()"
    )
    _watch.violations.append(error)
    raise error


def _audit(event: str, args: tuple[Any, ...]) -> None:  # noqa: ARG001 - the audit hook's signature
    what = _AUDITED.get(event)
    if what is not None and _watch.thread is not None:
        _refuse(what)


def _guarded(original: Callable[..., Any], what: str) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _refuse(what)
        return original(*args, **kwargs)

    guarded.__wrapped__ = original  # type: ignore[attr-defined]
    return guarded


@contextmanager
def guard() -> Iterator[list[ExploreError]]:
    """Refuse threads and processes started from this thread; yields the violations seen."""
    global _hooked  # noqa: PLW0603 - the audit hook is per interpreter and cannot be removed
    if _watch.thread is not None:
        msg = "troupe.testing.explore is already running (explorations cannot nest)"
        raise ExploreError(msg)
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked = True
    patches: list[tuple[Any, str, Any]] = [
        (trio._threads, "start_thread_soon", "a thread (trio.to_thread.run_sync)"),
        (threading.Thread, "start", "a thread (threading.Thread.start)"),
        (multiprocessing.process.BaseProcess, "start", "a process (multiprocessing)"),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for (owner, name, what), (_, _, original) in zip(patches, saved, strict=True):
        setattr(owner, name, _guarded(original, what))
    _watch.thread = threading.get_ident()
    _watch.violations = []
    try:
        yield _watch.violations
    finally:
        _watch.thread = None
        for owner, name, original in saved:
            setattr(owner, name, original)
