"""Helpers of the dashboard CLI tests: start `troupe ...` serving a dashboard, read its URL, press Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
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
def serving(*args: str, troupe: Sequence[str] = TROUPE) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``troupe ARGS`` (which serves a dashboard); (the process, the first line it printed).

    ``troupe`` is the command that stands for ``troupe``. A process still
    running after the block is killed; one that hangs before it prints is
    killed after WAIT seconds.
    """
    proc = subprocess.Popen(
        [*troupe, *args],
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


def read_until(proc: subprocess.Popen[str], wanted: str) -> str:
    """What ``proc`` prints up to the line holding ``wanted``; the process is killed after WAIT seconds."""
    assert proc.stdout is not None
    watchdog = threading.Timer(WAIT, proc.kill)
    watchdog.start()
    seen = ""
    try:
        while wanted not in seen:
            line = proc.stdout.readline()
            assert line, f"the process ended (or hung) before it printed {wanted!r}: {seen!r}"
            seen += line
    finally:
        watchdog.cancel()
    return seen


def ended(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """(status, the rest of stdout, stderr) once ``proc`` ends; it is killed after WAIT seconds.

    Read from the pipes' buffered files, not with ``communicate``, which
    reads below them: it would lose what ``readline`` read ahead.
    """
    assert proc.stdout is not None
    assert proc.stderr is not None
    watchdog = threading.Timer(WAIT, proc.kill)
    watchdog.start()
    try:
        out = proc.stdout.read()
        err = proc.stderr.read()
        status = proc.wait()
    finally:
        watchdog.cancel()
    return status, out, err


def interrupt(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Ctrl-C (SIGINT to its process group, as a terminal does); (status, the rest of stdout, stderr)."""
    os.killpg(proc.pid, signal.SIGINT)
    return ended(proc)
