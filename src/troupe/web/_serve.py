"""`serve` and `serve_store`: the dashboard's server on hypercorn's trio worker, and its `Dashboard`.

The server runs in a task of the system's nursery, next to the flusher of the event tap,
and a small runtime actor (``/system/web-PORT``) whose ``on_stop`` tells
the streams the system stopped and shuts the server down within about a
second: the system's shutdown never waits on a client.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, final

import trio
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app
from starlette.applications import Starlette

from ..actors import Actor
from ..jobs import SQLiteJobStore
from ._app import LOOPBACK, build_app
from ._errors import WebError
from ._jobsource import StoreJobs, SystemJobs
from ._site import Site
from ._sse import Hub, LifecycleTap, Tap, flusher, poll_store
from ._state import SystemView

if TYPE_CHECKING:
    import os

    from ..actors import ActorRef, ActorSystem
    from ..tasks import TaskHandle

log = logging.getLogger("troupe.web")
GRACE = 0.5  # seconds open requests (and idle keep-alive connections) get once the server stops


@final
class Dashboard:
    """A dashboard being served; from `serve` (or `serve_store`).

    Example:
        ```python
        async with troupe.open_system() as system:
            dashboard = await troupe.web.serve(system, port=8000)
            print("dashboard at", dashboard.url, "token", dashboard.token)
        ```
    """

    def __init__(self, site: Site, host: str, token: str | None) -> None:
        self._site = site
        self._host = host
        self._port = 0
        self._token = token
        self._shutdown = trio.Event()
        self._done = trio.Event()
        self._lifeline: ActorRef[object] | None = None

    def __repr__(self) -> str:
        return f"<Dashboard {self.url}>"

    @property
    def host(self) -> str:
        """The address it listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port it listens on (the one picked when asked for port 0)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port/``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}/"

    @property
    def token(self) -> str | None:
        """The bearer token that ``POST /api/jobs/{id}/cancel`` needs (None: read-only)."""
        return self._token

    @property
    def stopped(self) -> bool:
        """True once the server has stopped."""
        return self._done.is_set()

    def bind(self, handle: TaskHandle[Any]) -> str:
        """Kore's ``bind_request``: stream ``handle``'s channel to one HTTP client; return the URL path.

        Binds the task's ``events()`` now (no write is missed); a GET on the
        returned path (``/api/bound/KEY``, once) streams ``event: message``
        per write, then ``event: end`` with the outcome. The client going
        away ends the binding, not the task: its later writes are read and
        dropped so it never waits on the channel.

        Raises:
            TypeError: ``handle`` is not a TaskHandle.
            TaskStateError: the task has no channel, or something is bound to it already.
        """
        return self._site.bindings.bind(handle)

    async def stop(self) -> None:
        """Stop serving: the event streams say ``stopped``, open requests get a second, then it is gone."""
        await self._close()
        lifeline, self._lifeline = self._lifeline, None
        if lifeline is not None and lifeline.alive:
            await lifeline.stop()

    async def _close(self) -> None:
        self._site.stop()
        self._shutdown.set()
        await self._done.wait()

    async def _serve(
        self,
        config: Config,
        sock: socket.socket,
        system: ActorSystem | None,
        *,
        task_status: trio.TaskStatus[None],
    ) -> None:
        """Serve on ``sock`` (bound and listening) until `stop` or a cancel."""
        site = self._site
        started = False
        try:
            async with contextlib.AsyncExitStack() as stack:
                tapped = False
                if system is not None and site.view is not None:
                    site.view.failures.install()
                    stack.callback(site.view.failures.remove)
                    stack.callback(system.events._tap(Tap.PATTERN, Tap(site.hub, site.view.see)))
                    stack.callback(_count_lives(system, site.hub))
                    tapped = True
                async with trio.open_nursery() as inner:
                    site.bindings.nursery = system._nursery if system is not None else inner
                    if tapped:
                        inner.start_soon(flusher, site.hub)
                    elif isinstance(site.jobs, StoreJobs):
                        inner.start_soon(poll_store, site.jobs.list, site.hub)
                    server_done = trio.Event()
                    app = build_app(site, loopback=self._host in LOOPBACK)
                    await inner.start(self._server, app, config, sock, server_done)
                    started = True
                    task_status.started()
                    await self._shutdown.wait()
                    site.stop()
                    # The server ends once the streams have ended (GRACE bounds the rest); then the flusher.
                    with trio.move_on_after(GRACE * 3):
                        await server_done.wait()
                    inner.cancel_scope.cancel()
        except Exception:
            if not started:
                raise
            # In the system's nursery: a failure of the dashboard must not end the system.
            log.exception("the dashboard at %s failed and stopped; the system goes on", self.url)
        finally:
            sock.close()
            site.stop()
            self._done.set()

    async def _server(
        self,
        app: Starlette,
        config: Config,
        sock: socket.socket,
        done: trio.Event,
        *,
        task_status: trio.TaskStatus[None],
    ) -> None:
        """Serve ``app`` on ``sock`` as hypercorn's trio worker does; close what is left after the grace.

        hypercorn's own binding leaves the socket open when the port is taken
        (a ResourceWarning later). hypercorn shields its socket writes: a client
        that reads nothing would hold a write, and so the server's end (and the
        system's), until it leaves; closing its socket ends the write.
        """
        wrapped = wrap_app(cast("Any", app), config.wsgi_max_body_size, "asgi")
        context = WorkerContext(None)
        streams: set[trio.SocketStream] = set()

        async def connection(stream: trio.SocketStream) -> None:
            streams.add(stream)
            try:
                await TCPServer(
                    wrapped, config, context, ConnectionState({}), cast("Any", stream)
                )  # plain streams too
            finally:
                streams.discard(stream)

        async def close_the_rest() -> None:
            await trio.sleep(config.graceful_timeout)
            for stream in list(streams):
                stream.socket.close()

        try:
            async with trio.open_nursery() as closing:
                async with trio.open_nursery() as connections:
                    async with trio.open_nursery() as accepting:
                        listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
                        accepting.start_soon(
                            functools.partial(
                                trio.serve_listeners, connection, [listener], handler_nursery=connections
                            )
                        )
                        task_status.started()
                        await self._shutdown.wait()
                        accepting.cancel_scope.cancel()
                    await context.terminated.set()  # keep-alive connections close after their request
                    connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
                    closing.start_soon(close_the_rest)
                closing.cancel_scope.cancel()
        finally:
            done.set()


def _count_lives(system: ActorSystem, hub: Hub) -> Callable[[], None]:
    """Let ``hub`` sum up actors' lives from the system's counters, and tap them while a client wants each."""

    def counts() -> tuple[int, int]:
        return system._stats_started, system._stats_ended

    untaps: list[Callable[[], None]] = []

    def lifecycle(each: int) -> None:
        if each and not untaps:
            tap = LifecycleTap(hub)
            untaps.extend(system.events._tap(topic, tap) for topic in LifecycleTap.PATTERNS)
        elif not each:
            while untaps:
                untaps.pop()()

    def forget() -> None:
        hub.count_lives(None)
        hub.lifecycle = None
        lifecycle(0)

    hub.count_lives(counts)
    hub.lifecycle = lifecycle
    return forget


def _listen(host: str, port: int, config: Config) -> socket.socket:
    """A socket bound to ``host:port`` and listening (as hypercorn binds); WebError if it cannot be."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.setblocking(False)  # noqa: FBT003 - the socket module's API
        sock.listen(config.backlog)
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        msg = (
            f"cannot serve the dashboard on {where}: {exc.strerror or exc}; "
            "pick another port (port=0 picks a free one) or stop what uses it"
        )
        raise WebError(msg) from exc
    return sock


def _config(host: str, port: int) -> Config:
    if not isinstance(host, str) or not host:
        msg = f"host is an address to listen on, like '127.0.0.1', got {host!r}"
        raise WebError(msg)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:  # noqa: PLR2004
        msg = f"port is a number from 0 to 65535 (0 picks a free one), got {port!r}"
        raise WebError(msg)
    config = Config()
    config.accesslog = None
    config.errorlog = logging.getLogger("troupe.web.server")
    config.graceful_timeout = GRACE
    config.include_server_header = False
    return config


def _check_token(token: object) -> str | None:
    if token is None:
        return None
    if (
        not isinstance(token, str)
        or not token.isascii()
        or not token.isprintable()
        or " " in token
        or not token
    ):
        msg = "token is a non-empty string of printable ASCII, no spaces (secrets.token_urlsafe() makes one)"
        raise WebError(msg)
    return token


class _Lifeline(Actor[object]):
    """Under ``/system``: its ``on_stop`` (the system shutting down) stops the dashboard, bounded."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    async def receive(self, msg: object) -> None:
        """It takes no messages."""

    async def on_stop(self) -> None:
        with trio.move_on_after(GRACE * 4):
            await self.dashboard._close()


async def serve(
    system: ActorSystem, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None
) -> Dashboard:
    """Serve ``system``'s dashboard and JSON API; return once it listens.

    The server runs in the system's nursery and stops with the system
    (the event streams say ``stopped`` first); `Dashboard.stop` stops it
    earlier. Cancelling a job needs ``Authorization: Bearer TOKEN``.

    Args:
        system: the running system to show.
        host: the address to listen on; the default is this machine only.
        port: the port; 0 picks a free one (`Dashboard.port` says which).
        token: the bearer token for changes; None makes one
            (``secrets.token_urlsafe(24)``, `Dashboard.token`).

    Raises:
        WebError: the port is taken (or the address cannot be used), a bad
            host, port or token, or the system is shutting down.
    """
    if system._closing or system._nursery is None:
        msg = f"system {system.name!r} is shutting down; serve its dashboard while it runs"
        raise WebError(msg)
    token = _check_token(token) or secrets.token_urlsafe(24)
    config = _config(host, port)
    view = SystemView(system)
    dashboard = Dashboard(Site(view, SystemJobs(system), token), host, token)
    sock = _listen(host, port, config)
    dashboard._port = sock.getsockname()[1]
    try:
        await system._nursery.start(dashboard._serve, config, sock, system)
    except BaseException:
        sock.close()
        raise
    try:
        dashboard._lifeline = await system._spawn_system(
            functools.partial(_Lifeline, dashboard), name=f"web-{dashboard.port}"
        )
    except BaseException:  # cancelled (or the system closing): no server is left without its Dashboard
        with trio.CancelScope(shield=True):
            await dashboard._close()
        raise
    return dashboard


@asynccontextmanager
async def serve_store(
    store_path: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None
) -> AsyncIterator[Dashboard]:
    """Serve a job store alone (``troupe jobs serve --db PATH``) while the block runs.

    Only ``/api/system`` and ``/api/jobs`` answer (and the page). Read-only
    without a token; with one, ``POST /api/jobs/{id}/cancel`` flags the job
    for the process that owns it (which cancels it within about a second).

    Example:
        ```python
        async with troupe.web.serve_store("jobs.sqlite", port=8001) as dashboard:
            print("jobs at", dashboard.url)
            await trio.sleep_forever()
        ```

    Raises:
        JobStoreError: no store at ``store_path``, or it is not a readable job store.
        WebError: the port is taken, or a bad host, port or token.
    """
    token = _check_token(token)
    config = _config(host, port)
    store = SQLiteJobStore(Path(store_path))
    store.open(None)
    try:
        dashboard = Dashboard(Site(None, StoreJobs(store), token), host, token)
        sock = _listen(host, port, config)
        dashboard._port = sock.getsockname()[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(dashboard._serve, config, sock, None)
            try:
                yield dashboard
            finally:
                with trio.CancelScope(shield=True):
                    await dashboard.stop()
    finally:
        store.close(None)
