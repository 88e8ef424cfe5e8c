"""Who is in the cluster: heartbeats, the failure detector, registered names, remote watches.

Every node publishes a heartbeat on ``troupe.<cluster>.hb`` every
``heartbeat`` seconds, and at once when its registrations change, when it
joins (a hello, which every other node answers with its own heartbeat) and
when it leaves (a goodbye). The heartbeat carries the node's name and its
registered names with their members' actor ids, so every node keeps the
whole table. A node not heard from for ``failure_timeout`` seconds is lost.

Remote watches: a node watching an actor of another node sends it a
``watch``; that node tells ``terminated`` when the actor ends. A node that
leaves or is lost ends every watch of its actors at once, on every node.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any, final

import attrs
import trio

from ..actors import ActorRef
from ..actors import _cell as cells
from ..protocol import Terminated
from . import _wire as wire
from ._errors import ClusterError

if TYPE_CHECKING:
    from ..actors._cell import _Cell
    from ._node import Node
    from ._remote import RemoteRef

log = logging.getLogger("troupe.cluster")

_VERSION = 1
"""The cluster protocol's version, in every heartbeat: nodes of other versions are ignored (and logged)."""


@final
@attrs.frozen
class ClusterMember:
    """A live node of the cluster, from [`members()`][troupe.ClusterHandle.members]."""

    node: str
    """The node's name (``Cluster(node=...)``)."""
    node_id: str
    """The id of this run of the node (a node that rejoins gets a new one)."""
    names: tuple[str, ...]
    """The names its actors are registered under, sorted."""


@final
class _Seen:
    __slots__ = ("last", "name", "names")

    def __init__(self, name: str, names: dict[str, dict[str, str]], last: float) -> None:
        self.name = name
        self.names = names
        self.last = last


class Members:
    """The membership table and everything that rides on heartbeats (see the module docstring)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._hb = f"{node.prefix}.hb"
        self._ctl_prefix = f"{node.prefix}.c."
        self._seen: dict[str, _Seen] = {}
        self._registered: dict[str, dict[str, int]] = {}  # name -> export id -> subscription id
        self._changed = trio.Event()
        self._watching: dict[str, tuple[RemoteRef[Any], set[_Cell]]] = {}  # address -> watchers here
        self._watched_by: dict[str, set[str]] = {}  # export id -> node ids watching it
        self._other_versions: set[str] = set()  # nodes ignored for speaking another protocol version

    # -- the table ------------------------------------------------------------------------------

    def subscribe(self) -> None:
        """Listen to heartbeats and to this node's control subject."""
        client = self.node.client
        client.subscribe(self._hb, self._on_heartbeat)
        client.subscribe(self._ctl_prefix + self.node.node_id, self._on_control)

    def table(self) -> list[ClusterMember]:
        """The live nodes, this one first, then by name."""
        node = self.node
        mine = ClusterMember(node.node, node.node_id, tuple(sorted(self._registered)))
        others = [ClusterMember(s.name, node_id, tuple(sorted(s.names))) for node_id, s in self._seen.items()]
        return [mine, *sorted(others, key=lambda m: (m.node, m.node_id))]

    def lookup(self, name: str) -> list[RemoteRef[Any]]:
        """One ref per live member of ``name``, on every node."""
        node = self.node
        found = [
            node.actor_ref(node.node_id, export_id, node.node, node._exports[export_id].path)
            for export_id in self._registered.get(name, {})
            if export_id in node._exports
        ]
        for node_id, seen in sorted(self._seen.items(), key=lambda item: item[1].name):
            members = seen.names.get(name, {})
            found.extend(
                node.actor_ref(node_id, export_id, seen.name, path) for export_id, path in members.items()
            )
        return found

    async def wait_changed(self) -> None:
        """Wait for the next change of the table."""
        await self._changed.wait()

    def touch(self) -> None:
        """Wake whoever waits for a change of the table (or of the connection)."""
        self._changed.set()
        self._changed = trio.Event()

    # -- heartbeats -----------------------------------------------------------------------------

    def announce(self, *, hello: bool = False, bye: bool = False) -> None:
        """Publish this node's heartbeat now."""
        node = self.node
        data: dict[str, Any] = {
            "v": _VERSION,
            "id": node.node_id,
            "node": node.node,
            "names": {
                name: {
                    export_id: node._exports[export_id].path
                    for export_id in members
                    if export_id in node._exports
                }
                for name, members in self._registered.items()
            },
        }
        if hello:
            data["hello"] = True
        if bye:
            data["bye"] = True
        node.publish(self._hb, data)

    async def run(self) -> None:
        """Heartbeats out, and the failure detector, until the node leaves."""
        config = self.node.config
        tick = config.heartbeat / 4
        ticks = 0
        last = trio.current_time()
        while True:
            await trio.sleep(tick)
            ticks += 1
            if ticks % 4 == 0 and self.node.client.connected:
                # disconnected in between: the next one goes out after reconnecting
                with contextlib.suppress(ClusterError):
                    self.announce()
            now = trio.current_time()
            if now - last > config.heartbeat:
                # This node itself did not run for a while (a receive that never yields, a
                # stopped process): the heartbeats it has not read yet are no evidence.
                for seen in self._seen.values():
                    seen.last = max(seen.last, now)
            last = now
            self._detect(now)
            if ticks % 64 == 0:
                self._prune_watchers()

    def _detect(self, now: float) -> None:
        timeout = self.node.config.failure_timeout
        for node_id, seen in list(self._seen.items()):
            if now - seen.last > timeout:
                reason = ClusterError(
                    f"node {seen.name} was lost: no heartbeat for {timeout} s (it crashed, or stalled, "
                    "or the network or the server failed)"
                )
                self._gone(node_id, reason)

    def _on_heartbeat(self, subject: str, reply: str | None, payload: bytes, status: int | None) -> None:  # noqa: ARG002
        try:
            data = json.loads(payload)
            node_id = data["id"]
            name = data["node"]
            names = data["names"]
            if not (isinstance(node_id, str) and isinstance(name, str) and isinstance(names, dict)):
                raise TypeError  # noqa: TRY301 - one handler for every malformed heartbeat
            table = {
                name: {k: v for k, v in members.items() if isinstance(k, str) and isinstance(v, str)}
                for name, members in names.items()
                if isinstance(name, str) and isinstance(members, dict)
            }
        except (ValueError, KeyError, TypeError, RecursionError, AttributeError):
            log.warning("troupe cluster %s: ignored a malformed heartbeat", self.node.cluster)
            return
        if node_id == self.node.node_id:
            return
        if data.get("v") != _VERSION:
            if node_id not in self._other_versions:
                self._other_versions.add(node_id)
                log.warning(
                    "troupe cluster %s: node %s speaks cluster protocol %r, this node %r; it is ignored: "
                    "run the same troupe version on every node",
                    self.node.cluster,
                    name,
                    data.get("v"),
                    _VERSION,
                )
            return
        if data.get("bye"):
            if node_id in self._seen:
                self._gone(node_id, None)
            return
        seen = self._seen.get(node_id)
        if seen is None or seen.names != table or seen.name != name:
            self._seen[node_id] = _Seen(name, table, trio.current_time())
            self.touch()
        else:
            seen.last = trio.current_time()
        if data.get("hello"):
            with contextlib.suppress(ClusterError):
                self.announce()

    def _gone(self, node_id: str, reason: BaseException | None) -> None:
        """A node left (``reason`` None) or was lost: end the watches of its actors."""
        self._seen.pop(node_id, None)
        prefix = f"{node_id}."
        for address in [a for a in self._watching if a.startswith(prefix)]:
            self._deliver_terminated(address, reason)
        for watchers in self._watched_by.values():
            watchers.discard(node_id)
        self.touch()

    # -- registrations --------------------------------------------------------------------------

    async def register(self, name: str, ref: ActorRef[Any]) -> None:
        """Add ``ref`` to the group ``name`` (see ClusterHandle.register)."""
        node = self.node
        export_id = node.export(ref)
        members = self._registered.setdefault(name, {})
        if export_id in members:
            return
        members[export_id] = node.client.subscribe(
            f"{node.prefix}.n.{name}", node.name_callback(ref), queue="g"
        )
        self.announce()
        self.touch()
        if not await node.client.flush(node.config.connect_timeout):
            msg = f"registered {ref.path} as {name!r}, but the server at {node.client.url} did not confirm it"
            raise ClusterError(msg)

    def unregister(self, name: str, ref: ActorRef[Any]) -> bool:
        """Take ``ref`` out of the group ``name``; False if it was not in it."""
        node = self.node
        export_id = node._export_ids.get(ref)
        members = self._registered.get(name)
        if export_id is None or not members or export_id not in members:
            return False
        self._withdraw(name, export_id)
        with contextlib.suppress(ClusterError):
            self.announce()
        return True

    def _withdraw(self, name: str, export_id: str) -> None:
        members = self._registered[name]
        self.node.client.unsubscribe(members.pop(export_id))
        if not members:
            del self._registered[name]
        self.touch()

    def export_ended(self, export_id: str, reason: BaseException | None) -> None:
        """A local actor other nodes could address ended: withdraw its names, tell its watchers."""
        withdrawn = [name for name, members in self._registered.items() if export_id in members]
        for name in withdrawn:
            self._withdraw(name, export_id)
        node = self.node
        try:
            if withdrawn:
                self.announce()
            for watcher in self._watched_by.pop(export_id, ()):
                node.publish(
                    self._ctl_prefix + watcher,
                    {
                        "op": "terminated",
                        "addr": f"{node.node_id}.{export_id}",
                        "reason": _reason_data(reason),
                    },
                )
        except ClusterError:  # disconnected: the watchers will see this node lost, or its goodbye
            pass

    # -- remote watches -------------------------------------------------------------------------

    def watch(self, ref: RemoteRef[Any], watcher: _Cell) -> None:
        """``watcher`` watches the remote actor ``ref`` (see ActorContext.watch)."""
        if ref.is_group:
            msg = (
                f"{ref.path} is a name's group, not one actor: watch a member from "
                f"`await system.cluster.lookup({ref.name!r})`"
            )
            raise TypeError(msg)
        address = ref._address()["ref"]
        entry = self._watching.get(address)
        if entry is None:
            entry = self._watching[address] = (ref, set())
            node_id = address.partition(".")[0]
            if node_id not in self._seen:  # not heard of yet: lost unless a heartbeat comes in time
                self._seen[node_id] = _Seen(ref.node or node_id, {}, trio.current_time())
            self._send_watch(address, "watch")
        entry[1].add(watcher)

    def unwatch(self, ref: RemoteRef[Any], watcher: _Cell) -> None:
        """``watcher`` no longer watches ``ref``."""
        if ref.is_group:
            return
        address = ref._address()["ref"]
        entry = self._watching.get(address)
        if entry is not None:
            entry[1].discard(watcher)
            if not entry[1]:
                del self._watching[address]
                self._send_watch(address, "unwatch")

    def rewatch(self) -> None:
        """After a reconnection: ask again for every watch (the other side may have lost them)."""
        for address in list(self._watching):
            self._send_watch(address, "watch")

    def _send_watch(self, address: str, op: str) -> None:
        node_id, _, export_id = address.partition(".")
        data = {"op": op, "id": export_id, "from": self.node.node_id}
        with contextlib.suppress(ClusterError):  # disconnected: rewatch() sends it again after reconnecting
            self.node.publish(self._ctl_prefix + node_id, data)

    def _on_control(self, subject: str, reply: str | None, payload: bytes, status: int | None) -> None:  # noqa: ARG002
        try:
            data = json.loads(payload)
            op = data["op"]
            if op in {"watch", "unwatch"}:
                self._on_watch(op, wire.check_name(data["id"]), wire.check_name(data["from"]))
            elif op == "terminated":
                address = data["addr"]
                if isinstance(address, str):
                    reason = data.get("reason")
                    seen = self._seen.get(address.partition(".")[0])
                    where = seen.name if seen is not None else address.partition(".")[0]
                    error = wire.remote_error(reason, where) if isinstance(reason, dict) else None
                    self._deliver_terminated(address, error)
        except (ValueError, KeyError, TypeError, RecursionError):
            log.warning("troupe cluster %s: ignored a malformed control message", self.node.cluster)

    def _on_watch(self, op: str, export_id: str, from_node: str) -> None:
        node = self.node
        if op == "unwatch":
            watchers = self._watched_by.get(export_id)
            if watchers is not None:
                watchers.discard(from_node)
            return
        ref = node._exports.get(export_id)
        if ref is None or not ref.alive:
            node.publish(
                self._ctl_prefix + from_node,
                {"op": "terminated", "addr": f"{node.node_id}.{export_id}", "reason": None},
            )
            return
        self._watched_by.setdefault(export_id, set()).add(from_node)

    def _deliver_terminated(self, address: str, reason: BaseException | None) -> None:
        entry = self._watching.pop(address, None)
        if entry is None:
            return
        ref, watchers = entry
        message = Terminated(ref, reason)
        for watcher in watchers:
            if watcher.state != cells.DEAD:
                watcher.deliver_system(message)

    def _prune_watchers(self) -> None:
        for address, (_, watchers) in list(self._watching.items()):
            watchers.difference_update([w for w in watchers if w.state == cells.DEAD])
            if not watchers:
                del self._watching[address]
                self._send_watch(address, "unwatch")


def _reason_data(reason: BaseException | None) -> dict[str, str] | None:
    return None if reason is None else wire.exception_data(reason)
