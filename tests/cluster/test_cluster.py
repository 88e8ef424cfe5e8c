"""The cluster API between two systems of one process, through a real nats-server.

Every test runs against the `nats-server` binary of the ``cluster`` extra
(the embedded default, or the ``nats_server`` fixture). No test sleeps to
synchronise: registrations are awaited with ``wait_for``, deliveries with
asks (an ask after tells from the same sender is answered after them:
order is kept per sender and receiver).
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import joinkit
import pytest
import trio

import troupe
from troupe.cluster import ClusterError, NatsServer, RemoteError, RemoteRef, UnreadableMessage
from troupe.cluster._nats import NatsClient, Options


@troupe.message(name="test.cluster.Add")
class Add:
    n: int


@troupe.message(name="test.cluster.Get")
class Get:
    pass


@troupe.message(name="test.cluster.Ping")
class Ping:
    reply_to: troupe.Ref[Add]


@troupe.message(name="test.cluster.Seq")
class Seq:
    i: int


@troupe.message(name="test.cluster.Note")
class Note:
    text: str


@troupe.message(name="test.cluster.Other")
class Other:
    pass


class Counter(troupe.Actor[Add | Get | Ping | Seq]):
    def __init__(self) -> None:
        self.total = 0
        self.seen: list[int] = []

    async def receive(self, msg: Add | Get | Ping | Seq) -> Any:
        match msg:
            case Add(n=n):
                if n < 0:
                    raise ValueError(f"cannot add {n}")
                self.total += n
            case Get():
                return {"total": self.total, "seen": self.seen}
            case Ping(reply_to=reply_to):
                await reply_to.tell(Add(100))
            case Seq(i=i):
                self.seen.append(i)
        return None


class Watcher(troupe.Actor[troupe.Terminated | Get]):
    def __init__(self, target: troupe.Ref[Any], done: trio.Event, got: list[troupe.Terminated]) -> None:
        self.target = target
        self.done = done
        self.got = got

    async def on_start(self) -> None:
        self.context.watch(self.target)

    async def receive(self, msg: troupe.Terminated | Get) -> None:
        if isinstance(msg, troupe.Terminated):
            self.got.append(msg)
            self.done.set()


TOKEN = "s3cret"  # noqa: S105 - a test server's token


config = partial(joinkit.config, "test")
two_nodes = partial(joinkit.two_nodes, "test")


async def counter_on(system: troupe.ActorSystem, name: str = "counter", **kw: Any) -> troupe.ActorRef[Any]:
    """A `Counter` on ``system``, registered as ``counter``."""
    return await joinkit.registered(system, Counter, "counter", name, **kw)


async def test_tell_and_ask_through_a_registered_name() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b)
        await a.cluster.wait_for("counter")
        counter = a.cluster.ref("counter", Add | Get)
        await counter.tell(Add(2))
        counter.tell_nowait(Add(3))
        assert await counter.ask(Get()) == {"total": 5, "seen": []}
        assert isinstance(counter, RemoteRef)
        assert counter.path == "test:counter"
        assert counter.is_group
        assert counter.node is None
        stats = a.cluster.statistics()
        assert stats.sent == 3
        assert stats.connected


async def test_a_crash_in_the_remote_receive_is_actor_crashed_caused_by_a_remote_error() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b)
        await a.cluster.wait_for("counter")
        with pytest.raises(troupe.ActorCrashed, match="crashed with RemoteError") as info:
            await a.cluster.ref("counter").ask(Add(-1))
        cause = info.value.__cause__
        assert isinstance(cause, RemoteError)
        assert cause.type_name == "ValueError"
        assert cause.text == "cannot add -1"
        assert cause.node == "b"
        assert "raise ValueError" in cause.traceback


class Collector(troupe.Actor[Add]):
    def __init__(self, got: list[Add], done: trio.Event) -> None:
        self.got = got
        self.done = done

    async def receive(self, msg: Add) -> None:
        self.got.append(msg)
        self.done.set()


async def test_a_ref_in_a_message_points_back_at_the_senders_actor() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b)
        await a.cluster.wait_for("counter")
        got: list[Add] = []
        done = trio.Event()
        local = await a.spawn(lambda: Collector(got, done), name="collector")
        await a.cluster.ref("counter", Ping).tell(Ping(reply_to=local))
        with trio.fail_after(5):
            await done.wait()
        assert got == [Add(100)]


async def test_no_live_member_is_actor_stopped_at_once_and_a_dead_letter_here() -> None:
    async with two_nodes() as (a, _):
        nobody = a.cluster.ref("nobody", Get)
        with trio.fail_after(2), pytest.raises(troupe.ActorStopped, match=r"no live member .* 'nobody'"):
            await nobody.ask(Get(), timeout=30)
        async with a.dead_letters.listen() as letters:
            await nobody.tell(Get())
            with trio.fail_after(5):
                letter = await letters.receive()
        assert letter.recipient == "test:nobody"
        assert letter.message == Get()
        assert letter.reason is troupe.DeadLetterReason.STOPPED


async def test_the_sender_checks_the_types_it_was_given_and_sends_nothing() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b)
        counter = a.cluster.ref("counter", Add)
        with pytest.raises(troupe.MessageTypeError, match="test:counter accepts Add, not Get"):
            await counter.tell(Get())  # type: ignore[arg-type]
        with pytest.raises(troupe.MessageTypeError):
            await counter.ask(Get())  # type: ignore[arg-type]
        assert a.cluster.statistics().sent == 0


async def test_a_type_the_remote_actor_does_not_accept_is_refused_there() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b)
        await a.cluster.wait_for("counter")
        async with b.dead_letters.listen() as letters:
            with pytest.raises(
                troupe.MessageTypeError, match=r"accepts Add \| Get \| Ping \| Seq, not Other"
            ):
                await a.cluster.ref("counter").ask(Other())
            letter = await letters.receive()
        assert letter.reason is troupe.DeadLetterReason.REFUSED
        assert letter.message == Other()
        assert letter.recipient == "/user/counter"


async def test_members_lookup_and_registrations_end_with_their_actor() -> None:
    async with two_nodes() as (a, b):
        first = await counter_on(b, "one")
        await counter_on(b, "two")
        await counter_on(a, "three")
        found = await a.cluster.wait_for("counter", 3)
        assert {ref.node for ref in found} == {"a", "b"}
        assert all(not ref.is_group for ref in found)
        members = await a.cluster.members()
        assert [(m.node, m.names) for m in members] == [("a", ("counter",)), ("b", ("counter",))]
        await first.stop()
        await a.cluster.wait_for("counter", 2, exactly=True)
        assert await b.cluster.unregister("counter", first) is False
        await b.cluster.unregister("counter", b.lookup("/user/two"))  # type: ignore[arg-type]
        assert len(await a.cluster.wait_for("counter", 1, exactly=True)) == 1


async def test_messages_to_a_group_are_balanced_over_its_members() -> None:
    async with two_nodes() as (a, b):
        refs = [await counter_on(b, "one"), await counter_on(b, "two")]
        await a.cluster.wait_for("counter", 2)
        group = a.cluster.ref("counter", Add | Get)
        for _ in range(400):
            await group.tell(Add(1))
        totals = [(await ref.ask(Get()))["total"] for ref in refs]
        with trio.fail_after(5):
            while sum(totals) < 400:
                await group.ask(Get())
                totals = [(await ref.ask(Get()))["total"] for ref in refs]
        assert sum(totals) == 400
        assert min(totals) > 50  # NATS picks a queue member at random for each message


async def test_order_is_kept_per_sender_and_receiver() -> None:
    async with two_nodes() as (a, b):
        # Remote tells do not wait for room in the remote mailbox: one that takes bursts needs room.
        await counter_on(b, mailbox=troupe.Mailbox(capacity=10_000))
        [member] = await a.cluster.wait_for("counter")
        for i in range(5000):
            member.tell_nowait(Seq(i))
        state = await member.ask(Get())
        assert state["seen"] == list(range(5000))


async def test_watch_a_remote_actor_until_it_stops() -> None:
    async with two_nodes() as (a, b):
        target = await counter_on(b)
        [member] = await a.cluster.wait_for("counter")
        done = trio.Event()
        got: list[troupe.Terminated] = []
        await a.spawn(lambda: Watcher(member, done, got))
        await member.ask(Get())  # the watch request went out before this ask: b has it now
        await target.stop()
        with trio.fail_after(5):
            await done.wait()
        assert got[0].ref == member
        assert got[0].reason is None


async def test_watch_a_remote_actor_whose_node_leaves() -> None:
    async with troupe.open_system(cluster=config(None, "a")) as a:
        done = trio.Event()
        got: list[troupe.Terminated] = []
        async with troupe.open_system(cluster=config(a.cluster.url, "b")) as b:
            await counter_on(b)
            [member] = await a.cluster.wait_for("counter")
            await a.spawn(lambda: Watcher(member, done, got))
            await member.ask(Get())
        with trio.fail_after(5):
            await done.wait()
        assert got[0].ref == member


async def test_watching_a_group_is_a_type_error() -> None:
    async with two_nodes() as (a, _):
        done = trio.Event()
        with pytest.raises(troupe.SpawnError) as info:
            await a.spawn(lambda: Watcher(a.cluster.ref("counter"), done, []))
        assert isinstance(info.value.__cause__, TypeError)
        assert "watch a member" in str(info.value.__cause__)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x00\xffgarbage", "not JSON"),
        (b"[1, 2]", "not a message"),
        (b'{"type": "no.such.type"}', "unknown message type 'no.such.type'"),
        (b'{"type": "test.cluster.Add", "n": "3"}', "expected an int"),
        (b'{"type": "test.cluster.Add", "n": 3, "extra": 1}', "unknown field 'extra'"),
        (b'{"ask": -1, "m": {"type": "test.cluster.Get"}}', "timeout must be a number"),
        (b'{"type": "test.cluster.Ping", "reply_to": {"ref": "x.y.z"}}', "not the address of an actor"),
        (b"[" * 3000 + b"]" * 3000, "not JSON (RecursionError"),
        (b'{"type": "test.cluster.Add", "n": ' + b"1" * 5000 + b"}", "not JSON"),
        (b" " * 9000 + b"{}", "over this node's max_payload (8192)"),
    ],
)
async def test_hostile_payloads_become_refused_dead_letters_and_the_node_lives_on(
    payload: bytes, reason: str
) -> None:
    async with two_nodes(max_payload=8192) as (a, b):
        await counter_on(b)
        await a.cluster.wait_for("counter")
        hostile = NatsClient(Options(a.cluster.url))
        await hostile.connect()
        async with trio.open_nursery() as nursery, b.dead_letters.listen() as letters:
            nursery.start_soon(hostile.run)
            answers: list[bytes] = []
            got = trio.Event()

            def on_answer(subject: str, reply: str | None, data: bytes, status: int | None) -> None:
                answers.append(data)
                got.set()

            hostile.subscribe("hostile.inbox", on_answer)
            await hostile.flush()
            hostile.publish("troupe.test.n.counter", payload, reply="hostile.inbox")
            with trio.fail_after(5):
                letter = await letters.receive()
                await got.wait()
            await hostile.close()
            nursery.cancel_scope.cancel()
        assert letter.reason is troupe.DeadLetterReason.REFUSED
        assert isinstance(letter.message, UnreadableMessage)
        assert reason in letter.message.reason
        assert letter.message.size == len(payload)
        answer = json.loads(answers[0])
        assert answer["err"]["kind"] == "refused"
        assert reason in answer["err"]["text"]
        # the node still works
        assert await a.cluster.ref("counter").ask(Get()) == {"total": 0, "seen": []}


async def test_a_message_over_the_servers_limit_is_a_cluster_error_and_nothing_is_sent() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b)
        await a.cluster.wait_for("counter")
        big = a.cluster.ref("counter")
        with pytest.raises(ClusterError, match="over the server's limit of 1048576 bytes"):
            await big.tell(Note("x" * 2_000_000))
        assert await big.ask(Get()) == {"total": 0, "seen": []}


async def test_an_int_json_cannot_carry_is_a_type_error_at_the_sender() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b)
        with pytest.raises(TypeError, match="cannot encode Add: Exceeds the limit"):
            await a.cluster.ref("counter", Add).tell(Add(10**5000))


async def test_refs_in_fields_typed_any_are_refused_with_how_to_type_them() -> None:
    async with two_nodes() as (a, b):
        await counter_on(b)
        with pytest.raises(TypeError, match=r"type the field troupe.Ref\[...\]"):
            await a.cluster.ref("counter").ask(troupe.Terminated(await a.spawn(Counter)))


async def test_the_full_remote_mailbox_applies_its_overflow_policy_on_arrival() -> None:
    async with two_nodes() as (a, b):
        mailbox = troupe.Mailbox(capacity=1, overflow=troupe.Overflow.DROP_NEW)
        await counter_on(b, mailbox=mailbox)
        await a.cluster.wait_for("counter")
        counter = a.cluster.ref("counter", Add | Get)
        for _ in range(300):
            counter.tell_nowait(Add(1))
        with trio.fail_after(5):
            while True:
                try:
                    total = (await counter.ask(Get()))["total"]
                    break
                except troupe.MailboxFull:
                    await trio.sleep(0.01)
        dropped = b.dead_letters.count
        assert dropped > 0
        assert total + dropped >= 300  # every message processed or a dead letter (asks included)


async def test_a_system_without_a_cluster_says_how_to_join_one() -> None:
    async with troupe.open_system() as system:
        with pytest.raises(RuntimeError, match=r"open_system\(cluster=troupe.Cluster"):
            _ = system.cluster


async def test_a_wrong_token_is_refused_at_join_in_one_line(nats_server: NatsServer) -> None:
    async with troupe.open_system(cluster=config(None, "a", token=TOKEN)) as a:
        url = a.cluster.url
        with pytest.raises(ClusterError) as info:
            async with troupe.open_system(cluster=config(url, "b", token=TOKEN + "-wrong")):
                pass
        assert "Authorization Violation" in str(info.value)
        assert "\n" not in str(info.value)
        async with troupe.open_system(cluster=config(url, "c", token=TOKEN)) as c:
            assert c.cluster.connected


async def test_an_unreachable_server_is_a_cluster_error_at_once() -> None:
    with (
        trio.fail_after(5),
        pytest.raises(ClusterError, match=r"cannot reach NATS server at nats://127\.0\.0\.1:1"),
    ):
        async with troupe.open_system(cluster=config("nats://127.0.0.1:1", "a")):
            pass


async def test_while_disconnected_sending_fails_at_once_and_reconnection_resumes(
    nats_server: NatsServer,
) -> None:
    async with (
        troupe.open_system(cluster=config(nats_server.url, "a")) as a,
        troupe.open_system(cluster=config(nats_server.url, "b")) as b,
    ):
        await counter_on(b)
        await a.cluster.wait_for("counter")
        counter = a.cluster.ref("counter", Add | Get)
        await counter.tell(Add(1))
        assert (await counter.ask(Get()))["total"] == 1
        await nats_server.stop()
        await a.cluster.wait_connected(connected=False, timeout=5)
        with pytest.raises(ClusterError, match="not connected"):
            await counter.tell(Add(1))
        with pytest.raises(ClusterError, match="not connected"):
            await counter.ask(Get())
        await nats_server.start()
        await a.cluster.wait_connected()
        await b.cluster.wait_connected()
        await b.cluster.wait_for("counter")  # its subscription is back (b re-subscribed)
        with trio.fail_after(5):
            while True:
                try:
                    total = (await counter.ask(Get()))["total"]
                    break
                except troupe.ActorStopped:  # b's subscription not yet back at the server
                    await trio.sleep(0.01)
        assert total == 1  # nothing processed twice, nothing sent while down
        assert a.cluster.statistics().reconnects == 1
