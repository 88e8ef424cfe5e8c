"""``troupe run``'s live view: drawn from the lifecycle events, fitted to the terminal."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

import troupe
from troupe import JobRecord, JobStatus
from troupe.cli._state import Note, RunState
from troupe.cli._view import ActorRow, Frame, actor_rows

import faultkit

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


def draw(frame: Frame, width: int, height: int) -> list[str]:
    """``frame`` as a terminal of this size shows it."""
    console = Console(width=width, height=height, record=True, color_system=None, file=io.StringIO())
    console.print(frame)
    return console.export_text().splitlines()


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
            state.failure_logged("/user/flaky", "ValueError: 3")  # what the troupe.failure log says
            while (
                not any(r.status.finished for r in state.jobs.values())
                or "/user/flaky" not in state.actor_state
            ):
                state.apply(await events.receive())
        frame = Frame(state, system.statistics(), actor_rows(system), system.name, 1.0)
        screen = "\n".join(draw(frame, 120, 40))
    assert "troupe run  1.0 s  running" in screen
    assert "flaky" in screen
    assert "restarted" in screen or "failed" in screen
    assert "halfway" in screen
    assert "succeeded" in screen
    assert "half way" in screen
    assert "restarts 1" in screen
    assert "[   failed] /user/flaky: ValueError: 3" in screen
    assert "[restarted] /user/flaky" in screen


def crowded() -> tuple[RunState, list[ActorRow], troupe.SystemStatistics]:
    """A run with 25 actors (one failed, deep down), 20 jobs (7 running) and many failures."""
    state = RunState()
    rows = [ActorRow("/user", "user", 0, guardian=True)]
    rows.extend(ActorRow(f"/user/worker-{i}", f"worker-{i}", 1, guardian=False) for i in range(12))
    rows.append(ActorRow("/user/pool", "pool", 1, guardian=False))
    rows.extend(ActorRow(f"/user/pool/w{i}", f"w{i}", 2, guardian=False) for i in range(10))
    rows += [
        ActorRow("/system", "system", 0, guardian=True),
        ActorRow("/system/jobs", "jobs", 1, guardian=False),
    ]
    state.actor_state.update({row.path: "started" for row in rows})
    state.actor_state["/user/pool/w7"] = "failed"
    state.reasons["/user/pool/w7"] = "ValueError: shard 7 has no rows"
    now = time.time()
    for i in range(20):
        status = JobStatus.RUNNING if i % 3 == 0 else JobStatus.SUCCEEDED
        status = JobStatus.FAILED if i == 5 else status
        error = "ValueError: no rows\nin shard 5" if status is JobStatus.FAILED else None
        name = f"render-page-{i}-of-the-long-report"
        state.jobs[f"id{i}"] = JobRecord(
            f"id{i}", name, status, now, now, None, 0.6, f"page {i}: step 3 of 5", None, error=error
        )
    for i in range(5):
        state.last_events.append(Note("troupe.failed", f"[   failed] /user/pool/w7: ValueError: {i}"))
    stats = troupe.SystemStatistics(
        actors_started=40, alive=24, restarts=1, failures=5, dead_letters=2, stuck_at_shutdown=()
    )
    return state, rows, stats


@pytest.mark.parametrize(("width", "height", "jobs_shown"), [(80, 24, 3), (120, 40, 9)])
def test_issue_18_the_frame_fits_the_terminal_and_leaves_room_for_the_topologys_output(
    width: int, height: int, jobs_shown: int
) -> None:
    state, rows, stats = crowded()
    lines = draw(Frame(state, stats, rows, "examples/showcase.py", 1.0), width, height)
    assert len(lines) <= height - height // 4  # a quarter of the terminal stays for what the topology prints
    assert all(len(line) <= width for line in lines)
    screen = "\n".join(lines)
    assert "w7  failed  ValueError: shard 7 has no rows" in screen  # a failed actor first, with its parents
    assert re.search(r"\+\d+ more actors", screen)
    shown = [line for line in lines if "render-page-" in line]
    assert len(shown) == jobs_shown
    assert all("running" in line for line in shown[:3])  # active jobs first
    assert all("step 3 of 5" in line for line in shown if "running" in line)  # the note column is readable
    more = 20 - jobs_shown
    assert f"+{more} more jobs: " in screen
    assert "[   failed] /user/pool/w7: ValueError: 4" in screen  # the last notable events


def test_issue_18_in_a_small_terminal_the_frame_summarises() -> None:
    state, rows, stats = crowded()
    lines = draw(Frame(state, stats, rows, "examples/showcase.py", 1.0), 60, 16)
    assert len(lines) <= 12
    assert all(len(line) <= 60 for line in lines)
    screen = "\n".join(lines)
    assert "jobs: 20 (1 failed, 7 running, 12 succeeded)" in screen
    assert "+25 more actors" in screen


def test_issue_18_the_last_frame_shows_how_the_run_ended() -> None:
    state, rows, stats = crowded()
    lines = draw(Frame(state, stats, rows, "t.py", 2.5, "interrupted"), 120, 40)
    screen = "\n".join(lines)
    assert "troupe run  2.5 s  interrupted" in screen
    assert "worker-0  stopped" in screen
    assert "w7  failed" in screen
    assert not [line for line in lines if "running" in line and "render-page" not in line]  # no actor runs


def run_in_a_terminal(tmp_path: Path, body: str, *args: str, size: tuple[int, int]) -> str:
    """``troupe run`` of ``body`` in a pseudo-terminal of ``size``; what the terminal showed."""
    path = tmp_path / "topology.py"
    path.write_text(body)
    leader, follower = pty.openpty()
    errors = tmp_path / "stderr.txt"
    env = {**os.environ, "COLUMNS": str(size[0]), "LINES": str(size[1]), "TERM": "xterm"}
    command = [sys.executable, "-m", "troupe.cli", "run", str(path), *args]
    with errors.open("w") as stderr:
        proc = subprocess.Popen(command, stdout=follower, stderr=stderr, env=env)
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
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", b"".join(chunks).decode(errors="replace"))


@pytest.mark.parametrize("size", [(80, 24), (100, 40)])
def test_in_a_terminal_troupe_run_draws_the_live_view_then_a_summary_table(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    screen = run_in_a_terminal(tmp_path, TOPOLOGY, "--jobs", str(tmp_path / "jobs.sqlite"), size=size)
    assert "troupe run" in screen  # the live panel's title
    assert "topology done" in screen  # the topology's prints appear above the view
    assert "halfway" in screen
    assert "summary (" in screen  # the summary table, not the plain summary
    assert "actors started" in screen
    assert "summary:" not in screen
    last = screen[screen.rindex("troupe run") : screen.index("summary (")]
    assert "stopped" in last  # issue 18: the frame left on the screen shows the end state
    assert "flaky  stopped" in last
    assert "running" not in last
    assert "succeeded" in last


def test_issue_18_events_in_the_live_view_are_lines_above_it(tmp_path: Path) -> None:
    screen = run_in_a_terminal(
        tmp_path, TOPOLOGY, "--events", "--jobs", str(tmp_path / "jobs.sqlite"), size=(80, 24)
    )
    assert "[  spawned] /user/flaky" in screen
    assert "[   failed] /user/flaky: ValueError: bad input 1" in screen
    assert "[  stopped] /user/flaky" in screen  # the events of the shutdown too
    assert "summary (" in screen


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
    assert any("[task    failed]" in note.line for note in state.last_events)


WORDS = ("started", "restarted", "failed", "stopped")
PHASES = ("running", "stopping", "stopped", "interrupted", "failed", "exited 3")


@st.composite
def runs(draw: st.DrawFn) -> tuple[RunState, list[ActorRow], troupe.SystemStatistics]:
    """A run's state: a tree of actors (depth first) with their states, jobs and notable events."""
    state = RunState()
    rows = [ActorRow("/user", "user", 0, guardian=True)]
    parents = ["/user"]
    for i, up in enumerate(draw(st.lists(st.integers(0, 3), max_size=60))):
        depth = max(1, rows[-1].depth + 1 - up)  # 0: a child of the last row, 1: its sibling, ...
        del parents[depth:]
        path = f"{parents[-1]}/a{i:03d}"
        rows.append(ActorRow(path, f"a{i:03d}", depth, guardian=False))
        parents.append(path)
        state.actor_state[path] = draw(st.sampled_from(WORDS))
        if state.actor_state[path] == "failed":
            state.reasons[path] = "ValueError: " + "x" * draw(st.integers(0, 150))
    now = time.time()
    for i, status in enumerate(draw(st.lists(st.sampled_from(list(JobStatus)), max_size=40))):
        name = f"j{i:03d}" + "-" * draw(st.integers(0, 60))
        note = "n" * draw(st.integers(0, 120))
        state.jobs[f"id{i}"] = JobRecord(
            f"id{i}", name, status, now, now, None, draw(st.floats(0, 1)), note, None, error=None
        )
    for i in range(draw(st.integers(0, 8))):
        state.last_events.append(Note("troupe.dead_letter", f"[dead letter] {i}" + "d" * 100))
    stats = troupe.SystemStatistics(
        actors_started=len(rows),
        alive=len(rows),
        restarts=0,
        failures=0,
        dead_letters=0,
        stuck_at_shutdown=(),
    )
    return state, rows, stats


@faultkit.fuzz_settings(ci=80, soak=3000)
@given(run=runs(), width=st.integers(40, 200), height=st.integers(12, 80), phase=st.sampled_from(PHASES))
def test_issue_18_every_frame_fits_and_counts_what_it_leaves_out(
    run: tuple[RunState, list[ActorRow], troupe.SystemStatistics], width: int, height: int, phase: str
) -> None:
    state, rows, stats = run
    lines = draw(Frame(state, stats, rows, "t.py", 1.0, phase), width, height)
    assert len(lines) <= height - max(3, height // 4)
    assert all(len(line) <= width for line in lines)
    screen = "\n".join(lines)
    # Every actor is shown or counted in "+N more actors" (unless the tree has one line: its title).
    user = re.search(r"── user\s*│", screen) is not None
    more = re.search(r"\+(\d+) more actors", screen)
    if user or more:
        shown = len(set(re.findall(r"\ba\d{3}\b", screen))) + user
        assert shown + (int(more.group(1)) if more else 0) == len(rows)
    # Every job is shown or counted in "+N more jobs", or they are all counted in one line.
    summary = re.search(r"^│ jobs: (\d+) \(", screen, re.MULTILINE)
    hidden = re.search(r"\+(\d+) more jobs: ", screen)
    if summary:
        assert int(summary.group(1)) == len(state.jobs)
    elif re.search(r"│ job\s+status", screen):
        shown = len(set(re.findall(r"\bj\d{3}", screen)))
        assert shown + (int(hidden.group(1)) if hidden else 0) == len(state.jobs)
    # The frame left at the end shows no actor running.
    if phase not in {"running", "stopping"}:
        assert not re.search(r"a\d{3}  (running|restarted)", screen)
