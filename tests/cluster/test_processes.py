"""The cluster across real OS processes, through a real nats-server.

The nodes are scripts of ``tests/cluster/nodes`` run as child processes
(``sys.executable nodes/node_worker.py URL NODE ...``); each prints one
line per event on stdout ("ready ...", "dead {...}", "count 212"), and the
test waits for those lines to synchronise: nothing sleeps to wait. The
test process joins the same server as a node of its own. Every child is
killed when its test ends, passed or failed (the ``nodes`` fixture), and
every wait is bounded.
"""

from __future__ import annotations

import functools
import json
import math
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

import troupe
from troupe.cluster import ClusterError, NatsServer, RemoteError, run_server
from troupe.cluster._nats import NatsClient, Options

NODES = Path(__file__).parent / "nodes"
sys.path.insert(0, str(NODES))  # the scripts' shared messages: the same module on both sides

from messages import (  # noqa: E402 - needs the path above
    CLUSTER,
    FAILURE_TIMEOUT,
    Add,
    Echo,
    Get,
    Ping,
    Pong,
    config,
)

WAIT = 15.0
"""Seconds: a bound on waiting for what must happen, never a pause."""
TOKEN = "s3cret"  # noqa: S105 - a test server's token


class Node:
    """One node process, and every line it printed so far."""

    def __init__(self, name: str, process: trio.Process) -> None:
        self.name = name
        self.process = process
        self.lines: list[str] = []
        self.stderr = bytearray()
        self.ended = trio.Event()
        self._eof = 0
        self._changed = trio.Event()
        self._cursors: dict[str, int] = {}

    async def pump(self, stream: trio.abc.ReceiveStream, *, stdout: bool) -> None:
        buffer = bytearray()
        async for chunk in stream:
            if not stdout:
                self.stderr += chunk
                continue
            buffer += chunk
            *complete, rest = buffer.split(b"\n")
            if complete:
                self.lines.extend(line.decode(errors="replace") for line in complete)
                buffer = bytearray(rest)
                self._wake()
        if buffer:
            self.lines.append(buffer.decode(errors="replace"))
        self._eof += 1
        if self._eof == 2:  # stdout and stderr
            self.ended.set()
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _what(self) -> str:
        status = self.process.returncode
        shown = "\n  ".join(line[:300] for line in self.lines[-20:])
        return (
            f"node {self.name} (status {status}) printed:\n  {shown}\n"
            f"and on stderr:\n{self.stderr.decode(errors='replace')[-3000:]}"
        )

    async def expect(
        self, prefix: str, check: Callable[[str], bool] = lambda _: True, *, timeout: float = WAIT
    ) -> str:
        """The rest of the next line starting with ``prefix`` (and passing ``check``).

        Each prefix has its own cursor: a line is returned once per prefix.
        """
        try:
            with trio.fail_after(timeout):
                while True:
                    start = self._cursors.get(prefix, 0)
                    for index in range(start, len(self.lines)):
                        line = self.lines[index]
                        if line == prefix or line.startswith(prefix + " "):
                            self._cursors[prefix] = index + 1
                            rest = line[len(prefix) + 1 :]
                            if check(rest):
                                return rest
                    self._cursors[prefix] = len(self.lines)
                    if self.ended.is_set():
                        raise AssertionError(f"it ended without a line {prefix!r}: {self._what()}")
                    await self._changed.wait()
        except trio.TooSlowError:
            raise AssertionError(f"no line {prefix!r} within {timeout} s: {self._what()}") from None

    async def stop(self) -> int:
        """Close its stdin (it leaves the cluster and exits); its exit status."""
        assert self.process.stdin is not None
        await self.process.stdin.aclose()
        return await self.wait()

    async def wait(self) -> int:
        """Its exit status, once it exited and everything it printed has been read."""
        try:
            with trio.fail_after(WAIT):
                status = await self.process.wait()
                await self.ended.wait()
        except trio.TooSlowError:
            raise AssertionError(f"it did not exit within {WAIT} s: {self._what()}") from None
        return status


class Nodes:
    """Starts node processes; the ``nodes`` fixture kills what is left of them."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._started: list[Node] = []

    async def start(self, script: str, url: str, name: str, *options: str) -> Node:
        process = await trio.lowlevel.open_process(
            [sys.executable, str(NODES / f"{script}.py"), url, name, *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        node = Node(name, process)
        self._started.append(node)
        out, err = process.stdout, process.stderr
        assert out is not None
        assert err is not None
        self._nursery.start_soon(functools.partial(node.pump, out, stdout=True))
        self._nursery.start_soon(functools.partial(node.pump, err, stdout=False))
        return node

    async def worker(self, url: str, name: str, *options: str) -> Node:
        """A node_worker.py process, once it is ready."""
        node = await self.start("node_worker", url, name, *options)
        await node.expect("ready")
        return node

    async def close(self) -> None:
        with trio.CancelScope(shield=True):
            for node in self._started:
                if node.process.returncode is None:
                    node.process.kill()
            for node in self._started:
                await node.process.wait()
                if node.process.stdin is not None:
                    await node.process.stdin.aclose()


@pytest.fixture
async def nodes() -> AsyncIterator[Nodes]:
    """Start node processes with it; every one still running is killed when the test ends."""
    async with trio.open_nursery() as nursery:
        started = Nodes(nursery)
        try:
            yield started
        finally:
            await started.close()


def this_node(url: str, **options: Any) -> troupe.Cluster:
    """This process's node."""
    return config(url, "tester", **options)


class Collector(troupe.Actor[Pong]):
    def __init__(self, got: trio.MemorySendChannel[Pong]) -> None:
        self.got = got

    async def receive(self, msg: Pong) -> None:
        await self.got.send(msg)


class Watcher(troupe.Actor[troupe.Terminated]):
    def __init__(self, target: troupe.Ref[Any], got: trio.MemorySendChannel[tuple[float, Any]]) -> None:
        self.target = target
        self.got = got

    async def on_start(self) -> None:
        self.context.watch(self.target)

    async def receive(self, msg: troupe.Terminated) -> None:
        await self.got.send((trio.current_time(), msg))


# -- tell and ask, refs in messages, groups --------------------------------------------------------------


async def test_tell_and_ask_across_processes(nats_server: NatsServer, nodes: Nodes) -> None:
    worker = await nodes.worker(nats_server.url, "w1")
    async with troupe.open_system(name="tester", cluster=this_node(nats_server.url)) as system:
        await system.cluster.wait_for("counter")
        await system.cluster.wait_for("echo")
        counter = system.cluster.ref("counter", Add | Get)
        await counter.tell(Add(2))
        counter.tell_nowait(Add(3))
        assert await counter.ask(Get()) == {"total": 5, "adds": 2, "seqs": 0}
        echo = system.cluster.ref("echo", Echo)
        assert await echo.ask(Echo("hello")) == "hello from w1"
        with pytest.raises(troupe.ActorCrashed) as info:
            await echo.ask(Echo("crash"))
        cause = info.value.__cause__
        assert isinstance(cause, RemoteError)
        assert (cause.type_name, cause.text, cause.node) == ("ValueError", "asked to crash on w1", "w1")
        assert "node_worker.py" in cause.traceback
        assert await echo.ask(Echo("again")) == "again from w1"  # restarted, still registered
        [member] = await system.cluster.lookup("counter")
        assert member.node == "w1"
        assert await member.ask(Get()) == {"total": 5, "adds": 2, "seqs": 0}
        names = {m.node: m.names for m in await system.cluster.members()}
        assert names == {"tester": (), "w1": ("counter", "echo")}
    assert await worker.stop() == 0
    assert await worker.expect("count") == "2"
    await worker.expect("bye")


async def test_a_ref_in_a_message_is_answered_across_processes(nats_server: NatsServer, nodes: Nodes) -> None:
    worker = await nodes.worker(nats_server.url, "w1")
    async with troupe.open_system(name="tester", cluster=this_node(nats_server.url)) as system:
        await system.cluster.wait_for("counter")
        send, receive = trio.open_memory_channel[Pong](math.inf)
        collector = await system.spawn(lambda: Collector(send), name="collector")
        await system.cluster.ref("counter", Ping).tell(Ping(7, reply_to=collector))
        [member] = await system.cluster.lookup("counter")
        await member.tell(Ping(8, reply_to=collector))
        with trio.fail_after(WAIT):
            got = [await receive.receive(), await receive.receive()]
    # on the worker the field held a RemoteRef that pointed back at the collector here
    via = f"RemoteRef {CLUSTER}:tester/user/collector"
    assert sorted(got, key=lambda pong: pong.n) == [Pong(7, "w1", via), Pong(8, "w1", via)]
    assert await worker.stop() == 0


async def test_a_group_over_two_processes_shares_the_messages(nats_server: NatsServer, nodes: Nodes) -> None:
    workers = [await nodes.start("node_worker", nats_server.url, name) for name in ("w1", "w2")]
    for worker in workers:
        await worker.expect("ready")
    async with troupe.open_system(name="tester", cluster=this_node(nats_server.url)) as system:
        members = await system.cluster.wait_for("counter", 2)
        assert {member.node for member in members} == {"w1", "w2"}
        group = system.cluster.ref("counter", Add)
        for _ in range(400):
            await group.tell(Add(1))
        # asked after the tells, each member answers after it processed its share of them
        adds = {member.node: (await member.ask(Get()))["adds"] for member in members}
    assert sum(adds.values()) == 400
    assert min(adds.values()) > 0, adds
    for worker in workers:
        assert await worker.stop() == 0
    reported = {worker.name: int(await worker.expect("count")) for worker in workers}
    assert reported == adds


async def test_a_looked_up_member_of_another_node_has_its_actors_path(
    nats_server: NatsServer, nodes: Nodes
) -> None:
    await nodes.worker(nats_server.url, "w1")
    async with troupe.open_system(name="tester", cluster=this_node(nats_server.url)) as system:
        [member] = await system.cluster.wait_for("counter")
        assert (member.node, member.name, member.path) == ("w1", "counter", f"{CLUSTER}:w1/user/counter")


# -- watch across processes --------------------------------------------------------------------------------


async def test_a_watched_node_killed_is_lost_within_the_failure_timeout(
    nats_server: NatsServer, nodes: Nodes
) -> None:
    worker = await nodes.worker(nats_server.url, "w1")
    async with troupe.open_system(name="tester", cluster=this_node(nats_server.url)) as system:
        [member] = await system.cluster.wait_for("echo")
        send, receive = trio.open_memory_channel[tuple[float, Any]](math.inf)
        await system.spawn(lambda: Watcher(member, send))
        assert await member.ask(Echo("x")) == "x from w1"  # the watch went out before this ask
        worker.process.kill()
        killed = trio.current_time()
        with trio.fail_after(FAILURE_TIMEOUT + 3):
            when, terminated = await receive.receive()
        assert await worker.wait() == -signal.SIGKILL
        assert terminated.ref == member
        assert isinstance(terminated.reason, ClusterError)
        assert "node w1 was lost: no heartbeat for 1.0 s" in str(terminated.reason)
        assert when - killed < FAILURE_TIMEOUT + 1.0  # within failure_timeout + heartbeat / 4, and a margin
        assert await system.cluster.wait_for("echo", 0, exactly=True, timeout=WAIT) == []
        assert [m.node for m in await system.cluster.members()] == ["tester"]
        with trio.fail_after(2), pytest.raises(troupe.ActorStopped, match="no live member"):
            await system.cluster.ref("echo").ask(Echo("x"), timeout=30)  # at once, not after 30 s


@pytest.mark.parametrize("how", ["sigterm", "stdin closed"])
async def test_a_watched_node_that_leaves_ends_the_watch_with_no_reason_at_once(
    nats_server: NatsServer, nodes: Nodes, how: str
) -> None:
    worker = await nodes.worker(nats_server.url, "w1")
    async with troupe.open_system(name="tester", cluster=this_node(nats_server.url)) as system:
        [member] = await system.cluster.wait_for("echo")
        send, receive = trio.open_memory_channel[tuple[float, Any]](math.inf)
        await system.spawn(lambda: Watcher(member, send))
        assert await member.ask(Echo("x")) == "x from w1"
        asked = trio.current_time()
        if how == "sigterm":
            worker.process.send_signal(signal.SIGTERM)
        else:
            assert worker.process.stdin is not None
            await worker.process.stdin.aclose()
        with trio.fail_after(WAIT):
            when, terminated = await receive.receive()
        assert terminated.ref == member
        assert terminated.reason is None
        assert when - asked < FAILURE_TIMEOUT  # the node said goodbye: nobody waited for its heartbeats
        assert await worker.wait() == 0
        await worker.expect("bye")
        assert await system.cluster.wait_for("echo", 0, exactly=True, timeout=WAIT) == []


# -- the server stopped and restarted mid-traffic -------------------------------------------------------


async def test_the_server_restarted_mid_traffic_nothing_is_processed_twice(
    nats_server: NatsServer, nodes: Nodes
) -> None:
    worker = await nodes.worker(nats_server.url, "w1")
    sender = await nodes.start("node_sender", nats_server.url, "s1")
    await sender.expect("ready")
    await sender.expect("sent", lambda n: int(n) >= 500)
    await nats_server.stop()
    await sender.expect("down")  # it was sending when the server went
    await worker.expect("disconnected")
    await nats_server.start()
    resumed = int(await sender.expect("up"))
    await worker.expect("connected")
    await sender.expect("sent", lambda n: int(n) >= resumed + 500)  # the cluster works again
    assert await sender.stop() == 0
    summary = json.loads(await sender.expect("summary"))
    assert await worker.stop() == 0
    received: list[int] = json.loads(await worker.expect("received"))

    failed, dead, confirmed = set(summary["failed"]), set(summary["dead"]), summary["confirmed"]
    assert summary["resumed"] == resumed
    assert summary["outages"] == 1
    assert failed, "no tell was refused while the server was down"
    assert len(set(received)) == len(received), "a message was processed twice"
    assert received == sorted(received), "order per sender and receiver was not kept"
    assert not failed & set(received), "a tell that raised ClusterError was sent after all"
    assert not dead & set(received), "a message that became a dead letter at the sender was processed"
    assert received[-1] == confirmed  # the last batch was confirmed: it was all processed
    # Before the stop, what was under way may be lost (at most once). From the restart on, every number
    # sent either reached the counter or was a dead letter at the sender (the name had no member yet).
    after = set(range(resumed, confirmed + 1)) - failed
    assert after <= set(received) | dead
    assert len(after & set(received)) >= 400  # 500 confirmed, less a batch that may have found no member


# -- hostile payloads --------------------------------------------------------------------------------------


async def publish_raw(host: str, port: int, subject: str, size: int) -> bytes:
    """Publish ``size`` bytes from a raw socket client; what the server said until it closed."""
    stream = await trio.open_tcp_stream(host, port)
    said = bytearray()
    async with stream:
        await stream.send_all(b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\nPING\r\n')
        with trio.fail_after(WAIT):
            while b"PONG\r\n" not in said:
                chunk = await stream.receive_some()
                assert chunk, f"the server closed the connection at once: {bytes(said)!r}"
                said += chunk
        async with trio.open_nursery() as nursery:

            async def write() -> None:
                await stream.send_all(b"PUB %s %d\r\n" % (subject.encode(), size))
                piece = b"x" * 2**20
                try:
                    for _ in range(size // len(piece)):
                        await stream.send_all(piece)
                    await stream.send_all(b"x" * (size % len(piece)) + b"\r\n")
                except trio.BrokenResourceError:
                    return  # the server closed the connection while the payload went out

            nursery.start_soon(write)
            with trio.fail_after(WAIT):
                try:
                    async for received in stream:  # to its end: the server closes the connection
                        said += received
                except trio.BrokenResourceError:
                    pass  # reset: the server closed it with the payload unread (what it said came first)
            nursery.cancel_scope.cancel()
    return bytes(said)


async def test_a_100_mb_message_is_refused_by_the_server_and_the_worker_lives_on(
    nats_server: NatsServer, nodes: Nodes
) -> None:
    worker = await nodes.worker(nats_server.url, "w1")
    said = await publish_raw(nats_server.host, nats_server.port, f"troupe.{CLUSTER}.n.counter", 100 * 2**20)
    assert b"-ERR 'Maximum Payload Violation'" in said
    async with troupe.open_system(name="tester", cluster=this_node(nats_server.url)) as system:
        await system.cluster.wait_for("counter")
        assert await system.cluster.ref("counter").ask(Get()) == {"total": 0, "adds": 0, "seqs": 0}
    assert await worker.stop() == 0
    assert not [line for line in worker.lines if line.startswith("dead ")]
    assert "disconnected" not in worker.lines


async def test_hostile_payloads_from_a_raw_client_are_refused_dead_letters_on_the_worker(
    nodes: Nodes,
) -> None:
    hostile_payloads = [
        (b"\x00\xffgarbage", "not JSON"),
        (b'{"type": "no.such.type"}', "unknown message type 'no.such.type'"),
        (b'{"type": "test.processes.Add", "n": "3"}', "expected an int"),
        (b'{"type": "test.processes.Add", "n": 1, "pad": "' + b"x" * 2_000_000 + b'"}', "over this node's"),
    ]
    async with run_server(max_payload=4 * 2**20) as server:
        worker = await nodes.worker(server.url, "w1")  # its node's max_payload: the default 1 MiB
        hostile = NatsClient(Options(server.url))
        await hostile.connect()
        answers: list[dict[str, Any]] = []
        answered = trio.Event()

        def on_answer(subject: str, reply: str | None, data: bytes, status: int | None) -> None:
            answers.append(json.loads(data))
            if len(answers) == len(hostile_payloads):
                answered.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(hostile.run)
            hostile.subscribe("hostile.inbox", on_answer)
            for payload, _ in hostile_payloads:
                hostile.publish(f"troupe.{CLUSTER}.n.counter", payload, reply="hostile.inbox")
            assert await hostile.flush()
            letters = [json.loads(await worker.expect("dead")) for _ in hostile_payloads]
            with trio.fail_after(WAIT):
                await answered.wait()
            await hostile.close()
            nursery.cancel_scope.cancel()
        for letter, (payload, reason) in zip(letters, hostile_payloads, strict=True):
            assert letter["reason"] == "REFUSED"
            assert letter["recipient"] == "/user/counter"
            assert letter["type"] == "UnreadableMessage"
            assert reason in letter["unreadable"]
            assert letter["size"] == len(payload)
        assert (
            f"{len(hostile_payloads[-1][0])} bytes is over this node's max_payload (1048576)"
            in (letters[-1]["unreadable"])
        )
        assert [answer["err"]["kind"] for answer in answers] == ["refused"] * len(hostile_payloads)
        async with troupe.open_system(name="tester", cluster=this_node(server.url)) as system:
            await system.cluster.wait_for("counter")
            assert await system.cluster.ref("counter").ask(Get()) == {"total": 0, "adds": 0, "seqs": 0}
        assert await worker.stop() == 0


# -- credentials -----------------------------------------------------------------------------------------


async def test_a_worker_with_a_wrong_token_exits_with_one_line(nodes: Nodes) -> None:
    async with run_server(token=TOKEN) as server:
        wrong = await nodes.start("node_worker", server.url, "w-wrong", "--token", TOKEN + "-wrong")
        right = await nodes.start("node_worker", server.url, "w-right", "--token", TOKEN)
        assert await wrong.wait() == 1
        assert wrong.lines == []
        err = wrong.stderr.decode()
        assert err.count("\n") == 1, err
        assert err.startswith("node_worker w-wrong: ")
        assert "refused the connection: Authorization Violation" in err
        await right.expect("ready")
        assert await right.stop() == 0
