"""The server's life: it stops with the system (nothing left, the port free), a taken port, bad arguments."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest
import trio

import troupe
import troupe.web
from troupe.actors._cell import failure_log

from apikit import port_is_free, served


async def test_the_server_stops_with_the_system() -> None:
    level, propagate = failure_log.level, failure_log.propagate
    async with troupe.open_system() as system:
        dashboard = await troupe.web.serve(system, port=0)
        async with httpx.AsyncClient() as client:
            assert (await client.get(dashboard.url + "api/system")).status_code == 200
        assert not port_is_free(dashboard.port)
        assert failure_log.level == logging.DEBUG
    # open_system returned: its nursery, where the server ran, has no task left
    assert dashboard.stopped
    assert port_is_free(dashboard.port)
    assert (failure_log.level, failure_log.propagate) == (level, propagate)
    assert not failure_log.handlers
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(dashboard.url + "api/system")


async def test_stop_before_the_system() -> None:
    async with served() as (system, dashboard, client):
        assert system.lookup(f"/system/web-{dashboard.port}") is not None
        await dashboard.stop()
        assert dashboard.stopped
        assert port_is_free(dashboard.port)
        assert system.lookup(f"/system/web-{dashboard.port}") is None
        with pytest.raises(httpx.TransportError):
            await client.get("/api/system")
        await dashboard.stop()  # a second stop does nothing


async def test_two_dashboards_on_one_system() -> None:
    async with troupe.open_system() as system:
        one = await troupe.web.serve(system, port=0)
        two = await troupe.web.serve(system, port=0, token="other")  # noqa: S106 - a test token
        assert one.port != two.port
        async with httpx.AsyncClient() as client:
            for dashboard in (one, two):
                assert (await client.get(dashboard.url + "api/system")).json()["running"] is True


async def test_a_taken_port_is_a_web_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with troupe.open_system() as system:
            with pytest.raises(troupe.web.WebError, match=rf"127\.0\.0\.1:{port}.*pick another port"):
                await troupe.web.serve(system, port=port)
            assert not failure_log.handlers
            assert [ref.path for ref in system.actors()] == []


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"port": -1}, "port is a number from 0 to 65535"),
        ({"port": "80"}, "port is a number"),
        ({"host": ""}, "host is an address"),
        ({"token": "has space"}, "token is a non-empty string"),
        ({"token": ""}, "token is a non-empty string"),
        ({"token": "caf\u00e9"}, "printable ASCII"),
    ],
)
async def test_bad_arguments(options: dict[str, object], words: str) -> None:
    async with troupe.open_system() as system:
        with pytest.raises(troupe.web.WebError, match=words):
            await troupe.web.serve(system, **options)  # type: ignore[arg-type]


async def test_a_closing_system_is_refused() -> None:
    async with troupe.open_system() as system:
        pass
    with pytest.raises(troupe.web.WebError, match="is shutting down"):
        await troupe.web.serve(system, port=0)


async def test_a_slow_client_does_not_hold_the_shutdown() -> None:
    with trio.fail_after(5):
        async with troupe.open_system(shutdown_timeout=3) as system:
            dashboard = await troupe.web.serve(system, port=0)
            sock = trio.socket.socket()
            await sock.connect(("127.0.0.1", dashboard.port))
            await sock.send(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # and never reads
            idle = trio.socket.socket()
            await idle.connect(("127.0.0.1", dashboard.port))  # and never asks
            started = trio.current_time()
        assert trio.current_time() - started < 2
        sock.close()
        idle.close()
