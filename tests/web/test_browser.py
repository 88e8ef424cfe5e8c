"""The dashboard in a real browser: headless Chromium, driven by selenium, against a real system and server.

``make test-browser`` runs these (``make test`` leaves them out); they skip,
naming ``make browser``, where Chromium is missing. With
``TROUPE_SCREENSHOTS=docs/images`` the first one also saves the screenshots
of the docs (``make screenshots``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import browserkit
import pytest
import trio
from selenium.webdriver.common.by import By

import troupe
import troupe.web

from kit import Boom, Counter, Increment

pytestmark = pytest.mark.browser

TOKEN = "a-token-for-the-browser-tests"  # noqa: S105 - a test token


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with browserkit.open_driver() as found:
        yield found


@pytest.fixture
def page(driver: Any) -> browserkit.Page:
    return browserkit.Page(driver)


class Pool(troupe.Actor[Increment]):
    """A parent with a few workers, for a tree with depth."""

    def __init__(self, size: int) -> None:
        self.size = size

    async def on_start(self) -> None:
        for i in range(self.size):
            await self.context.spawn(Counter, name=f"worker-{i}")

    async def receive(self, msg: Increment) -> None:
        pass


class Stuck(troupe.Actor[Increment]):
    """Handles its first message until the gate opens: what arrives meanwhile waits in its mailbox."""

    def __init__(self, gate: trio.Event) -> None:
        self.gate = gate

    async def receive(self, msg: Increment) -> None:
        await self.gate.wait()


async def held(gate: trio.Event, started: trio.Event, what: str) -> str:
    troupe.report_progress(0.4, f"{what}: waiting for the gate")
    started.set()
    await gate.wait()
    return f"{what} done"


async def broken() -> str:
    raise OSError("disk quota exceeded while writing the invoices")


async def quick(n: int) -> dict[str, int]:
    return {"rows": n}


@attrs.define
class Busy:
    """A running system with a dashboard: a few dozen actors, a failed one, jobs in every state."""

    system: troupe.ActorSystem
    dashboard: troupe.web.Dashboard
    gate: trio.Event
    report: troupe.TaskHandle[str]
    export: troupe.TaskHandle[str]


@asynccontextmanager
async def busy_system() -> AsyncIterator[Busy]:
    async with troupe.open_system(name="shop", jobs=troupe.MemoryJobStore()) as system:
        dashboard = await troupe.web.serve(system, port=0, token=TOKEN)
        gate = trio.Event()
        for name, size in (("billing", 8), ("shipping", 12), ("search", 6)):
            await system.spawn(functools.partial(Pool, size), name=name)
        stuck = await system.spawn(lambda: Stuck(gate), name="mailer")
        for _ in range(6):
            await stuck.tell(Increment())
        retrying = await system.spawn(Counter, name="ledger")
        await retrying.tell(Boom("ledger row 17 is corrupt"))
        flaky = await system.spawn(Counter, name="payments", restart=troupe.Restart.TEMPORARY)
        await flaky.tell(Boom("payment gateway timed out"))
        for n in (10, 20, 30):
            done = await troupe.submit_job(quick, n, name=f"import-{n}")
            await done.result()
        failed = await troupe.submit_job(broken, name="invoices")
        await failed.error()
        started = [trio.Event(), trio.Event()]
        report = await troupe.submit_job(held, gate, started[0], "report", name="nightly-report")
        export = await troupe.submit_job(held, gate, started[1], "export", name="export")
        for event in started:
            await event.wait()
        flaky.tell_nowait(Increment())  # to a dead actor: a dead letter
        try:
            yield Busy(system, dashboard, gate, report, export)
        finally:
            gate.set()


def shown(css: str) -> Callable[[Any], Any]:
    """A wait condition: the elements ``css`` selects, once there are some."""
    return lambda driver: driver.find_elements(By.CSS_SELECTOR, css)


def says(css: str, text: str) -> Callable[[Any], bool]:
    """A wait condition: the element ``css`` selects shows ``text``."""

    def condition(driver: Any) -> bool:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return bool(found) and text in found[0].text

    return condition


async def test_the_page_shows_the_tree_the_jobs_and_no_console_errors(page: browserkit.Page) -> None:
    async with busy_system() as busy:
        await page.open(busy.dashboard.url)
        await page.wait(says("#badge", "running"), "the system as running")
        assert await page.text("#system-name") == "shop"
        await page.wait(shown("#actors-body tr[data-path='/user/billing/worker-7']"), "a worker of the pool")
        await page.wait(
            says("#actors-body tr[data-path='/user/ledger']", "ledger row 17 is corrupt"), "why ledger failed"
        )
        await page.wait(
            says("#actors-body tr[data-path='/user/mailer']", "5 /"), "the mailer's queued messages"
        )
        await page.wait(
            shown(f"#jobs-body tr[data-job='{busy.report.job_id}'][data-status='running']"),
            "the report running",
        )
        await page.wait(shown("#jobs-body tr[data-status='failed']"), "the failed job")
        assert len(await page.call(shown("#jobs-body tr[data-job]"), page.driver)) == 6
        await page.wait(says("#deadletters-count", "3 dead letters"), "the dead letters")
        assert "payment gateway timed out" in await page.text("#deadletters-body")
        await page.wait(shown("#task-counts dd[data-count='running']"), "the tasks by state")
        assert await page.console_errors() == []
        folder = os.environ.get("TROUPE_SCREENSHOTS")
        if folder:
            await screenshots(page, busy, Path(folder))


async def traffic(rounds: int) -> None:
    """Short tasks in bursts of changing size: events for the throughput chart."""
    for i in range(rounds):
        for _ in range(5 + 12 * (i % 5)):
            await troupe.run_task(quick, i)
        await trio.sleep(0.1)


async def screenshots(page: browserkit.Page, busy: Busy, folder: Path) -> None:
    """The docs' pictures: the whole page, then the jobs with a failed job's details."""
    await traffic(100)
    await page.wait(says("#rate", "events/s"), "the throughput")
    for pool in ("billing", "shipping", "search"):  # collapsed: the rest of the tree shows
        await page.click(f"#actors-body tr[data-path='/user/{pool}'] button.toggle")
    await page.wait(says("#actors-body", "ledger row 17 is corrupt"), "the failed actor")
    await page.screenshot(folder / "dashboard.png")
    await page.click("#jobs-body tr[data-status='failed'] button.details")
    await page.wait(says("#job-outcome", "disk quota exceeded"), "the failed job's error")
    await page.js("document.getElementById('jobs-title').scrollIntoView()")
    await page.screenshot(folder / "dashboard-jobs.png")


async def test_a_job_finishing_updates_the_page_without_a_reload(page: browserkit.Page) -> None:
    async with busy_system() as busy:
        await page.open(busy.dashboard.url)
        row = f"#jobs-body tr[data-job='{busy.report.job_id}']"
        await page.wait(shown(f"{row}[data-status='running']"), "the report running")
        await page.click(f"{row} button.details")
        await page.wait(
            says("#job-progress-text", "40% report: waiting for the gate"), "the report's progress"
        )
        await page.js("window.notReloaded = true")
        busy.gate.set()
        assert await busy.report.result() == "report done"
        await page.wait(shown(f"{row}[data-status='succeeded']"), "the report succeeded")
        await page.wait(says("#job-outcome", '"report done"'), "the report's result")
        assert await page.js("return window.notReloaded === true")
        assert await page.console_errors() == []


async def test_cancel_needs_the_token(page: browserkit.Page) -> None:
    async with busy_system() as busy:
        jobs = busy.system.jobs
        assert jobs is not None
        export = busy.export.job_id or ""
        await page.open(busy.dashboard.url)
        await page.wait(
            shown(f"#jobs-body tr[data-job='{export}'][data-status='running']"), "the export running"
        )
        await page.click(f"#jobs-body tr[data-job='{export}'] button.details")
        await page.wait(
            shown(f"#job-detail[data-job='{export}'][data-status='running']"), "the export's details"
        )

        await page.click("#job-cancel")  # no token yet
        await page.wait(says("#job-message", "401"), "that cancelling needs the token")
        assert "token" in await page.text("#job-message")
        record = await jobs.get(export)
        assert record is not None
        assert record.status is troupe.JobStatus.RUNNING

        await page.type("#token", "not-the-token")
        await page.click("#job-cancel")
        await page.wait(says("#job-message", "refused this token"), "that the token is wrong")

        await page.type("#token", TOKEN)
        await page.click("#job-cancel")
        await page.wait(says("#job-message", "Cancelled"), "that the job is cancelled")
        await page.wait(
            shown(f"#jobs-body tr[data-job='{export}'][data-status='cancelled']"), "the export cancelled"
        )
        record = await jobs.get(export)
        assert record is not None
        assert record.status is troupe.JobStatus.CANCELLED
        assert await page.js("return document.cookie") == ""
        assert await page.js("return window.localStorage.length + window.sessionStorage.length") == 0


async def test_the_page_shows_the_system_stopped_when_it_closes(page: browserkit.Page) -> None:
    async with busy_system() as busy:
        await page.open(busy.dashboard.url)
        await page.wait(says("#badge", "running"), "the system as running")
        await page.wait(shown("#actors-body tr"), "the actors")
    await page.wait(says("#badge", "stopped"), "the system as stopped")
    assert "stopped" in await page.text("#notice")
    assert await page.text("#actors-body tr[data-path='/user/billing'] td") != ""  # its last state stays
