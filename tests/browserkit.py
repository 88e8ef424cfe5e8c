"""Headless Chromium for the dashboard's browser tests: a selenium driver seen from trio.

Debian's ``chromium`` and ``chromium-driver`` (``make browser`` installs them);
the tests skip, naming that target, where they are missing. The driver is
blocking: `Page` runs each of its calls in a worker thread, so the trio loop
(and the dashboard's server in it) goes on meanwhile. Waits are bounded polls
(``WebDriverWait``), never fixed sleeps.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTH, HEIGHT = 1280, 800

T = TypeVar("T")

# Chromium's background services (updates, sync, field trials) would call out;
# this machine's closed network refuses them, and the tests need none of them.
_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


def need_chromium() -> None:
    """Skip the test, saying what to run, when headless Chromium or its driver is missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(
            f"the browser tests need Debian's chromium and chromium-driver ({', '.join(missing)} "
            "missing): run `make browser` (as root) to install them"
        )


@contextmanager
def open_driver(width: int = WIDTH, height: int = HEIGHT) -> Iterator[Any]:
    """A headless Chromium driver with a fresh profile, its console log kept; quit on exit."""
    need_chromium()
    profile = tempfile.mkdtemp(prefix="troupe-chromium-")
    options = webdriver.ChromeOptions()
    for arg in (*_ARGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Page:
    """The page in a blocking driver, from trio: each call runs in a worker thread."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread (selenium blocks)."""
        return await trio.to_thread.run_sync(fn, *args)

    async def open(self, url: str) -> None:
        """Load ``url``, dropping the console messages of earlier pages."""
        await self.call(self.driver.get_log, "browser")
        await self.call(self.driver.get, url)

    async def wait(self, condition: Callable[[Any], T], what: str, timeout: float = 10.0) -> T:
        """Poll ``condition(driver)`` until it is truthy (bounded by ``timeout``); fail naming ``what``."""

        def until() -> T:
            waiter = WebDriverWait(self.driver, timeout, poll_frequency=0.05)
            try:
                return waiter.until(condition)
            except TimeoutException:
                shown = self.driver.execute_script("return document.body.innerText")
                raise AssertionError(
                    f"the page never showed {what} within {timeout} s; it showed:\n{shown[:3000]}"
                ) from None

        return await self.call(until)

    async def js(self, script: str, *args: Any) -> Any:
        """Run ``script`` in the page (``return ...`` to get a value)."""
        return await self.call(self.driver.execute_script, script, *args)

    async def text(self, css: str) -> str:
        """The visible text of the first element ``css`` selects."""
        return str(
            await self.js(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", css
            )
        )

    async def click(self, css: str) -> None:
        """Click the element ``css`` selects (it must be there); again if the page redrew it meanwhile."""

        def click() -> None:
            for _ in range(50):  # the live page replaces its rows on every refresh
                try:
                    self.driver.find_element(By.CSS_SELECTOR, css).click()
                except StaleElementReferenceException:
                    continue
                return
            raise AssertionError(f"{css} was redrawn 50 times while being clicked")

        await self.call(click)

    async def type(self, css: str, text: str) -> None:
        """Type ``text`` into the field ``css`` selects, replacing what it held."""
        element = await self.call(self.driver.find_element, By.CSS_SELECTOR, css)
        await self.call(element.clear)
        await self.call(element.send_keys, text)

    async def console_errors(self) -> list[dict[str, Any]]:
        """The page's console messages since the last call, of level SEVERE or WARNING."""
        entries: list[dict[str, Any]] = await self.call(self.driver.get_log, "browser")
        return [e for e in entries if e.get("level") in {"SEVERE", "WARNING"}]

    async def screenshot(self, path: Path) -> None:
        """Save the viewport as a PNG, quantized to a palette when Pillow is there (smaller files)."""
        png: bytes = await self.call(self.driver.get_screenshot_as_png)
        await self.call(lambda: path.parent.mkdir(parents=True, exist_ok=True))
        await self.call(path.write_bytes, png)
        try:
            from PIL import Image  # noqa: PLC0415 - optional: only to make the PNG smaller
        except ImportError:  # pragma: no cover - Pillow comes with matplotlib (the bench extra)
            return

        def shrink() -> None:
            with Image.open(path) as image:
                small = image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
            small.save(path, optimize=True)

        await self.call(shrink)
