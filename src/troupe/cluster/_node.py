"""One system's membership of a cluster: exports, sending, receiving and asks.

A `Node` belongs to the system's ``/system/cluster`` actor, which connects
it in ``on_start``, watches the local actors other nodes can address, and
leaves in ``on_stop``. Messages arriving from the server are handled
synchronously in the connection's reader task and handed to their actors
without waiting (``troupe.actors._arrivals``). The membership table,
heartbeats and remote watches are in `_members`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import secrets
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import trio
from outcome import Error, Outcome, Value

from ..actors import ActorRef, ActorStopped, AskTimeout
from ..actors._arrivals import TerminationHook, arrive_ask, arrive_tell, on_termination
from ..protocol import DeadLetterReason, DecodeError, codec
from ..protocol._refs import REF_CODEC
from ..protocol._schema import ANY, IRREGULAR, decode_flat, encode_flat
from ..protocol._walk import Bad, walk
from . import _wire as wire
from ._config import Cluster, default_node_name
from ._errors import ClusterError
from ._members import Members
from ._nats import NatsClient, Options
from ._remote import RemoteRef

if TYPE_CHECKING:
    from ..actors import ActorContext, ActorSystem
    from ..actors._cell import _Cell

log = logging.getLogger("troupe.cluster")

_MARK_EVERY: Final = 1024
"""Tells after which `Node.send` publishes a mark to this node's inbox (see `Node._on_mark`)."""
_MARK_BYTES: Final = 256 * 1024
"""Bytes of tells after which it does, too (the table holds on to the messages until then)."""


class _Ask:
    __slots__ = ("done", "msg", "outcome", "ref", "timeout")

    def __init__(self, ref: RemoteRef[Any], msg: object, timeout: float | None) -> None:
        self.ref = ref
        self.msg = msg
        self.timeout = timeout
        self.done = trio.Event()
        self.outcome: Outcome[Any] | None = None

    def finish(self, outcome: Outcome[Any]) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self.done.set()


class Statistics:
    """Counters of one node (``system.cluster.statistics()`` copies them)."""

    __slots__ = ("asks", "received", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0
        self.asks = 0


class Node:
    """This system's side of the cluster (see the module docstring)."""

    def __init__(self, system: ActorSystem, config: Cluster, url: str) -> None:
        self.system = system
        self.config = config
        self.cluster = config.name
        self.node = config.node or default_node_name()
        self.node_id = secrets.token_hex(6)
        self.prefix = f"troupe.{config.name}"
        self.client = NatsClient(
            Options(
                url,
                name=f"troupe {config.name} {self.node}",
                token=config.token,
                user=config.user,
                password=config.password,
                tls=config.tls,
                connect_timeout=config.connect_timeout,
                ping_interval=max(2 * config.failure_timeout, 5.0),
            ),
            on_state=self._on_state,
        )
        self._actor_prefix = f"{self.prefix}.a.{self.node_id}."
        self._inbox_prefix = f"{self.prefix}.i.{self.node_id}."
        self._exports: dict[str, ActorRef[Any]] = {}
        self._export_ids: dict[ActorRef[Any], str] = {}
        self._export_counter = itertools.count(1)
        self._ask_counter = itertools.count(1)
        self._tell_counter = itertools.count(1)
        self._asks: dict[str, _Ask] = {}
        # Tells the server has not confirmed yet: a 503 for one of them makes it a dead letter here;
        # a mark coming back (published after it) shows the server took it (see `_on_mark`).
        self._tells: OrderedDict[int, tuple[RemoteRef[Any], object]] = OrderedDict()
        self._unmarked = 0
        self._unmarked_bytes = 0
        self._mark_token = secrets.token_hex(8).encode()
        self._context: ActorContext[Any] | None = None
        self._ended = TerminationHook(self.export_ended)
        self.stats = Statistics()
        self.members = Members(self)

    # -- joining and leaving --------------------------------------------------------------------

    async def join(self, context: ActorContext[Any]) -> None:
        """Connect, subscribe, say hello (from the cluster actor's ``on_start``)."""
        self._context = context
        await self.client.connect()
        client = self.client
        client.subscribe(self._actor_prefix + "*", self._on_actor)
        client.subscribe(self._inbox_prefix + "*", self._on_inbox)
        self.members.subscribe()
        context.start_soon(self._run_client, name="troupe cluster connection")
        context.start_soon(self.members.run, name="troupe cluster heartbeats")
        self.members.announce(hello=True)
        await client.flush(self.config.connect_timeout)

    async def _run_client(self) -> None:
        try:
            await self.client.run()
        finally:
            # Cancelled with the cluster actor's jobs (before its on_stop), or cut with the whole
            # system when its shutdown_timeout ran out (no on_stop then): leave here, either way.
            await self.leave()

    async def leave(self) -> None:
        """Say goodbye, send what is queued and close the connection (shielded, bounded; once).

        From the connection's job as the cluster actor stops (or is cut),
        and from its ``on_stop``.
        """
        with trio.CancelScope(shield=True):
            if self.client.connected:
                with contextlib.suppress(ClusterError):
                    self.members.announce(bye=True)
            await self.client.close(timeout=2.0)
            self._fail_asks(ClusterError(f"node {self.node} left the cluster before the answer came"))

    def _on_state(self, up: bool) -> None:
        self.members.touch()
        if up:
            if self._context is not None:  # a reconnection (not the first connect)
                self.members.announce(hello=True)
                self.members.rewatch()
        else:
            # What was sent is lost with the connection or was taken (at most once): no 503 will come.
            self._tells.clear()
            self._unmarked = self._unmarked_bytes = 0
            self._fail_asks(
                ClusterError(
                    f"the connection to {self.client.url} broke while waiting for the answer; the message "
                    "may or may not have been processed (at most once): ask again if that is safe"
                )
            )

    def _fail_asks(self, error: ClusterError) -> None:
        for pending in list(self._asks.values()):
            pending.finish(Error(error))
        self._asks.clear()

    def fail_asks_to(self, node_id: str, reason: BaseException | None) -> None:
        """The node ``node_id`` left (``reason`` None) or was lost: its answers will never come.

        Fails every pending ask to one of its actors with `ClusterError`.
        Asks to a name's group are left to their timeout: which member took
        one is not known here, and most may live on other nodes.
        """
        for key, pending in list(self._asks.items()):
            ref = pending.ref
            if ref._node_id != node_id or ref.is_group:
                continue
            del self._asks[key]
            why = "left the cluster" if reason is None else f"was lost ({reason})"
            pending.finish(
                Error(
                    ClusterError(
                        f"node {ref.node} {why} before {ref.path} answered; the message may or may not "
                        "have been processed (at most once): ask again if that is safe"
                    )
                )
            )

    # -- refs and addresses ---------------------------------------------------------------------

    def export(self, ref: ActorRef[Any]) -> str:
        """The id other nodes address ``ref`` by (watched: it is forgotten when the actor ends)."""
        found = self._export_ids.get(ref)
        if found is not None:
            return found
        if ref._cell.system is not self.system:
            msg = f"{ref.path} belongs to another actor system than this node's; send refs of this system"
            raise ValueError(msg)
        export_id = format(next(self._export_counter), "x")
        self._exports[export_id] = ref
        self._export_ids[ref] = export_id
        on_termination(ref, self._ended)
        return export_id

    def export_ended(self, ref: object, reason: BaseException | None) -> None:
        """A local actor other nodes could address ended (called as it is finalized)."""
        if not isinstance(ref, ActorRef):
            return
        export_id = self._export_ids.pop(ref, None)
        if export_id is None:
            return
        del self._exports[export_id]
        try:
            self.members.export_ended(export_id, reason)
        except Exception:  # runs inside the runtime's finalize: never let it raise there
            log.exception("troupe cluster: withdrawing %s failed", ref)

    def encode_ref(self, ref: object) -> dict[str, str]:
        """The codec's hook: a ref as the address of its actor."""
        if isinstance(ref, RemoteRef):
            if ref._node is not self:
                msg = f"{ref!r} belongs to another cluster node than this one"
                raise ValueError(msg)
            return ref._address()
        if isinstance(ref, ActorRef):
            return {"ref": f"{self.node_id}.{self.export(ref)}", "node": self.node, "path": ref.path}
        msg = f"{ref!r} is not a ref this cluster can address"
        raise ValueError(msg)

    def decode_ref(self, address: dict[str, str]) -> object:
        """The codec's hook: the ref an address stands for."""
        text = address["ref"]
        if text.startswith("@"):
            return self.group_ref(wire.check_name(text[1:]), None)
        node_id, _, export_id = text.partition(".")
        if not (wire.TOKEN.fullmatch(node_id) and wire.TOKEN.fullmatch(export_id)):
            msg = f"{text!r} is not the address of an actor"
            raise ValueError(msg)
        if node_id == self.node_id:
            local = self._exports.get(export_id)
            if local is not None:
                return local
        return self.actor_ref(node_id, export_id, address.get("node") or node_id, address.get("path", ""))

    def group_ref(self, name: str, accepts: tuple[type, ...] | None) -> RemoteRef[Any]:
        """A ref to the group registered under ``name``."""
        return RemoteRef._create(self, f"{self.prefix}.n.{name}", accepts=accepts, group=name)

    def actor_ref(self, node_id: str, export_id: str, node_name: str, path: str) -> RemoteRef[Any]:
        """A ref to one actor of a node."""
        return RemoteRef._create(
            self,
            f"{self.prefix}.a.{node_id}.{export_id}",
            accepts=None,
            node_id=node_id,
            node_name=node_name,
            actor=path,
        )

    # -- encoding -------------------------------------------------------------------------------

    def encode(self, msg: object) -> dict[str, Any]:
        """``msg`` as wire data (refs as addresses)."""
        data = encode_flat(msg)  # no refs in it: no need of this node to code them
        if data is not None:
            return data
        token = REF_CODEC.set(self)
        try:
            return codec.encode(msg)
        finally:
            REF_CODEC.reset(token)

    def decode(self, data: object) -> Any:
        """A message from wire data (addresses as refs)."""
        if type(data) is dict:
            msg = decode_flat(data)
            if msg is not IRREGULAR:
                return msg
        token = REF_CODEC.set(self)
        try:
            return codec.decode(data)
        finally:
            REF_CODEC.reset(token)

    def _encode_answer(self, value: object) -> bytes:
        token = REF_CODEC.set(self)
        try:
            return wire.dumps({"ok": walk(ANY, value, encoding=True)}).encode()
        except Bad as bad:
            problem = f"{bad.reason} at {bad.path}"
        except (ValueError, TypeError, RecursionError, OverflowError) as exc:  # the JSON encoder's
            problem = f"{type(exc).__name__}: {exc!s:.200}"
        finally:
            REF_CODEC.reset(token)
        text = (
            f"the answer ({type(value).__qualname__}) cannot be sent: {problem}; return JSON data "
            "(no int of over 4300 digits, no NaN), @message instances or refs"
        )
        return wire.dumps({"err": {"kind": "raised", "type": "TypeError", "text": text, "tb": ""}}).encode()

    def _decode_answer(self, data: object) -> Any:
        token = REF_CODEC.set(self)
        try:
            return walk(ANY, data, encoding=False)
        finally:
            REF_CODEC.reset(token)

    # -- sending --------------------------------------------------------------------------------

    def _payload(self, msg: object, data: object) -> bytes:
        try:
            return wire.dumps(data).encode()
        except ValueError as exc:  # an int of more than 4300 digits
            text = f"cannot encode {type(msg).__qualname__}: {exc}"
            raise TypeError(text) from None

    def tell_payload(self, msg: object) -> bytes:
        """A tell's payload (TypeError if ``msg`` cannot be encoded)."""
        return self._payload(msg, self.encode(msg))

    def send(self, ref: RemoteRef[Any], msg: object, payload: bytes | None = None) -> None:
        """Publish a tell (the server tells the inbox if nobody subscribes: a dead letter here).

        The tell is kept until the server has confirmed it (see `_on_mark`),
        so that its 503 finds it: a table only of the tells in flight.
        """
        if payload is None:
            payload = self._payload(msg, self.encode(msg))
        n = next(self._tell_counter)
        self.client.publish(ref._subject, payload, f"{self._inbox_prefix}t{n}")
        self._tells[n] = (ref, msg)
        self.stats.sent += 1
        self._unmarked += 1
        self._unmarked_bytes += len(payload)
        if self._unmarked >= _MARK_EVERY or self._unmarked_bytes >= _MARK_BYTES:
            self._mark(n)

    def _mark(self, n: int) -> None:
        """Publish a mark for the tells up to ``n`` to this node's own inbox.

        The server handles one connection's messages in order, and answers
        a message nobody subscribes to (503) as it handles it, on this
        connection: so once the mark is back, every 503 for a tell up to
        ``n`` has arrived before it, and the tells still kept were taken.
        """
        try:
            self.client.publish(f"{self._inbox_prefix}m{n}", self._mark_token)
        except ClusterError:
            return  # not connected, or the buffer is full: the next tell tries again
        self._unmarked = self._unmarked_bytes = 0

    def _on_mark(self, n: int) -> None:
        tells = self._tells
        while tells and next(iter(tells)) <= n:
            tells.popitem(last=False)

    async def ask(self, ref: RemoteRef[Any], msg: object, timeout: float | None) -> Any:
        """Publish an ask and wait for its answer."""
        wire_timeout = None if timeout is None or timeout == math.inf else timeout
        payload = self._payload(msg, {"ask": wire_timeout, "m": self.encode(msg)})
        key = format(next(self._ask_counter), "x")
        pending = _Ask(ref, msg, timeout)
        self.client.publish(ref._subject, payload, self._inbox_prefix + key, now=True)
        self.stats.sent += 1
        self.stats.asks += 1
        self._asks[key] = pending
        try:
            if timeout is None:
                await pending.done.wait()
            else:
                with trio.move_on_after(timeout):
                    await pending.done.wait()
        finally:
            self._asks.pop(key, None)
        if pending.outcome is None:
            raise AskTimeout(ref.path, msg, timeout or 0.0)
        return pending.outcome.unwrap()

    def watch(self, ref: RemoteRef[Any], watcher: _Cell) -> None:
        """``watcher`` watches ``ref`` (``ctx.watch(remote_ref)``)."""
        self.members.watch(ref, watcher)

    def unwatch(self, ref: RemoteRef[Any], watcher: _Cell) -> None:
        """``watcher`` stops watching ``ref``."""
        self.members.unwatch(ref, watcher)

    def publish(self, subject: str, data: object) -> None:
        """Publish control data (heartbeats, watches)."""
        self.client.publish(subject, wire.dumps(data).encode())

    # -- receiving ------------------------------------------------------------------------------

    def _on_inbox(self, subject: str, reply: str | None, payload: bytes, status: int | None) -> None:  # noqa: ARG002
        key = subject[len(self._inbox_prefix) :]
        if key[:1] in {"t", "m"}:
            # A tell's inbox: only the server writes here, when nobody listens; or this node's mark.
            try:
                n = int(key[1:])
            except ValueError:
                return
            if key[0] == "t":
                if status == 503:  # noqa: PLR2004 - NATS's "no responders"
                    sent = self._tells.pop(n, None)
                    if sent is not None:
                        self._dead_letter(sent[0].path, sent[1], DeadLetterReason.STOPPED)
            elif status is None and payload == self._mark_token:
                self._on_mark(n)
            return
        pending = self._asks.get(key)
        if pending is None:
            return  # the asker gave up (timeout, cancel): the answer is dropped
        if status == 503:  # noqa: PLR2004
            self._dead_letter(pending.ref.path, pending.msg, DeadLetterReason.STOPPED)
            pending.finish(Error(ActorStopped(pending.ref.path, self._nobody(pending.ref))))
            return
        pending.finish(self._read_answer(pending, payload))

    def _nobody(self, ref: RemoteRef[Any]) -> str:
        if ref.is_group:
            return (
                f"no live member of cluster {self.cluster!r} has the name {ref.name!r} (nothing is "
                "registered under it now); the message went to dead letters. Register an actor under it first"
            )
        return (
            f"{ref.path} cannot be reached: its node is not in the cluster now; the message went to "
            "dead letters"
        )

    def _read_answer(self, pending: _Ask, payload: bytes) -> Outcome[Any]:
        node = pending.ref.node or "?"
        try:
            data = wire.loads(payload)
            if type(data) is dict and "ok" in data:
                return Value(self._decode_answer(data["ok"]))
            if type(data) is dict and "err" in data:
                return Error(
                    wire.error_from(data["err"], pending.ref.path, pending.msg, pending.timeout, node)
                )
            problem = "it is not an answer"
        except (ValueError, RecursionError) as exc:
            problem = f"not JSON ({exc})"
        except Bad as bad:
            problem = f"{bad.reason} at {bad.path}"
        return Error(ClusterError(f"the answer from {pending.ref.path} could not be read: {problem}"))

    def _on_actor(self, subject: str, reply: str | None, payload: bytes, status: int | None) -> None:  # noqa: ARG002
        export_id = subject[len(self._actor_prefix) :]
        ref = self._exports.get(export_id)
        self._arrive(ref, subject if ref is not None else self._gone_actor(export_id), reply, payload)

    def _gone_actor(self, export_id: str) -> str:
        return f"{self.cluster}:{self.node} (an actor that ended, #{export_id})"

    def name_callback(self, ref: ActorRef[Any]) -> Callable[[str, str | None, bytes, int | None], None]:
        """The subscription callback for one member ``ref`` of a registered name."""

        def on_name(subject: str, reply: str | None, payload: bytes, _: int | None) -> None:
            self._arrive(ref, subject, reply, payload)

        return on_name

    def _arrive(self, ref: ActorRef[Any] | None, subject: str, reply: str | None, payload: bytes) -> None:
        """Hand what arrived to ``ref`` (None: it ended; ``subject`` then says who it was)."""
        self.stats.received += 1
        recipient = ref.path if ref is not None else subject
        try:
            msg, is_ask, timeout = self._read(payload)
        except Exception as exc:  # whatever went wrong reading it, it is not lost
            if isinstance(exc, _Refused):
                reason = exc.reason
            else:  # a bug, not a refusal: say so, and still answer
                log.exception("troupe cluster: reading a message for %s failed", recipient)
                reason = f"it could not be read ({type(exc).__name__}: {exc!s:.200})"
            self._dead_letter(recipient, wire.unreadable(reason, payload), DeadLetterReason.REFUSED)
            if reply is not None:
                self._reply(reply, {"err": {"kind": "refused", "text": reason, "node": self.node}})
            return
        if ref is None:
            self._dead_letter(recipient, msg, DeadLetterReason.STOPPED)
            if is_ask and reply is not None:
                self._reply(
                    reply, {"err": {"kind": "stopped", "text": f"{subject} is stopped", "node": self.node}}
                )
            return
        if not is_ask:
            arrive_tell(ref, msg)
            return
        arrive_ask(ref, msg, timeout, partial(self._answer, reply))

    def _read(self, payload: bytes) -> tuple[object, bool, float | None]:
        if len(payload) > self.config.max_payload:
            raise _Refused(
                f"{len(payload)} bytes is over this node's max_payload ({self.config.max_payload})"
            )
        try:
            data = wire.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise _Refused(f"not JSON ({type(exc).__name__}: {exc})") from None
        if type(data) is not dict:
            raise _Refused("not a message (a JSON object was expected)")
        is_ask = "type" not in data
        timeout = None
        if is_ask:
            if set(data) != {"ask", "m"}:
                raise _Refused("neither a message nor an ask envelope")
            try:
                timeout = wire.read_ask_timeout(data["ask"])
            except ValueError as exc:
                raise _Refused(str(exc)) from None
            data = data["m"]
        try:
            return self.decode(data), is_ask, timeout
        except DecodeError as exc:
            raise _Refused(str(exc)) from None

    def _answer(self, reply: str | None, outcome: Outcome[Any]) -> None:
        """Send an arrived ask's outcome back (called in the answering actor's task: never raises).

        An answer that cannot be encoded, or is over the server's limit,
        becomes an error answer saying so: the asker hears at once.
        """
        if reply is None:
            return
        try:
            payload = self._answer_payload(outcome)
            limit = self.client.max_payload
            if len(payload) > limit:
                what = "answer" if isinstance(outcome, Value) else "error answer"
                text = (
                    f"its {what} ({self._kind_of(outcome)}) is {len(payload)} bytes, over the server's limit "
                    f"of {limit} bytes: return less (or a ref to fetch it in parts), or raise the server's "
                    "max_payload"
                )
                payload = wire.dumps({"err": {"kind": "unsent", "text": text, "node": self.node}}).encode()
            self.client.publish(reply, payload, now=True)
        except ClusterError as exc:
            log.info("an answer to %s was lost: %s", reply, exc)
        except Exception:
            log.exception("troupe cluster: answering %s failed (the asker will time out)", reply)

    @staticmethod
    def _kind_of(outcome: Outcome[Any]) -> str:
        if isinstance(outcome, Value):
            return type(outcome.value).__qualname__
        assert isinstance(outcome, Error)  # noqa: S101 - an outcome is one or the other
        return type(outcome.error).__qualname__

    def _answer_payload(self, outcome: Outcome[Any]) -> bytes:
        if isinstance(outcome, Value):
            return self._encode_answer(outcome.value)
        assert isinstance(outcome, Error)  # noqa: S101 - an outcome is one or the other
        try:
            return wire.dumps({"err": {**wire.error_data(outcome.error), "node": self.node}}).encode()
        except Exception as exc:  # noqa: BLE001 - an exception whose text cannot be taken
            text = f"{self._kind_of(outcome)} (its text could not be read: {type(exc).__name__})"
            return wire.dumps(
                {"err": {"kind": "raised", "type": "Exception", "text": text, "tb": ""}}
            ).encode()

    def _reply(self, reply: str, data: dict[str, Any]) -> None:
        try:
            self.client.publish(reply, wire.dumps(data).encode())
        except ClusterError as exc:
            log.info("an answer to %s was lost: %s", reply, exc)

    def _dead_letter(self, recipient: str, msg: object, reason: DeadLetterReason) -> None:
        self.system._dead_letters._add(recipient, msg, reason)


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
