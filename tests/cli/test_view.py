"""``troupe run``'s live view: drawn from the lifecycle events, in a terminal."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import trio
from rich.console import Console

import troupe
from troupe.cli._view import RunState, render

TOPOLOGY = """
import trio
import troupe

class Flaky(troupe.Actor[int]):
    async def receive(self, msg: int) -> None:
        if msg == 1:
            raise ValueError("bad input 1")

async def main(system):
    ref = await system.spawn(Flaky, name="flaky")
    await ref.tell(1)
    t = await troupe.submit_job(lambda: troupe.report_progress(0.5, "half") or 7, name="halfway")
    await t.result()
    print("topology done")
"""


async def test_the_frame_shows_the_tree_jobs_counters_and_why_an_actor_failed() -> None:
    class Flaky(troupe.Actor[int]):
        async def receive(self, msg: int) -> None:
            raise ValueError(msg)

    state = RunState()
    async with troupe.open_system(jobs=troupe.MemoryJobStore()) as system:
        async with system.events.listen("troupe.**") as events:
            ref = await system.spawn(Flaky, name="flaky")
            await ref.tell(3)
            job = await troupe.submit_job(lambda: troupe.report_progress(0.5, "half way"), name="halfway")
            await troupe.wait_all(job)
            state.reasons["/user/flaky"] = "ValueError: 3"  # what the troupe.failure log handler keeps
            while (
                not any(r.status.finished for r in state.jobs.values())
                or "/user/flaky" not in state.actor_state
            ):
                state.apply(await events.receive())
        console = Console(width=120, record=True, color_system=None)
        console.print(render(system, state, time.monotonic()))
    frame = console.export_text()
    assert "troupe run" in frame
    assert "flaky" in frame
    assert "restarted" in frame or "failed" in frame
    assert "halfway" in frame
    assert "succeeded" in frame
    assert "half way" in frame
    assert "restarts 1" in frame
    assert "[restarted] /user/flaky" in frame or "[   failed] /user/flaky: ValueError: 3" in frame


def test_in_a_terminal_troupe_run_draws_the_live_view_then_a_summary_table(tmp_path: Path) -> None:
    path = tmp_path / "topology.py"
    path.write_text(TOPOLOGY)
    leader, follower = pty.openpty()
    errors = tmp_path / "stderr.txt"
    env = {**os.environ, "COLUMNS": "100", "LINES": "40", "TERM": "xterm"}
    with errors.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "troupe.cli", "run", str(path), "--jobs", str(tmp_path / "jobs.sqlite")],
            stdout=follower,
            stderr=stderr,
            env=env,
        )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0, errors.read_text()
    screen = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", b"".join(chunks).decode(errors="replace"))
    assert "troupe run" in screen  # the live panel's title
    assert "topology done" in screen  # the topology's prints appear above the view
    assert "halfway" in screen
    assert "summary (" in screen  # the summary table, not the plain summary
    assert "actors started" in screen
    assert "summary:" not in screen


async def test_run_state_counts_tasks_and_keeps_the_notable_lines() -> None:
    state = RunState()
    async with troupe.open_system() as system, system.events.listen("troupe.**") as events:
        t = await troupe.run_task(lambda: 1 / 0)
        await troupe.wait_all(t)
        await trio.testing.wait_all_tasks_blocked()
        while True:
            try:
                state.apply(events.receive_nowait())
            except trio.WouldBlock:
                break
    assert state.tasks["failed"] == 1
    assert any("[task    failed]" in line for line in state.last_events)
