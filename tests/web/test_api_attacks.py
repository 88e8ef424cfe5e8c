"""An attacker's review of the HTTP API: bad input is a JSON 4xx, changes need the token, nothing hangs.

Each test tries to break one promise through the real server on a free
loopback port (``apikit.served``); raw sockets send what httpx refuses to.
"""

from __future__ import annotations

import builtins
import contextlib
import math
import socket
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import pytest
import trio

import troupe
import troupe.web
from troupe import JobRecord, JobStatus

from apikit import TOKEN, bearer, next_event, served, streaming
from kit import eventually

RST = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close() resets the connection


async def raw(port: int, request: bytes, *, reset: bool = False) -> bytes:
    """Send ``request`` on a new connection; the answer (until it is whole, or 5 s), or b"" on ``reset``."""
    with trio.socket.socket() as sock:
        await sock.connect(("127.0.0.1", port))
        await sock.send(request)
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST)
            return b""
        answer = bytearray()
        with trio.move_on_after(5):  # a bound: a keep-alive connection stays open after its answer
            while b"\r\n\r\n" not in answer or not _complete(bytes(answer)):
                chunk = await sock.recv(1 << 16)
                if not chunk:
                    break
                answer.extend(chunk)
        return bytes(answer)


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP/1.1 answer."""
    return int(answer.split(b" ", 2)[1])


def assert_json_error(response: httpx.Response, *statuses: int) -> str:
    """A 4xx (one of ``statuses`` if given) whose body is ``{"error": text}``, no traceback; the text."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if statuses:
        assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert "Traceback" not in response.text
    text: str = body["error"]
    return text


# -- query parameters and ids --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/actors", "/api/jobs"])
@pytest.mark.parametrize("name", ["offset", "limit"])
@pytest.mark.parametrize(
    "value",
    [
        "\u00b2",  # a superscript two: str.isdigit() says yes, int() says no
        "\u0661\u0662",  # Arabic-Indic digits: int() reads them as 12
        "\U0001d7d3",  # a mathematical bold 5
        "-1",
        "-0",
        "+1",
        "1.0",
        "1e3",
        "0x10",
        " 1",
        "1 ",
        "1_000",
        "NaN",
        "inf",
        "9" * 40,
        "\x00",
    ],
)
async def test_counts_are_ascii_whole_numbers(path: str, name: str, value: str) -> None:
    async with served() as (_, _, client):
        response = await client.get(path, params={name: value})
        assert "whole number" in assert_json_error(response, 400)


@pytest.mark.parametrize(("value", "given"), [("", None), ("0", 0), ("007", 7), ("1000", 1000)])
async def test_counts_at_their_bounds(value: str, given: int | None) -> None:
    async with served() as (_, _, client):
        for path in ["/api/actors", "/api/jobs"]:
            response = await client.get(path, params={"limit": value})
            assert response.status_code == 200
            body = response.json()
            if given is not None:
                assert len(body["items"]) <= given
        assert "at most 1000" in assert_json_error(
            await client.get("/api/jobs", params={"limit": "1001"}), 400
        )


async def test_the_largest_offset_the_error_names_is_taken() -> None:
    async with served() as (_, _, client):
        for path in ["/api/actors", "/api/jobs"]:
            largest = await client.get(path, params={"offset": str(10**9)})
            assert largest.status_code == 200, largest.text
            assert largest.json()["items"] == []
            beyond = await client.get(path, params={"offset": str(10**9 + 1)})
            assert "at most 1000000000" in assert_json_error(beyond, 400)


async def test_repeated_and_unknown_parameters_never_fail_the_server() -> None:
    async with served() as (_, _, client):
        for query in [
            "limit=1&limit=x",
            "limit=x&limit=1",
            "status=running&status=nope",
            "offset",
            "offset=&limit=",
            "unknown=1&%00=%00",
            "limit=%FF%FE",
            "status=%E2%80%8Brunning",  # a zero-width space before the word
            "&&&===",
        ]:
            for path in ["/api/actors", "/api/jobs", "/api/tasks", "/api/system", "/api/deadletters"]:
                response = await client.get(f"{path}?{query}")
                assert response.status_code < 500, (path, query, response.text)
                if response.status_code >= 400:
                    assert_json_error(response)


@pytest.mark.parametrize(
    "under",
    [
        "/",
        "//",
        "/user//",
        "/user/../system",
        "/user/./x",
        "/\x00",
        "/user\x00",
        "/\u00e9t\u00e9",
        "/a" * 2000,
        "/" + "b" * 4095,
    ],
)
async def test_odd_actor_paths(under: str) -> None:
    async with served() as (_, _, client):
        response = await client.get("/api/actors", params={"under": under})
        if response.status_code == 200:
            assert under.rstrip("/") in {"", "/user"}
        else:
            assert_json_error(response, 400, 404)


@pytest.mark.parametrize(
    "job_id",
    [
        "..",
        "%2e%2e",
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "a%2Fb",
        "a%00b",
        "a%0Ab",
        "%E2%80%AE",  # right-to-left override
        "-leading-dash",
        "x" * 129,
        "x" * 100_00,
        "%25",
        "a%20",
    ],
)
async def test_garbage_job_ids(job_id: str) -> None:
    async with served() as (_, _, client):
        for response in [
            await client.get(f"/api/jobs/{job_id}"),
            await client.post(f"/api/jobs/{job_id}/cancel", headers=bearer(TOKEN)),
        ]:
            assert_json_error(response, 400, 404, 405)


async def test_the_longest_job_id_is_looked_up() -> None:
    async with served() as (_, _, client):
        response = await client.get("/api/jobs/" + "x" * 128)
        assert "no job" in assert_json_error(response, 404)


async def test_a_request_line_too_long_or_not_http_is_refused_and_the_server_goes_on() -> None:
    async with served() as (_, dashboard, client):
        for request in [
            b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"GET /api/jobs/\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"GET /api/system HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"y" * 100_000 + b"\r\n\r\n",
            b"GARBAGE\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello
        ]:
            answer = await raw(dashboard.port, request)
            if answer:
                assert 400 <= status_of(answer) < 500, answer[:200]
                assert b"Traceback" not in answer
        assert (await client.get("/api/system")).status_code == 200


# -- methods and bodies --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"])
async def test_methods_the_endpoints_do_not_take_are_405(method: str) -> None:
    async with served() as (_, _, client):
        for path in ["/api/system", "/api/actors", "/api/jobs", "/api/jobs/abc", "/api/jobs/abc/cancel"]:
            response = await client.request(method, path, headers=bearer(TOKEN))
            assert f"{method} is not allowed" in assert_json_error(response, 405)
        for path in ["/api/system", "/api/jobs", "/api/jobs/abc", "/api/events"]:
            response = await client.post(path, headers=bearer(TOKEN))
            assert_json_error(response, 405)


async def _forever() -> None:
    await trio.sleep_forever()


async def _record(system: troupe.ActorSystem, job_id: str | None) -> JobRecord:
    assert system.jobs is not None
    assert job_id is not None
    record = await system.jobs.get(job_id)
    assert record is not None
    return record


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b"\xff\xfe\x00garbage",
        b'{"cancel": false, "force": true}',
        b"x" * 60_000,
    ],
)
async def test_the_cancel_body_is_ignored_whatever_it_is(body: bytes) -> None:
    async with served() as (system, _, client):
        t = await troupe.submit_job(_forever, name="forever")
        url = f"/api/jobs/{t.job_id}/cancel"
        refused = await client.post(url, content=body, headers={"Content-Type": "application/json"})
        assert_json_error(refused, 401)
        assert (await _record(system, t.job_id)).status is JobStatus.RUNNING
        done = await client.post(url, content=body, headers={**bearer(TOKEN), "Content-Type": "text/plain"})
        assert done.status_code == 200
        assert (await _record(system, t.job_id)).status is JobStatus.CANCELLED


async def test_a_huge_cancel_body_is_answered_without_reading_it_all() -> None:
    async with served() as (system, dashboard, client):
        t = await troupe.submit_job(_forever, name="forever")
        size = 50_000_000
        for token, status in [("wrong", 401), (TOKEN, 200)]:
            head = (
                f"POST /api/jobs/{t.job_id}/cancel HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: {size}\r\n\r\n"
            ).encode()
            with trio.socket.socket() as sock, trio.fail_after(20):
                await sock.connect(("127.0.0.1", dashboard.port))
                answer = bytearray()

                async def send_body(head: bytes) -> None:
                    await sock.send(head)
                    chunk = b"z" * 65536
                    with contextlib.suppress(OSError):
                        for _ in range(size // len(chunk)):
                            await sock.send(chunk)
                    await trio.sleep_forever()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(send_body, head)
                    while b"\r\n\r\n" not in answer:
                        answer.extend(await sock.recv(1 << 16))
                    nursery.cancel_scope.cancel()
            assert status_of(bytes(answer)) == status
        assert (await client.get("/api/system")).status_code == 200
        assert (await _record(system, t.job_id)).status is JobStatus.CANCELLED


async def test_a_body_shorter_than_its_length_does_not_hold_the_server() -> None:
    async with served() as (system, dashboard, client):
        t = await troupe.submit_job(_forever, name="forever")
        request = (
            f"POST /api/jobs/{t.job_id}/cancel HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: 1000000\r\n\r\nonly this"
        ).encode()
        with trio.socket.socket() as sock:
            await sock.connect(("127.0.0.1", dashboard.port))
            await sock.send(request)  # and the rest never comes
            assert (await client.get("/api/system")).status_code == 200
            with trio.fail_after(10):
                answer = await sock.recv(1 << 16)
            assert status_of(answer) == 200
        assert (await _record(system, t.job_id)).status is JobStatus.CANCELLED


# -- the token -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        b"",
        b"Bearer",
        b"Bearer ",
        b"Bearer " + TOKEN.encode()[:-1],
        b"Bearer " + TOKEN.encode() + b"x",
        b"Bearer " + TOKEN.upper().encode(),
        b"Bearer " + TOKEN.encode() + b"\x00",
        b"Bearer " + TOKEN.encode() + b" " + TOKEN.encode(),
        b"Bearer\t" + TOKEN.encode(),
        b"Bearer:" + TOKEN.encode(),
        b"Bearer=" + TOKEN.encode(),
        b"Basic " + TOKEN.encode(),
        b"Token " + TOKEN.encode(),
        b"Bearer" + TOKEN.encode(),
        TOKEN.encode(),
        b"Bearer \xc3\xa9" + TOKEN.encode(),
        b"Bearer \xff\xfe\xfd",
        b"Bearer " + b"A" * 8000,
        b"Bearer " + "\u0455".encode() + TOKEN.encode()[1:],  # a Cyrillic dze for the s
    ],
)
async def test_a_wrong_token_is_401_and_nothing_changes(authorization: bytes) -> None:
    async with served() as (system, dashboard, _):
        t = await troupe.submit_job(_forever, name="forever")
        header = b"Authorization: " + authorization + b"\r\n" if authorization else b""
        request = (
            f"POST /api/jobs/{t.job_id}/cancel HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n".encode()
            + header
            + b"Connection: close\r\n\r\n"
        )
        answer = await raw(dashboard.port, request)
        assert status_of(answer) in {400, 401}, answer[:300]
        assert b"Traceback" not in answer
        if status_of(answer) == 401:
            assert b"Authorization: Bearer TOKEN" in answer
        assert b"set-cookie" not in answer.lower()
        assert not t.finished
        assert (await _record(system, t.job_id)).status is JobStatus.RUNNING


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer " + TOKEN,
        "bearer " + TOKEN,
        "BEARER " + TOKEN,
        "Bearer    " + TOKEN,
        "Bearer " + TOKEN + "   ",
    ],
)
async def test_the_token_in_the_forms_the_standard_allows(authorization: str) -> None:
    async with served() as (system, dashboard, _):
        t = await troupe.submit_job(_forever, name="forever")
        request = (
            f"POST /api/jobs/{t.job_id}/cancel HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
            f"Authorization: {authorization}\r\nConnection: close\r\n\r\n"
        ).encode()
        answer = await raw(dashboard.port, request)
        assert status_of(answer) == 200, answer[:300]
        assert (await _record(system, t.job_id)).status is JobStatus.CANCELLED


async def test_two_authorization_headers_are_not_a_way_around_the_token() -> None:
    async with served() as (system, dashboard, _):
        t = await troupe.submit_job(_forever, name="forever")
        request = (
            f"POST /api/jobs/{t.job_id}/cancel HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
            f"Authorization: Bearer wrong\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        ).encode()
        answer = await raw(dashboard.port, request)
        assert status_of(answer) in {400, 401}, answer[:300]
        assert (await _record(system, t.job_id)).status is JobStatus.RUNNING


async def test_the_token_is_checked_before_the_id_so_ids_cannot_be_probed() -> None:
    async with served() as (_, _, client):
        for path in [
            "/api/jobs/nope/cancel",
            "/api/jobs/bad%20id/cancel",
            "/api/jobs/" + "x" * 200 + "/cancel",
        ]:
            assert_json_error(await client.post(path), 401)
            assert_json_error(await client.post(path, headers=bearer("wrong")), 401)


# -- Host ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "localhost@evil.example",
        "evil.example#localhost",
        "127.0.0.1:80:80",
        "[::1].evil.example",
        "[evil.example]",
        "[::1",
        "localhost, evil.example",
        "0.0.0.0",  # noqa: S104 - a Host header, not an address to bind
        "\u217c\u2170calhost",  # Roman numerals that look like "lo"
    ],
)
async def test_a_host_that_is_not_loopback_is_refused(host: str) -> None:
    async with served() as (_, dashboard, _):
        request = f"GET /api/system HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        answer = await raw(dashboard.port, request)
        assert status_of(answer) in {400, 421}, answer[:300]
        assert b'"running"' not in answer


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "localhost:1", "[::1]:8000"])
async def test_loopback_hosts_are_served(host: str) -> None:
    async with served() as (_, dashboard, _):
        request = f"GET /api/system HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        assert status_of(await raw(dashboard.port, request)) == 200


async def test_the_host_check_holds_over_http2() -> None:
    async with served() as (_, dashboard, _), httpx.AsyncClient(http1=False, http2=True) as client:
        url = dashboard.url + "api/system"
        assert (await client.get(url)).http_version == "HTTP/2"
        assert (await client.get(url, headers={"Host": "evil.example"})).status_code == 421


# -- cancelling ----------------------------------------------------------------------------------


async def test_cancelling_twice_at_once_cancels_once() -> None:
    async with served() as (system, _, client):
        t = await troupe.submit_job(_forever, name="forever")
        statuses: list[int] = []

        async def cancel() -> None:
            response = await client.post(f"/api/jobs/{t.job_id}/cancel", headers=bearer(TOKEN))
            statuses.append(response.status_code)
            if response.status_code == 200:
                assert response.json()["job"]["status"] == "cancelled"
            else:
                assert "already finished (cancelled)" in assert_json_error(response, 409)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(cancel)
        assert 200 in statuses
        assert set(statuses) <= {200, 409}
        assert (await _record(system, t.job_id)).status is JobStatus.CANCELLED


async def test_a_job_that_ends_while_its_cancel_is_on_the_way_is_a_409(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with served() as (system, dashboard, client):

        async def quick() -> str:
            return "done"

        t = await troupe.submit_job(quick, name="quick")
        assert await t.result() == "done"
        finished = await _record(system, t.job_id)
        jobs = dashboard._site.jobs

        async def stale(job_id: str) -> JobRecord | None:  # what it read just before the job ended
            return attrs.evolve(finished, status=JobStatus.RUNNING, finished=None)

        monkeypatch.setattr(jobs, "get", stale)
        response = await client.post(f"/api/jobs/{t.job_id}/cancel", headers=bearer(TOKEN))
        text = assert_json_error(response, 409)
        assert "succeeded" in text
        assert (await _record(system, t.job_id)).status is JobStatus.SUCCEEDED


async def test_cancelling_a_job_that_will_not_end_answers_202(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(troupe.web._api, "CANCEL_WAIT", 0.2)
    async with served() as (_, _, client):
        release = trio.Event()

        async def stubborn() -> str:
            with trio.CancelScope(shield=True):  # deaf to cancellation until released
                await release.wait()
            return "released"

        t = await troupe.submit_job(stubborn, name="stubborn")
        with trio.fail_after(10):
            response = await client.post(f"/api/jobs/{t.job_id}/cancel", headers=bearer(TOKEN))
        assert response.status_code == 202
        body = response.json()
        assert body["cancelled"] is False
        assert body["job"]["status"] == "running"
        assert (await client.get("/api/system")).status_code == 200
        release.set()
        with trio.fail_after(10):
            await t.error()


# -- job stores with odd records, and stores that fail -------------------------------------------


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def _odd_records() -> list[JobRecord]:
    cycle: list[object] = []
    cycle.append(cycle)
    now = 1_700_000_000.0
    return [
        JobRecord("nan", "nan progress", JobStatus.RUNNING, now, progress=math.nan),
        JobRecord("inf", "infinite result", JobStatus.SUCCEEDED, now + 1, result=math.inf),
        JobRecord("surrogate", "lone \udcff surrogate", JobStatus.FAILED, now + 2, error="E: \ud800"),
        JobRecord("set", "a set", JobStatus.SUCCEEDED, now + 3, result={1, 2}),
        JobRecord("cycle", "a cycle", JobStatus.SUCCEEDED, now + 4, result=cycle),
        JobRecord("repr", "a bad repr", JobStatus.SUCCEEDED, now + 5, result=_BadRepr()),
        JobRecord("keys", "odd keys", JobStatus.SUCCEEDED, now + 6, result={(1, 2): b"\xff", None: 1.5}),
        JobRecord("huge", "a huge result", JobStatus.SUCCEEDED, now + 7, result="x" * 2_000_000),
        JobRecord("deep", "deep", JobStatus.SUCCEEDED, now + 8, result=[[[[[[[[[[1]]]]]]]]]]),
    ]


async def test_odd_records_are_strict_json() -> None:
    store = troupe.MemoryJobStore()
    store.save(_odd_records(), "another-process")
    async with troupe.open_system(jobs=store) as system:
        dashboard = await troupe.web.serve(system, port=0)
        async with httpx.AsyncClient(base_url=dashboard.url, timeout=30) as client:
            listed = await client.get("/api/jobs")
            assert listed.status_code == 200
            listed.content.decode("ascii")  # ASCII only
            assert b"NaN" not in listed.content
            assert b"Infinity" not in listed.content
            items = {item["id"]: item for item in listed.json()["items"]}
            assert set(items) == {r.id for r in _odd_records()}
            assert items["nan"]["progress"] is None
            assert items["surrogate"]["name"] == "lone \udcff surrogate"
            for record in _odd_records():
                one = await client.get(f"/api/jobs/{record.id}")
                assert one.status_code == 200, (record.id, one.text[:300])
                assert one.json()["id"] == record.id


class _Failing(troupe.JobStore):
    """A store that is fine at first, then fails as told."""

    blocking = False

    def __init__(self) -> None:
        self.inner = troupe.MemoryJobStore()
        self.error: Exception | None = None

    @property
    def location(self) -> str:
        return "failing://store"

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def open(self, owner: str | None) -> None:
        self.inner.open(owner)

    def save(self, records: Sequence[JobRecord], owner: str) -> None:
        self.inner.save(records, owner)

    def get(self, job_id: str) -> JobRecord | None:
        self._check()
        return self.inner.get(job_id)

    def list(
        self, *, status: Collection[JobStatus] | None = None, limit: int | None = None
    ) -> list[JobRecord]:
        self._check()
        return self.inner.list(status=status, limit=limit)

    def purge(self, *, older_than: float | None = None, ids: Collection[str] | None = None) -> int:
        return self.inner.purge(older_than=older_than, ids=ids)

    def request_cancel(self, job_id: str) -> JobRecord:
        self._check()
        return self.inner.request_cancel(job_id)

    def cancel_requests(self, owner: str) -> builtins.list[str]:
        return self.inner.cancel_requests(owner)

    def close(self, owner: str | None) -> None:
        self.inner.close(owner)


@pytest.mark.parametrize(
    "error",
    [
        troupe.JobStoreError("the disk is gone; mount it again", location="failing://store"),
        RuntimeError("a bug in the store, with secret internals"),
    ],
)
async def test_a_failing_store_is_a_503_or_a_generic_500_never_its_internals(error: Exception) -> None:
    store = _Failing()
    async with troupe.open_system(jobs=store) as system:
        dashboard = await troupe.web.serve(system, port=0, token=TOKEN)
        async with httpx.AsyncClient(base_url=dashboard.url, timeout=10) as client:
            t = await troupe.submit_job(_forever, name="forever")
            store.error = error
            for response in [
                await client.get("/api/jobs"),
                await client.get(f"/api/jobs/{t.job_id}"),
                await client.post(f"/api/jobs/{t.job_id}/cancel", headers=bearer(TOKEN)),
            ]:
                assert response.status_code in {500, 503}, response.text
                assert set(response.json()) == {"error"}
                assert "secret internals" not in response.text
                assert "Traceback" not in response.text
            store.error = None
            assert (await client.get("/api/system")).status_code == 200
            await t.cancel(force=True)


# -- events: many clients, clients that vanish or never read -------------------------------------


async def test_streams_that_vanish_free_their_places() -> None:
    async with served() as (_, dashboard, client):
        hub = dashboard._site.hub
        hub.max_clients = 5
        for _ in range(3):  # far more streams than places, each gone at once
            for reset in (True, False):
                for _ in range(hub.max_clients * 2):
                    await raw(
                        dashboard.port,
                        b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                        reset=reset,
                    )
        await eventually(lambda: not hub.clients)
        async with streaming(client, "/api/events") as (response, events):
            assert response.status_code == 200
            assert (await next_event(events))[0] == "hello"


async def test_over_the_limit_a_503_then_a_place_once_one_leaves() -> None:
    async with served() as (_, dashboard, client):
        hub = dashboard._site.hub
        hub.max_clients = 3
        async with trio.open_nursery() as nursery:
            leave = [trio.Event() for _ in range(3)]

            async def listen(i: int, task_status: trio.TaskStatus[None]) -> None:
                async with streaming(client, "/api/events") as (_, events):
                    await next_event(events)
                    task_status.started()
                    await leave[i].wait()

            for i in range(3):
                await nursery.start(listen, i)
            for _ in range(20):
                refused = await client.get("/api/events")
                assert "3 event streams are open already" in refused.json()["error"]
                assert refused.status_code == 503
            leave[0].set()
            await eventually(lambda: len(hub.clients) < 3)
            async with streaming(client, "/api/events") as (response, events):
                assert response.status_code == 200
                assert (await next_event(events))[0] == "hello"
            for event in leave:
                event.set()


@asynccontextmanager
async def _stalled_readers(port: int, count: int) -> AsyncIterator[list[trio.socket.SocketType]]:
    """``count`` connections that ask for the event stream and never read a byte; closed on exit."""
    socks = []
    try:
        for _ in range(count):
            sock = trio.socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            await sock.connect(("127.0.0.1", port))
            await sock.send(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


async def _stall(system: troupe.ActorSystem, hub: Any) -> None:
    """Publish big events until every client of ``hub`` has lost batches (their sockets are full)."""
    big = "y" * 100_000
    with trio.fail_after(30):
        while not hub.clients or not all(c.lost_batches for c in hub.clients):
            await system.events.publish("troupe.test.big", big)
            assert all(len(c.queue) <= hub.client_batches for c in hub.clients)
            await trio.sleep(hub.interval)


async def test_clients_that_never_read_cost_a_bounded_queue_and_never_slow_the_system() -> None:
    async with served() as (system, dashboard, client):
        hub = dashboard._site.hub
        hub.client_batches = 3
        hub.interval = 0.005
        async with _stalled_readers(dashboard.port, 5):
            await eventually(lambda: len(hub.clients) == 5)
            await _stall(system, hub)
            for _ in range(50):
                await system.events.publish("troupe.test.more", "z" * 100_000)
            assert all(len(c.queue) <= 3 for c in hub.clients)
            assert (await client.get("/api/system")).status_code == 200
            echo = await system.spawn(_Echo)
            assert await echo.ask("still here") == "still here"


class _Echo(troupe.Actor[str]):
    async def receive(self, msg: str) -> str:
        return msg


async def test_a_stream_whose_client_reads_nothing_is_closed_after_the_send_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(troupe.web._app, "SEND_TIMEOUT", 0.5)
    async with served() as (system, dashboard, client):
        hub = dashboard._site.hub
        hub.max_clients = 2
        hub.interval = 0.005
        async with _stalled_readers(dashboard.port, 2) as socks:
            await eventually(lambda: len(hub.clients) == 2)
            await _stall(system, hub)
            with trio.fail_after(10):
                while hub.clients:
                    await system.events.publish("troupe.test.big", "y" * 100_000)
                    await trio.sleep(hub.interval)
            async with streaming(client, "/api/events") as (response, _):
                assert response.status_code == 200
            # The stalled clients read again: what was sent reaches them, then their streams end.
            with trio.fail_after(20):
                for sock in socks:
                    while await sock.recv(1 << 20):
                        pass


async def test_a_client_reset_mid_stream_leaves_nothing_behind() -> None:
    async with served() as (system, dashboard, _):
        hub = dashboard._site.hub
        with trio.socket.socket() as sock:
            await sock.connect(("127.0.0.1", dashboard.port))
            await sock.send(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            got = bytearray()
            with trio.fail_after(10):
                while b"event: hello" not in got:
                    got.extend(await sock.recv(1 << 16))
            await system.events.publish("troupe.test.one", 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST)
        await eventually(lambda: not hub.clients)
        for i in range(100):
            await system.events.publish("troupe.test.after", i)


async def test_odd_event_data_is_strict_json() -> None:
    async with served() as (system, _, client), streaming(client, "/api/events") as (_, events):
        await next_event(events)
        cycle: list[object] = []
        cycle.append(cycle)
        odd: list[object] = [
            math.nan,
            {(1, 2): b"\xff\xfe", None: -math.inf},
            cycle,
            _BadRepr(),
            "\udcff",
            10**400,
        ]
        for i, value in enumerate(odd):
            await system.events.publish(f"troupe.test.odd{i}", value)
        await system.events.publish("troupe.test.end", None)
        seen: dict[str, Any] = {}
        while "troupe.test.end" not in seen:
            name, batch = await next_event(events)
            assert name == "batch"
            seen.update((e["topic"], e["data"]) for e in batch)
        assert seen["troupe.test.odd0"] is None
        assert seen["troupe.test.odd4"] == "\udcff"
        assert "repr failed" in seen["troupe.test.odd3"]
        assert seen["troupe.test.odd5"] == 10**400


# -- bind_request --------------------------------------------------------------------------------


async def _chatty(ctx: troupe.TaskContext) -> int:
    for i in range(50):  # far more than the channel holds
        await ctx.channel.write(i)
    return 50


async def test_a_bound_client_reset_mid_stream_ends_the_binding_not_the_task() -> None:
    async with served() as (_, dashboard, _):
        go = trio.Event()

        async def waits_then_talks(ctx: troupe.TaskContext) -> int:
            await ctx.channel.write("first")
            await go.wait()
            return await _chatty(ctx)

        t = await troupe.run_task(waits_then_talks, channel=2)
        path = dashboard.bind(t)
        with trio.socket.socket() as sock:
            await sock.connect(("127.0.0.1", dashboard.port))
            await sock.send(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            got = bytearray()
            with trio.fail_after(10):
                while b'"first"' not in got:
                    got.extend(await sock.recv(1 << 16))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RST)
        go.set()
        with trio.fail_after(10):
            assert await t.result() == 50
        await eventually(lambda: not dashboard._site.bindings.items)


async def test_a_bound_client_that_leaves_without_reading() -> None:
    async with served() as (_, dashboard, client):
        t = await troupe.run_task(_chatty, channel=2)
        path = dashboard.bind(t)
        with trio.socket.socket() as sock:
            await sock.connect(("127.0.0.1", dashboard.port))
            await sock.send(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            key = path.rsplit("/", 1)[1]
            items = dashboard._site.bindings.items
            await eventually(lambda: key not in items or items[key].taken)
        with trio.fail_after(10):
            assert await t.result() == 50
        assert_json_error(await client.get(path), 404)


async def test_a_bound_path_is_streamed_once_even_when_asked_at_once() -> None:
    async with served() as (_, dashboard, client):
        t = await troupe.run_task(_chatty, channel=2)
        path = dashboard.bind(t)
        answers: list[int] = []
        ends: list[Any] = []

        async def get() -> None:
            async with client.stream("GET", path) as response:
                answers.append(response.status_code)
                if response.status_code == 200:
                    async with streaming(client, path) as (again, _):
                        assert again.status_code == 404
                    ends.extend(await _events(response))
                else:
                    await response.aread()

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(get)
        assert sorted(answers) == [200, 404, 404, 404, 404]
        assert ends[-1] == ("end", {"outcome": "succeeded", "error": None, "result": 50})
        assert [data for name, data in ends if name == "message"] == list(range(50))


async def _events(response: httpx.Response) -> list[tuple[str, Any]]:
    from apikit import sse  # noqa: PLC0415 - the one reader of a response already open

    return [item async for item in sse(response)]


async def test_head_on_a_bound_path_says_what_get_would() -> None:
    async with served() as (_, dashboard, client):

        async def talks(ctx: troupe.TaskContext) -> str:
            await ctx.channel.write("hi")
            return "done"

        t = await troupe.run_task(talks, channel=True)
        path = dashboard.bind(t)
        assert (await client.head(path)).status_code == 200
        async with streaming(client, path) as (_, events):
            assert await next_event(events) == ("message", "hi")
            assert (await client.head(path)).status_code == 404  # taken: a GET now is a 404
            assert_json_error(await client.get(path), 404)
        assert (await client.head("/api/bound/nothing")).status_code == 404
