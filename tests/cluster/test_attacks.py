"""An attacker's review of the cluster: hostile members, faults on the wire, cancellation, memory.

Each test attacks one promise of the cluster (nothing lost silently, nothing
hangs, bad input never crashes a node, order per sender and receiver, no
unbounded memory from what peers send, refs crossing nodes, the cluster
actor's life). A test marked ``xfail(strict=True)`` is a finding: it fails on
the code as it is, and its reason says the bug in one line. Unmarked tests
are attacks the code survives.

Everything runs against a real ``nats-server`` (the embedded default or the
``nats_server`` fixture). Hostile members speak NATS themselves (a raw
`NatsClient`, or raw bytes over TCP); faults on one node's connection come
from `_Proxy`, a TCP proxy that cuts, refuses or stalls it. No test sleeps to
synchronise; every wait is bounded.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from functools import partial
from typing import Any

import joinkit
import pytest
import trio
import trio.testing

import troupe
from troupe.cluster import ClusterError, NatsServer, RemoteRef, UnreadableMessage, _node, run_server
from troupe.cluster._members import _VERSION
from troupe.cluster._nats import NatsClient, Options

from kit import eventually

CLUSTER = "atk"


@troupe.message(name="test.attacks.Add")
class Add:
    n: int


@troupe.message(name="test.attacks.Get")
class Get:
    pass


@troupe.message(name="test.attacks.Seq")
class Seq:
    i: int


@troupe.message(name="test.attacks.Blob")
class Blob:
    data: str


@troupe.message(name="test.attacks.Answer")
class Answer:
    text: str


@troupe.message(name="test.attacks.Inner")
class Inner:
    reply_to: troupe.Ref[Add]


@troupe.message(name="test.attacks.Carry")
class Carry:
    """Refs in every place a field can hold them."""

    one: troupe.Ref[Add]
    many: list[troupe.Ref[Add]]
    by_name: dict[str, troupe.Ref[Add]]
    maybe: troupe.Ref[Add] | None
    inner: Inner


class Counter(troupe.Actor[Add | Get | Seq | Blob]):
    """Counts, remembers the order of `Seq`, answers `Get`."""

    def __init__(self) -> None:
        self.total = 0
        self.seen: list[int] = []

    async def receive(self, msg: Add | Get | Seq | Blob) -> Any:
        match msg:
            case Add(n=n):
                self.total += n
            case Seq(i=i):
                self.seen.append(i)
            case Get():
                return {"total": self.total, "seen": self.seen}
        return None


class Answerer(troupe.Actor[Answer]):
    """Answers what it is asked for: a value the wire can or cannot carry; counts its asks."""

    def __init__(self) -> None:
        self.asked = 0

    async def receive(self, msg: Answer) -> Any:
        self.asked += 1
        if msg.text == "an int of 5000 digits":
            return 10**5000
        if msg.text == "two megabytes":
            return "x" * 2_000_000
        return self.asked


class Blocker(troupe.Actor[Answer]):
    """Never finishes a message; says when one arrived."""

    def __init__(self, arrived: trio.Event) -> None:
        self.arrived = arrived

    async def receive(self, msg: Answer) -> None:
        self.arrived.set()
        await trio.sleep_forever()


class Gate(troupe.Actor[Answer]):
    """Holds its first message until `release` is set; answers each with its text."""

    def __init__(self, started: trio.Event, release: trio.Event) -> None:
        self.started = started
        self.release = release

    async def receive(self, msg: Answer) -> str:
        self.started.set()
        await self.release.wait()
        return msg.text


class Tally(troupe.Actor[Add]):
    """Adds up what it is told; sets ``reached`` once the total is at least ``want``."""

    def __init__(self, want: int, reached: trio.Event) -> None:
        self.total = 0
        self.want = want
        self.reached = reached

    async def receive(self, msg: Add) -> None:
        self.total += msg.n
        if self.total >= self.want:
            self.reached.set()


class Watcher(troupe.Actor[troupe.Terminated]):
    def __init__(self, target: troupe.Ref[Any], done: trio.Event, got: list[troupe.Terminated]) -> None:
        self.target = target
        self.done = done
        self.got = got

    async def on_start(self) -> None:
        self.context.watch(self.target)

    async def receive(self, msg: troupe.Terminated) -> None:
        self.got.append(msg)
        self.done.set()


class Keeper(troupe.Actor[Carry | Inner]):
    """Keeps what it receives, for the test to look at."""

    def __init__(self, got: list[object], done: trio.Event) -> None:
        self.got = got
        self.done = done

    async def receive(self, msg: Carry | Inner) -> None:
        self.got.append(msg)
        self.done.set()


class Forwarder(troupe.Actor[Carry]):
    """Tells `Add(n)` to every ref it is given, then sends the refs on to ``then``."""

    def __init__(self, then: troupe.Ref[Carry | Inner] | None = None) -> None:
        self.then = then

    async def receive(self, msg: Carry) -> None:
        refs = [msg.one, *msg.many, *msg.by_name.values(), msg.inner.reply_to]
        if msg.maybe is not None:
            refs.append(msg.maybe)
        for i, ref in enumerate(refs):
            await ref.tell(Add(10**i))
        if self.then is not None:
            await self.then.tell(msg)


config = partial(joinkit.config, CLUSTER)
two_nodes = partial(joinkit.two_nodes, CLUSTER)


async def counter_on(system: troupe.ActorSystem, name: str = "counter", **kw: Any) -> troupe.ActorRef[Any]:
    """A `Counter` on ``system``, registered as ``counter``."""
    return await joinkit.registered(system, Counter, "counter", name, **kw)


async def still_connected(system: troupe.ActorSystem) -> None:
    """Fail unless ``system`` kept its first connection: registering flushes through the server."""
    probe = await system.spawn(Counter)
    await system.cluster.register("probe", probe)  # ClusterError if the connection dropped meanwhile
    assert system.cluster.statistics().reconnects == 0


def host_port(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("nats://").rpartition(":")
    return host, int(port)


@asynccontextmanager
async def hostile(url: str) -> AsyncIterator[NatsClient]:
    """A raw NATS client on the cluster's server: it publishes whatever it likes."""
    client = NatsClient(Options(url))
    await client.connect()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)
        try:
            yield client
        finally:
            await client.close()
            nursery.cancel_scope.cancel()


async def raw_send(url: str, commands: bytes) -> None:
    """Connect with raw bytes, send ``commands`` (any bytes), and wait until the server processed them."""
    stream = await trio.open_tcp_stream(*host_port(url))
    async with stream:
        buf = b""
        with trio.fail_after(5):
            while b"\r\n" not in buf:
                buf += await stream.receive_some(4096)
            await stream.send_all(b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\n')
            await stream.send_all(commands + b"PING\r\n")
            while b"PONG\r\n" not in buf:
                data = await stream.receive_some(4096)
                assert data, "the server closed the hostile connection"
                buf += data


def heartbeat(node_id: str, node: str, names: dict[str, dict[str, str]], **extra: Any) -> bytes:
    return json.dumps({"v": _VERSION, "id": node_id, "node": node, "names": names, **extra}).encode()


class _Proxy:
    """A TCP proxy in front of a NATS server, to fail one node's connection on purpose.

    ``cut()`` drops every connection through it; while ``refusing`` new ones
    are closed at once; ``stall()`` stops reading from the clients (their
    writes back up) until ``resume()``.
    """

    def __init__(self, url: str) -> None:
        self.target = host_port(url)
        self.port = 0
        self.refusing = False
        self._scopes: set[trio.CancelScope] = set()
        self._flowing = trio.Event()
        self._flowing.set()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    def cut(self) -> None:
        for scope in self._scopes:
            scope.cancel()

    def stall(self) -> None:
        self._flowing = trio.Event()

    def resume(self) -> None:
        self._flowing.set()

    async def _handle(self, client: trio.SocketStream) -> None:
        if self.refusing:
            await trio.aclose_forcefully(client)
            return
        with trio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                server = await trio.open_tcp_stream(*self.target)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(partial(self._pump, client, server, scope, upstream=True))
                    nursery.start_soon(partial(self._pump, server, client, scope, upstream=False))
            finally:
                self._scopes.discard(scope)
        await trio.aclose_forcefully(client)

    async def _pump(
        self, source: trio.SocketStream, sink: trio.SocketStream, scope: trio.CancelScope, *, upstream: bool
    ) -> None:
        try:
            while True:
                if upstream:
                    await self._flowing.wait()
                data = await source.receive_some(65536)
                if not data:
                    break
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            scope.cancel()
            await trio.aclose_forcefully(sink)


@asynccontextmanager
async def proxied(url: str) -> AsyncIterator[_Proxy]:
    proxy = _Proxy(url)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        try:
            yield proxy
        finally:
            proxy.resume()
            nursery.cancel_scope.cancel()


# -- hostile bytes on the wire --------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["reply", "subject"])
async def test_a_subject_that_is_not_utf8_does_not_disconnect_the_node(where: str) -> None:
    async with two_nodes() as (a, b):
        counter = await counter_on(b)
        await a.cluster.wait_for("counter")
        payload = b'{"type":"test.attacks.Add","n":1}'
        if where == "reply":
            command = b"PUB troupe.%s.n.counter \xff\xfe %d\r\n" % (CLUSTER.encode(), len(payload))
        else:
            actor = f"troupe.{CLUSTER}.a.{b.cluster.node_id}.".encode()
            command = b"PUB %s\xff\xfe %d\r\n" % (actor, len(payload))
        await raw_send(a.cluster.url, command + payload + b"\r\n")
        await still_connected(b)
        assert counter.alive


async def test_messages_around_one_whose_subject_is_not_utf8_are_delivered_and_it_is_counted() -> None:
    async with two_nodes() as (a, b):
        counter = await counter_on(b)
        await a.cluster.wait_for("counter")
        actor = f"troupe.{CLUSTER}.a.{b.cluster.node_id}.".encode()
        export_id = b.cluster._node.export(counter).encode()
        ignored = b.cluster._node.client.ignored
        commands = b""
        for n, token in ((1, export_id), (10, b"\xff\xfe"), (100, export_id), (1000, b"\xc3")):
            payload = b'{"type":"test.attacks.Add","n":%d}' % n
            commands += b"PUB %s%s %d\r\n%s\r\n" % (actor, token, len(payload), payload)
        await raw_send(a.cluster.url, commands)
        # b's reader handles the four in order: once it has dropped the last one, the two
        # good ones are in the counter's mailbox, ahead of the local ask below.
        await eventually(lambda: b.cluster._node.client.ignored == ignored + 2)
        assert (await counter.ask(Get()))["total"] == 101  # what came before and after it
        await still_connected(b)


async def test_an_ask_whose_reply_subject_is_not_utf8_is_answered_on_that_very_subject() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b)
        await a.cluster.wait_for("counter")
        reply = b"_INBOX.\xff\xfe.\xe9"
        ask = b'{"ask":5,"m":{"type":"test.attacks.Get"}}'
        stream = await trio.open_tcp_stream(*host_port(a.cluster.url))
        async with stream:
            buf = b""
            with trio.fail_after(5):
                while b"\r\n" not in buf:
                    buf += await stream.receive_some(4096)
                await stream.send_all(
                    b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\n'
                    b"SUB %s 7\r\nPUB troupe.%s.n.counter %s %d\r\n%s\r\n"
                    % (reply, CLUSTER.encode(), reply, len(ask), ask)
                )
                while b"}\r\n" not in buf.partition(b"MSG %s 7 " % reply)[2]:  # the whole answer
                    data = await stream.receive_some(4096)
                    assert data, "the server closed the connection"
                    buf += data
        assert b'"ok":{"total":0' in buf
        await still_connected(b)


@pytest.mark.parametrize("reply", ["troupe.>", "a.*.b", "x..y", "été", "troupe.atk.hb"])
async def test_odd_reply_subjects_neither_disconnect_the_node_nor_loop(reply: str) -> None:
    async with two_nodes() as (a, b):
        counter = await counter_on(b)
        await a.cluster.wait_for("counter")
        ask = b'{"ask":1,"m":{"type":"test.attacks.Get"}}'
        garbage = b"\r\nPUB troupe.atk.n.counter 2\r\n{}\r\n"  # protocol lines inside a payload
        commands = b"".join(
            b"PUB troupe.atk.n.counter %s %d\r\n%s\r\n" % (reply.encode(), len(p), p) for p in (ask, garbage)
        )
        async with b.dead_letters.listen() as letters:
            await raw_send(a.cluster.url, commands)
            with trio.fail_after(5):
                letter = await letters.receive()
        assert isinstance(letter.message, UnreadableMessage)
        assert letter.message.size == len(garbage)
        await still_connected(b)
        await still_connected(a)
        assert (await counter.ask(Get()))["total"] == 0


async def test_an_ask_timeout_too_large_for_a_float_is_refused_not_lost() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b)
        await a.cluster.wait_for("counter")
        answers: dict[str, bytes] = {}
        second = trio.Event()

        def on_answer(subject: str, reply: str | None, data: bytes, status: int | None) -> None:
            answers[subject] = data
            if subject == "hostile.2":
                second.set()

        async with hostile(a.cluster.url) as evil:
            evil.subscribe("hostile.*", on_answer)
            assert await evil.flush()
            before = b.dead_letters.count
            subject = f"troupe.{CLUSTER}.n.counter"
            big = b'{"ask": 1' + b"0" * 400 + b', "m": {"type": "test.attacks.Get"}}'
            evil.publish(subject, big, reply="hostile.1")
            evil.publish(subject, b'{"ask": 1, "m": {"type": "test.attacks.Get"}}', reply="hostile.2")
            with trio.fail_after(5):
                await second.wait()  # b handled the first before the second
        assert b.dead_letters.count - before == 1
        assert json.loads(answers["hostile.1"])["err"]["kind"] == "refused"


@pytest.mark.parametrize(
    "envelope",
    [
        b'{"ask": -1, "m": {"type": "test.attacks.Get"}}',
        b'{"ask": -1' + b"0" * 400 + b', "m": {"type": "test.attacks.Get"}}',
        b'{"ask": 1e999, "m": {"type": "test.attacks.Get"}}',
        b'{"ask": Infinity, "m": {"type": "test.attacks.Get"}}',
        b'{"ask": NaN, "m": {"type": "test.attacks.Get"}}',
        b'{"ask": -0.5, "m": {"type": "test.attacks.Get"}}',
        b'{"ask": true, "m": {"type": "test.attacks.Get"}}',
        b'{"ask": "5", "m": {"type": "test.attacks.Get"}}',
        b'{"ask": [5], "m": {"type": "test.attacks.Get"}}',
        b'{"ask": {"s": 5}, "m": {"type": "test.attacks.Get"}}',
        b'{"ask": 1, "m": "test.attacks.Get"}',
        b'{"ask": 1, "m": {"type": "test.attacks.Add", "n": 1' + b"0" * 5000 + b"}}",
        b'{"ask": 1, "m": {"type": "test.attacks.Add", "n": 1e999}}',
        b'{"ask": 1, "m": {"type": ["test.attacks.Get"]}}',
        b'{"ask": 1, "m": {"type": "test.attacks.Get"}, "x": 1}',
    ],
)
async def test_each_malformed_ask_envelope_is_refused_to_the_asker_and_a_dead_letter(envelope: bytes) -> None:
    async with two_nodes() as (a, b):
        counter = await counter_on(b)
        await a.cluster.wait_for("counter")
        answers: dict[str, bytes] = {}
        second = trio.Event()

        def on_answer(subject: str, reply: str | None, data: bytes, status: int | None) -> None:
            answers[subject] = data
            if subject == "hostile.2":
                second.set()

        async with hostile(a.cluster.url) as evil:
            evil.subscribe("hostile.*", on_answer)
            assert await evil.flush()
            before = b.dead_letters.count
            subject = f"troupe.{CLUSTER}.n.counter"
            evil.publish(subject, envelope, reply="hostile.1")
            evil.publish(subject, b'{"ask": 1, "m": {"type": "test.attacks.Get"}}', reply="hostile.2")
            with trio.fail_after(5):
                await second.wait()
        assert b.dead_letters.count - before == 1
        assert json.loads(answers["hostile.1"])["err"]["kind"] == "refused"
        assert (await counter.ask(Get()))["total"] == 0
        await still_connected(b)


async def test_a_bug_in_reading_a_message_still_answers_the_asker_and_counts_a_dead_letter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: _node.Node, data: object) -> object:
        raise RuntimeError("a bug in decoding")

    async with two_nodes() as (a, b):
        await counter_on(b)
        await a.cluster.wait_for("counter")
        monkeypatch.setattr(_node.Node, "decode", broken)
        before = b.dead_letters.count
        with (
            trio.fail_after(5),
            pytest.raises(ClusterError, match=r"refused .*RuntimeError: a bug in decoding"),
        ):
            await a.cluster.ref("counter", Get).ask(Get(), timeout=None)
        assert b.dead_letters.count - before == 1


async def test_an_ask_with_an_infinite_timeout_waits_for_its_answer() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b)
        await a.cluster.wait_for("counter")
        counter = a.cluster.ref("counter", Add | Get)
        await counter.tell(Add(2))
        with trio.fail_after(5):
            assert (await counter.ask(Get(), timeout=float("inf")))["total"] == 2


@pytest.mark.parametrize(
    "payload",
    [
        b"garbage",
        b"[]",
        b"7",
        b'"op"',
        b'{"op": []}',
        b'{"op": "watch", "id": "1 2", "from": "x"}',
        b'{"op": "watch", "id": "1", "from": ">"}',
        b'{"op": "terminated", "addr": 5, "reason": "no"}',
        b'{"op": "terminated", "addr": "zz.1", "reason": {"type": 1, "text": [], "tb": {}}}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
async def test_malformed_control_messages_and_heartbeats_leave_the_node_working(payload: bytes) -> None:
    async with two_nodes() as (a, b):
        counter = await counter_on(b)
        await a.cluster.wait_for("counter")
        async with hostile(a.cluster.url) as evil:
            evil.publish(f"troupe.{CLUSTER}.c.{b.cluster.node_id}", payload)
            evil.publish(f"troupe.{CLUSTER}.hb", payload)
            evil.publish(f"troupe.{CLUSTER}.i.{a.cluster.node_id}.1", payload)
            evil.publish(f"troupe.{CLUSTER}.i.{a.cluster.node_id}.t1", payload)
            assert await evil.flush()
        await still_connected(b)
        await still_connected(a)  # a read the hostile heartbeat before its flush came back
        assert [m.node for m in await a.cluster.members()] == ["a", "b"]
        assert (await a.cluster.ref("counter").ask(Get()))["total"] == 0
        assert counter.alive


# -- hostile heartbeats -----------------------------------------------------------------------------------


@pytest.mark.parametrize("export_id", ["1 2", "1\r\nPING"])
async def test_a_heartbeat_cannot_plant_a_member_whose_subject_breaks_the_senders_connection(
    export_id: str,
) -> None:
    async with two_nodes() as (a, b):
        await counter_on(b)
        async with hostile(a.cluster.url) as evil:
            names = {"counter": {export_id: "/user/x"}, "planted": {"p": "/user/p"}}
            evil.publish(f"troupe.{CLUSTER}.hb", heartbeat("fake1", "evil", names))
            assert await evil.flush()
            await a.cluster.wait_for("planted")
            for member in await a.cluster.lookup("counter"):
                with suppress(troupe.TroupeError):
                    await member.tell(Add(1))
            await still_connected(a)


@pytest.mark.parametrize(
    ("node_id", "node"),
    [
        ("a b", "evil"),
        ("x\r\nPING", "evil"),
        ("", "evil"),
        ("x.y", "evil"),
        (7, "evil"),
        ("fake", "ev il"),
        ("fake", ">"),
        ("fake", None),
    ],
)
async def test_a_heartbeat_whose_node_id_or_node_name_is_not_a_token_is_ignored(
    node_id: object, node: object
) -> None:
    async with two_nodes() as (a, _):
        members = a.cluster._node.members
        before = members.refused
        async with hostile(a.cluster.url) as evil:
            names = {"planted": {"p": "/user/p"}}
            data = {"v": _VERSION, "id": node_id, "node": node, "names": names, "hello": True}
            evil.publish(f"troupe.{CLUSTER}.hb", json.dumps(data).encode())
            evil.publish(f"troupe.{CLUSTER}.hb", heartbeat("good1", "good", {"marker": {"m": "/user/m"}}))
            assert await evil.flush()
        await a.cluster.wait_for("marker")  # a read the bad one before it
        assert members.refused == before + 1
        assert await a.cluster.lookup("planted") == []
        assert [m.node for m in await a.cluster.members()] == ["a", "b", "good"]


async def test_a_heartbeats_bad_entries_are_dropped_and_its_good_ones_kept() -> None:
    async with two_nodes() as (a, _):
        names: dict[str, Any] = {
            "good": {
                "1": "/user/g",
                "2 x": "/user/x",
                "3": 5,
                "4": "no-slash",
                "5.6": "/user/x",
                "": "/user/x",
            },
            "bad name": {"1": "/user/x"},
            ">": {"1": "/user/x"},
            "a.b": {"1": "/user/x"},
            "list": ["1"],
            "empty": {"x\r\ny": "/user/x"},
        }
        async with hostile(a.cluster.url) as evil:
            evil.publish(f"troupe.{CLUSTER}.hb", heartbeat("evil1", "evil", names))
            assert await evil.flush()
        [member] = await a.cluster.wait_for("good")
        assert member.path == f"{CLUSTER}:evil/user/g"
        assert member._address()["ref"] == "evil1.1"
        assert [m.names for m in await a.cluster.members() if m.node == "evil"] == [("good",)]
        assert await a.cluster.lookup("list") == []
        assert await a.cluster.lookup("empty") == []


async def test_malformed_heartbeats_are_counted_and_logged_a_few_times_not_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", logger="troupe.cluster")
    async with two_nodes() as (a, _):
        members = a.cluster._node.members
        before = members.refused
        async with hostile(a.cluster.url) as evil:
            for i in range(100):
                evil.publish(f"troupe.{CLUSTER}.hb", heartbeat(f"bad {i}", "evil", {}))
            assert await evil.flush()
        await still_connected(a)
        assert members.refused - before == 100
        logged = [r for r in caplog.records if "node a ignored a malformed heartbeat" in r.getMessage()]
        assert len(logged) == 7  # the 1st, 2nd, 4th, ... 64th


async def test_heartbeats_of_many_fake_nodes_are_forgotten_after_the_failure_timeout() -> None:
    async with two_nodes() as (a, b):
        async with hostile(a.cluster.url) as evil:
            for i in range(300):
                names = {f"name{i}": {"1": "/user/x"}}
                evil.publish(f"troupe.{CLUSTER}.hb", heartbeat(f"ghost{i}", f"ghost{i}", names, hello=True))
            assert await evil.flush()
        await a.cluster.wait_for_nodes(302, timeout=5)
        with trio.fail_after(5):
            for system in (a, b):
                while len(await system.cluster.members()) > 2:
                    await system.cluster.wait_changed()
        assert [m.node for m in await a.cluster.members()] == ["a", "b"]
        assert [m.node for m in await b.cluster.members()] == ["b", "a"]


async def test_heartbeats_of_another_version_do_not_pile_up() -> None:
    async with two_nodes() as (a, _):
        async with hostile(a.cluster.url) as evil:
            for i in range(3000):
                data = {"v": _VERSION + 1, "id": f"old{i}", "node": "old", "names": {}}
                evil.publish(f"troupe.{CLUSTER}.hb", json.dumps(data).encode())
            assert await evil.flush()
        await still_connected(a)  # a read every heartbeat before its flush came back
        assert len(a.cluster._node.members._other_versions) <= 1024


async def test_watches_from_nodes_never_heard_of_do_not_pile_up() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b)
        [member] = await a.cluster.wait_for("counter")
        export_id = member._address()["ref"].partition(".")[2]
        async with hostile(a.cluster.url) as evil:
            for i in range(2000):
                watch = {"op": "watch", "id": export_id, "from": f"ghost{i}"}
                evil.publish(f"troupe.{CLUSTER}.c.{b.cluster.node_id}", json.dumps(watch).encode())
            assert await evil.flush()
        await still_connected(b)
        watched_by = b.cluster._node.members._watched_by
        assert sum(len(nodes) for nodes in watched_by.values()) <= 2


# -- what is lost, and who hears of it --------------------------------------------------------------------


async def test_a_node_of_another_version_is_warned_of_once_and_never_listed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", logger="troupe.cluster")
    async with two_nodes() as (a, b):
        async with hostile(a.cluster.url) as evil:
            for _ in range(50):
                data = {"v": _VERSION + 1, "id": "old1", "node": "old", "names": {"x": {"1": "/user/x"}}}
                evil.publish(f"troupe.{CLUSTER}.hb", json.dumps(data).encode())
            assert await evil.flush()
        await still_connected(a)
        await still_connected(b)
        warned = [r for r in caplog.records if "speaks cluster protocol" in r.getMessage()]
        assert len(warned) == 2  # once on a, once on b
        assert [m.node for m in await a.cluster.members()] == ["a", "b"]


async def test_every_tell_to_a_name_without_members_is_a_dead_letter() -> None:
    async with two_nodes() as (a, _):
        nobody = a.cluster.ref("nobody", Seq)
        before = a.dead_letters.count
        for i in range(5000):
            nobody.tell_nowait(Seq(i))
        with trio.fail_after(5), pytest.raises(troupe.ActorStopped):
            await nobody.ask(Seq(-1))  # its no-responders answer comes after every tell's
        assert a.dead_letters.count - before == 5001


async def test_tells_are_dead_letters_or_taken_even_with_a_mark_after_every_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A mark confirms the tells before it: were it to come back before a tell's 503, that tell's dead
    # letter would be lost. With a mark after every tell, any such overtaking shows in the count.
    monkeypatch.setattr(_node, "_MARK_EVERY", 1)
    async with two_nodes() as (a, b):
        await counter_on(b, mailbox=troupe.Mailbox(capacity=100_000))
        [member] = await a.cluster.wait_for("counter")
        nobody = a.cluster.ref("nobody", Seq)
        before = a.dead_letters.count
        for i in range(3000):
            nobody.tell_nowait(Seq(i))
            member.tell_nowait(Seq(i))
        with trio.fail_after(5), pytest.raises(troupe.ActorStopped):
            await nobody.ask(Seq(-1))
        assert a.dead_letters.count - before == 3001
        assert (await member.ask(Get()))["seen"] == list(range(3000))
        assert a.cluster._node._tells == {}  # each one confirmed: nothing is kept


async def test_the_tells_kept_for_a_503_are_only_those_in_flight_and_a_forged_mark_frees_none() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b, mailbox=troupe.Mailbox(capacity=100_000))
        [member] = await a.cluster.wait_for("counter")
        for i in range(5000):
            member.tell_nowait(Seq(i))
        assert len((await member.ask(Get()))["seen"]) == 5000
        kept = a.cluster._node._tells
        assert 0 < len(kept) < _node._MARK_EVERY  # the marks came back before the answer
        async with hostile(a.cluster.url) as evil:
            node_id = a.cluster._node.node_id
            for payload in (b"", b"x", b"0" * 16):
                evil.publish(f"troupe.{CLUSTER}.i.{node_id}.m99999999", payload)
            evil.publish(f"troupe.{CLUSTER}.i.{node_id}.t99999999", b"")
            evil.publish(f"troupe.{CLUSTER}.i.{node_id}.m" + "9" * 3000, b"")
            evil.publish(f"troupe.{CLUSTER}.i.{node_id}.t1x", b"")
            assert await evil.flush()
            left = len(kept)
            await member.ask(Get())  # after what the hostile client sent
            assert len(kept) == left
            await still_connected(a)


async def test_an_answer_that_cannot_be_encoded_fails_the_ask_and_spares_the_actor() -> None:
    async with two_nodes() as (a, b):
        await b.cluster.register("answers", await b.spawn(Answerer))
        await a.cluster.wait_for("answers")
        answers = a.cluster.ref("answers", Answer)
        assert await answers.ask(Answer("count")) == 1
        with pytest.raises(troupe.TroupeError) as info:
            await answers.ask(Answer("an int of 5000 digits"), timeout=1)
        assert not isinstance(info.value, troupe.AskTimeout)
        assert await answers.ask(Answer("count")) == 3  # the same instance: nothing was restarted


class Unsendable(troupe.Actor[Answer]):
    """Answers values the wire cannot carry; counts its asks."""

    def __init__(self) -> None:
        self.asked = 0

    async def receive(self, msg: Answer) -> Any:
        self.asked += 1
        deep: list[Any] = []
        for _ in range(5000):
            deep = [deep]
        values: dict[str, Any] = {
            "nan": float("nan"),
            "inf": [1.0, float("-inf")],
            "a set": {1, 2},
            "an object": object(),
            "deep": deep,
            "a huge int in a dict": {"n": 10**5000},
        }
        return values.get(msg.text, self.asked)


@pytest.mark.parametrize("text", ["nan", "inf", "a set", "an object", "deep", "a huge int in a dict"])
async def test_each_unsendable_answer_is_a_remote_type_error_for_the_asker(text: str) -> None:
    async with two_nodes() as (a, b):
        await b.cluster.register("answers", await b.spawn(Unsendable))
        await a.cluster.wait_for("answers")
        answers = a.cluster.ref("answers", Answer)
        with trio.fail_after(5), pytest.raises(troupe.cluster.RemoteError, match="cannot be sent") as info:
            await answers.ask(Answer(text), timeout=None)
        assert info.value.type_name == "TypeError"
        assert await answers.ask(Answer("count")) == 2  # the same instance: nothing was restarted


async def test_an_answer_over_the_servers_limit_fails_the_ask_at_once() -> None:
    async with two_nodes() as (a, b):
        await b.cluster.register("answers", await b.spawn(Answerer))
        await a.cluster.wait_for("answers")
        with pytest.raises(ClusterError, match="limit"):
            await a.cluster.ref("answers", Answer).ask(Answer("two megabytes"), timeout=1)


class Raiser(troupe.Actor[Answer]):
    """Raises an error whose text is as long as asked."""

    async def receive(self, msg: Answer) -> None:
        raise ValueError("y" * int(msg.text))


async def test_an_error_answer_over_the_servers_limit_fails_the_ask_at_once() -> None:
    async with two_nodes() as (a, b):
        await b.cluster.register("raiser", await b.spawn(Raiser))
        await a.cluster.wait_for("raiser")
        raiser = a.cluster.ref("raiser", Answer)
        with trio.fail_after(5), pytest.raises(ClusterError, match=r"bytes, over the server's limit of \d+"):
            await raiser.ask(Answer("2000000"), timeout=None)
        with trio.fail_after(5), pytest.raises(troupe.ActorCrashed):
            await raiser.ask(Answer("10"), timeout=None)  # small errors still come back as they are


async def test_a_node_with_many_registrations_is_not_declared_lost() -> None:
    async with (
        run_server(max_payload=4096) as server,
        troupe.open_system(cluster=config(server.url, "a")) as a,
        troupe.open_system(cluster=config(server.url, "b")) as b,
    ):
        target = await a.spawn(Counter, name="target")
        await a.cluster.register("target", target)
        [member] = await b.cluster.wait_for("target")
        done = trio.Event()
        got: list[troupe.Terminated] = []
        await b.spawn(lambda: Watcher(member, done, got))
        registered: list[troupe.ActorRef[Any]] = []
        for i in range(300):
            counter = await a.spawn(Counter, name=f"c{i:03}")
            try:
                await a.cluster.register("many", counter)
            except ClusterError as exc:
                refused = exc
                break
            registered.append(counter)
        else:
            pytest.fail("300 registrations fit a heartbeat of 4096 bytes")
        assert "max_payload" in str(refused)
        assert counter.path in str(refused)
        assert "'many'" in str(refused)
        # nothing of the refused one: not here, not on b (a's heartbeats still go out)
        assert len(await a.cluster.lookup("many")) == len(registered)
        await b.cluster.wait_for("many", len(registered), exactly=True)
        # b's failure detector has had 2.5 times its timeout to call a lost
        with trio.move_on_after(2.5):
            await done.wait()
        assert got == []
        assert target.alive
        # room again once one goes
        assert await a.cluster.unregister("many", registered[0])
        await a.cluster.register("many", counter)
        await b.cluster.wait_for("many", len(registered), exactly=True)
        assert f"{CLUSTER}:a{counter.path}" in {m.path for m in await b.cluster.lookup("many")}


async def test_a_heartbeat_over_a_smaller_limit_after_registering_goes_out_without_its_names() -> None:
    async with two_nodes() as (a, b):
        target = await counter_on(a)
        [member] = await b.cluster.wait_for("counter")
        done = trio.Event()
        got: list[troupe.Terminated] = []
        await b.spawn(lambda: Watcher(member, done, got))
        for i in range(60):
            await a.cluster.register(f"name{i:02}", target)
        await b.cluster.wait_for("name59")
        # as if a reconnection had reached a server of a smaller limit: a's heartbeat no longer fits
        a.cluster._node.client.max_payload = 1024
        with pytest.raises(ClusterError, match="max_payload"):
            await a.cluster.register("one-more", target)
        # b's failure detector has had 2.5 times its timeout to call a lost
        with trio.move_on_after(2.5):
            await done.wait()
        assert got == []
        assert len(await b.cluster.lookup("name59")) == 1  # b keeps the names it knew
        assert [m.node for m in await b.cluster.members()] == ["b", "a"]


# -- watches and faults on one node's connection --------------------------------------------------------


async def test_an_actor_that_ends_while_its_node_reconnects_still_terminates_its_watchers() -> None:
    async with (
        troupe.open_system(name="a", cluster=config(None, "a")) as a,
        proxied(a.cluster.url) as proxy,
        troupe.open_system(name="b", cluster=config(proxy.url, "b")) as b,
    ):
        target = await counter_on(b)
        [member] = await a.cluster.wait_for("counter")
        done = trio.Event()
        got: list[troupe.Terminated] = []
        await a.spawn(lambda: Watcher(member, done, got))
        await member.ask(Get())  # the watch went out before this ask: b has it
        proxy.refusing = True
        proxy.cut()
        await b.cluster.wait_connected(connected=False, timeout=5)
        await target.stop()
        proxy.refusing = False
        await reconnected(b)
        with trio.move_on_after(3):
            await done.wait()
        assert got
        assert got[0].reason is None  # it stopped; its node was not lost


async def test_a_tell_cancelled_while_waiting_for_room_is_not_sent(nats_server: NatsServer) -> None:
    async with (
        proxied(nats_server.url) as proxy,
        troupe.open_system(name="a", cluster=config(proxy.url, "a")) as a,
        troupe.open_system(name="b", cluster=config(nats_server.url, "b")) as b,
    ):
        await counter_on(b, mailbox=troupe.Mailbox(capacity=100))
        [member] = await a.cluster.wait_for("counter")
        proxy.stall()
        for _ in range(24):  # about 17 MB: more than the sockets hold; the writer blocks sending it
            member.tell_nowait(Blob("x" * 700_000))
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(16):  # and 11 MB wait behind it: over the client's 8 MB high water
            member.tell_nowait(Blob("x" * 700_000))
        finished = False
        async with trio.open_nursery() as nursery:

            async def tell_one() -> None:
                nonlocal finished
                await member.tell(Seq(1))
                finished = True

            nursery.start_soon(tell_one)
            await trio.testing.wait_all_tasks_blocked()
            assert not finished, "the tell did not wait for room: the attack did not take place"
            nursery.cancel_scope.cancel()
        proxy.resume()
        with trio.fail_after(10):
            state = await member.ask(Get(), timeout=10)
        assert state["seen"] == []


async def test_leaving_while_the_server_stops_reading_is_bounded(nats_server: NatsServer) -> None:
    async with proxied(nats_server.url) as proxy:
        with trio.fail_after(6):
            async with troupe.open_system(name="a", cluster=config(proxy.url, "a")) as a:
                group = a.cluster.ref("anyone", Blob)
                proxy.stall()
                for _ in range(24):
                    group.tell_nowait(Blob("x" * 700_000))


async def reconnected(system: troupe.ActorSystem, count: int = 1) -> None:
    """Wait until ``system`` has reconnected ``count`` times and is connected."""
    with trio.fail_after(5):
        while system.cluster.statistics().reconnects < count or not system.cluster.connected:
            await system.cluster.wait_changed()


async def test_nothing_is_processed_twice_or_out_of_order_across_a_receivers_reconnection() -> None:
    async with troupe.open_system(name="a", cluster=config(None, "a")) as a, proxied(a.cluster.url) as proxy:
        async with troupe.open_system(name="b", cluster=config(proxy.url, "b")) as b:
            await counter_on(b, mailbox=troupe.Mailbox(capacity=100_000))
            [member] = await a.cluster.wait_for("counter")
            for i in range(1000):
                await member.tell(Seq(i))
            assert (await member.ask(Get()))["seen"] == list(range(1000))
            for i in range(1000, 2000):  # cut midway: what was in flight is lost, or a dead letter here
                await member.tell(Seq(i))
                if i == 1500:
                    proxy.cut()
            await reconnected(b)
            await b.cluster.register("probe", await b.spawn(Counter))  # its subscriptions are back
            for i in range(2000, 3000):
                await member.tell(Seq(i))
            seen = (await member.ask(Get()))["seen"]
        assert seen == sorted(set(seen))  # in order, none twice
        assert seen[:1000] == list(range(1000))
        assert seen[-1000:] == list(range(2000, 3000))


# -- asks that must end -----------------------------------------------------------------------------------


async def test_an_ask_without_timeout_ends_when_the_answering_node_is_lost() -> None:
    async with two_nodes() as (a, _), hostile(a.cluster.url) as evil:
        arrived = trio.Event()
        evil.subscribe(f"troupe.{CLUSTER}.a.fake2.*", lambda *_: arrived.set())  # never answers
        assert await evil.flush()
        evil.publish(f"troupe.{CLUSTER}.hb", heartbeat("fake2", "doomed", {"slow": {"1": "/user/slow"}}))
        [member] = await a.cluster.wait_for("slow")
        outcome: list[object] = []
        ended = trio.Event()
        async with trio.open_nursery() as nursery:

            async def ask() -> None:
                try:
                    outcome.append(await member.ask(Answer("?"), timeout=None))
                except troupe.TroupeError as exc:
                    outcome.append(exc)
                ended.set()

            nursery.start_soon(ask)
            with trio.fail_after(5):
                await arrived.wait()
                while "doomed" in [m.node for m in await a.cluster.members()]:  # no more heartbeats
                    await a.cluster.wait_changed()
            with trio.move_on_after(2):
                await ended.wait()
            nursery.cancel_scope.cancel()
        assert outcome
        assert isinstance(outcome[0], ClusterError)


async def test_an_ask_to_a_node_that_says_goodbye_ends_at_once_and_others_go_on() -> None:
    async with two_nodes() as (a, b), hostile(a.cluster.url) as evil:
        await counter_on(b)
        arrived = trio.Event()
        evil.subscribe(f"troupe.{CLUSTER}.a.fake3.*", lambda *_: arrived.set())  # never answers
        assert await evil.flush()
        evil.publish(f"troupe.{CLUSTER}.hb", heartbeat("fake3", "leaving", {"slow": {"1": "/user/slow"}}))
        [member] = await a.cluster.wait_for("slow")
        [counter] = await a.cluster.wait_for("counter")
        outcome: list[BaseException] = []

        async def ask() -> None:
            try:
                await member.ask(Answer("?"), timeout=None)
            except ClusterError as exc:
                outcome.append(exc)

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask)
                await arrived.wait()
                evil.publish(f"troupe.{CLUSTER}.hb", heartbeat("fake3", "leaving", {}, bye=True))
                assert (await counter.ask(Get()))["total"] == 0  # to node b, which stays: answered
        assert len(outcome) == 1
        assert "node leaving left the cluster before" in str(outcome[0])
        assert a.cluster._node._asks == {}


async def test_a_group_ask_is_not_failed_by_a_lost_node_but_ends_at_its_timeout() -> None:
    # The choice: which member took a group's ask is not known to the asker (a queue group picks one),
    # and the others may live on nodes that are fine; so the loss of a node hosting a member does not
    # fail the group's asks. They end by their timeout: give group asks one (the default is 5 s).
    async with two_nodes() as (a, _), hostile(a.cluster.url) as evil:
        arrived = trio.Event()
        evil.subscribe(f"troupe.{CLUSTER}.n.doomed-group", lambda *_: arrived.set(), queue="g")
        assert await evil.flush()
        evil.publish(
            f"troupe.{CLUSTER}.hb", heartbeat("fake4", "doomed4", {"doomed-group": {"1": "/user/x"}})
        )
        await a.cluster.wait_for("doomed-group")
        group = a.cluster.ref("doomed-group", Answer)
        lost = trio.Event()
        async with trio.open_nursery() as nursery:

            async def ask() -> None:
                with pytest.raises(troupe.AskTimeout):
                    await group.ask(Answer("?"), timeout=4)
                assert lost.is_set()  # it outlived the node's loss

            nursery.start_soon(ask)
            with trio.fail_after(5):
                await arrived.wait()
                while "doomed4" in [m.node for m in await a.cluster.members()]:
                    await a.cluster.wait_changed()
            assert len(a.cluster._node._asks) == 1  # still waiting after the node was lost
            lost.set()


async def test_a_cancelled_ask_leaves_nothing_behind_and_its_late_answer_is_dropped() -> None:
    async with two_nodes() as (a, b):
        started = trio.Event()
        release = trio.Event()
        await b.cluster.register("gate", await b.spawn(lambda: Gate(started, release)))
        await a.cluster.wait_for("gate")
        gate = a.cluster.ref("gate", Answer)
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(gate.ask, Answer("first"))
                with trio.fail_after(5):
                    await started.wait()
                scope.cancel()
        assert a.cluster._node._asks == {}
        release.set()
        assert await gate.ask(Answer("second")) == "second"  # after "first"'s answer, which was dropped
        assert a.cluster._node._asks == {}


async def test_tells_sent_just_before_leaving_are_delivered() -> None:
    async with troupe.open_system(name="b", cluster=config(None, "b")) as b:
        counter = await counter_on(b, mailbox=troupe.Mailbox(capacity=10_000))
        for round_ in range(8):  # each round loses them about half the time: 8 make a pass unlikely
            async with troupe.open_system(name="a", cluster=config(b.cluster.url, f"a{round_}")) as a:
                [member] = await a.cluster.wait_for("counter")
                for i in range(40):
                    await member.tell(Seq(40 * round_ + i))
                gone = a.cluster.node_id
            with trio.fail_after(5):  # its goodbye (or its loss) came after its tells
                while gone in [m.node_id for m in await b.cluster.members()]:
                    await b.cluster.wait_changed()
            assert (await counter.ask(Get()))["seen"] == list(range(40 * (round_ + 1)))


@troupe.message(name="test.attacks.Piece")
class Piece:
    i: int
    data: str


class Pieces(troupe.Actor[Piece | Get]):
    """Remembers the order of the `Piece`s it is told."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    async def receive(self, msg: Piece | Get) -> list[int] | None:
        if isinstance(msg, Get):
            return self.seen
        self.seen.append(msg.i)
        return None


@pytest.mark.parametrize(("count", "size"), [(1000, 10), (300, 30_000)])
async def test_a_burst_of_tells_then_leaving_at_once_all_arrive_before_the_goodbye(
    count: int, size: int
) -> None:
    """1000 small tells, or 9 MB that the writer is still sending, queued just before leaving."""
    async with troupe.open_system(name="b", cluster=config(None, "b")) as b:
        pieces = await b.spawn(Pieces, mailbox=troupe.Mailbox(capacity=10_000))
        await b.cluster.register("pieces", pieces)
        for round_ in range(4):
            async with troupe.open_system(name="a", cluster=config(b.cluster.url, f"a{round_}")) as a:
                [member] = await a.cluster.wait_for("pieces")
                for i in range(count * round_, count * (round_ + 1)):
                    member.tell_nowait(Piece(i, "x" * size))
                gone = a.cluster.node_id
            with trio.fail_after(10):  # its goodbye came after its tells
                while gone in [m.node_id for m in await b.cluster.members()]:
                    await b.cluster.wait_changed()
            assert await pieces.ask(Get()) == list(range(count * (round_ + 1)))


async def test_leaving_with_asks_pending_fails_them_at_once() -> None:
    outcome: list[BaseException] = []
    ended = trio.Event()
    async with troupe.open_system(name="b", cluster=config(None, "b")) as b:
        started = trio.Event()
        release = trio.Event()
        await b.cluster.register("gate", await b.spawn(lambda: Gate(started, release)))
        async with trio.open_nursery() as nursery:
            async with troupe.open_system(name="a", cluster=config(b.cluster.url, "a")) as a:
                await a.cluster.wait_for("gate")
                gate = a.cluster.ref("gate", Answer)

                async def ask() -> None:
                    try:
                        await gate.ask(Answer("?"), timeout=None)
                    except troupe.TroupeError as exc:
                        outcome.append(exc)
                    ended.set()

                nursery.start_soon(ask)
                with trio.fail_after(5):
                    await started.wait()
            with trio.fail_after(2):
                await ended.wait()
        release.set()
    assert isinstance(outcome[0], ClusterError)
    assert "left the cluster" in str(outcome[0])


async def test_a_node_shutting_down_with_queued_remote_asks_ends_every_one() -> None:
    outcome: list[object] = []
    all_ended = trio.Event()
    async with troupe.open_system(name="a", cluster=config(None, "a")) as a:
        started = trio.Event()
        release = trio.Event()
        queued = trio.Event()
        async with trio.open_nursery() as nursery:
            async with troupe.open_system(name="b", cluster=config(a.cluster.url, "b")) as b:
                await b.cluster.register("gate", await b.spawn(lambda: Gate(started, release)))
                await b.cluster.register("marker", await b.spawn(lambda: Tally(1, queued)))
                await a.cluster.wait_for("gate")
                await a.cluster.wait_for("marker")
                gate = a.cluster.ref("gate", Answer)

                async def ask(i: int) -> None:
                    try:
                        outcome.append(await gate.ask(Answer(str(i)), timeout=None))
                    except troupe.TroupeError as exc:
                        outcome.append(exc)
                    if len(outcome) == 20:
                        all_ended.set()

                for i in range(20):
                    nursery.start_soon(ask, i)
                await trio.testing.wait_all_tasks_blocked()  # every ask is published
                await a.cluster.ref("marker", Add).tell(Add(1))  # arrives after them: b queued them all
                with trio.fail_after(5):
                    await started.wait()
                    await queued.wait()
                release.set()
            with trio.fail_after(3):
                await all_ended.wait()
    assert all(isinstance(o, str | troupe.ActorStopped) for o in outcome), outcome


async def run_b_until_cut(
    a: troupe.ActorSystem, members: trio.MemorySendChannel[RemoteRef[Any]], watching: trio.Event
) -> None:
    """Node b, whose actor never finishes its message: leaving, its shutdown_timeout runs out."""
    async with troupe.open_system(name="b", cluster=config(a.cluster.url, "b"), shutdown_timeout=0.3) as b:
        arrived = trio.Event()
        await b.cluster.register("blocker", await b.spawn(lambda: Blocker(arrived)))
        [member] = await a.cluster.wait_for("blocker")
        await members.send(member)
        with trio.fail_after(5):
            await watching.wait()
            await member.tell(Answer("hold on"))
            await arrived.wait()


async def test_a_node_whose_shutdown_runs_out_of_time_still_says_goodbye() -> None:
    async with troupe.open_system(name="a", cluster=config(None, "a")) as a:
        done = trio.Event()
        got: list[troupe.Terminated] = []
        send, receive = trio.open_memory_channel[RemoteRef[Any]](1)
        watching = trio.Event()
        async with trio.open_nursery() as nursery:  # b in a task of its own: its context ends with it
            nursery.start_soon(run_b_until_cut, a, send, watching)
            member = await receive.receive()
            await a.spawn(lambda: Watcher(member, done, got))  # spawned here, not in b's context
            watching.set()
        gc.collect()  # the cut left b's socket open: its ResourceWarning belongs to this test, not the next
        with trio.fail_after(5):
            await done.wait()
        assert not isinstance(got[0].reason, ClusterError), got[0].reason


async def test_tells_queued_before_a_shutdown_runs_out_of_time_arrive_before_the_goodbye() -> None:
    async with troupe.open_system(name="a", cluster=config(None, "a")) as a:
        pieces = await a.spawn(Pieces, mailbox=troupe.Mailbox(capacity=10_000))
        await a.cluster.register("pieces", pieces)
        async with troupe.open_system(
            name="b", cluster=config(a.cluster.url, "b"), shutdown_timeout=0.2
        ) as b:
            arrived = trio.Event()
            blocker = await b.spawn(lambda: Blocker(arrived))
            await blocker.tell(Answer("hold on"))  # b's shutdown will run out of time
            [member] = await a.cluster.wait_for("pieces")
            with trio.fail_after(5):
                await arrived.wait()
            for i in range(1000):
                member.tell_nowait(Piece(i, "x" * 1000))
            gone = b.cluster.node_id
        assert blocker.path in b.statistics().stuck_at_shutdown  # the attack took place: b was cut
        with trio.fail_after(0.8):  # well within failure_timeout: it said goodbye, it was not lost
            while gone in [m.node_id for m in await a.cluster.members()]:
                await a.cluster.wait_changed()
        assert await pieces.ask(Get()) == list(range(1000))


async def test_a_shutdown_that_runs_out_of_time_while_the_server_stops_reading_is_bounded(
    nats_server: NatsServer,
) -> None:
    async with proxied(nats_server.url) as proxy:
        with trio.fail_after(0.2 + 2.0 + 2.0):  # shutdown_timeout, the goodbye's bound, slack
            async with troupe.open_system(
                name="b", cluster=config(proxy.url, "b"), shutdown_timeout=0.2
            ) as b:
                arrived = trio.Event()
                blocker = await b.spawn(lambda: Blocker(arrived))
                await blocker.tell(Answer("hold on"))
                with trio.fail_after(5):
                    await arrived.wait()
                proxy.stall()
                group = b.cluster.ref("anyone", Blob)
                for _ in range(24):
                    group.tell_nowait(Blob("x" * 700_000))
        assert blocker.path in b.statistics().stuck_at_shutdown  # the attack took place: b was cut


# -- refs across nodes ------------------------------------------------------------------------------------


async def test_refs_in_lists_dicts_unions_and_nested_messages_cross_and_come_home() -> None:
    async with two_nodes() as (a, b):
        got: list[object] = []
        done = trio.Event()
        home = await a.spawn(lambda: Keeper(got, done), name="home")
        await a.cluster.register("home", home)
        await b.cluster.wait_for("home")
        forwarder = await b.spawn(lambda: Forwarder(b.cluster.ref("home", Carry | Inner)))
        await b.cluster.register("forwarder", forwarder)
        await a.cluster.wait_for("forwarder")
        counters = [await a.spawn(Counter) for _ in range(5)]
        carry = Carry(
            one=counters[0],
            many=[counters[1], counters[2]],
            by_name={"x": counters[3]},
            maybe=counters[0],
            inner=Inner(reply_to=counters[4]),
        )
        await a.cluster.ref("forwarder", Carry).tell(carry)
        with trio.fail_after(5):
            await done.wait()
        back = got[0]
        assert isinstance(back, Carry)
        # every ref came home as the local ActorRef it was, not a RemoteRef to this node
        assert back == carry
        assert all(isinstance(ref, troupe.ActorRef) for ref in [back.one, *back.many, back.inner.reply_to])
        totals = [(await counter.ask(Get()))["total"] for counter in counters]
        assert totals == [1 + 10**5, 10, 100, 1000, 10**4]


async def test_a_ref_of_a_third_node_reaches_that_node() -> None:
    async with (
        troupe.open_system(name="a", cluster=config(None, "a")) as a,
        troupe.open_system(name="b", cluster=config(a.cluster.url, "b")) as b,
        troupe.open_system(name="c", cluster=config(a.cluster.url, "c")) as c,
    ):
        reached = trio.Event()
        await c.cluster.register("tally", await c.spawn(lambda: Tally(11, reached)))
        await b.cluster.register("forwarder", await b.spawn(Forwarder))
        [member] = await a.cluster.wait_for("tally")
        await a.cluster.wait_for("forwarder")
        carry = Carry(one=member, many=[], by_name={}, maybe=None, inner=Inner(reply_to=member))
        await a.cluster.ref("forwarder", Carry).tell(carry)
        with trio.fail_after(5):
            await reached.wait()  # Add(1) and Add(10), from b, on c


async def test_a_ref_of_an_actor_that_ended_becomes_a_dead_letter_on_its_own_node() -> None:
    async with two_nodes() as (a, b):
        await b.cluster.register("forwarder", await b.spawn(Forwarder))
        await a.cluster.wait_for("forwarder")
        gone = await a.spawn(Counter)
        await gone.stop()
        carry = Carry(one=gone, many=[], by_name={}, maybe=None, inner=Inner(reply_to=gone))
        async with a.dead_letters.listen() as letters:
            await a.cluster.ref("forwarder", Carry).tell(carry)
            with trio.fail_after(5):
                first = await letters.receive()
                second = await letters.receive()
        assert [first.reason, second.reason] == [troupe.DeadLetterReason.STOPPED] * 2
        assert [first.message, second.message] == [Add(1), Add(10)]


async def test_watching_a_looked_up_member_of_this_node_does_not_report_it_lost() -> None:
    async with two_nodes() as (a, _):
        target = await counter_on(a)
        [member] = await a.cluster.lookup("counter")
        assert isinstance(member, RemoteRef)
        done = trio.Event()
        got: list[troupe.Terminated] = []
        await a.spawn(lambda: Watcher(member, done, got))
        with trio.move_on_after(2.5):  # 2.5 times the failure timeout
            await done.wait()
        assert got == []
        assert [m.node for m in await a.cluster.members()] == ["a", "b"]
        await target.stop()
        with trio.fail_after(5):
            await done.wait()
        assert got[0].reason is None
        assert got[0].ref == member


async def test_watching_a_looked_up_member_of_this_node_that_ended_terminates_at_once() -> None:
    async with two_nodes() as (a, _):
        target = await counter_on(a)
        [member] = await a.cluster.lookup("counter")
        await target.stop()
        done = trio.Event()
        got: list[troupe.Terminated] = []
        await a.spawn(lambda: Watcher(member, done, got))
        with trio.fail_after(5):
            await done.wait()
        assert got == [troupe.Terminated(member, None)]
        assert [m.node for m in await a.cluster.members()] == ["a", "b"]


async def test_a_hostile_terminated_does_not_end_a_watch_of_this_nodes_own_actor() -> None:
    async with two_nodes() as (a, _):
        target = await counter_on(a)
        [member] = await a.cluster.lookup("counter")
        done = trio.Event()
        got: list[troupe.Terminated] = []
        await a.spawn(lambda: Watcher(member, done, got))
        address = member._address()["ref"]
        async with hostile(a.cluster.url) as evil:
            forged = {"op": "terminated", "addr": address, "reason": None}
            evil.publish(f"troupe.{CLUSTER}.c.{a.cluster.node_id}", json.dumps(forged).encode())
            assert await evil.flush()
        await still_connected(a)  # a read the forged one
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        await target.stop()
        with trio.fail_after(5):
            await done.wait()
        assert got == [troupe.Terminated(member, None)]


async def test_refs_of_another_system_in_this_process_are_refused_at_the_sender() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b)
        await a.cluster.wait_for("counter")
        await b.cluster.register("forwarder", await b.spawn(Forwarder))
        await a.cluster.wait_for("forwarder")
        forwarder = a.cluster.ref("forwarder", Carry)
        of_b = await b.spawn(Counter)
        carry = Carry(one=of_b, many=[], by_name={}, maybe=None, inner=Inner(reply_to=of_b))
        with pytest.raises(TypeError, match="another actor system"):
            await forwarder.tell(carry)
        remote_of_b = b.cluster.ref("counter", Add)  # a RemoteRef of b's node, sent through a's
        carry = Carry(one=remote_of_b, many=[], by_name={}, maybe=None, inner=Inner(reply_to=remote_of_b))
        with pytest.raises(TypeError, match="another cluster node"):
            await forwarder.tell(carry)
        assert a.cluster.statistics().sent == 0


async def test_order_is_kept_across_the_group_ref_and_a_member_ref_of_one_actor() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b, mailbox=troupe.Mailbox(capacity=10_000))
        [member] = await a.cluster.wait_for("counter")
        group = a.cluster.ref("counter", Seq | Get)
        for i in range(2000):
            (group if i % 3 else member).tell_nowait(Seq(i))
        assert (await group.ask(Get()))["seen"] == list(range(2000))


# -- the client against a server that misbehaves ----------------------------------------------------------


async def fake_server(
    script: Callable[[trio.SocketStream], Any],
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(script, listeners)


@pytest.mark.parametrize(
    "garbage",
    [
        b"MSG a 1 notanumber\r\n",
        b"MSG a\r\n",
        b"WHAT\r\n",
        b"INFO {not json\r\n",
        b"MSG a 1 -5\r\nxxxxxxxx\r\n",
        b"x" * 70_000,
    ],
)
async def test_the_client_drops_a_connection_that_speaks_garbage_and_reconnects(garbage: bytes) -> None:
    connections = 0
    states: list[bool] = []
    changed = trio.Event()

    async def script(stream: trio.SocketStream) -> None:
        nonlocal connections
        connections += 1
        async with stream:
            await stream.send_all(b'INFO {"max_payload": 1024}\r\n')
            buf = b""
            while b"PING\r\n" not in buf:
                buf += await stream.receive_some(4096)
            await stream.send_all(b"PONG\r\n" + (garbage if connections == 1 else b""))
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                while await stream.receive_some(4096):
                    pass

    def on_state(up: bool) -> None:
        states.append(up)
        changed.set()

    async with trio.open_nursery() as nursery:
        port = await nursery.start(fake_server, script)
        client = NatsClient(Options(f"nats://127.0.0.1:{port}"), on_state=on_state)
        await client.connect()
        nursery.start_soon(client.run)
        with trio.fail_after(5):
            while states != [True, False, True]:
                changed = trio.Event()
                await changed.wait()
        assert client.reconnects == 1
        await client.close()
        nursery.cancel_scope.cancel()


async def test_a_negative_message_size_from_the_server_is_a_lost_connection_not_a_hang() -> None:
    code = (
        "from troupe.cluster._nats import NatsClient, Options, _Lost\n"
        "client = NatsClient(Options('nats://127.0.0.1:1'))\n"
        "try:\n"
        "    client._parse(bytearray(b'MSG a 1 -15\\r\\n'))\n"
        "except _Lost:\n"
        "    raise SystemExit(0)\n"
        "raise SystemExit(3)\n"
    )
    # A subprocess: on the code as it is, the parser never returns (nor lets trio cancel it).
    with trio.fail_after(3):
        result = await trio.run_process([sys.executable, "-c", code], check=False)
    assert result.returncode == 0


MALFORMED = [
    b"MSG a 1 -15\r\n",
    b"MSG a 1 +5\r\nxxxxx\r\n",
    b"MSG a 1 1_0\r\n0123456789\r\n",
    b"MSG a 1  \r\n",
    b"MSG a x 2\r\nxx\r\n",
    b"MSG a 1 r s 2\r\nxx\r\n",
    b"MSG a 1 2000\r\n",  # over the server's max_payload (1024 here)
    b"MSG a 1 99999999999999999999\r\n",
    b"MSG a 1 3\r\nabcXY\r\n",  # the payload is not where the size says
    b"HMSG a 1 10 5\r\n",  # more headers than message
    b"HMSG a 1 -3 5\r\nxxxxx\r\n",
    b"HMSG a 1 5\r\nxxxxx\r\n",
    b"INFO []\r\n",
    b'INFO {"max_payload": -1}\r\n',
    b'INFO {"max_payload": "big"}\r\n',
    b"INFO " + b"[" * 50_000 + b"\r\n",
    b"-5\r\n",
]


async def test_every_malformed_line_from_the_server_is_a_protocol_error_at_once() -> None:
    code = (
        "import sys\n"
        "from troupe.cluster._nats import NatsClient, Options, _Lost\n"
        f"cases = {MALFORMED!r}\n"
        "bad = []\n"
        "for case in cases:\n"
        "    client = NatsClient(Options('nats://127.0.0.1:1'))\n"
        "    client.max_payload = 1024\n"
        "    client.subscribe('a', lambda *_: None)\n"
        "    try:\n"
        "        client._parse(bytearray(case))\n"
        "    except _Lost:\n"
        "        continue\n"
        "    except BaseException as exc:\n"
        "        bad.append((case[:30], repr(exc)))\n"
        "        continue\n"
        "    bad.append((case[:30], 'accepted'))\n"
        "print(bad)\n"
        "raise SystemExit(3 if bad else 0)\n"
    )
    # A subprocess: a parser that loops would never return (nor let trio cancel it).
    with trio.fail_after(10):
        result = await trio.run_process([sys.executable, "-c", code], check=False, capture_stdout=True)
    assert result.returncode == 0, result.stdout.decode()


@pytest.mark.parametrize("garbage", [MALFORMED[0], MALFORMED[6], MALFORMED[12], MALFORMED[15]])
async def test_a_server_sending_a_malformed_line_is_dropped_with_a_warning_and_reconnected(
    garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    connections = 0
    reconnected = trio.Event()

    async def script(stream: trio.SocketStream) -> None:
        nonlocal connections
        connections += 1
        async with stream:
            await stream.send_all(b'INFO {"max_payload": 1024}\r\n')
            buf = b""
            while b"PING\r\n" not in buf:
                buf += await stream.receive_some(4096)
            await stream.send_all(b"PONG\r\n" + (garbage if connections == 1 else b""))
            if connections > 1:
                reconnected.set()
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                while await stream.receive_some(4096):
                    pass

    async with trio.open_nursery() as nursery:
        port = await nursery.start(fake_server, script)
        client = NatsClient(Options(f"nats://127.0.0.1:{port}"))
        await client.connect()
        nursery.start_soon(client.run)
        with trio.fail_after(5):
            await reconnected.wait()
        await client.close(timeout=0.1)  # this server never answers the closing PING
        nursery.cancel_scope.cancel()
    assert any(
        r.levelname == "WARNING" and "malformed protocol line" in r.getMessage() for r in caplog.records
    ), [r.getMessage() for r in caplog.records]


async def test_joining_a_server_that_never_greets_fails_within_the_connect_timeout() -> None:
    async def script(stream: trio.SocketStream) -> None:
        async with stream:
            await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        port = await nursery.start(fake_server, script)
        cluster = config(f"nats://127.0.0.1:{port}", "a", connect_timeout=0.5)
        with trio.fail_after(3), pytest.raises(ClusterError, match="did not complete the handshake"):
            async with troupe.open_system(cluster=cluster):
                pass
        nursery.cancel_scope.cancel()
