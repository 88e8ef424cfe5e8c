"""``ClusterHandle`` (``system.cluster``), the cluster actor, and ``open_system(cluster=...)``."""

from __future__ import annotations

import math
import types
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar, final, overload

import attrs
import trio

from .._util import NoPublicConstructor
from ..actors import Actor, ActorRef, ActorStopped, SpawnError, SupervisorStrategy
from ..actors._actor import _flatten
from ..jobs import JobStore
from ..jobs import open_system as open_jobs_system
from ..protocol import Terminated
from . import _wire as wire
from ._config import Cluster
from ._errors import ClusterError
from ._members import ClusterMember
from ._node import Node
from ._server import run_server

if TYPE_CHECKING:
    import os

    from ..actors import ActorSystem
    from ._remote import RemoteRef

M = TypeVar("M")


@final
@attrs.frozen
class ClusterStatistics:
    """Counters of this node, from [`statistics()`][troupe.ClusterHandle.statistics]."""

    sent: int
    """Messages sent to other nodes (tells and asks)."""
    received: int
    """Messages that arrived from the server for this node's actors."""
    asks: int
    """Asks sent."""
    reconnects: int
    """Times the connection to the server was re-established."""
    connected: bool
    """Whether the connection is up now."""


@final
class ClusterHandle(metaclass=NoPublicConstructor):
    """This system's membership of a cluster: ``system.cluster``.

    Example:
        ```python
        async with troupe.open_system(cluster=troupe.Cluster(node="front")) as system:
            await system.cluster.register("orders", await system.spawn(Orders))
            orders = system.cluster.ref("orders", PlaceOrder)
            await orders.tell(PlaceOrder("apples", 3))
        ```
    """

    def __init__(self, node: Node) -> None:
        self._node = node

    def __repr__(self) -> str:
        return f"<ClusterHandle {self._node.cluster!r} node={self._node.node!r}>"

    @property
    def name(self) -> str:
        """The cluster's name."""
        return self._node.cluster

    @property
    def node(self) -> str:
        """This node's name."""
        return self._node.node

    @property
    def node_id(self) -> str:
        """The id of this node's run (new at every join)."""
        return self._node.node_id

    @property
    def url(self) -> str:
        """The server's address: other processes join the cluster with ``Cluster(url=...)``."""
        return self._node.client.url

    @property
    def connected(self) -> bool:
        """Whether the connection to the server is up now."""
        return self._node.client.connected

    async def register(self, name: str, ref: ActorRef[Any]) -> None:
        """Make the local actor ``ref`` reachable cluster-wide under ``name``.

        Several registrations of one name, on one node or many, form a
        group: each message to the name goes to one of them (a NATS queue
        group). The registration ends when the actor stops, or with
        `unregister`. Registering twice is a no-op.

        Raises:
            ValueError: ``name`` is not letters, digits, ``_`` and ``-``.
            TypeError: ``ref`` is not an `ActorRef` of this system.
            ActorStopped: the actor has stopped.
            ClusterError: not connected, or the server did not confirm.
        """
        wire.check_name(name)
        if not isinstance(ref, ActorRef) or ref._cell.system is not self._node.system:
            msg = f"register() takes an ActorRef of this node's system, got {ref!r}"
            raise TypeError(msg)
        if not ref.alive:
            raise ActorStopped(ref.path, f"{ref.path} is stopped; it cannot be registered as {name!r}")
        self._check_connected()
        await self._node.members.register(name, ref)

    async def unregister(self, name: str, ref: ActorRef[Any]) -> bool:
        """Take ``ref`` out of ``name``'s group; False if it was not in it."""
        await trio.lowlevel.checkpoint()
        return self._node.members.unregister(name, ref)

    @overload
    def ref(self, name: str) -> RemoteRef[Any]: ...
    @overload
    def ref(self, name: str, accepts: type[M]) -> RemoteRef[M]: ...
    @overload
    def ref(self, name: str, accepts: types.UnionType | object) -> RemoteRef[Any]: ...

    def ref(self, name: str, accepts: object = None) -> RemoteRef[Any]:
        """A ref to the group registered under ``name`` (wherever its members are).

        Args:
            name: the registered name.
            accepts: the message types it takes (a class or a union like
                ``Order | GetStatus``): checked at the sender, as for an
                `ActorRef`. None: anything that can be encoded.

        No member needs to exist yet: a tell that finds none becomes a dead
        letter on this node, an ask raises `ActorStopped` at once.
        """
        wire.check_name(name)
        allowed = None if accepts is None else _flatten(accepts, f"cluster ref {name!r}")
        return self._node.group_ref(name, allowed)

    async def members(self) -> list[ClusterMember]:
        """The live nodes (this one first) and the names each registered."""
        await trio.lowlevel.checkpoint()
        return self._node.members.table()

    async def lookup(self, name: str) -> list[RemoteRef[Any]]:
        """One ref per live member of ``name``, each addressing one actor (not the group)."""
        wire.check_name(name)
        await trio.lowlevel.checkpoint()
        return self._node.members.lookup(name)

    async def wait_for(
        self, name: str, count: int = 1, *, exactly: bool = False, timeout: float = 10.0
    ) -> list[RemoteRef[Any]]:
        """Wait until ``name`` has at least ``count`` live members (``exactly`` that many); return them.

        Other nodes' registrations reach this node with their heartbeats
        (at once when they register or withdraw): use this instead of
        sleeping. ``wait_for(name, 0, exactly=True)`` waits until no member
        is left.

        Raises:
            ClusterError: not so many members within ``timeout`` seconds.
        """
        wire.check_name(name)
        members = self._node.members

        def ready(found: list[RemoteRef[Any]]) -> bool:
            return len(found) == count if exactly else len(found) >= count

        with trio.move_on_after(timeout):
            while not ready(found := members.lookup(name)):
                await members.wait_changed()
            return found
        msg = (
            f"{name!r} has {len(members.lookup(name))} live member(s) in cluster {self.name!r}, not "
            f"{'exactly ' if exactly else ''}{count}, after {timeout} s; start (or stop) the nodes that "
            "register it"
        )
        raise ClusterError(msg)

    async def wait_connected(self, *, connected: bool = True, timeout: float = 10.0) -> None:
        """Wait until the connection to the server is up (``connected=False``: down); at once if it is.

        Raises:
            ClusterError: not in that state after ``timeout`` seconds.
        """
        node = self._node
        with trio.move_on_after(timeout):
            while node.client.connected is not connected:
                await node.members.wait_changed()
            return
        state = "connected to" if connected else "disconnected from"
        msg = f"not {state} the NATS server at {self.url} after {timeout} s"
        raise ClusterError(msg)

    async def wait_changed(self, *, timeout: float | None = None) -> bool:
        """Wait for the next change of the members table or of the connection; False on timeout.

        For views and tools that follow the cluster (``troupe node``'s live view does).
        """
        with trio.move_on_after(math.inf if timeout is None else timeout):
            await self._node.members.wait_changed()
            return True
        return False

    async def wait_for_nodes(self, count: int, *, timeout: float = 10.0) -> list[ClusterMember]:
        """Wait until the cluster has at least ``count`` live nodes (this one included).

        Raises:
            ClusterError: not so many nodes within ``timeout`` seconds.
        """
        members = self._node.members
        with trio.move_on_after(timeout):
            while len(found := members.table()) < count:
                await members.wait_changed()
            return found
        msg = f"cluster {self.name!r} has {len(members.table())} live node(s), not {count}, after {timeout} s"
        raise ClusterError(msg)

    def statistics(self) -> ClusterStatistics:
        """A snapshot of this node's counters."""
        node = self._node
        return ClusterStatistics(
            sent=node.stats.sent,
            received=node.stats.received,
            asks=node.stats.asks,
            reconnects=node.client.reconnects,
            connected=node.client.connected,
        )

    def _check_connected(self) -> None:
        if not self._node.client.connected:
            msg = f"not connected to the NATS server at {self.url}; troupe is reconnecting: retry later"
            raise ClusterError(msg)


class _ClusterActor(Actor[Terminated]):
    """``/system/cluster``: joins in ``on_start``, runs the connection, leaves in ``on_stop``.

    It takes no messages of its own (the actors other nodes address are
    followed by a termination hook, not by its mailbox).
    """

    def __init__(self, node: Node) -> None:
        self._node = node

    async def on_start(self) -> None:
        await self._node.join(self.context)

    async def receive(self, msg: Terminated) -> None:
        """Nothing is sent to it."""

    async def on_stop(self) -> None:
        await self._node.leave()


async def join(system: ActorSystem, config: Cluster, url: str) -> ClusterHandle:
    """Join ``system`` to the cluster at ``url``; ``system.cluster`` is then the handle.

    Raises:
        ClusterError: the server cannot be reached or refused the credentials.
    """
    node = Node(system, config, url)
    try:
        await system._spawn_system(lambda: _ClusterActor(node), name="cluster")
    except SpawnError as exc:
        if isinstance(exc.__cause__, ClusterError):
            raise exc.__cause__ from None
        raise
    handle = ClusterHandle._create(node)
    system._cluster = handle
    return handle


@asynccontextmanager
async def open_system(
    *,
    name: str = "troupe",
    supervisor: SupervisorStrategy | None = None,
    shutdown_timeout: float = 10.0,
    jobs: str | os.PathLike[str] | JobStore | None = None,
    cluster: Cluster | None = None,
) -> AsyncIterator[ActorSystem]:
    """Open an actor system; leaving the block shuts it down.

    The same as the jobs layer's ``open_system``, plus ``cluster=``: with a
    [`Cluster`][troupe.Cluster], the system joins that cluster and
    ``system.cluster`` is its [`ClusterHandle`][troupe.cluster.ClusterHandle].
    Leaving the block stops the actors (their registrations are withdrawn
    and their watchers on other nodes get ``Terminated``), then leaves.

    Args:
        name: a name for logs and the command line.
        supervisor: the strategy for top-level actors; default ``OneForOne()``.
        shutdown_timeout: seconds the whole shutdown may take.
        jobs: where to keep job records; default: no job tracking.
        cluster: the cluster to join; default: none.

    Raises:
        ClusterError: the cluster's server cannot be reached, refused the
            credentials, or (embedded) could not start. Nothing is left running.
        JobStoreError: as for ``jobs=``.
        ActorFailed: as for the runtime's ``open_system``.

    Example:
        ```python
        async with troupe.open_system(cluster=troupe.Cluster(name="shop")) as system:
            print("joined", system.cluster.url)
        ```
    """
    if cluster is not None and not isinstance(cluster, Cluster):
        msg = f"cluster= takes a troupe.Cluster, got {cluster!r}"
        raise TypeError(msg)
    async with AsyncExitStack() as stack:
        url = None if cluster is None else cluster.url
        if cluster is not None and url is None:
            server = await stack.enter_async_context(
                run_server(token=cluster.token, user=cluster.user, password=cluster.password)
            )
            url = server.url
        system = await stack.enter_async_context(
            open_jobs_system(name=name, supervisor=supervisor, shutdown_timeout=shutdown_timeout, jobs=jobs)
        )
        if cluster is not None:
            assert url is not None  # noqa: S101 - given or embedded
            await join(system, cluster, url)
        yield system
