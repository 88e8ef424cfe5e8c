"""Helpers of the API tests: a served system and an httpx client on it, and an SSE reader."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

import troupe
import troupe.web

TOKEN = "s3cret-token"  # noqa: S105 - the tests' token
"""The token of `served`'s dashboard."""


@asynccontextmanager
async def served(
    *, jobs: bool = True, token: str | None = TOKEN, **options: Any
) -> AsyncIterator[tuple[troupe.ActorSystem, troupe.web.Dashboard, httpx.AsyncClient]]:
    """A system (with a memory job store unless ``jobs=False``), its dashboard on a free port, a client."""
    store = troupe.MemoryJobStore() if jobs else None
    async with troupe.open_system(jobs=store, **options) as system:
        dashboard = await troupe.web.serve(system, port=0, token=token)
        async with httpx.AsyncClient(base_url=dashboard.url, timeout=10) as client:
            yield system, dashboard, client


def port_is_free(port: int) -> bool:
    """Whether nothing listens on ``port`` of 127.0.0.1 (a stopped dashboard's port is free again)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def bearer(token: str) -> dict[str, str]:
    """The header that authorizes a change."""
    return {"Authorization": f"Bearer {token}"}


async def sse(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """The server-sent events of a streamed response: ``(event, data as JSON)``; comments skipped."""
    event, data = "message", list[str]()
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", list[str]()
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)


@asynccontextmanager
async def streaming(
    client: httpx.AsyncClient, path: str
) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[tuple[str, Any]]]]:
    """GET ``path`` as a stream: the response and its events; on exit the connection is closed.

    The events' generators (httpx's too) are run to their end after the
    close, so none is left for the garbage collector (a warning under trio).
    """
    async with client.stream("GET", path) as response:
        events = sse(response)
        try:
            yield response, events
        finally:
            await response.aclose()
            with contextlib.suppress(Exception):
                async for _ in events:
                    pass


async def next_event(events: AsyncIterator[tuple[str, Any]], *skipping: str) -> tuple[str, Any]:
    """The next event whose name is not in ``skipping``."""
    async for name, data in events:
        if name not in skipping:
            return name, data
    raise AssertionError("the stream ended")
