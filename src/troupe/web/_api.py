"""The JSON API's handlers: system, actors, tasks, jobs (and cancel), dead letters.

Errors are ``{"error": "what happened and what to do"}`` with a 4xx status
(a 503 when the system's job store fails); the SSE endpoints are in
`_app`. Every handler reads the `Site` the app was built for.
"""

from __future__ import annotations

import hmac
import re
from typing import TYPE_CHECKING

import trio
from starlette.requests import Request
from starlette.responses import Response

from ..jobs import JobStatus, JobStoreError
from ._encode import error_response, json_response, record_json, shorten
from ._jobsource import NoJobs
from ._state import NotFound

if TYPE_CHECKING:
    from ._site import Site

DEFAULT_LIMIT = 200
CANCEL_WAIT = 5.0  # seconds a cancel waits for the job to end; then 202: requested, not ended yet
MAX_LIMIT = 1000
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_STATUSES = ", ".join(s.value for s in JobStatus)
_ENDED_ON_ITS_OWN = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})  # a cancel did not end it


class BadRequest(ValueError):
    """A query parameter or id the API cannot take; the message says what it takes."""


def site_of(request: Request) -> Site:
    """The `Site` the app serves."""
    site: Site = request.app.state.site
    return site


def _count(request: Request, name: str, default: int, most: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    # ASCII digits only: str.isdigit() takes "²" (int() then fails) and other scripts' digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(most)):
        raise BadRequest(f"{name} is a whole number from 0 to {most}, got {shorten(raw, 40)!r}")
    value = int(raw)
    if value > most:
        raise BadRequest(f"{name} is at most {most}, got {value}")
    return value


def _page(request: Request) -> tuple[int, int]:
    return _count(request, "offset", 0, 10**9), _count(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)


def _no_view() -> Response:
    return error_response(
        404, "this dashboard serves a job store alone: only /api/system and /api/jobs answer"
    )


async def system(request: Request) -> Response:
    """``GET /api/system``."""
    site = site_of(request)
    if site.view is None:
        return json_response(site.store_json())
    return json_response(site.view.system_json(read_only=site.token is None))


async def actors(request: Request) -> Response:
    """``GET /api/actors?offset=&limit=&under=PATH``."""
    site = site_of(request)
    if site.view is None:
        return _no_view()
    offset, limit = _page(request)
    under = request.query_params.get("under") or None
    if under is not None and (not under.startswith("/") or len(under) > 4096):  # noqa: PLR2004
        raise BadRequest(f"under= takes an actor's path, like /user/workers, got {shorten(under, 60)!r}")
    try:
        return json_response(site.view.actors_json(offset=offset, limit=limit, under=under))
    except NotFound as exc:
        return error_response(404, str(exc))


async def tasks(request: Request) -> Response:
    """``GET /api/tasks``."""
    site = site_of(request)
    return _no_view() if site.view is None else json_response(site.view.tasks_json())


async def dead_letters(request: Request) -> Response:
    """``GET /api/deadletters``."""
    site = site_of(request)
    return _no_view() if site.view is None else json_response(site.view.dead_letters_json())


def _status(request: Request) -> JobStatus | None:
    raw = request.query_params.get("status")
    if raw is None or raw in {"", "all"}:
        return None
    try:
        return JobStatus(raw)
    except ValueError:
        raise BadRequest(f"status is one of {_STATUSES} (or all), got {shorten(raw, 40)!r}") from None


def _job_id(request: Request) -> str:
    raw: str = request.path_params["job_id"]
    if not _JOB_ID.fullmatch(raw):
        raise BadRequest(f"{shorten(raw, 60)!r} is not a job id; /api/jobs lists the ids")
    return raw


async def jobs(request: Request) -> Response:
    """``GET /api/jobs?status=&offset=&limit=``: newest first."""
    site = site_of(request)
    status = _status(request)
    offset, limit = _page(request)
    try:
        records = await site.jobs.list(status)
    except NoJobs as exc:
        return error_response(404, str(exc))
    except JobStoreError as exc:
        return error_response(503, str(exc))
    return json_response(
        {
            "total": len(records),
            "offset": offset,
            "items": [record_json(r) for r in records[offset : offset + limit]],
        }
    )


async def job(request: Request) -> Response:
    """``GET /api/jobs/{id}``."""
    site = site_of(request)
    job_id = _job_id(request)
    try:
        record = await site.jobs.get(job_id)
    except NoJobs as exc:
        return error_response(404, str(exc))
    except JobStoreError as exc:
        return error_response(503, str(exc))
    if record is None:
        return error_response(404, f"no job {job_id!r}; /api/jobs lists the ids")
    return json_response(record_json(record))


def authorized(request: Request, token: str | None) -> bool:
    """Whether the request carries ``Authorization: Bearer TOKEN`` (compared in constant time)."""
    if token is None:
        return False
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode("utf-8", "surrogateescape"), token.encode())


async def cancel_job(request: Request) -> Response:  # noqa: PLR0911 - one answer per case of the API
    """``POST /api/jobs/{id}/cancel``: needs the bearer token."""
    site = site_of(request)
    if site.token is None:
        return error_response(403, "this dashboard is read-only: it was started without a token (--token)")
    if not authorized(request, site.token):
        return error_response(
            401, "cancelling needs the header 'Authorization: Bearer TOKEN' with the dashboard's token"
        )
    job_id = _job_id(request)
    try:
        record = await site.jobs.get(job_id)
        if record is None:
            return error_response(404, f"no job {job_id!r}; /api/jobs lists the ids")
        if record.status.finished:
            return error_response(
                409, f"job {job_id} already finished ({record.status.value}): nothing to cancel"
            )
        with trio.move_on_after(CANCEL_WAIT) as waited:
            record = await site.jobs.cancel(job_id)
        if (
            waited.cancelled_caught
        ):  # its task ignores cancellation (a shield, a blocking call): answer anyway
            record = await site.jobs.get(job_id) or record
            return json_response({"cancelled": False, "job": record_json(record)}, 202)
    except NoJobs as exc:
        return error_response(404, str(exc))
    except JobStoreError as exc:
        return error_response(503, str(exc))
    if record.status in _ENDED_ON_ITS_OWN:  # it ended between the look above and the cancel
        return error_response(
            409,
            f"job {job_id} finished ({record.status.value}) before it could be cancelled: nothing to cancel",
        )
    return json_response({"cancelled": True, "job": record_json(record)})
