"""``ActorContext``: what an actor can do besides receiving."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, final

import trio
from trio.lowlevel import current_task

from .._util import NoPublicConstructor
from ..protocol import Terminated
from . import _cell as cells
from . import _stopping as stopping
from ._actor import accepts_type, describe_accepts
from ._current import CURRENT_ACTOR
from ._errors import MessageTypeError
from ._ref import ActorRef
from ._reply import Reply
from ._spawn import spawn
from ._supervision import Restart
from ._timers import Timers

if TYPE_CHECKING:
    from ._actor import Actor
    from ._mailbox import Mailbox
    from ._ref import Ref
    from ._system import ActorSystem

M = TypeVar("M")
C = TypeVar("C")


@final
class ActorContext(Generic[M], metaclass=NoPublicConstructor):
    """What an actor can do besides receiving (``self.context``).

    Example:
        ```python
        class Parent(troupe.Actor[troupe.Terminated]):
            async def on_start(self) -> None:
                child = await self.context.spawn(Worker, name="worker")
                self.context.watch(child)

            async def receive(self, msg: troupe.Terminated) -> None:
                print(msg.ref.path, "ended:", msg.reason)
        ```
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: cells._Cell) -> None:
        self._cell = cell

    @property
    def system(self) -> ActorSystem:
        """The system this actor belongs to."""
        return self._cell.system

    @property
    def parent(self) -> ActorRef[Any] | None:
        """The parent's ref, or None for a top-level actor."""
        parent = self._cell.parent
        return None if parent is None or parent.guardian_strategy is not None else parent.ref

    @property
    def children(self) -> list[ActorRef[Any]]:
        """The refs of the live children, in start order."""
        children = self._cell.children
        return [c.ref for c in children.values()] if children else []

    @property
    def timers(self) -> Timers[M]:
        """This actor's [`Timers`][troupe.Timers]."""
        cell = self._cell
        if cell.timers is None:
            cell.timers = Timers._create(cell)
        return cast("Timers[M]", cell.timers)

    async def spawn(
        self,
        factory: Callable[[], Actor[C]],
        *,
        name: str | None = None,
        mailbox: Mailbox | None = None,
        restart: Restart = Restart.PERMANENT,
    ) -> ActorRef[C]:
        """Spawn a child supervised by this actor.

        See [`ActorSystem.spawn()`][troupe.ActorSystem.spawn] for the arguments.
        """
        return await spawn(self._cell, factory, name=name, mailbox=mailbox, restart=restart)

    def watch(self, ref: Ref[Any]) -> None:
        """Receive ``Terminated(ref, reason)`` once ``ref`` terminates for good.

        Sent once, at final termination (not at restarts), and at once if
        ``ref`` is already dead. A [`RemoteRef`][troupe.cluster.RemoteRef]
        to an actor on another node is watched too: ``Terminated`` comes when
        it stops, or when its node leaves the cluster or is lost.

        Raises:
            MessageTypeError: this actor's ``M`` does not include ``Terminated``.
            ValueError: an actor cannot watch itself.
            TypeError: ``ref`` is not a ref, or is a remote ref to a group
                of actors (watch one member: ``system.cluster.lookup(name)``).
        """
        me = self._cell
        if not accepts_type(me.accepts, Terminated):
            raise MessageTypeError(me.path, Terminated(ref), describe_accepts(me.accepts))
        if type(ref) is not ActorRef:
            _remote_hook(ref, "_watch_from")(me)
            return
        target = ref._cell
        if target is me:
            msg = f"{me.path} cannot watch itself; its parent or a sibling can"
            raise ValueError(msg)
        if target.state == cells.DEAD:
            me.deliver_system(Terminated(ref, target.final_reason))
            return
        if target.watchers is None:
            target.watchers = set()
        target.watchers.add(me)
        if me.watching is None:
            me.watching = set()
        me.watching.add(target)

    def unwatch(self, ref: Ref[Any]) -> None:
        """Stop watching ``ref`` (a no-op if not watching it)."""
        me = self._cell
        if type(ref) is not ActorRef:
            _remote_hook(ref, "_unwatch_from")(me)
            return
        target = ref._cell
        if target.watchers:
            target.watchers.discard(me)
        if me.watching:
            me.watching.discard(target)

    def stop(self) -> None:
        """End this actor normally after the current message.

        A ``PERMANENT`` actor is then restarted by its supervisor; the other
        restart types are not.
        """
        cell = self._cell
        cell.self_stop = True
        cell.exiting = True
        cell.wake()

    def start_soon(
        self, async_fn: Callable[..., Awaitable[object]], *args: object, name: str | None = None
    ) -> None:
        """Run ``async_fn(*args)`` in the background, inside this actor.

        The job is cancelled when the actor stops or restarts; if it raises,
        the actor fails and its supervisor decides.

        Raises:
            RuntimeError: the actor is stopping.
        """
        cell = self._cell
        if cell.state not in {cells.STARTING, cells.RUNNING}:
            msg = f"{cell.path} is stopping; it cannot start background jobs now"
            raise RuntimeError(msg)
        scope = trio.CancelScope()
        jobs = cell.jobs
        if jobs is None:
            jobs = cell.jobs = set()
        jobs.add(scope)
        cell.system._nursery.start_soon(
            _job, cell, cell.generation, scope, async_fn, args, name=name or f"{cell.path} job {async_fn!r}"
        )

    def defer_reply(self) -> Reply[Any]:
        """Answer the ask being handled later, through the returned [`Reply`][troupe.Reply].

        Whatever ``receive`` returns is then ignored. For a message sent with
        ``tell`` the returned reply goes nowhere (its answers are ignored).

        Raises:
            RuntimeError: called outside this actor's ``receive``.
        """
        cell = self._cell
        if current_task() is not cell.task:
            msg = f"defer_reply() of {cell.path} must be called from its receive()"
            raise RuntimeError(msg)
        reply = cell.current
        if reply is None:
            return Reply._create(None, None, None, None)
        cell.current = None
        reply._deferred = True
        if cell.deferred is None:
            cell.deferred = set()
        cell.deferred.add(reply)
        return reply


def _remote_hook(ref: object, name: str) -> Callable[[cells._Cell], None]:
    """A ref from a layer above (a cluster's RemoteRef) watches through its own hook."""
    hook: Callable[[cells._Cell], None] | None = getattr(ref, name, None)
    if hook is None:
        msg = f"watch() takes an ActorRef or a cluster's RemoteRef, got {ref!r}"
        raise TypeError(msg)
    return hook


async def _job(
    cell: cells._Cell,
    generation: int,
    scope: trio.CancelScope,
    async_fn: Callable[..., Awaitable[object]],
    args: tuple[object, ...],
) -> None:
    CURRENT_ACTOR.set(cell)
    jobs = cell.jobs
    assert jobs is not None  # noqa: S101 - created by start_soon
    try:
        with scope:
            await async_fn(*args)
    except Exception as exc:  # noqa: BLE001 - a failing job fails its actor
        if cell.generation == generation:
            stopping.fail_cell(cell, exc)
    finally:
        jobs.discard(scope)
        if not jobs and cell.jobs_done is not None:
            cell.jobs_done.set()
