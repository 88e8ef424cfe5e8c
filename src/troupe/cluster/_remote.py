"""``RemoteRef``: a ref to an actor (or a group of actors) on the nodes of a cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

from trio.lowlevel import checkpoint, checkpoint_if_cancelled

from .._util import NoPublicConstructor
from ..actors import MessageTypeError
from ..actors._actor import describe_accepts

if TYPE_CHECKING:
    from ..actors._cell import _Cell
    from ._node import Node

M = TypeVar("M", contravariant=True)  # noqa: PLC0105 - as ActorRef[M]

_BATCH = 16 * 1024
"""Outgoing bytes after which ``tell`` lets the writer run (see there)."""


@final
class RemoteRef(Generic[M], metaclass=NoPublicConstructor):
    """A ref to an actor on a node of the cluster, or to a registered name's group.

    It has `ActorRef`'s ``tell``, ``tell_nowait`` and ``ask``, checked at the
    sender the same way, so code written against those methods (or typed
    [`troupe.Ref`][troupe.Ref]) works with either. Get one from
    [`system.cluster.ref()`][troupe.ClusterHandle.ref] (a name's
    group: each message goes to one live member),
    [`lookup()`][troupe.ClusterHandle.lookup] (one actor each), or
    in a message from another node (a ``reply_to`` field).

    Delivery is at most once; order is kept per sender and receiver. See the
    Cluster guide for the whole table of guarantees.

    Example:
        ```python
        orders = system.cluster.ref("orders", PlaceOrder | GetStatus)
        await orders.tell(PlaceOrder("apples", 3))
        status = await orders.ask(GetStatus(), timeout=2.0)
        ```
    """

    __slots__ = ("_accepts", "_actor", "_group", "_node", "_node_id", "_node_name", "_path", "_subject")
    __troupe_ref__ = True

    def __init__(
        self,
        node: Node,
        subject: str,
        *,
        accepts: tuple[type, ...] | None,
        group: str | None = None,
        node_id: str | None = None,
        node_name: str | None = None,
        actor: str | None = None,
    ) -> None:
        self._node = node
        self._subject = subject
        self._accepts = accepts
        self._group = group
        self._node_id = node_id
        self._node_name = node_name
        self._actor = actor
        if group is not None:
            self._path = f"{node.cluster}:{group}"
        else:
            self._path = f"{node.cluster}:{node_name or node_id}{actor or ''}"

    def __repr__(self) -> str:
        return f"<RemoteRef {self._path}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteRef) and other._subject == self._subject

    def __hash__(self) -> int:
        return hash(self._subject)

    @property
    def path(self) -> str:
        """``cluster:node/user/...`` for one actor, ``cluster:name`` for a name's group."""
        return self._path

    @property
    def name(self) -> str:
        """The registered name for a group; the actor's own name for one actor."""
        if self._group is not None:
            return self._group
        return (self._actor or "").rsplit("/", 1)[-1]

    @property
    def node(self) -> str | None:
        """The name of the node the actor lives on; None for a group."""
        return None if self._group is not None else (self._node_name or self._node_id)

    @property
    def is_group(self) -> bool:
        """Whether this ref addresses a registered name's group (not one actor)."""
        return self._group is not None

    def _check(self, msg: object) -> None:
        accepts = self._accepts
        if accepts is not None and not isinstance(msg, accepts):
            raise MessageTypeError(self._path, msg, describe_accepts(accepts))

    async def tell(self, msg: M) -> None:
        """Send ``msg``; wait while this node's outgoing buffer is full (a few MB).

        Messages are written to the server in batches: ``tell`` lets other
        tasks run once 16 KiB wait to be sent, or when it has to wait;
        cancellation is checked at every call. All waiting is done before
        the message is sent: a ``tell`` that was cancelled sent nothing, and
        one that returns has sent its message.

        At most once: the message is processed, or becomes a dead letter
        (on the receiving node if it arrived; on this node if no live
        member took it), or is lost with a connection that broke.

        Raises:
            MessageTypeError: ``msg`` is not of the types this ref was made
                for; nothing was sent.
            TypeError: ``msg`` cannot be encoded (the message says where).
            ClusterError: not connected to the server now, or ``msg`` is over
                the server's size limit; nothing was sent.
        """
        self._check(msg)
        node = self._node
        payload = node.tell_payload(msg)  # TypeError before waiting: nothing is sent
        client = node.client
        if client.pending_bytes() >= _BATCH:
            # Yield to the writer once a batch has gathered (not before every message: a
            # stream of tells then goes out many to a system call), and wait if it is full.
            # Cancelled here, nothing was sent; after the wait nothing checkpoints again.
            await checkpoint()
            await client.wait_writable()
        else:
            await checkpoint_if_cancelled()
        node.send(self, msg, payload)

    def tell_nowait(self, msg: M) -> None:
        """Send ``msg`` without waiting; see `tell`.

        Raises:
            MessageTypeError: as for `tell`.
            TypeError: as for `tell`.
            ClusterError: as for `tell`, and when the outgoing buffer is full.
        """
        self._check(msg)
        self._node.send(self, msg)

    async def ask(self, msg: M, *, timeout: float | None = 5.0) -> Any:
        """Send ``msg`` and wait for the value the remote ``receive`` returns for it.

        Args:
            msg: the question.
            timeout: seconds for the whole round trip; None waits for ever.

        Returns:
            The answer, decoded on this node (JSON data and messages; refs
            in typed fields arrive as refs).

        Raises:
            MessageTypeError: ``msg`` is not of this ref's types (nothing
                sent), or the remote actor does not accept it.
            ActorCrashed: the remote ``receive`` raised; ``__cause__`` is a
                [`RemoteError`][troupe.cluster.RemoteError] with its type,
                message and traceback.
            ActorStopped: the actor is stopped, or no live member has the
                name (at once: the server knows nobody listens).
            AskTimeout: no answer within ``timeout``.
            ClusterError: not connected (at once), the connection broke
                while waiting, the message is too large, or the remote node
                refused it (not a message it can read).
            ValueError: ``timeout`` is negative or NaN.
        """
        self._check(msg)
        if timeout is not None and not timeout >= 0:
            text = f"ask timeout is a number of seconds >= 0 or None, got {timeout!r}"
            raise ValueError(text)
        await checkpoint_if_cancelled()
        return await self._node.ask(self, msg, timeout)

    def _address(self) -> dict[str, str]:
        if self._group is not None:
            return {"ref": f"@{self._group}"}
        return {
            "ref": f"{self._node_id}.{self._subject.rsplit('.', 1)[1]}",
            "node": self._node_name or "",
            "path": self._actor or "",
        }

    def _watch_from(self, watcher: _Cell) -> None:
        self._node.watch(self, watcher)

    def _unwatch_from(self, watcher: _Cell) -> None:
        self._node.unwatch(self, watcher)
