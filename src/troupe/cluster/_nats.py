"""A small trio-native client of the NATS protocol: publish, subscribe, ping, reconnect.

The protocol is text lines and payloads over TCP (docs.nats.io, "Client
Protocol"). The client sends ``CONNECT``, ``PUB``/``HPUB``, ``SUB``,
``UNSUB``, ``PING``/``PONG``; the server sends ``INFO``, ``MSG``/``HMSG``,
``PING``/``PONG``, ``+OK`` and ``-ERR``. This client speaks only what the
cluster needs:

- publishes are appended to one outgoing buffer that a writer task sends
  in batches (one ``send_all`` for whatever accumulated), so order is kept
  per connection and a burst of small messages costs few system calls;
- every delivered message calls its subscription's callback synchronously
  in the reader task (callbacks must not block);
- ``no_responders`` is on: a request to a subject nobody subscribes to
  gets a ``503`` status message at once, passed to the callback as
  ``status=503``;
- when the connection drops, publishing raises `ClusterError` at once, a
  background loop reconnects with backoff and re-subscribes everything,
  and the owner hears of both through ``on_state``;
- bytes leave the outgoing buffer only once the socket took them, so
  `close` (even after `run` was cancelled mid-write) sends exactly what is
  left, then a ``PING``, and waits (bounded) for the ``PONG``: the server
  has then processed everything this client published;
- subjects are UTF-8 on the wire; a subject that is not (a hostile
  publisher's) is passed on, and published back, with its bytes kept as
  lone surrogates (``surrogateescape``); a malformed line from the server
  (a bad size, missing fields, an ``INFO`` that is not a JSON object) is a
  protocol error: the connection is dropped, with a warning, and made again.

Why not nats-py: it is asyncio-only, and a bridge between its loop thread
and trio adds a thread hop each way to every message; see the Cluster guide.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any, Final, final
from urllib.parse import unquote, urlsplit

import trio

from ._errors import ClusterError

log = logging.getLogger("troupe.cluster")

Callback = Callable[[str, "str | None", bytes, "int | None"], None]
"""``callback(subject, reply, payload, status)``: one delivered message."""

_CRLF: Final = b"\r\n"
_CR, _LF = _CRLF
_MAX_LINE: Final = 64 * 1024  # a protocol line longer than this is garbage from the server
_HIGH_WATER: Final = 8 * 1024 * 1024  # outgoing bytes above which `wait_writable` waits
_HARD_LIMIT: Final = 64 * 1024 * 1024  # outgoing bytes above which publishing is refused
_CLIENT_VERSION: Final = "0.1"


@final
class _Sub:
    __slots__ = ("callback", "queue", "subject")

    def __init__(self, subject: str, queue: str | None, callback: Callback) -> None:
        self.subject = subject
        self.queue = queue
        self.callback = callback


@final
class Options:
    """How to reach and authenticate to the server (from `troupe.Cluster`)."""

    __slots__ = ("connect_timeout", "name", "password", "ping_interval", "tls", "token", "url", "user")

    def __init__(
        self,
        url: str,
        *,
        name: str = "troupe",
        token: str | None = None,
        user: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        connect_timeout: float = 5.0,
        ping_interval: float = 10.0,
    ) -> None:
        self.url = url
        self.name = name
        self.token = token
        self.user = user
        self.password = password
        self.tls = tls
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval


def redacted(url: str) -> str:
    """``url`` with any credentials in it replaced by ``***`` (for messages and logs)."""
    scheme, sep, rest = url.rpartition("://")
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def _parse_url(url: str) -> tuple[str, int, bool, str | None, str | None, str | None]:
    """``nats://[user:pass@|token@]host:port`` → host, port, tls, user, password, token."""
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    shown = redacted(url)
    if parts.scheme not in {"nats", "tls"}:
        raise ClusterError(
            f"cluster URL {shown!r} has scheme {parts.scheme!r}; use nats://host:port or tls://"
        )
    try:
        port = parts.port or 4222
    except ValueError as exc:
        raise ClusterError(f"cluster URL {shown!r} has a bad port ({exc}); use nats://host:port") from None
    host = parts.hostname or "127.0.0.1"
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    token = None
    if user is not None and password is None:
        token, user = user, None
    return host, port, parts.scheme == "tls", user, password, token


class _Lost(Exception):
    """The connection ended (EOF, a socket error, an -ERR the server closes on, pings unanswered)."""


class _ProtocolError(_Lost):
    """The server sent something that is not the NATS protocol: the connection is dropped."""


_SUBJECT_ERRORS: Final = "surrogateescape"  # bytes that are not UTF-8 survive a round trip through str


def _number(arg: bytes | bytearray, what: str) -> int:
    """A size or subscription id of a protocol line: ASCII digits only (no sign, no ``_``)."""
    if not arg.isdigit() or len(arg) > 15:  # noqa: PLR2004 - far above any size the server allows
        msg = f"{what} {bytes(arg[:20])!r} is not a number"
        raise ValueError(msg)
    return int(arg)


def _size_and_sid(args: list[bytearray]) -> tuple[int, int]:
    """The size and subscription id of a ``MSG``'s fields (one check for both: the hot path)."""
    size, sid = args[-1], args[1]
    if not (size.isdigit() and sid.isdigit()) or len(size) > 15 or len(sid) > 15:  # noqa: PLR2004
        return _number(size, "size"), _number(sid, "subscription id")  # one of them raises
    return int(size), int(sid)


def _read_info(text: bytes | bytearray) -> dict[str, Any]:
    """The JSON object of an ``INFO`` line; ValueError if it is not one (or its max_payload is bad)."""
    try:
        info = json.loads(text)
    except RecursionError:
        msg = "INFO is nested too deeply"
        raise ValueError(msg) from None
    if type(info) is not dict:
        msg = "INFO is not a JSON object"
        raise ValueError(msg)
    limit = info.get("max_payload")
    if limit is not None and (type(limit) is not int or limit <= 0):
        msg = f"INFO has a bad max_payload {limit!r}"
        raise ValueError(msg)
    return info


@final
class NatsClient:
    """One connection to a NATS server, kept up for the owner's lifetime.

    Use `connect` (which raises `ClusterError` if the first connection
    fails), then run `run` in a nursery; `close` ends it.
    """

    def __init__(self, options: Options, on_state: Callable[[bool], None] | None = None) -> None:
        self.options = options
        host, port, tls, user, password, token = _parse_url(options.url)
        self._host = host
        self._port = port
        self._tls = tls or options.tls is not None
        self._user = options.user or user
        self._password = options.password or password
        self._token = options.token or token
        self._on_state = on_state
        self._stream: trio.abc.Stream | None = None
        self._out = bytearray()
        self._inflight = bytearray()  # the batch the writer is sending (taken from _out) ...
        self._inflight_sent = 0  # ... and how much of it the socket took
        self._in = bytearray()  # what was received and not parsed yet
        self._wake_writer = trio.Event()
        self._drained = trio.Event()
        self._pongs: deque[trio.Event] = deque()
        self._subs: dict[int, _Sub] = {}
        self._next_sid = 1
        self._closed = False
        self.connected = False
        self.server_info: dict[str, Any] = {}
        self.max_payload = 1024 * 1024
        self.reconnects = 0
        self.ignored = 0
        """Messages dropped on arrival: no subscription (any more), a subject not UTF-8, or closing."""
        self._last_error = ""
        self._raw: socket.socket | None = None  # the plain socket under the stream, for `now` sends
        self._run_scope: trio.CancelScope | None = None  # `run`'s, while it runs (`close` cancels it)
        self._run_done = trio.Event()

    @property
    def url(self) -> str:
        """The server's address, ``nats://host:port``."""
        return f"{'tls' if self._tls else 'nats'}://{self._host}:{self._port}"

    # -- connecting -----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the first connection.

        Raises:
            ClusterError: the server cannot be reached, refused the
                credentials, or spoke something else than NATS.
        """
        self._stream = await self._handshake()
        self._set_connected(up=True)

    async def _handshake(self) -> trio.abc.Stream:
        where = self.url
        try:
            with trio.fail_after(self.options.connect_timeout):
                stream: trio.abc.Stream = await trio.open_tcp_stream(self._host, self._port)
                try:
                    return await self._greet(stream)
                except BaseException:
                    await trio.aclose_forcefully(stream)
                    raise
        except trio.TooSlowError:
            raise ClusterError(
                f"NATS server at {where} did not complete the handshake within "
                f"{self.options.connect_timeout} s; check the URL and that the server is up"
            ) from None
        except (OSError, trio.BrokenResourceError, _Lost) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ClusterError(
                f"cannot reach NATS server at {where}: {reason or type(exc).__name__}; start one with "
                "`troupe cluster serve` or check the URL"
            ) from None
        except (ValueError, ssl.SSLError) as exc:
            raise ClusterError(f"NATS server at {where} failed the handshake: {exc}") from None

    async def _greet(self, stream: trio.abc.Stream) -> trio.abc.Stream:
        """INFO, TLS if wanted, CONNECT and a PING answered: the stream is ready."""
        buf = bytearray()
        info = await _read_line(stream, buf)
        if not info.startswith(b"INFO "):
            raise _refused(f"{self.url} is not a NATS server (it said {bytes(info[:40])!r})")
        self.server_info = _read_info(info[5:])
        self.max_payload = self.server_info.get("max_payload", self.max_payload)
        if self._tls or self.server_info.get("tls_required"):
            context = self.options.tls or ssl.create_default_context()
            stream = trio.SSLStream(stream, context, server_hostname=self._host)
            await stream.do_handshake()
        await stream.send_all(self._connect_line() + b"PING\r\n")
        while True:
            line = await _read_line(stream, buf)
            if line == b"PONG":
                break
            if line.startswith(b"-ERR"):
                text = bytes(line[4:]).decode(errors="replace").strip(" '")
                raise _refused(
                    f"{self.url} refused the connection: {text}; check the cluster's token, user and password"
                )
            if line == b"PING":  # +OK or an INFO update before the PONG: nothing to do yet
                await stream.send_all(b"PONG\r\n")
        self._pending_in = bytes(buf)  # what came after the PONG belongs to the reader
        return stream

    _pending_in = b""

    def _connect_line(self) -> bytes:
        options: dict[str, Any] = {
            "verbose": False,
            "pedantic": False,
            "tls_required": self._tls,
            "name": self.options.name,
            "lang": "python-troupe",
            "version": _CLIENT_VERSION,
            "protocol": 1,
            "headers": True,
            "no_responders": True,
            "echo": True,
        }
        if self._token is not None:
            options["auth_token"] = self._token
        if self._user is not None:
            options["user"] = self._user
            options["pass"] = self._password or ""
        return b"CONNECT " + json.dumps(options, separators=(",", ":")).encode() + _CRLF

    def _set_connected(self, *, up: bool) -> None:
        self.connected = up
        if self._on_state is not None:
            self._on_state(up)

    # -- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until `close`; reconnect whenever it drops.

        Cancelled (or ended by `close`), it leaves the connection as it is,
        with whatever was not sent yet still queued: `close` sends that.
        """
        if self._closed:
            return
        self._run_done = done = trio.Event()
        try:
            with trio.CancelScope() as self._run_scope:
                while not self._closed:
                    await self._serve()
                    if self._closed:
                        break
                    log.info("lost the connection to %s: %s", self.url, self._last_error)
                    self._lose_connection()
                    await self._reconnect()
        finally:
            self._run_scope = None
            self._raw = None
            done.set()

    async def _serve(self) -> None:
        """Run one connection's reader, writer and pinger until one of them ends it."""
        stream = self._stream
        assert stream is not None  # noqa: S101 - connect() or the reconnect loop set it
        raw = getattr(getattr(stream, "socket", None), "_sock", None)  # none under TLS
        self._raw = raw if isinstance(raw, socket.socket) else None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._guard, self._reader, stream, nursery.cancel_scope)
            nursery.start_soon(self._guard, self._writer, stream, nursery.cancel_scope)
            nursery.start_soon(self._guard, self._pinger, stream, nursery.cancel_scope)
        # Reached only when the connection ended by itself (a cancel leaves it to `close`).
        self._raw = None
        self._stream = None
        await trio.aclose_forcefully(stream)

    async def _guard(
        self,
        part: Callable[[trio.abc.Stream], Any],
        stream: trio.abc.Stream,
        scope: trio.CancelScope,
    ) -> None:
        """Run one part of a connection; when it ends the connection, end the others."""
        try:
            await part(stream)
        except _ProtocolError as exc:
            self._last_error = str(exc)
            log.warning("troupe cluster: %s; dropping the connection and connecting again", exc)
        except _Lost as exc:
            self._last_error = str(exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._last_error = f"connection to {self.url} broke: {exc}"
        scope.cancel()

    def _lose_connection(self) -> None:
        self._set_connected(up=False)
        self._out.clear()  # at-most-once: what was not sent is not sent later
        self._inflight = bytearray()
        self._inflight_sent = 0
        self._drained.set()
        self._drained = trio.Event()
        while self._pongs:
            self._pongs.popleft().set()

    async def _reconnect(self) -> None:
        delay = 0.05
        while not self._closed:
            try:
                stream = await self._handshake()
            except ClusterError as exc:
                self._last_error = str(exc)
                log.debug("reconnecting to %s failed: %s", self.url, exc)
                await trio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            # Subscriptions again, before anything else is sent (they are first in the buffer).
            lines = [self._sub_line(sid, sub) for sid, sub in self._subs.items()]
            self._out[:0] = b"".join(lines)
            self._stream = stream
            self.reconnects += 1
            self._set_connected(up=True)
            self._wake_writer.set()
            log.info("reconnected to %s", self.url)
            return

    async def _reader(self, stream: trio.abc.Stream) -> None:
        self._in = buf = bytearray(self._pending_in)
        self._pending_in = b""
        while True:
            if buf:
                consumed = self._parse(buf)
                if consumed:
                    del buf[:consumed]
            # A checkpoint for every chunk received: parsing one is bounded by its size.
            data = await stream.receive_some(65536)
            if not data:
                raise _Lost(f"{self.url} closed the connection")
            buf += data

    def _parse(self, buf: bytearray) -> int:
        """Handle every complete operation in ``buf``; return how many bytes were used.

        Raises:
            _ProtocolError: a line that is not the NATS protocol (the
                connection cannot be trusted to be in step any more).
        """
        pos = 0
        end = len(buf)
        while pos < end:
            eol = buf.find(_CRLF, pos)
            if eol < 0:
                if end - pos > _MAX_LINE:
                    raise _ProtocolError(f"{self.url} sent a protocol line longer than {_MAX_LINE} bytes")
                break
            try:
                used = self._operation(buf, pos, eol, end)
            except (ValueError, IndexError) as exc:
                line = bytes(buf[pos : min(eol, pos + 60)])
                raise _ProtocolError(f"{self.url} sent a malformed protocol line {line!r} ({exc})") from None
            if used == 0:  # a message whose payload has not all arrived
                break
            pos += used  # always forward: a line is at least its CRLF
        return pos

    def _operation(self, buf: bytearray, pos: int, eol: int, end: int) -> int:
        """Handle the operation whose line is ``buf[pos:eol]``; its length, or 0 if it is incomplete."""
        headers = False
        if buf.startswith(b"MSG ", pos):
            args = buf[pos + 4 : eol].split()
            if len(args) not in {3, 4}:  # subject sid [reply] size
                msg = f"MSG has {len(args)} fields, not 3 or 4"
                raise ValueError(msg)
            header_size = 0
        elif buf.startswith(b"HMSG ", pos):
            headers = True
            args = buf[pos + 5 : eol].split()
            if len(args) not in {4, 5}:  # subject sid [reply] header-size size
                msg = f"HMSG has {len(args)} fields, not 4 or 5"
                raise ValueError(msg)
            header_size = _number(args.pop(-2), "header size")
        else:
            self._control(bytes(buf[pos:eol]))
            return eol + 2 - pos
        size, sid = _size_and_sid(args)
        if size > self.max_payload or header_size > size:
            msg = f"a message of {size} bytes ({header_size} of headers); max_payload is {self.max_payload}"
            raise ValueError(msg)
        start = eol + 2
        if start + size + 2 > end:
            return 0
        if buf[start + size] != _CR or buf[start + size + 1] != _LF:
            msg = f"a message of {size} bytes is not followed by CRLF"
            raise ValueError(msg)
        sub = self._subs.get(sid)
        if sub is None or self._closed:
            self.ignored += 1
            return start + size + 2 - pos
        try:
            subject = args[0].decode()
        except UnicodeDecodeError:  # no troupe subscription names such a subject: a wildcard matched
            self.ignored += 1
            log.debug("troupe cluster: ignored a message whose subject is not UTF-8: %r", args[0][:60])
            return start + size + 2 - pos
        reply = args[2].decode(errors=_SUBJECT_ERRORS) if len(args) == 4 else None  # noqa: PLR2004
        payload = bytes(buf[start + header_size : start + size])
        status = _status(bytes(buf[start : start + header_size])) if headers else None
        self._deliver(sub, subject, reply, payload, status)
        return start + size + 2 - pos

    def _deliver(
        self, sub: _Sub, subject: str, reply: str | None, payload: bytes, status: int | None
    ) -> None:
        try:
            sub.callback(subject, reply, payload, status)
        except Exception:
            log.exception("troupe cluster: the handler of %s raised (the message is lost)", subject)

    def _control(self, line: bytes) -> None:
        if line == b"PING":
            self._out += b"PONG\r\n"
            self._wake_writer.set()
        elif line == b"PONG":
            if self._pongs:
                self._pongs.popleft().set()
        elif line.startswith(b"INFO "):
            info = _read_info(line[5:])  # ValueError: a protocol error
            self.server_info.update(info)
            self.max_payload = info.get("max_payload", self.max_payload)
            if self.server_info.get("ldm"):  # lame duck mode: the server is about to stop
                log.info("NATS server %s is shutting down (lame duck mode)", self.url)
        elif line.startswith(b"-ERR"):
            text = line[4:].decode(errors="replace").strip(" '")
            log.warning("NATS server %s: %s", self.url, text)
            if "permissions violation" not in text.lower():
                raise _Lost(f"{self.url} reported an error and closes the connection: {text}")
        elif line != b"+OK" and line:
            msg = "an unknown operation"
            raise ValueError(msg)

    async def _writer(self, stream: trio.abc.Stream) -> None:
        # On a plain TCP stream, bytes are sent with the socket's own send (a cancelled send sent
        # nothing): `_inflight_sent` is then exactly what the server got, and `close` sends the rest.
        sock = stream.socket if isinstance(stream, trio.SocketStream) else None
        while True:
            if not self._inflight:
                if not self._out:
                    await self._wake_writer.wait()
                    self._wake_writer = trio.Event()
                    continue
                self._inflight, self._out = self._out, bytearray()
                self._inflight_sent = 0
            if sock is None:
                await stream.send_all(self._inflight)  # TLS: a cancel here breaks the stream anyway
            else:
                with memoryview(self._inflight) as view:
                    while self._inflight_sent < len(view):
                        with view[self._inflight_sent :] as rest:
                            self._inflight_sent += await sock.send(rest)
            self._inflight = bytearray()
            self._inflight_sent = 0
            if len(self._out) < _HIGH_WATER:
                self._drained.set()
                self._drained = trio.Event()

    async def _pinger(self, stream: trio.abc.Stream) -> None:  # noqa: ARG002 - one per connection
        interval = self.options.ping_interval
        while True:
            await trio.sleep(interval)
            pong = trio.Event()
            self._pongs.append(pong)
            self._out += b"PING\r\n"
            self._wake_writer.set()
            with trio.move_on_after(interval * 2):
                await pong.wait()
                continue
            raise _Lost(f"{self.url} did not answer a ping within {interval * 2} s")

    # -- the operations -------------------------------------------------------------------------

    def _check(self, size: int) -> None:
        if self._closed:
            raise ClusterError(
                f"the connection to {self.url} is closed: this node left the cluster (its system closed)"
            )
        if not self.connected:
            why = f" ({self._last_error})" if self._last_error else ""
            raise ClusterError(
                f"not connected to the NATS server at {self.url}{why}; troupe is reconnecting: "
                "retry later, or check the server"
            )
        if size > self.max_payload:
            raise ClusterError(
                f"a message of {size} bytes is over the server's limit of {self.max_payload} bytes "
                f"({self.url}); send smaller messages, or raise the server's max_payload"
            )
        if len(self._out) > _HARD_LIMIT:
            raise ClusterError(
                f"more than {_HARD_LIMIT} bytes wait to be sent to {self.url}; the server or the network "
                "is too slow: send with `await tell()` to wait for room"
            )

    def publish(self, subject: str, payload: bytes, reply: str | None = None, *, now: bool = False) -> None:
        """Queue one message for the server (sent by the writer, in order).

        ``now``: when nothing else waits to be sent, write it to the socket
        at once, in this task (an ask or an answer: it saves a turn of the
        writer task on the round trip). Otherwise messages wait for the
        writer, which sends everything gathered in one system call.

        Raises:
            ClusterError: not connected, over the payload limit, or the
                outgoing buffer is full.
        """
        self._check(len(payload))
        out = self._out
        try:
            if reply is None:
                head = b"PUB %s %d\r\n" % (subject.encode(errors=_SUBJECT_ERRORS), len(payload))
            else:
                head = b"PUB %s %s %d\r\n" % (
                    subject.encode(errors=_SUBJECT_ERRORS),
                    reply.encode(errors=_SUBJECT_ERRORS),
                    len(payload),
                )
        except UnicodeEncodeError:
            raise ClusterError(
                f"cannot publish to {subject!r} (reply {reply!r}): a subject is UTF-8 text; nothing was sent"
            ) from None
        raw = self._raw
        if now and raw is not None and not out and not self._inflight:
            data = b"".join((head, payload, _CRLF))
            try:
                sent = raw.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:  # the reader or writer finds out too, and the connection is lost
                sent = 0
            if sent == len(data):
                return
            out += memoryview(data)[sent:]
        else:
            out += head
            out += payload
            out += _CRLF
        self._wake_writer.set()

    def pending_bytes(self) -> int:
        """How many bytes wait for the writer."""
        return len(self._out)

    async def wait_writable(self) -> None:
        """Wait while more than a few MB wait to be sent (backpressure for ``await tell``)."""
        while len(self._out) >= _HIGH_WATER and self.connected:
            await self._drained.wait()

    def subscribe(self, subject: str, callback: Callback, queue: str | None = None) -> int:
        """Subscribe; return the subscription id (for `unsubscribe`). Kept across reconnects."""
        sid = self._next_sid
        self._next_sid += 1
        sub = _Sub(subject, queue, callback)
        self._subs[sid] = sub
        if self.connected:
            self._out += self._sub_line(sid, sub)
            self._wake_writer.set()
        return sid

    @staticmethod
    def _sub_line(sid: int, sub: _Sub) -> bytes:
        if sub.queue is None:
            return b"SUB %s %d\r\n" % (sub.subject.encode(), sid)
        return b"SUB %s %s %d\r\n" % (sub.subject.encode(), sub.queue.encode(), sid)

    def unsubscribe(self, sid: int) -> None:
        """End a subscription (a no-op for an unknown id)."""
        if self._subs.pop(sid, None) is not None and self.connected:
            self._out += b"UNSUB %d\r\n" % sid
            self._wake_writer.set()

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the server has processed everything sent so far; False if it did not in time."""
        if not self.connected:
            return False
        pong = trio.Event()
        self._pongs.append(pong)
        self._out += b"PING\r\n"
        self._wake_writer.set()
        with trio.move_on_after(timeout):
            await pong.wait()
            return self.connected
        return False

    async def close(self, timeout: float = 2.0) -> None:
        """Send what is queued, wait for the server to have processed it, then close for good.

        What is queued (and what the writer had not finished writing, if
        `run` was cancelled mid-write) is written, then a ``PING``; the
        connection closes when the ``PONG`` comes, or after ``timeout``
        seconds. Messages arriving meanwhile are dropped (``ignored``).
        Shielded from cancellation; a `run` still going is ended first.
        """
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            scope = self._run_scope
            if scope is not None:
                scope.cancel()
                await self._run_done.wait()
            stream, self._stream = self._stream, None
            was_connected = self.connected
            self.connected = False
            self._raw = None
            try:
                if stream is not None and was_connected:
                    lost = (_Lost, ValueError, trio.BrokenResourceError, trio.ClosedResourceError, OSError)
                    with trio.move_on_after(timeout), contextlib.suppress(*lost):  # at most once
                        await self._last_flush(stream)
            finally:
                self._out = bytearray()
                self._inflight = bytearray()
                self._in = bytearray()
                self._drained.set()
                while self._pongs:
                    self._pongs.popleft().set()
                if stream is not None:
                    await trio.aclose_forcefully(stream)

    async def _last_flush(self, stream: trio.abc.Stream) -> None:
        """Send the rest and a PING, and read until its PONG (the reader and writer have ended)."""
        pong = trio.Event()
        self._pongs.append(pong)
        self._out += b"PING\r\n"
        buf = self._in
        while True:
            data = self._inflight[self._inflight_sent :] + self._out
            self._inflight, self._inflight_sent, self._out = bytearray(), 0, bytearray()
            if data:
                await stream.send_all(data)
            if pong.is_set():
                return
            received = await stream.receive_some(65536)
            if not received:
                return
            buf += received
            del buf[: self._parse(buf)]


def _refused(text: str) -> ClusterError:
    return ClusterError(text)


def _status(headers: bytes) -> int | None:
    """The status code of a header block (``NATS/1.0 503``), or None without one."""
    first = headers.split(b"\r\n", 1)[0]
    parts = first.split()
    if len(parts) >= 2 and parts[1].isdigit():  # noqa: PLR2004 - "NATS/1.0" and the code
        return int(parts[1])
    return None


async def _read_line(stream: trio.abc.Stream, buf: bytearray) -> bytearray:
    """One protocol line during the handshake (``buf`` keeps what came after it)."""
    while True:
        eol = buf.find(_CRLF)
        if eol >= 0:
            line = buf[:eol]
            del buf[: eol + 2]
            return line
        if len(buf) > _MAX_LINE:
            raise _Lost("a handshake line too long")
        data = await stream.receive_some(65536)
        if not data:
            raise _Lost("the server closed the connection during the handshake")
        buf += data
