"""The page over a job store served alone (``troupe jobs serve``): jobs only, read-only without a token."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import browserkit
import pytest

import troupe
import troupe.web
from troupe import JobRecord, JobStatus

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with browserkit.open_driver() as found:
        yield found


def job_store(path: Path) -> dict[str, str]:
    """A store with a finished job and one a live process owns; their ids by name."""
    now = time.time()
    ids = {"done": str(uuid.uuid4()), "live": str(uuid.uuid4())}
    store = troupe.SQLiteJobStore(path)
    store.open("another-process")
    store.save(
        [
            JobRecord(
                ids["done"], "nightly", JobStatus.SUCCEEDED, now - 5, now - 5, now - 4, 1.0, "", {"rows": 3}
            ),
            JobRecord(ids["live"], "export", JobStatus.RUNNING, now - 2, now - 2, progress=0.5),
        ],
        "another-process",
    )
    return ids


async def test_a_store_served_alone_shows_its_jobs_read_only(driver: Any, tmp_path: Path) -> None:
    page = browserkit.Page(driver)
    ids = job_store(tmp_path / "jobs.sqlite")
    async with troupe.web.serve_store(tmp_path / "jobs.sqlite", port=0) as dashboard:
        await page.open(dashboard.url)
        row = f"#jobs-body tr[data-job='{ids['live']}'][data-status='running']"
        await page.wait(lambda d: d.find_elements("css selector", row), "the live job")
        assert await page.js("return document.getElementById('actors').hidden") is True
        await page.click(f"#jobs-body tr[data-job='{ids['live']}'] button.details")
        await page.wait(
            lambda d: d.find_element("css selector", "#job-detail").get_attribute("data-job") == ids["live"],
            "the live job's details",
        )
        assert await page.js("return document.getElementById('job-cancel').disabled") is True  # read-only
        await page.click(f"#jobs-body tr[data-job='{ids['done']}'] button.details")
        await page.wait(
            lambda d: '"rows": 3' in d.find_element("css selector", "#job-outcome").text, "the result"
        )
        assert await page.console_errors() == []
