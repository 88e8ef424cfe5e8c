"""``ActorSystem`` and ``open_system``: the root of every actor tree."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast, final, overload

import attrs
import trio

from .._util import NoPublicConstructor
from . import _cell as cells
from . import _stopping as stopping
from ._current import CURRENT_SYSTEM
from ._deadletters import DeadLetters
from ._errors import ActorFailed
from ._events import EventBus
from ._explore import FAIRNESS, exploring, pause_for
from ._jobs import JobObserver
from ._mailbox import DEFAULT_MAILBOX, Mailbox
from ._spawn import new_cell, spawn
from ._supervision import OneForAll, OneForOne, Restart, RestForOne, SupervisorStrategy
from ._threads import FromThread
from ._timeouts import Deadlines

if TYPE_CHECKING:
    from ..cluster import ClusterHandle  # for the type of `cluster` only: the cluster layer sets it
    from ..jobs import Jobs  # for the type of `jobs` only: the jobs layer sets it
    from ._actor import Actor
    from ._ref import ActorRef

log = logging.getLogger("troupe")

M = TypeVar("M")


@final
@attrs.frozen
class SystemStatistics:
    """A snapshot of a system, from [`ActorSystem.statistics()`][troupe.ActorSystem.statistics]."""

    actors_started: int
    """Actors spawned so far (restarts not included)."""
    alive: int
    """Actors alive now."""
    restarts: int
    """Restarts so far."""
    failures: int
    """Failures so far (each one went to a supervisor)."""
    dead_letters: int
    """Dead letters so far."""
    stuck_at_shutdown: tuple[str, ...]
    """Paths still running when ``shutdown_timeout`` ran out (cancelled without ``on_stop``)."""


@final
class ActorSystem(metaclass=NoPublicConstructor):
    """An actor tree, its dead letters and its event bus; from `open_system`.

    Example:
        ```python
        async with troupe.open_system() as system:
            counter = await system.spawn(Counter, name="counter")
            assert system.lookup("/user/counter") == counter
        ```
    """

    def __init__(self, name: str, supervisor: SupervisorStrategy, shutdown_timeout: float) -> None:
        self._name = name
        self._shutdown_timeout = shutdown_timeout
        self._events = EventBus._create()
        self._dead_letters = DeadLetters._create(self._events)
        self._deadlines = Deadlines()
        self._closing = False
        self._nursery: trio.Nursery = None  # type: ignore[assignment] # set by open_system
        self._body_scope: trio.CancelScope | None = None
        self._failure: tuple[str, BaseException] | None = None
        self._stats_started = 0
        self._stats_ended = 0  # spawned actors that have terminated: alive = started - ended
        self._stats_restarts = 0
        self._stats_failures = 0
        self._stuck: tuple[str, ...] = ()
        self._jobs: JobObserver | None = None  # set by troupe.open_system(jobs=...)
        self._cluster: Any = None  # a ClusterHandle, set by troupe.open_system(cluster=...)
        self._extensions: dict[str, Any] = {}  # per-system state of the layers above (tasks, jobs)
        self._token = trio.lowlevel.current_trio_token()
        self._from_thread: FromThread | None = None
        explorer = exploring()
        self._explorer = explorer  # troupe.testing.explore's, when this run explores schedules
        self._fairness = FAIRNESS if explorer is None else 1
        self._pause = pause_for(explorer)  # the receive loop's yield once per `cell.fair` messages
        root = new_cell(self, None, "", None, None, DEFAULT_MAILBOX, Restart.PERMANENT)
        root.children = {}
        self._root = root
        self._guardians = []
        for guardian_name, strategy in (("system", OneForOne()), ("user", supervisor)):
            guardian = new_cell(self, root, guardian_name, None, None, DEFAULT_MAILBOX, Restart.PERMANENT)
            guardian.state = cells.RUNNING
            guardian.guardian_strategy = strategy
            root.children[guardian_name] = guardian
            self._guardians.append(guardian)
        self._system_guardian, self._user = self._guardians
        root.state = cells.RUNNING

    def __repr__(self) -> str:
        return f"<ActorSystem {self._name!r}>"

    @property
    def name(self) -> str:
        """The system's name (from ``open_system(name=...)``)."""
        return self._name

    @property
    def events(self) -> EventBus:
        """The system's [`EventBus`][troupe.EventBus]."""
        return self._events

    @property
    def jobs(self) -> Jobs | None:
        """The system's job tracker ([`Jobs`][troupe.Jobs]), or None without a job store.

        Open the system with ``troupe.open_system(jobs="jobs.sqlite")`` to have one.
        """
        # Only troupe.jobs sets it, to a Jobs; the layers below see a JobObserver.
        return cast("Jobs | None", self._jobs)

    @property
    def cluster(self) -> ClusterHandle:
        """The system's membership of a cluster ([`ClusterHandle`][troupe.cluster.ClusterHandle]).

        Open the system with ``troupe.open_system(cluster=troupe.Cluster(...))`` to have one.

        Raises:
            RuntimeError: the system has not joined a cluster.
        """
        found = self._cluster
        if found is None:
            msg = (
                f"system {self._name!r} has not joined a cluster; open it with "
                "troupe.open_system(cluster=troupe.Cluster(...))"
            )
            raise RuntimeError(msg)
        return cast("ClusterHandle", found)

    @property
    def dead_letters(self) -> DeadLetters:
        """The system's [`DeadLetters`][troupe.DeadLetters]."""
        return self._dead_letters

    async def spawn(
        self,
        factory: Callable[[], Actor[M]],
        *,
        name: str | None = None,
        mailbox: Mailbox | None = None,
        restart: Restart = Restart.PERMANENT,
    ) -> ActorRef[M]:
        """Start a top-level actor under ``/user``; return once ``on_start`` finished.

        Args:
            factory: a zero-argument callable returning a fresh actor (a
                class, a lambda, a ``functools.partial``); called again on
                every restart.
            name: unique among siblings; default ``ClassName-N``.
            mailbox: capacity and overflow policy; default ``Mailbox()``.
            restart: when the supervisor restarts it.

        Returns:
            The new actor's ref.

        Raises:
            NameTaken: a live sibling has this name.
            TypeError: the factory returned something that is not an actor.
            SpawnError: ``on_start`` raised (``__cause__``); nothing is left running.
            ActorStopped: the system is shutting down.
        """
        return await spawn(self._user, factory, name=name, mailbox=mailbox, restart=restart)

    async def _spawn_system(self, factory: Callable[[], Actor[M]], *, name: str) -> ActorRef[M]:
        """Start a runtime actor under ``/system`` (for troupe's own layers)."""
        return await spawn(self._system_guardian, factory, name=name, mailbox=None, restart=Restart.PERMANENT)

    @property
    def from_thread(self) -> FromThread:
        """Blocking ``tell`` and ``ask`` for plain threads: a [`FromThread`][troupe.FromThread]."""
        found = self._from_thread
        if found is None:
            found = self._from_thread = FromThread._create(self._token, self._name)
        return found

    @overload
    def actors(self) -> list[ActorRef[Any]]: ...
    @overload
    def actors(self, of: type[Actor[M]]) -> list[ActorRef[M]]: ...

    def actors(self, of: type[Actor[Any]] | None = None) -> list[ActorRef[Any]]:
        """The refs of the live actors under ``/user``, parents before their children, in spawn order.

        Args:
            of: only the actors whose instance is of this class (or a subclass).

        Example:
            ```python
            for worker in system.actors(of=Worker):
                worker.tell_nowait(Flush())
            ```

        It walks the tree: the cost grows with the number of actors, none is
        paid while it is not called.
        """
        found: list[ActorRef[Any]] = []
        stack = list(reversed(self._user.children.values())) if self._user.children else []
        while stack:
            cell = stack.pop()
            if cell.state == cells.DEAD:
                continue
            if of is None or isinstance(cell.actor, of):
                found.append(cell.ref)
            if cell.children:
                stack.extend(reversed(cell.children.values()))
        return found

    def lookup(self, path: str) -> ActorRef[Any] | None:
        """The ref of the live actor at ``path`` (like ``/user/jobs/worker-3``), or None."""
        if not isinstance(path, str) or not path.startswith("/"):
            return None
        cell = self._root
        for part in path[1:].split("/"):
            children = cell.children
            found = children.get(part) if children else None
            if found is None:
                return None
            cell = found
        if cell.guardian_strategy is not None or cell.state == cells.DEAD:
            return None
        return cell.ref

    def statistics(self) -> SystemStatistics:
        """A snapshot of the system's counters."""
        return SystemStatistics(
            actors_started=self._stats_started,
            alive=self._stats_started - self._stats_ended,
            restarts=self._stats_restarts,
            failures=self._stats_failures,
            dead_letters=self._dead_letters.count,
            stuck_at_shutdown=self._stuck,
        )

    def _walk(self) -> list[cells._Cell]:
        out: list[cells._Cell] = []
        stack = list(self._guardians)
        while stack:
            cell = stack.pop()
            if cell.children:
                for child in cell.children.values():
                    if child.state != cells.DEAD:
                        out.append(child)
                        stack.append(child)
        return out

    def _emit(self, topic: str, data: object) -> None:
        events = self._events
        if events._subs:
            known = events._cache.get(topic)
            if known is None or known:  # a topic known to reach no one costs a lookup (dashboards skip some)
                events._emit(topic, data)

    def _fail_root(self, path: str, cause: BaseException) -> None:
        if self._failure is None and not self._closing:
            self._failure = (path, cause)
            log.error("%s failed over the root supervisor's limit; shutting down", path, exc_info=cause)
            if self._body_scope is not None:
                self._body_scope.cancel()

    def _finalize_leftovers(self) -> None:
        """After the nursery: end every cell still not dead (nothing may outlive the system).

        The shutdown finalizes every actor it reaches; when its bound runs
        out (or KeyboardInterrupt cuts it) cells with no running instance
        may be left: one waiting out a backoff, one stopped for its group's
        restart. Their mailboxes are dead-lettered and their asks fail here.
        """
        stack = list(self._guardians)
        leftovers: list[cells._Cell] = []
        while stack:
            cell = stack.pop()
            if cell.children:
                for child in cell.children.values():
                    leftovers.append(child)
                    stack.append(child)
        for cell in reversed(leftovers):  # children before their parents
            if cell.state != cells.DEAD:
                stopping.drop_instance(cell, None)
                stopping.finalize(cell, None)

    async def _shutdown(self) -> None:
        self._closing = True
        timeout = self._shutdown_timeout
        with trio.move_on_after(timeout) as scope:
            for guardian in (self._user, self._system_guardian):
                await stopping.stop_children(guardian)
            await trio.lowlevel.checkpoint()
        if scope.cancelled_caught:
            self._stuck = tuple(cell.path for cell in self._walk())
            log.warning(
                "shutdown_timeout (%g s) ran out; cancelled without on_stop: %s",
                timeout,
                ", ".join(self._stuck),
            )
            for path in self._stuck:
                self._emit("troupe.failed", path)


def _unwrap(group: BaseExceptionGroup[BaseException]) -> BaseException:
    leaves: list[BaseException] = []

    def collect(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for sub in exc.exceptions:
                collect(sub)
        else:
            leaves.append(exc)

    collect(group)
    for leaf in leaves:
        if isinstance(leaf, KeyboardInterrupt):
            return leaf
    for leaf in leaves:
        if not isinstance(leaf, trio.Cancelled):
            return leaf
    return leaves[0]


def _check_timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        msg = f"shutdown_timeout is a number of seconds >= 0 (math.inf: no bound), got {value!r}"
        raise ValueError(msg)
    return float(value)


async def _relay_outer_cancel(system: ActorSystem) -> None:
    """Turn a cancellation from outside ``open_system`` into a cancel of its body.

    The actors and the shutdown run shielded from cancellations that come
    from outside, so that an outer cancel runs the same bounded, graceful
    shutdown as leaving the block; this task is not shielded, so the outer
    cancel reaches it, and it cancels the body.
    """
    try:
        await trio.sleep_forever()
    finally:
        if system._body_scope is not None:
            system._body_scope.cancel()


@asynccontextmanager
async def open_system(
    *,
    name: str = "troupe",
    supervisor: SupervisorStrategy | None = None,
    shutdown_timeout: float = 10.0,
) -> AsyncIterator[ActorSystem]:
    """Open an actor system; leaving the block shuts it down.

    Shutdown is sequential and depth-first: top-level actors one at a time
    in reverse spawn order, each one's children before its own ``on_stop``.
    ``shutdown_timeout`` bounds the whole of it; what still runs then is
    cancelled without ``on_stop`` and reported, and a message it was
    handling becomes a dead letter (``DeadLetterReason.INTERRUPTED``).

    A cancellation from outside (a ``trio.move_on_after`` around the block,
    a cancelled nursery) cancels the body and then runs the same shutdown,
    shielded and bounded by ``shutdown_timeout``; the cancellation goes on
    once the system has stopped.

    Args:
        name: a name for logs and the command line.
        supervisor: the strategy for top-level actors; default
            ``OneForOne()`` (3 restarts in 5 s).
        shutdown_timeout: seconds the whole shutdown may take (``math.inf``:
            no bound).

    Raises:
        ActorFailed: a top-level actor failed more often than ``supervisor``
            allows; ``__cause__`` is the original exception. The body is
            cancelled first. An exception raised by the body itself wins.
        ValueError: ``shutdown_timeout`` is negative or not a number.

    Example:
        ```python
        async with troupe.open_system() as system:
            ref = await system.spawn(Counter)
            await ref.tell(Increment())
        ```
    """
    if supervisor is None:
        supervisor = OneForOne()
    elif not isinstance(supervisor, OneForOne | OneForAll | RestForOne):
        msg = f"supervisor must be OneForOne, OneForAll or RestForOne, got {supervisor!r}"
        raise TypeError(msg)
    system = ActorSystem._create(name, supervisor, _check_timeout(shutdown_timeout))
    token = CURRENT_SYSTEM.set(system)
    body_error: BaseException | None = None
    try:
        try:
            async with trio.open_nursery() as relay:
                relay.start_soon(_relay_outer_cancel, system, name="troupe outer-cancel relay")
                with trio.CancelScope(shield=True):
                    async with trio.open_nursery() as nursery:
                        system._nursery = nursery
                        system._deadlines.start(nursery)
                        try:
                            with trio.CancelScope() as body:
                                system._body_scope = body
                                yield system
                        except BaseException as exc:  # noqa: BLE001 - re-raised after the shutdown
                            body_error = exc
                        system._body_scope = None
                        await system._shutdown()
                        nursery.cancel_scope.cancel()
                relay.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            leaf = _unwrap(group)
            # an outer cancel's Cancelled (from the relay) gives way to the error that explains more
            if not isinstance(leaf, trio.Cancelled) or (body_error is None and system._failure is None):
                raise leaf from None
    finally:
        CURRENT_SYSTEM.reset(token)
        system._finalize_leftovers()
        system._deadlines.close()
    if body_error is not None:
        raise body_error
    if system._failure is not None:
        path, cause = system._failure
        raise ActorFailed(path, cause) from cause
