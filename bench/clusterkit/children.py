"""The orchestrator's side: start a role in its own process, read its reports, stop it.

Used from trio by ``bench/cluster.py``. A role that fails (exits, or
reports nothing in time) raises [`ChildFailed`][clusterkit.children.ChildFailed]
with the end of its stderr, so a broken contender stops the run with its reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import trio

BENCH = Path(__file__).resolve().parents[1]
"""The directory that holds ``clusterkit`` (put on the children's ``PYTHONPATH``)."""

REPORT_TIMEOUT = 120.0
"""Seconds a role may take to report, by default: far more than any run at full scale."""


class ChildFailed(RuntimeError):
    """A role's process exited, or said nothing in time; the message has its stderr's end."""


class Child:
    """A role running in its own process; read its JSON reports line by line."""

    def __init__(self, name: str, process: trio.Process, stderr: IO[bytes]) -> None:
        self.name = name
        """``MODULE.FUNCTION``, for messages."""
        self.process = process
        """The process (``stdout`` is a pipe of its reports)."""
        self._stderr = stderr
        self._buffer = bytearray()

    async def report(self, timeout: float = REPORT_TIMEOUT) -> dict[str, Any]:
        """The role's next report, waiting at most ``timeout`` seconds.

        Raises:
            ChildFailed: the role ended without reporting, or took longer.
        """
        assert self.process.stdout is not None
        with trio.move_on_after(timeout):
            while b"\n" not in self._buffer:
                chunk = await self.process.stdout.receive_some()
                if not chunk:
                    await self.process.wait()
                    raise self.failure(f"exited with status {self.process.returncode} without reporting")
                self._buffer += chunk
            line, _, rest = self._buffer.partition(b"\n")
            self._buffer = bytearray(rest)
            found: dict[str, Any] = json.loads(line)
            return found
        raise self.failure(f"reported nothing in {timeout:g} s")

    async def stop(self, timeout: float = REPORT_TIMEOUT) -> dict[str, Any]:
        """Send SIGTERM, read the report the role makes on it, and wait for a clean exit."""
        self.process.send_signal(signal.SIGTERM)
        found = await self.report(timeout)
        await self.finish(timeout)
        return found

    async def finish(self, timeout: float = REPORT_TIMEOUT) -> None:
        """Wait for the role to exit; anything but status 0 is a failure."""
        with trio.move_on_after(timeout):
            await self.process.wait()
        if self.process.returncode != 0:
            raise self.failure(f"ended with status {self.process.returncode}")

    def failure(self, what: str) -> ChildFailed:
        """A ``ChildFailed`` saying ``what`` happened, with the end of the role's stderr."""
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace")[-3000:].strip()
        return ChildFailed(f"{self.name} {what}; its stderr:\n{tail or '(empty)'}")


@asynccontextmanager
async def child(module: str, function: str, **kwargs: Any) -> AsyncIterator[Child]:
    """Run ``clusterkit.MODULE.FUNCTION(**kwargs)`` in a process of its own for the block; kill it after."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH), env.get("PYTHONPATH", "")) if p)
    command = [sys.executable, "-m", "clusterkit", module, function, json.dumps(kwargs)]
    with tempfile.TemporaryFile() as stderr:
        process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=stderr, env=env)
        try:
            yield Child(f"{module}.{function}", process, stderr)
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                await process.wait()
                if process.stdout is not None:
                    await process.stdout.aclose()
