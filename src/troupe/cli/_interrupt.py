"""Ctrl-C during ``troupe run`` and ``troupe node``: the topology stops, then the system, then the summary.

trio's own Ctrl-C raises `KeyboardInterrupt` in whichever task is running
when it comes. Next to the topology run the actors and, with
``--dashboard``, the dashboard's server (hypercorn, which takes a
`KeyboardInterrupt` for its own shutdown and swallows it): Ctrl-C landing
there ended the run without its summary, or not at all. So while its
system is open a run handles SIGINT itself (`CtrlC`), and every Ctrl-C ends
it the same way whatever was running:

- The first stops the topology: its call is cancelled (or not made, if it
  has not started), and the system shuts down as when the topology returns
  (``on_stop``, bounded by the system's ``shutdown_timeout``); then the
  summary, ``troupe: interrupted`` and exit status 130. If it comes while
  the topology's own code runs (in its call, or in a task it started),
  `KeyboardInterrupt` is raised there instead, as trio does: code that
  never awaits (a ``time.sleep`` loop) would never see the cancel. If it
  comes once the topology has returned, the shutdown goes on as it was.
- A second is `KeyboardInterrupt` in the main task, at its next checkpoint
  (trio's delivery for code protected from it): a slow shutdown is cut
  short, with ``troupe: interrupted``, exit status 130 and no summary.

Why not a task reading `trio.open_signal_receiver`: its handler only
queues the signal for that task, and a topology that never awaits never
lets it run. This handler does what that one does for everything else
(`trio.lowlevel.TrioToken.run_sync_soon`, which is safe in a signal
handler), and what trio's own does for the topology's code.
"""

from __future__ import annotations

import inspect
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import trio

_Handler = Callable[[int, FrameType | None], Any] | int | None


class CtrlC:
    """SIGINT for one run of a topology; made in the run's main task."""

    def __init__(self) -> None:
        self.pressed = 0
        """How many times Ctrl-C (SIGINT) came while it was handled."""
        self._token = trio.lowlevel.current_trio_token()
        self._main = trio.lowlevel.current_task()
        self._topology = trio.CancelScope()
        # While the topology runs: the run's own nurseries (the main task's other than the topology's).
        self._others: frozenset[trio.Nursery] | None = None
        self._previous: _Handler = None

    @contextmanager
    def handled(self) -> Iterator[None]:
        """Handle SIGINT in the block (from the main thread; elsewhere trio's own handling stays)."""
        if threading.current_thread() is not threading.main_thread():  # signals are the main thread's
            yield
            return
        self._previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield
        finally:
            # None: a handler not set from Python, which cannot be put back.
            signal.signal(signal.SIGINT, signal.SIG_DFL if self._previous is None else self._previous)

    @contextmanager
    def topology_running(self) -> Iterator[None]:
        """Around the topology's call: the first Ctrl-C cancels it."""
        # The main task's nurseries now are the run's (the system's, the watchers'): what the
        # topology opens from here on is its own.
        self._others = frozenset(self._main.child_nurseries)
        try:
            with self._topology:
                yield
        finally:
            self._others = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002 - signal's signature
        self.pressed += 1
        if self._in_topology() and not trio.lowlevel.currently_ki_protected():
            # The topology's own code, awaiting or not: interrupted here, as trio would. Not
            # cancelled too: its Cancelled would come out next to the KeyboardInterrupt.
            raise KeyboardInterrupt
        if self.pressed == 1:
            self._token.run_sync_soon(self._topology.cancel, idempotent=True)
        else:
            self._to_main_task(signum)

    def _in_topology(self) -> bool:
        """Whether the running task is the topology's: the main task in its call, or one it started."""
        if self._others is None:
            return False
        try:
            task = trio.lowlevel.current_task()
        except RuntimeError:  # trio's loop itself, between tasks
            return False
        while task is not self._main:
            nursery = task.parent_nursery
            if nursery is None:
                return False
            if nursery.parent_task is self._main:
                return nursery not in self._others
            task = nursery.parent_task
        return True

    @trio.lowlevel.enable_ki_protection
    def _to_main_task(self, signum: int) -> None:
        """Hand the signal to trio's handler from protected code: trio raises it in the main task."""
        previous = self._previous
        if callable(previous):
            previous(signum, inspect.currentframe())
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt
