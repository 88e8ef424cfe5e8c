"""``troupe run FILE[:FUNCTION]``: run a topology with a live view or log lines, then a summary.

``troupe node`` runs a topology here too, in a system that has joined a
cluster: the view and the lines then also show the cluster.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trio

from ..actors import ActorFailed, ActorSystem
from ..actors._failure_log import FailureListener
from ..cluster import Cluster, open_system
from ..protocol import BusEvent, TroupeError
from ._dashboard import DashboardAt, open_dashboard
from ._exits import DONE, INTERRUPTED, Ending, process_ending, topology_ending
from ._interrupt import CtrlC
from ._load import load_target
from ._output import console, one_line, summary_table, summary_text
from ._state import ClusterSeen, Note, RunState
from ._view import LiveView

_FRAME = 0.125  # seconds between frames of the live view


@contextmanager
def _failure_reasons(state: RunState) -> Iterator[None]:
    """Why actors fail, for the view and the lines (and not printed again by the user's handlers)."""
    listener = FailureListener(lambda path, reason: state.failure_logged(path, one_line(reason)))
    listener.install(only=True)
    try:
        yield
    finally:
        listener.remove()


class _Printer:
    """Where the event lines go: printed (plain, or above the live view with ``--events``) or not."""

    def __init__(self, *, live: bool, every: bool) -> None:
        self.live = live
        self.every = every

    def show(self, notes: list[Note]) -> None:
        for note in notes:
            if self.every or (not self.live and note.logged):
                print(f"  {note.line}", flush=True)


@trio.lowlevel.enable_ki_protection
async def _frames(view: LiveView) -> None:
    while True:
        view.draw()
        await trio.sleep(_FRAME)


async def _call(
    fn: Callable[[Any], Awaitable[object]],
    system: ActorSystem,
    target: str,
    *,
    has_store: bool,
    traceback: bool,
) -> Ending:
    """Run the topology; how it ended (its error, Ctrl-C, sys.exit) is kept, not raised.

    Raised inside the system's nursery it would reach the user wrapped in an
    exception group, as a traceback.
    """
    try:
        await fn(system)
    except BaseException as exc:
        ending = topology_ending(exc, target, has_store=has_store, traceback=traceback)
        if ending is None:
            raise
        return ending
    return DONE


class _Watch:
    """What watches a run: the event listener, and the live view or the printed lines."""

    def __init__(self, state: RunState, view: LiveView | None, *, every: bool) -> None:
        self.state = state
        self.view = view
        self.printer = _Printer(live=view is not None, every=every)
        self._listening = trio.CancelScope()
        self._listened: trio.Event | None = None
        self._following = trio.CancelScope()
        self._system: ActorSystem | None = None

    async def start(self, system: ActorSystem, watchers: trio.Nursery, *, cluster: bool = False) -> None:
        """Listen to ``system``'s events; follow its ``cluster`` (if it joined one); draw the live view."""
        self._listened = trio.Event()
        await watchers.start(self._listen, system)
        if cluster:
            self._system = system
            await self._see_cluster(system)  # the first frame shows it
            watchers.start_soon(self._follow_cluster, system)
        if self.view is not None:
            self.view.start(system)
            watchers.start_soon(_frames, self.view)

    @trio.lowlevel.enable_ki_protection  # Ctrl-C goes to the topology (the main task), not here
    async def _listen(self, system: ActorSystem, *, task_status: trio.TaskStatus[None]) -> None:
        assert self._listened is not None  # noqa: S101 - set by start()
        try:
            async with system.events.listen("troupe.**") as events:
                task_status.started()
                with self._listening:
                    async for event in events:
                        self.printer.show(self.state.apply(event))
                # Stopped by finish(): what the system said while it stopped, in order, then no more.
                while (queued := _next(events)) is not None:
                    self.printer.show(self.state.apply(queued))
        finally:
            self._listened.set()

    async def _see_cluster(self, system: ActorSystem) -> None:
        handle = system.cluster
        members = tuple(await handle.members())
        seen = ClusterSeen(handle.name, handle.node, handle.node_id, handle.url, handle.connected, members)
        self.printer.show(self.state.cluster_seen(seen))

    @trio.lowlevel.enable_ki_protection  # Ctrl-C goes to the topology (the main task), not here
    async def _follow_cluster(self, system: ActorSystem) -> None:
        """See the cluster again at each change of its table or connection, until the system stops.

        At each change, not at each frame: a node that joins and leaves
        between two frames is a line in plain mode too.
        """
        with self._following:
            while True:
                await self._see_cluster(system)  # first: it may have changed before this task ran
                await system.cluster.wait_changed()  # no checkpoint in between: no change is missed

    def stopping(self) -> None:
        """The topology returned: the system stops (the cluster is left as it was last seen)."""
        self._following.cancel()  # leaving, the connection goes down: not news
        if self.view is not None:
            self.view.stopping()

    async def finish(self, phase: str) -> None:
        """Show the last events (the system is gone), then the last frame."""
        self._following.cancel()
        if self._listened is not None:
            # Not a drain from here: the listener may hold an event it took and not shown yet.
            self._listening.cancel()
            await self._listened.wait()
        self.printer.show(self.state.flush())
        if self._system is not None:
            stats = self._system.cluster.statistics()
            detail = f"sent {stats.sent}, received {stats.received}, reconnects {stats.reconnects}"
            self.printer.show(self.state.cluster_left(detail))
        if self.view is not None:
            self.view.finish(phase)


async def run_topology(
    target: str,
    *,
    live: bool,
    every: bool,
    jobs: str | None,
    traceback: bool,
    cluster: Cluster | None = None,
    dashboard: DashboardAt | None = None,
) -> int:
    """Run ``target``; return its exit status (see `troupe.cli._main`).

    With ``cluster``, its system joins that cluster first (``troupe node``):
    a failure to join is raised, after the system is gone. With
    ``dashboard``, the system's dashboard is served before the topology
    runs; if it cannot be (a port taken), that is raised the same way and
    the topology does not run.
    """
    fn = load_target(target, traceback=traceback)
    state = RunState()
    started = time.monotonic()
    out = console()
    watch = _Watch(state, LiveView(out, state) if live else None, every=every)
    ending = DONE
    refused: TroupeError | None = None
    ctrl_c = CtrlC()
    # The watchers outlive the system: they show it stopping, and its last events.
    async with trio.open_nursery() as watchers:
        try:
            with _failure_reasons(state), ctrl_c.handled():
                async with open_system(name=target, jobs=jobs, cluster=cluster) as system:
                    if dashboard is not None:
                        refused = await _dashboard(system, dashboard, live=live)
                    if refused is None:
                        await watch.start(system, watchers, cluster=cluster is not None)
                        if not ctrl_c.pressed:  # else the topology is not started at all
                            with ctrl_c.topology_running():
                                ending = await _call(
                                    fn, system, target, has_store=jobs is not None, traceback=traceback
                                )
                    else:
                        ending = Ending(2, None, "failed")
                    watch.stopping()
            if ctrl_c.pressed and ending.status == 0:  # Ctrl-C, even once the topology had returned
                ending = INTERRUPTED
        except ActorFailed as exc:
            ending = Ending(1, one_line(str(exc)), "failed")
        except TroupeError as exc:  # no store, or cannot join: raised below, out of the nursery's group
            refused, ending = exc, Ending(2, None, "failed")
        except BaseException as exc:
            ending = process_ending(exc, target) or Ending(1, None, "failed")
            raise
        finally:
            with trio.CancelScope(shield=True):  # also when Ctrl-C cuts the shutdown short
                await watch.finish(ending.phase)
            watchers.cancel_scope.cancel()
    if refused is not None:
        raise refused
    ending.report()
    stats = system.statistics()
    if live:
        out.print(summary_table(stats, state, time.monotonic() - started))
    else:
        print(summary_text(stats, state), flush=True)
    return ending.status


async def _dashboard(system: ActorSystem, at: DashboardAt, *, live: bool) -> TroupeError | None:
    """Serve ``system``'s dashboard; the error if it cannot be (raised once the system is gone)."""
    try:
        await open_dashboard(system, at, live=live)
    except TroupeError as exc:
        return exc
    return None


def _next(events: trio.MemoryReceiveChannel[BusEvent]) -> BusEvent | None:
    try:
        return events.receive_nowait()
    except trio.WouldBlock:
        return None
