"""Every example runs, through ``troupe run`` as a newcomer would."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

import troupe

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


def test_there_are_examples() -> None:
    assert [p.name for p in EXAMPLES] == [
        "dask_montecarlo.py",
        "gap_tasks.py",
        "goasync_service.py",
        "grassroots_jobs.py",
        "kore_channel.py",
        "pipeline.py",
        "showcase.py",
    ]


def run_example(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "troupe.cli", "run", str(EXAMPLES[0].parent / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_script(name: str, cwd: Path) -> str:
    """``python examples/NAME``, as a reader would run it (in ``cwd``: the showcase keeps a store there)."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES[0].parent / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def gap_tasks_reproduces_the_document(out: str) -> None:
    for line in [
        "sorted list: [1, 2, 3]",
        "factorial(10000) from two worker processes matches math.factorial: True",
        "delayed tasks started before waiting? False False",
        "scheduled on both: 3*3 + 4*4 = 25",
        "wait_any(slow, fast) -> 1",
        "cancelled loop returned 314 and succeeded() is False",
        "after one contribution, started? False",
        "milestone: both halves are in",
    ]:
        assert line in out


def grassroots_jobs_signals_once_and_reports_commands(out: str) -> None:
    assert out.count("the counter reached its limit (5 workers finished)") == 1
    assert "python prints its version: succeeded: Python" in out
    assert "a command that fails: failed: CalledProcessError" in out
    assert "command not found: 'no-such-program-for-the-demo'" in out


def kore_channel_follows_the_document(out: str) -> None:
    assert "task finished: True" in out
    assert "the task answered: truncated: read 64 of 100 bytes" in out
    assert "callback: finished, progress seen ['25%', '50%', '75%', '100%']" in out
    assert out.count("callback: finished") == 1
    assert "progress 33%\n  progress 66%\n  progress 100%\n  finished with result 6" in out


def goasync_service_fails_with_every_error_named_then_stops_cleanly(out: str) -> None:
    first, second = out.split("2. a clean stop")
    # initialize in add order, cleanup in reverse, the error named by task and stage
    assert first.index("database: connecting") < first.index("server: listening")
    assert first.index("metrics: flushed") < first.index("server: stopped") < first.index("database: closed")
    assert "error: server (execute): ValueError: request 3 hit a bug" in first
    assert "stopped cleanly" in second
    assert "error:" not in second


def pipeline_does_what_it_says(out: str) -> None:
    assert "crashing on purpose" in out
    assert "crashed and was restarted by its supervisor" in out
    assert "Sum of squares of 1..20 without 7: 2821 (expected 2821)." in out


def showcase_runs_every_system(out: str) -> None:
    for line in [
        "milestone achieved, summary: 5500 rows from 4 shards",
        "checksum over 2 worker processes: 0x",
        "progress read from the channel: 20% 40% 60% 80% 100%",
        "publisher: signalled once, when 6 renderers were done",
        "succeeded: python 3.",
        "failed, and its job record keeps why: stderr: disk quota exceeded (on purpose)",
        "final states: publish COMPLETE, upload COMPLETE, invalidate_cache COMPLETE",
        "server: stopped after",
        "this run's 16 jobs: 1 failed, 15 succeeded",
    ]:
        assert line in out, line
    assert out.count("publisher: signalled once") == 1


def hemi_page_load_runs_the_documents_example_process_from_xml_and_json(out: str) -> None:
    for fmt in ("xml", "json"):
        block = out.split(f"loading page_load.{fmt}")[1]
        assert "create_object: making the object for https://example.org/widgets.json" in block
        states = "states: load_config=COMPLETE, create_object=COMPLETE, setup_object="
        assert states + "ACTIVE, ExampleProcess=INITIALIZED" in block
        assert "waiting: setup_object: it waits for dependency 'dom_event_window_load'" in block
        assert block.index("the window has loaded") < block.index("setup_object: setting the object up")
        assert block.index("setup_object: setting the object up") < block.index("ExampleProcess: all done")
        assert states + "COMPLETE, ExampleProcess=COMPLETE" in block


def hemi_demotask_reproduces_the_documents_scripts(out: str) -> None:
    for line in [
        "executed, still ACTIVE because of its dependency",
        "demodependency returned: COMPLETE",
        "demotask executed: ACTIVE, waiting for demotask2",
        "demotask2 handler read <config> from task.data",
        "event 'demotaskevent': task demotask was HANDLED",
        "demotask COMPLETE, demotask2 COMPLETE",
        "stuck: sticky_task1 (BUSY):",
        "advanced: COMPLETE",
        "RunTaskScript returned True; the handler is still working: ACTIVE",
        "the handler's work advanced it: COMPLETE",
    ]:
        assert line in out


def dask_montecarlo_estimates_pi(out: str) -> None:
    assert "pi is about 3.1407, from 8 chunks of 100,000 points on 2 Dask workers" in out


SHOWS: dict[str, Callable[[str], None]] = {
    "dask_montecarlo.py": dask_montecarlo_estimates_pi,
    "gap_tasks.py": gap_tasks_reproduces_the_document,
    "goasync_service.py": goasync_service_fails_with_every_error_named_then_stops_cleanly,
    "grassroots_jobs.py": grassroots_jobs_signals_once_and_reports_commands,
    "kore_channel.py": kore_channel_follows_the_document,
    "pipeline.py": pipeline_does_what_it_says,
    "showcase.py": showcase_runs_every_system,
    "hemi/page_load.py": hemi_page_load_runs_the_documents_example_process_from_xml_and_json,
    "hemi/demotask.py": hemi_demotask_reproduces_the_documents_scripts,
}
"""What each example shows, run either way."""

SUMMARY = {
    "pipeline.py": ["restarts       : 1", "dead letters   : 1"],
    "showcase.py": ["  jobs           : 1 failed, 15 succeeded"],
}
"""What ``troupe run``'s summary says after an example, where it says something of its own."""


def test_every_example_says_what_it_shows() -> None:
    found = sorted(p.relative_to(EXAMPLES[0].parent).as_posix() for p in EXAMPLES[0].parent.rglob("*.py"))
    # examples/cluster/ runs as several cluster nodes: tests/test_cluster_example.py runs it
    assert [f for f in found if not f.startswith("cluster/")] == sorted(SHOWS)


@pytest.mark.parametrize("name", sorted(set(SHOWS) - {"showcase.py"}))  # the showcase: run twice below
def test_example_runs_through_the_cli(name: str) -> None:
    out = run_example(name)
    SHOWS[name](out)
    assert "summary:" in out
    for line in SUMMARY.get(name, []):
        assert line in out, line


@pytest.mark.parametrize("name", sorted(SHOWS))
def test_issue_18_example_run_as_a_script_shows_what_it_does(name: str, tmp_path: Path) -> None:
    # python examples/hemi/*.py once printed nothing: they had no __main__ part
    SHOWS[name](run_script(name, tmp_path))


def test_goasync_service_stops_cleanly_on_ctrl_c() -> None:
    path = EXAMPLES[0].parent / "goasync_service.py"
    proc = subprocess.Popen(
        [sys.executable, str(path), "--forever"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # wait until it serves (no sleeping)
        lines.append(line)
        if "press Ctrl-C" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGINT: stopping" in out
    assert out.index("server: stopped") < out.index("database: closed") < out.index("stopped cleanly")
    assert "Traceback" not in err


def test_the_showcase_runs_every_system_and_its_second_run_lists_the_first_runs_jobs(tmp_path: Path) -> None:
    db = tmp_path / "demo" / "jobs.sqlite"  # the directory is created, as .troupe/ is by make demo
    first = run_example("showcase.py", "--jobs", str(db))
    assert "the job store holds 0 jobs from earlier runs" in first
    showcase_runs_every_system(first)
    for line in SUMMARY["showcase.py"]:
        assert line in first, line
    second = run_example("showcase.py", "--jobs", str(db))
    assert "the job store holds 16 jobs from earlier runs" in second
    assert f"failed      {Path(sys.executable).name} -c import sys; sys.exit('disk quota exceeded" in second
    listed = subprocess.run(
        [sys.executable, "-m", "troupe.cli", "jobs", "list", "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert len(json.loads(listed.stdout)) == 32


def test_the_showcase_without_a_job_store_says_how_to_run_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "troupe.cli", "run", str(EXAMPLES[0].parent / "showcase.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2  # a mistake in what was asked: the CLI's exit status for a missing store
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "needs a job store" in line
    assert "--jobs .troupe/jobs.sqlite" in line


async def test_pipeline_in_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    sys.path.insert(0, str(EXAMPLES[-1].parent))
    try:
        import pipeline  # noqa: PLC0415 - the example is not a package
    finally:
        sys.path.pop(0)
    async with troupe.open_system() as system:
        assert await pipeline.main(system) == 2821
        assert system.statistics().restarts == 1


def test_hemi_page_load_list_runs_from_the_command_line() -> None:
    out = run_example(
        "hemi/page_load.xml",
        "--entry",
        "ExampleProcess",
        "--functions",
        str(EXAMPLES[0].parent / "hemi" / "page_load.py"),
        "--return",
        "dom_event_window_load",
    )
    assert "loaded 4 tasks" in out
    for task in ("ExampleProcess", "setup_object", "create_object", "load_config"):
        assert re.search(rf"^ *{task} .*COMPLETE", out, re.MULTILINE), task  # its final state
