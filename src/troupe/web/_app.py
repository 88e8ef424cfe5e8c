"""The Starlette app: the routes, the static page, the SSE endpoints, and errors as JSON.

No handler ever answers with a traceback: an unexpected exception is
logged (``troupe.web``) and answered with a generic 500 ``{"error"}``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import trio
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import _api as api
from ._encode import error_response, shorten
from ._site import Site

log = logging.getLogger("troupe.web")

STATIC = Path(__file__).parent / "static"
HEARTBEAT = 10.0  # seconds between SSE comments on a quiet stream
SEND_TIMEOUT = 30.0  # seconds a stream may wait on a client that reads nothing before it is closed
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-store"}


async def index(_: Request) -> Response:
    """``GET /``: the page."""
    page = STATIC / "index.html"
    if not page.is_file():
        return error_response(404, f"the dashboard's page is missing ({page}); reinstall trio-troupe[web]")
    return FileResponse(page, media_type="text/html", headers=_PAGE_HEADERS)


async def events(request: Request) -> Response:
    """``GET /api/events``: SSE of the bus's ``troupe.**`` events, batched (see `_sse`)."""
    hub = api.site_of(request).hub
    if request.method == "HEAD":
        return Response(headers=_SSE_HEADERS)
    lifecycle = request.query_params.get("lifecycle", "summary")
    if lifecycle not in {"summary", "each"}:
        return error_response(
            400, f"lifecycle must be 'summary' (the default) or 'each', got {lifecycle[:40]!r}"
        )
    client = hub.open(lifecycle=lifecycle == "each")
    if client is None:
        return error_response(503, f"{hub.max_clients} event streams are open already; close some and retry")
    return _Stream(
        hub.stream(client),
        stalled=functools.partial(hub.close, client),
        ping=HEARTBEAT,
        send_timeout=SEND_TIMEOUT,
        background=BackgroundTask(hub.close, client),
    )


class _Stalled(Exception):
    """A send to the client waited longer than ``send_timeout``: the stream ends once it returns."""


class _Stream(EventSourceResponse):
    """An event stream that gives up its place when a send to its client waits longer than ``send_timeout``.

    hypercorn shields its socket writes, so sse-starlette's ``send_timeout``
    cannot end a send to a client that reads nothing: such a stream stays
    until the client goes. ``stalled`` is called then (once): the hub drops
    the client, so its place among ``max_clients`` and its queue are free.
    Should the client read again, the stream ends there (an EventSource
    connects again and is told what it missed no more than a new client).
    """

    def __init__(
        self, content: AsyncIterator[dict[str, Any]], *, stalled: Callable[[], None], **options: Any
    ) -> None:
        super().__init__(content, **options)
        self._stalled = stalled
        self._gave_up = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream, watching how long each send to the client waits."""
        sending: list[float] = []  # when each send under way started
        timeout = self.send_timeout or SEND_TIMEOUT

        async def watched(message: Message) -> None:
            started = trio.current_time()
            sending.append(started)
            try:
                await send(message)
            finally:
                sending.remove(started)
            if self._gave_up:
                raise _Stalled

        async def watchdog() -> None:
            while True:
                await trio.sleep(timeout / 4)
                if sending and trio.current_time() - min(sending) > timeout:
                    self._gave_up = True
                    self._stalled()
                    return

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watchdog)
                try:
                    await super().__call__(scope, receive, watched)
                finally:
                    nursery.cancel_scope.cancel()
        except* (_Stalled, SendTimeoutError) as group:
            if not self._gave_up:  # sse-starlette's own timeout, on a send that was not shielded
                raise group.exceptions[0] from None
            # the client read again after its place was given up: the response ends here, cut short


async def bound(request: Request) -> Response:
    """``GET /api/bound/{key}``: a bound task's channel (see `Dashboard.bind`)."""
    bindings = api.site_of(request).bindings
    key: str = request.path_params["key"]
    if request.method == "HEAD":  # what a GET would answer, without taking the binding
        found = bindings.items.get(key)
        return (
            Response(headers=_SSE_HEADERS)
            if found is not None and not found.taken
            else error_response(404, "no such binding, or it was streamed already")
        )
    binding = bindings.take(key)
    if binding is None:
        return error_response(
            404, f"no binding {shorten(key, 40)!r}: it was streamed already (once only) or never made"
        )
    return EventSourceResponse(
        bindings.stream(key, binding),
        ping=HEARTBEAT,
        send_timeout=SEND_TIMEOUT,
        background=BackgroundTask(bindings.release, key, binding),
    )


async def _bad_request(_: Request, exc: Exception) -> Response:
    return error_response(400, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for it
    if exc.status_code == 404:  # noqa: PLR2004
        text = f"no such page or endpoint: {shorten(request.url.path, 80)!r}; the API is under /api/"
    elif exc.status_code == 405:  # noqa: PLR2004
        text = f"{request.method} is not allowed on {shorten(request.url.path, 80)!r}"
    else:
        text = exc.detail
    return error_response(exc.status_code, text)


async def _crash(request: Request, exc: Exception) -> Response:
    log.error("the dashboard failed on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500,
        "the dashboard failed on this request (a bug in troupe.web); the error is logged under 'troupe.web': "
        "please report it with that log",
    )


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _host_name(host: str) -> str:
    """The name in a ``Host`` header (``name``, ``name:port``, ``[v6]``, ``[v6]:port``); "" if not one."""
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket:
            return ""
    else:
        name, bracket, rest = host.rpartition(":")
        if not bracket:
            return host
        rest = ":" + rest
    if rest and not (rest.startswith(":") and rest[1:].isascii() and rest[1:].isdigit()):
        return ""  # "[::1].evil.example", "localhost:evil": not a host and port
    return name


class _HostCheck:
    """On a loopback address, answer only requests for a loopback host (no DNS rebinding to read the API)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = Headers(scope=scope).get("host", "")
            if _host_name(host) not in LOOPBACK:
                text = f"this dashboard answers on 127.0.0.1 or localhost only, not {shorten(host, 60)!r}"
                await error_response(421, text)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(site: Site, *, loopback: bool) -> Starlette:
    """The app serving ``site``; ``loopback``: it listens on a loopback address only."""
    routes = [
        Route("/", index),
        Route("/api/system", api.system),
        Route("/api/actors", api.actors),
        Route("/api/tasks", api.tasks),
        Route("/api/jobs", api.jobs),
        Route("/api/jobs/{job_id}", api.job),
        Route("/api/jobs/{job_id}/cancel", api.cancel_job, methods=["POST"]),
        Route("/api/deadletters", api.dead_letters),
        Route("/api/events", events),
        Route("/api/bound/{key}", bound),
        Mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static"),
    ]
    handlers = {api.BadRequest: _bad_request, HTTPException: _http_error, Exception: _crash}
    middleware = [Middleware(_HostCheck)] if loopback else []
    app = Starlette(routes=routes, exception_handlers=handlers, middleware=middleware)
    app.state.site = site
    return app
