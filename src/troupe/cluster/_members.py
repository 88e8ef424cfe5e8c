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
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, Final, final

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

_OTHER_VERSIONS_KEPT: Final = 1024
"""Nodes of another protocol version remembered (to warn once each); the least recently heard go first."""

_PENDING_KEPT: Final = 4096
"""Watchers' ``terminated`` kept while disconnected, sent after reconnecting; the oldest go first."""

_FLAGS: Final = len(',"hello":true')
"""The most a heartbeat's flags add to its size."""


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
        # nodes ignored for speaking another protocol version -> when last heard (bounded, see _detect)
        self._other_versions: OrderedDict[str, float] = OrderedDict()
        # watchers' "terminated" that could not be sent (disconnected): (node id, data), sent on reconnecting
        self._pending: deque[tuple[str, dict[str, Any]]] = deque()
        self._size: int | None = None  # the heartbeat's size in bytes (without hello/bye), None: changed
        self._oversized = False  # the last heartbeat did not fit the server's limit (warned)
        self.refused = 0
        """Heartbeats, heartbeat entries and control messages refused (malformed, hostile, unknown sender)."""
        self.dropped = 0
        """Watchers' terminations dropped while disconnected (more than ``_PENDING_KEPT``)."""

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

    def _heartbeat(self, names: dict[str, dict[str, str]] | None = None) -> bytes:
        node = self.node
        if names is None:
            names = {
                name: {
                    export_id: node._exports[export_id].path
                    for export_id in members
                    if export_id in node._exports
                }
                for name, members in self._registered.items()
            }
        return wire.dumps({"v": _VERSION, "id": node.node_id, "node": node.node, "names": names}).encode()

    def announce(self, *, hello: bool = False, bye: bool = False) -> None:
        """Publish this node's heartbeat now.

        It lists every registration; `register` refuses one that would take
        it over the server's limit. Should it not fit all the same (a server
        with a smaller limit after a reconnection), a heartbeat without the
        names goes out (``partial``: the others keep what they knew), so
        this node is never taken for lost.

        Raises:
            ClusterError: not connected (or too much waits to be sent).
        """
        client = self.node.client
        payload = self._heartbeat()
        self._size = len(payload)
        if len(payload) + _FLAGS > client.max_payload:
            if not self._oversized:
                log.warning(
                    "troupe cluster %s: node %s's heartbeat (%d bytes, its %d registered names) is over the "
                    "server's limit of %d bytes (%s): it goes out without them, and other nodes keep the "
                    "names they knew; unregister actors, or raise the server's max_payload",
                    self.node.cluster,
                    self.node.node,
                    len(payload),
                    len(self._registered),
                    client.max_payload,
                    client.url,
                )
            self._oversized = True
            payload = self._heartbeat({})[:-1] + b',"partial":true}'
        else:
            self._oversized = False
        if hello:
            payload = payload[:-1] + b',"hello":true}'
        if bye:
            payload = payload[:-1] + b',"bye":true}'
        client.publish(self._hb, payload)

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
                try:
                    self.announce()
                    self.send_pending()
                except (
                    ClusterError
                ) as exc:  # disconnected in between, or a full buffer: the next tick tries again
                    log.debug("troupe cluster %s: a heartbeat did not go out: %s", self.node.cluster, exc)
            now = trio.current_time()
            if now - last > config.heartbeat:
                # This node itself did not run for a while (a receive that never yields, a
                # stopped process): the heartbeats it has not read yet are no evidence.
                for seen in self._seen.values():
                    seen.last = max(seen.last, now)
            last = now
            self._detect(now)
            self._forget_other_versions(now)
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

    def _forget_other_versions(self, now: float) -> None:
        """Forget nodes of other versions not heard from for ``failure_timeout`` (warned again if back)."""
        other = self._other_versions
        timeout = self.node.config.failure_timeout
        while other and now - next(iter(other.values())) > timeout:
            other.popitem(last=False)

    def _refuse(self, what: str, detail: object) -> None:
        """Count something refused from the wire; log the 1st, 2nd, 4th, 8th... (no flood of logs)."""
        self.refused += 1
        if self.refused & (self.refused - 1) == 0:
            log.warning(
                "troupe cluster %s: node %s ignored %s (%.200r); %d refused so far",
                self.node.cluster,
                self.node.node,
                what,
                detail,
                self.refused,
            )

    def _read_names(self, names: dict[Any, Any]) -> dict[str, dict[str, str]]:
        """A heartbeat's names, without the entries that are not valid names, ids and paths."""
        table: dict[str, dict[str, str]] = {}
        bad: list[object] = []
        for name, members in names.items():
            if not (_is_token(name) and isinstance(members, dict)):
                bad.append(name)
                continue
            valid = {k: v for k, v in members.items() if _is_token(k) and _is_path(v)}
            if len(valid) != len(members):
                bad.extend(k for k in members if k not in valid)
            if valid:
                table[name] = valid
        if bad:
            self._refuse("heartbeat entries that are not valid names, actor ids and paths", bad[:5])
        return table

    def _on_heartbeat(self, subject: str, reply: str | None, payload: bytes, status: int | None) -> None:  # noqa: ARG002
        try:
            data = json.loads(payload)
            node_id = data["id"]
            name = data["node"]
            names_ok = data.get("v") != _VERSION or isinstance(data["names"], dict)  # others: only id, node
            if not (_is_token(node_id) and _is_token(name) and names_ok):
                raise TypeError  # noqa: TRY301 - one handler for every malformed heartbeat
        except (ValueError, KeyError, TypeError, RecursionError, AttributeError):
            self._refuse("a malformed heartbeat", payload[:200])
            return
        if node_id == self.node.node_id:
            return
        if data.get("v") != _VERSION:
            self._other_version(node_id, name, data.get("v"))
            return
        if data.get("bye"):
            if node_id in self._seen:
                self._gone(node_id, None)
            return
        seen = self._seen.get(node_id)
        if data.get("partial") is True:  # its names did not fit: keep what it said before
            table = seen.names if seen is not None else {}
        else:
            table = self._read_names(data["names"])
        if seen is None or seen.names != table or seen.name != name:
            self._seen[node_id] = _Seen(name, table, trio.current_time())
            self.touch()
        else:
            seen.last = trio.current_time()
        if data.get("hello"):
            with contextlib.suppress(ClusterError):
                self.announce()

    def _other_version(self, node_id: str, name: str, version: object) -> None:
        """A heartbeat of another protocol version: ignored, with one warning per node (while it is heard)."""
        other = self._other_versions
        known = node_id in other
        other[node_id] = trio.current_time()
        other.move_to_end(node_id)
        if known:
            return
        if len(other) > _OTHER_VERSIONS_KEPT:
            other.popitem(last=False)
        log.warning(
            "troupe cluster %s: node %s speaks cluster protocol %.20r, this node %r; it is ignored: "
            "run the same troupe version on every node",
            self.node.cluster,
            name,
            version,
            _VERSION,
        )

    def _gone(self, node_id: str, reason: BaseException | None) -> None:
        """A node left (``reason`` None) or was lost: end the watches of its actors."""
        self._seen.pop(node_id, None)
        self.node.fail_asks_to(node_id, reason)
        prefix = f"{node_id}."
        for address in [a for a in self._watching if a.startswith(prefix)]:
            self._deliver_terminated(address, reason)
        for watchers in self._watched_by.values():
            watchers.discard(node_id)
        self.touch()

    # -- registrations --------------------------------------------------------------------------

    async def register(self, name: str, ref: ActorRef[Any]) -> None:
        """Add ``ref`` to the group ``name`` (see ClusterHandle.register).

        Raises:
            ClusterError: this node's heartbeat would not fit the server's
                limit with one more registration (nothing changed), or the
                server did not confirm.
        """
        node = self.node
        known = node._export_ids.get(ref)
        if known is not None and known in self._registered.get(name, {}):
            return
        self._check_fits(name, known, ref)
        export_id = node.export(ref)
        members = self._registered.setdefault(name, {})
        self._size = None
        members[export_id] = node.client.subscribe(
            f"{node.prefix}.n.{name}", node.name_callback(ref), queue="g"
        )
        self.announce()
        self.touch()
        if not await node.client.flush(node.config.connect_timeout):
            msg = f"registered {ref.path} as {name!r}, but the server at {node.client.url} did not confirm it"
            raise ClusterError(msg)

    def _check_fits(self, name: str, export_id: str | None, ref: ActorRef[Any]) -> None:
        """ClusterError unless the heartbeat, with ``ref`` as ``name`` too, fits the server's limit."""
        client = self.node.client
        size = self._size if self._size is not None else len(self._heartbeat())
        # an upper bound of what the entry adds (an id not given yet is at most 16 hex digits)
        size += len(wire.dumps({name: {export_id or "f" * 16: ref.path}})) + _FLAGS
        if size > client.max_payload:
            msg = (
                f"cannot register {ref.path} as {name!r}: this node's heartbeat, which lists every "
                f"registration, would be about {size} bytes, over the server's limit of {client.max_payload} "
                f"bytes ({client.url}); unregister actors, register fewer (one registered actor can serve "
                "many senders), or raise the server's max_payload"
            )
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
        self._size = None
        self.touch()

    def export_ended(self, export_id: str, reason: BaseException | None) -> None:
        """A local actor other nodes could address ended: withdraw its names, tell its watchers."""
        withdrawn = [name for name, members in self._registered.items() if export_id in members]
        for name in withdrawn:
            self._withdraw(name, export_id)
        node = self.node
        address = f"{node.node_id}.{export_id}"
        self._deliver_terminated(address, reason)  # watches of it here, through a RemoteRef
        if withdrawn:
            with contextlib.suppress(ClusterError):  # disconnected: the next heartbeat says it
                self.announce()
        watchers = self._watched_by.pop(export_id, ())
        if watchers:
            data = {"op": "terminated", "addr": address, "reason": _reason_data(reason)}
            for watcher in watchers:
                if len(self._pending) >= _PENDING_KEPT:
                    self._pending.popleft()
                    self.dropped += 1
                    if self.dropped & (self.dropped - 1) == 0:
                        log.warning(
                            "troupe cluster %s: node %s is disconnected and keeps the %d latest ends of "
                            "watched actors for their watchers; %d older ones were dropped",
                            node.cluster,
                            node.node,
                            _PENDING_KEPT,
                            self.dropped,
                        )
                self._pending.append((watcher, data))
            with contextlib.suppress(ClusterError):  # disconnected: sent again after reconnecting
                self.send_pending()

    def send_pending(self) -> None:
        """Tell watchers on other nodes of the ends they have not heard of yet (kept while disconnected).

        Raises:
            ClusterError: not connected (what is left is kept for the next try).
        """
        pending = self._pending
        while pending:
            watcher, data = pending[0]
            self.node.publish(self._ctl_prefix + watcher, data)
            pending.popleft()

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
        node_id, _, export_id = address.partition(".")
        mine = node_id == self.node.node_id
        if mine:  # an actor of this node (lookup() gives such refs): export_ended() ends the watch
            local = self.node._exports.get(export_id)
            if local is None:  # it ended already: at once, as for an ActorRef
                watcher.deliver_system(Terminated(ref, None))
                return
            if local._cell is watcher:
                msg = f"{watcher.path} cannot watch itself; its parent or a sibling can"
                raise ValueError(msg)
        entry = self._watching.get(address)
        if entry is None:
            entry = self._watching[address] = (ref, set())
            if not mine:
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
        """After a reconnection: ask again for every watch (the other side may have lost them).

        And tell other nodes' watchers of the ends of this node's actors they
        could not be told of while disconnected.
        """
        for address in list(self._watching):
            self._send_watch(address, "watch")
        with contextlib.suppress(ClusterError):  # disconnected again: the next heartbeat's tick retries
            self.send_pending()

    def _send_watch(self, address: str, op: str) -> None:
        node_id, _, export_id = address.partition(".")
        if node_id == self.node.node_id:  # watched here (see watch())
            return
        if not (_is_token(node_id) and _is_token(export_id)):  # refs are checked where they are made
            self._refuse("a watch of an address that is not one", address)
            return
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
                node_id = address.partition(".")[0] if isinstance(address, str) else None
                # this node's own actors' ends come from export_ended(), never from the wire
                if node_id is not None and node_id != self.node.node_id:
                    reason = data.get("reason")
                    seen = self._seen.get(node_id)
                    where = seen.name if seen is not None else node_id
                    error = wire.remote_error(reason, where) if isinstance(reason, dict) else None
                    self._deliver_terminated(address, error)
        except (ValueError, KeyError, TypeError, RecursionError, AttributeError):
            self._refuse("a malformed control message", payload[:200])
        except ClusterError as exc:  # its answer could not be sent (disconnected meanwhile)
            log.debug("troupe cluster %s: a watch's answer was not sent: %s", self.node.cluster, exc)

    def _on_watch(self, op: str, export_id: str, from_node: str) -> None:
        node = self.node
        if from_node not in self._seen:  # not a live member (a node lost meanwhile heard of its watches' end)
            self._refuse(f"a {op} from a node that is not a live member", from_node)
            return
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


def _is_token(value: object) -> bool:
    """Whether ``value`` can be a node's or actor's id, or a name (one token of a subject)."""
    return isinstance(value, str) and wire.TOKEN.fullmatch(value) is not None


def _is_path(value: object) -> bool:
    """Whether ``value`` can be an actor's path (only shown to people, never part of a subject)."""
    return isinstance(value, str) and value.startswith("/")


def _reason_data(reason: BaseException | None) -> dict[str, str] | None:
    return None if reason is None else wire.exception_data(reason)
