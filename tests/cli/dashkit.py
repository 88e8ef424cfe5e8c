"""Helpers of the dashboard CLI tests: start `troupe ...` serving a dashboard, read its URL, press Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

TROUPE = [sys.executable, "-m", "troupe.cli"]
WAIT = 15.0  # seconds a command gets to print its URL, or to end once interrupted

TOPOLOGY = """
import trio

async def main(system):
    print("ready", flush=True)
    await trio.sleep_forever()
"""


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``troupe ARGS`` (which serves a dashboard); (the process, the first line it printed).

    A process still running after the block is killed; one that hangs
    before it prints is killed after WAIT seconds.
    """
    proc = subprocess.Popen(
        [*TROUPE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    watchdog = threading.Timer(WAIT, proc.kill)
    watchdog.start()
    try:
        line = proc.stdout.readline() if proc.stdout is not None else ""
        watchdog.cancel()
        assert line, (proc.wait(), proc.stderr.read() if proc.stderr is not None else "")
        yield proc, line
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def url_in(line: str) -> str:
    """The ``http://...`` URL in the printed line."""
    found = [word for word in line.split() if word.startswith("http://")]
    assert found, line
    return found[0]


def interrupt(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Ctrl-C (SIGINT to its process group, as a terminal does); (status, the rest of stdout, stderr)."""
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=WAIT)
    return proc.returncode, out, err
