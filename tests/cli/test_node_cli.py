"""``troupe node`` and ``troupe cluster status``, run as processes against a real nats-server.

No test sleeps to synchronise: each waits for the lines the processes print
(bounded by ``WAIT``), or for them to exit.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from rich.console import Console

import troupe
from troupe.cli import main
from troupe.cli._node import _shown_url
from troupe.cli._state import ClusterSeen, Note, RunState
from troupe.cli._view import ActorRow, Frame
from troupe.cluster import ClusterMember, NatsServer, run_server

TROUPE = [sys.executable, "-m", "troupe.cli"]
WAIT = 30  # seconds: a bound on waiting for what must happen, never a pause
TOKEN = "s3cret-token"  # noqa: S105 - a test server's token
ANSI = r"\x1b\[[0-9;?]*[a-zA-Z]"
FAST = ["--name", "test", "--heartbeat", "0.2", "--failure-timeout", "1"]

TOPOLOGY = """
import trio
import troupe


@troupe.message(name="test.node_cli.Hello")
class Hello:
    who: str


class Greeter(troupe.Actor[Hello]):
    async def receive(self, msg: Hello) -> str:
        return f"hello {msg.who} from {self.context.system.cluster.node}"


async def main(system):
    await system.cluster.register("greeter", await system.spawn(Greeter, name="greeter"))
    print("ready", flush=True)
    await trio.sleep_forever()


async def ask(system):
    await system.cluster.wait_for("greeter")
    print(await system.cluster.ref("greeter", Hello).ask(Hello(system.cluster.node)), flush=True)
"""


class Lines:
    """A process's output, line by line, as it comes."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.seen: list[str] = []

    async def until(self, wanted: str) -> str:
        """The first line from now on that contains ``wanted`` (fails after ``WAIT`` s or at the end)."""
        with trio.move_on_after(WAIT):
            while True:
                while b"\n" not in self.buffer:
                    chunk = await self.stream.receive_some()
                    if not chunk:
                        pytest.fail(f"the output ended without {wanted!r}: {self.seen}")
                    self.buffer += chunk
                line, _, rest = bytes(self.buffer).partition(b"\n")
                self.buffer[:] = rest
                text = line.decode(errors="replace").rstrip("\r")
                self.seen.append(text)
                if wanted in text:
                    return text
        pytest.fail(f"no line with {wanted!r} within {WAIT} s: {self.seen}")

    async def has(self, wanted: str) -> str:
        """A line that contains ``wanted``, among those read already or those to come."""
        found = [line for line in self.seen if wanted in line]
        return found[0] if found else await self.until(wanted)

    async def rest(self) -> str:
        """Everything up to the end of the output."""
        chunks = [bytes(self.buffer)]
        with trio.fail_after(WAIT):
            while chunk := await self.stream.receive_some():
                chunks.append(bytes(chunk))
        self.buffer.clear()
        return b"".join(chunks).decode(errors="replace")


@asynccontextmanager
async def node(
    tmp_path: Path, url: str, name: str, *args: str, target: str = "main"
) -> AsyncIterator[tuple[trio.Process, Lines]]:
    """``troupe node`` of ``TOPOLOGY:target`` with --plain; its output lines (killed if still running)."""
    path = tmp_path / "topology.py"
    path.write_text(TOPOLOGY)
    command = [*TROUPE, "node", f"{path}:{target}", "--cluster", url, "--node", name, *FAST, "--plain", *args]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        yield process, Lines(process.stdout)
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
            await closed(process)


async def closed(process: trio.Process) -> None:
    """Close the pipes of ``process`` (which has ended)."""
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            await pipe.aclose()


async def troupe_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``troupe ARGS`` to its end; its status and output."""
    with trio.fail_after(WAIT):
        return await trio.run_process(
            [*TROUPE, *args], capture_stdout=True, capture_stderr=True, check=False, env=env
        )


def one_line(done: subprocess.CompletedProcess[bytes]) -> str:
    """The one line a failed command printed on stderr."""
    err = done.stderr.decode()
    assert done.returncode != 0, (done.stdout, err)
    assert err.count("\n") == 1, err
    assert err.startswith("troupe: ")
    assert "Traceback" not in err
    return err.rstrip("\n")


async def test_a_node_registers_status_lists_it_another_node_asks_it_and_sigint_stops_it(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    async with node(tmp_path, url, "a") as (a, a_lines):
        await a_lines.until("ready")
        assert a_lines.seen[0] == f"  [cluster] node a joined cluster test at {url}"
        await a_lines.has("[node  names] a: greeter")  # its own registration, before or after "ready"

        listed = await troupe_cli("cluster", "status", "--cluster", url, "--name", "test", "--json")
        assert (listed.returncode, listed.stderr) == (0, b"")
        [member] = json.loads(listed.stdout)
        assert member["node"] == "a"
        assert member["names"] == ["greeter"]
        assert re.fullmatch(r"[0-9a-f]+", member["node_id"])
        await a_lines.until("[node joined] status-")  # a saw the observer come and go
        await a_lines.until("[node   left] status-")

        table = await troupe_cli("cluster", "status", "--cluster", url, "--name", "test")
        assert table.returncode == 0
        lines = table.stdout.decode().splitlines()
        assert lines[0] == f"cluster test at {url}: 1 node"
        assert lines[1].split() == ["node", "node", "id", "names"]
        assert lines[2].split() == ["a", member["node_id"], "greeter"]

        async with node(tmp_path, url, "b", target="ask") as (b, b_lines):
            await b_lines.until("[node joined] a: greeter")
            await b_lines.until("hello b from a")
            await b_lines.until("[cluster] node b left cluster test")
            assert await b.wait() == 0
        await a_lines.until("[node joined] b: (no names)")
        await a_lines.until("[node   left] b")

        a.send_signal(signal.SIGINT)  # what Ctrl-C does
        with trio.fail_after(WAIT):
            status = await a.wait()
        assert a.stderr is not None
        assert (status, await a.stderr.receive_some()) == (130, b"troupe: interrupted\n")
        rest = await a_lines.rest()
        assert "[cluster] node a left cluster test (sent " in rest
        assert "summary:" in rest

    gone = await troupe_cli("cluster", "status", "--cluster", url, "--name", "test", "--wait", "0.5")
    assert (gone.returncode, gone.stdout.decode(), gone.stderr) == (
        0,
        f"no node in cluster test at {url}\n",
        b"",
    )
    empty = await troupe_cli("cluster", "status", "--cluster", url, "--name", "test", "--json", "--wait", "0")
    assert (empty.returncode, json.loads(empty.stdout)) == (0, [])


async def test_sigterm_stops_a_node_as_ctrl_c_does(tmp_path: Path, nats_server: NatsServer) -> None:
    async with node(tmp_path, nats_server.url, "a") as (a, lines):
        await lines.until("ready")
        a.terminate()
        with trio.fail_after(WAIT):
            assert await a.wait() == 130
        assert a.stderr is not None
        assert await a.stderr.receive_some() == b"troupe: interrupted\n"
        assert "[cluster] node a left cluster test" in await lines.rest()


async def test_a_wrong_token_is_one_line_that_never_shows_a_token(tmp_path: Path) -> None:
    path = tmp_path / "topology.py"
    path.write_text(TOPOLOGY)
    async with run_server(token=TOKEN) as server:
        url = server.url
        wrong = await troupe_cli("node", str(path), "--cluster", url, "--node", "a", "--token", "not-it")
        assert wrong.returncode == 2
        line = one_line(wrong)
        assert "Authorization Violation" in line
        assert "not-it" not in line

        env = {**os.environ, "TROUPE_CLUSTER_TOKEN": "not-it-either"}
        from_env = await troupe_cli("cluster", "status", "--cluster", url, env=env)
        assert "Authorization Violation" in one_line(from_env)
        assert "not-it-either" not in from_env.stderr.decode()

        env = {**os.environ, "TROUPE_CLUSTER_TOKEN": TOKEN}
        right = await troupe_cli("cluster", "status", "--cluster", url, "--wait", "0", env=env)
        assert (right.returncode, right.stderr) == (0, b"")
        assert TOKEN not in right.stdout.decode()


async def test_an_unreachable_server_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    path = tmp_path / "topology.py"
    path.write_text(TOPOLOGY)
    done = await troupe_cli("node", str(path), "--cluster", "nats://127.0.0.1:1", "--node", "a")
    assert done.returncode == 2
    assert one_line(done).startswith("troupe: cannot reach NATS server at nats://127.0.0.1:1: ")
    assert done.stdout == b""  # no summary: nothing ran


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["node", "{path}", "--cluster", "http://127.0.0.1:1", "--node", "a"], "has scheme 'http'"),
        (["node", "{path}", "--cluster", "nats://127.0.0.1:99999", "--node", "a"], "has a bad port"),
        (["node", "{path}", "--cluster", "nats://127.0.0.1:1", "--node", "a b"], "got 'a b'"),
        (
            ["node", "{path}", "--cluster", "nats://127.0.0.1:1", "--node", "a", "--heartbeat", "5"],
            "longer than",
        ),
        (
            ["node", "{path}", "--cluster", "nats://127.0.0.1:1", "--node", "a", "--heartbeat", "0"],
            "--heartbeat",
        ),
        (["node", "{path}", "--node", "a"], "Missing option '--cluster'"),
        (["node", "{path}", "--cluster", "nats://127.0.0.1:1"], "Missing option '--node'"),
        (["node", "no/such/file.py", "--cluster", "nats://127.0.0.1:1", "--node", "a"], "no such file"),
        (
            ["node", "{path}:nothing", "--cluster", "nats://127.0.0.1:1", "--node", "a"],
            "no function 'nothing'",
        ),
        (["cluster", "status", "--cluster", "nats://127.0.0.1:1"], "cannot reach NATS server"),
        (["cluster", "status", "--cluster", "nats://127.0.0.1:1", "--name", "a.b"], "got 'a.b'"),
        (["cluster", "status", "--cluster", "nats://127.0.0.1:1", "--wait", "-1"], "--wait"),
    ],
    ids=[
        "bad-scheme",
        "bad-port",
        "bad-node-name",
        "heartbeat-too-long",
        "heartbeat-zero",
        "no-cluster",
        "no-node",
        "no-file",
        "no-function",
        "status-unreachable",
        "status-bad-name",
        "status-bad-wait",
    ],
)
def test_every_failure_is_one_line_and_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    path = tmp_path / "quiet_topology.py"
    path.write_text("async def main(system):\n    pass\n")
    assert main([a.format(path=path) for a in args]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err.count("\n")) == ("", 1), captured
    assert captured.err.startswith("troupe: ")
    assert message in captured.err


async def test_the_live_view_shows_the_cluster_and_its_last_frame_shows_the_node_left(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    path = tmp_path / "topology.py"
    path.write_text(TOPOLOGY)
    leader, follower = pty.openpty()  # the live view is drawn only in a terminal
    env = {**os.environ, "COLUMNS": "80", "LINES": "24", "TERM": "xterm"}
    command = [*TROUPE, "node", str(path), "--cluster", nats_server.url, "--node", "w1", *FAST]
    process = await trio.lowlevel.open_process(command, stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    screen = ""
    try:
        async with trio.lowlevel.FdStream(leader) as terminal:

            async def until(pattern: str) -> None:
                nonlocal screen
                with trio.move_on_after(WAIT):
                    while not re.search(pattern, screen):
                        try:
                            chunk = await terminal.receive_some()
                        except OSError:  # the terminal closed: the process ended
                            chunk = b""
                        if not chunk:
                            pytest.fail(f"the terminal closed without {pattern!r}: {screen}")
                        screen = re.sub(ANSI, "", screen + chunk.decode(errors="replace"))
                    return
                pytest.fail(f"no {pattern!r} on the terminal within {WAIT} s: {screen}")

            await until(r"│\s+w1\s+greeter\s+│")  # the live view, with this node's names
            assert "troupe node" in screen
            assert f"cluster test  node w1  connected  {nats_server.url}  1 node" in screen
            process.send_signal(signal.SIGINT)
            await until(r"summary \(")
            last = screen[screen.rindex("troupe node") :]
            assert "interrupted" in last
            assert f"cluster test  node w1  left  {nats_server.url}" in last
            assert "greeter  stopped" in last
            with trio.fail_after(WAIT):
                assert await process.wait() == 130
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
            await closed(process)


def members(*nodes: tuple[str, Sequence[str]]) -> tuple[ClusterMember, ...]:
    return tuple(ClusterMember(name, f"id-{name}", tuple(names)) for name, names in nodes)


def seen(*nodes: tuple[str, Sequence[str]], connected: bool = True) -> ClusterSeen:
    return ClusterSeen("shop", "a", "id-a", "nats://127.0.0.1:4222", connected, members(*nodes))


def lines(notes: list[Note]) -> list[str]:
    return [note.line for note in notes]


def test_run_state_says_what_changed_in_the_cluster_and_plain_mode_prints_it() -> None:
    state = RunState()
    first = state.cluster_seen(seen(("a", ()), ("b", ["orders"])))
    assert lines(first) == [
        "[cluster] node a joined cluster shop at nats://127.0.0.1:4222",
        "[node joined] b: orders",
    ]
    assert lines(state.cluster_seen(seen(("a", ()), ("b", ["orders"])))) == []
    changed = state.cluster_seen(seen(("a", ["pool"]), ("c", ())))
    assert lines(changed) == ["[node  names] a: pool", "[node joined] c: (no names)", "[node   left] b"]
    down = state.cluster_seen(seen(("a", ["pool"]), ("c", ()), connected=False))
    assert lines(down) == ["[cluster] disconnected from nats://127.0.0.1:4222; reconnecting"]
    assert lines(state.cluster_seen(seen(("a", ["pool"]), ("c", ())))) == [
        "[cluster] reconnected to nats://127.0.0.1:4222"
    ]
    assert [n.line for n in state.last_events] == [
        lines(down)[0],
        "[cluster] reconnected to nats://127.0.0.1:4222",
    ]
    left = state.cluster_left("sent 1, received 2, reconnects 1")
    assert lines(left) == ["[cluster] node a left cluster shop (sent 1, received 2, reconnects 1)"]
    assert state.cluster_left("again") == []
    assert all(note.logged for note in [*first, *changed, *down, *left])


def draw(frame: Frame, width: int, height: int) -> list[str]:
    console = Console(width=width, height=height, record=True, color_system=None, file=io.StringIO())
    console.print(frame)
    return console.export_text().splitlines()


@pytest.mark.parametrize(("width", "height"), [(40, 12), (80, 24), (120, 50)])
@pytest.mark.parametrize("count", [1, 3, 40])
def test_the_frame_shows_the_cluster_within_its_room_and_counts_the_nodes_it_leaves_out(
    width: int, height: int, count: int
) -> None:
    state = RunState()
    nodes = [("a", ["pool"]), *((f"n{i:02d}", ["orders", "x" * 80]) for i in range(count - 1))]
    state.cluster_seen(seen(*nodes))
    rows = [ActorRow("/user", "user", 0, guardian=True)]
    stats = troupe.SystemStatistics(1, 1, 0, 0, 0, ())
    screen = draw(Frame(state, stats, rows, "t.py", 1.0), width, height)
    assert len(screen) <= height - max(3, height // 4)
    assert all(len(line) <= width for line in screen)
    text = "\n".join(screen)
    assert "troupe node" in text
    assert "cluster shop  node a  connected" in text
    assert re.search(r"│\s+a\s+pool", text) or height < 24  # a small frame has room for the header only
    shown = len(set(re.findall(r"\bn\d\d\b", text)))
    more = re.search(r"\+(\d+) more nodes", text)
    if shown or more:
        assert shown + (int(more.group(1)) if more else 0) == count - 1


def test_troupe_run_frames_have_no_cluster() -> None:
    state = RunState()
    rows = [ActorRow("/user", "user", 0, guardian=True)]
    text = "\n".join(
        draw(Frame(state, troupe.SystemStatistics(1, 1, 0, 0, 0, ()), rows, "t.py", 1.0), 80, 24)
    )
    assert "troupe run  1.0 s  running" in text
    assert "cluster" not in text


def test_status_shows_a_url_without_its_credentials() -> None:
    assert _shown_url("nats://s3cret@127.0.0.1:4222") == "nats://127.0.0.1:4222"
    assert _shown_url("nats://u:p@h:1") == "nats://h:1"
    assert _shown_url("127.0.0.1:4222") == "127.0.0.1:4222"
