"""The dashboard with 10,000 actors and 10,000 jobs: it pages by 200 and stays responsive.

The figures (time to the first render, to each next page) are printed; the
bound asserted is only a guard against a hang (``make test-browser -- -s``
shows them).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import browserkit
import pytest

import troupe
import troupe.web
from troupe import JobRecord, JobStatus

from kit import Increment

pytestmark = pytest.mark.browser

N = 10_000
PAGE = 200
HANG = 5.0  # seconds: far above what it takes; only a guard


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with browserkit.open_driver() as found:
        yield found


class Idle(troupe.Actor[Increment]):
    async def receive(self, msg: Increment) -> None:
        pass


def earlier_jobs(n: int) -> list[JobRecord]:
    now = time.time() - n
    found = []
    for i in range(n):
        failed = i % 10 == 0
        found.append(
            JobRecord(
                id=str(uuid.uuid4()),
                name=f"batch-{i}",
                status=JobStatus.FAILED if failed else JobStatus.SUCCEEDED,
                created=now + i,
                started=now + i,
                finished=now + i + 0.5,
                progress=0.3 if failed else 1.0,
                result=None if failed else {"rows": i},
                error=f"ValueError: row {i} is corrupt" if failed else None,
            )
        )
    return found


def first_row(body: str) -> Callable[[Any], str]:
    return lambda driver: driver.execute_script(
        f"const r = document.querySelector('#{body} tr'); return r ? r.innerText : '';"
    )


def total_at_least(css: str, n: int) -> Callable[[Any], bool]:
    def condition(driver: Any) -> bool:
        found = re.search(r"of (\d+)", driver.find_element("css selector", css).text)
        return found is not None and int(found.group(1)) >= n

    return condition


def starts_at(css: str, first: int) -> Callable[[Any], bool]:
    return lambda driver: (
        re.search(rf"\b{first}\u2013", driver.find_element("css selector", css).text) is not None
    )


async def test_ten_thousand_actors_and_jobs_page_quickly(driver: Any) -> None:
    page = browserkit.Page(driver)
    store = troupe.MemoryJobStore()
    store.save(earlier_jobs(N), owner="an-earlier-run")
    async with troupe.open_system(name="big", jobs=store) as system:
        dashboard = await troupe.web.serve(system, port=0)
        spawning = time.perf_counter()
        for i in range(N):
            await system.spawn(Idle, name=f"idle-{i:05}")
        spawned = time.perf_counter() - spawning

        loading = time.perf_counter()
        await page.open(dashboard.url)
        await page.wait(total_at_least("#actors-range", N), f"{N} actors", timeout=HANG)
        await page.wait(total_at_least("#jobs-range", N), f"{N} jobs", timeout=HANG)
        first_render = time.perf_counter() - loading
        rows = await page.js(
            "const n = (css) => document.querySelectorAll(css).length; "
            "return [n('#actors-body tr'), n('#jobs-body tr')]"
        )
        assert rows == [PAGE, PAGE]  # a page, never the 10,000

        actor_pages = []
        for k in range(1, 6):
            clicked = time.perf_counter()
            await page.click("#actors-next")
            await page.wait(starts_at("#actors-range", k * PAGE + 1), f"actor page {k + 1}", timeout=HANG)
            actor_pages.append(time.perf_counter() - clicked)
        job_pages = []
        for k in range(1, 6):
            clicked = time.perf_counter()
            await page.click("#jobs-next")
            await page.wait(starts_at("#jobs-range", k * PAGE + 1), f"job page {k + 1}", timeout=HANG)
            job_pages.append(time.perf_counter() - clicked)
        filtering = time.perf_counter()
        await page.call(
            lambda: driver.find_element("css selector", "#job-status option[value='failed']").click()
        )
        await page.wait(total_at_least("#jobs-range", N // 10), "the failed jobs", timeout=HANG)
        filtered = time.perf_counter() - filtering
        heap = await page.js("return performance.memory ? performance.memory.usedJSHeapSize : null")
        assert await page.console_errors() == []

    print(  # noqa: T201 - the figures, for make test-browser -- -s
        f"\n{N} actors (spawned in {spawned:.2f} s) and {N} jobs: first render {first_render:.3f} s; "
        f"next actor page {max(actor_pages):.3f} s at most (mean {sum(actor_pages) / 5:.3f} s); "
        f"next job page {max(job_pages):.3f} s at most (mean {sum(job_pages) / 5:.3f} s); "
        f"status filter {filtered:.3f} s; JS heap {heap / 1e6 if heap else float('nan'):.1f} MB"
    )
    assert first_render < HANG
