"""``troupe run FILE --dashboard [HOST:]PORT``: the real command in a subprocess, its dashboard over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from dashkit import TOPOLOGY, TROUPE, WAIT, ended, interrupt, read_until, serving, url_in
from test_exits import IN_A_NURSERY, SYNC_SLEEP


def test_run_serves_the_dashboard_while_the_system_runs(tmp_path: Path) -> None:
    topology = tmp_path / "topology.py"
    topology.write_text(TOPOLOGY)
    db = tmp_path / "jobs.sqlite"
    with serving("run", str(topology), "--dashboard", "0", "--jobs", str(db)) as (proc, line):
        assert line.startswith("dashboard at http://127.0.0.1:"), line
        assert "(token " in line
        url = url_in(line)
        system = httpx.get(url + "api/system").json()
        assert system["running"] is True
        assert system["name"] == str(topology)
        assert system["read_only"] is False
        jobs = httpx.get(url + "api/jobs").json()
        assert jobs == {"total": 0, "offset": 0, "items": []}
        actors = httpx.get(url + "api/actors").json()
        assert actors["total"] >= 1
        status, out, err = interrupt(proc)
    assert status == 130, (out, err)
    assert err == "troupe: interrupted\n"
    assert "summary:" in out
    with pytest.raises(httpx.TransportError):  # it stopped with the system
        httpx.get(url + "api/system", timeout=2)


def test_run_takes_a_host_and_a_token(tmp_path: Path) -> None:
    topology = tmp_path / "topology.py"
    topology.write_text(TOPOLOGY)
    args = ("run", str(topology), "--dashboard", "127.0.0.1:0", "--dashboard-token", "s3cret")
    with serving(*args) as (proc, line):
        assert line.endswith("(token s3cret)\n"), line
        url = url_in(line)
        assert httpx.get(url + "api/system").json()["running"] is True
        missing = httpx.get(url + "api/jobs")  # no --jobs: the system has no store
        assert missing.status_code == 404
        assert "no job store" in missing.json()["error"]
        status, _, err = interrupt(proc)
    assert status == 130, err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--dashboard", "abc"], "Invalid value for '--dashboard': 'abc' is not [HOST:]PORT"),
        (["--dashboard", "70000"], "'70000' is not [HOST:]PORT"),
        (["--dashboard", "::1:80"], "'::1:80' is not [HOST:]PORT"),
        (["--dashboard-token", "t"], "--dashboard-token is the token of a dashboard"),
        (["--dashboard", "0", "--dashboard-token", "a b"], "token is a non-empty string"),
    ],
)
def test_a_bad_dashboard_option_is_one_line(tmp_path: Path, args: list[str], said: str) -> None:
    topology = tmp_path / "topology.py"
    topology.write_text(TOPOLOGY)
    done = subprocess.run(
        [*TROUPE, "run", str(topology), *args], check=False, capture_output=True, text=True, timeout=WAIT
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("troupe: ")
    assert said in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "ready" not in done.stdout  # the topology never ran


def test_a_taken_port_is_one_line_and_the_topology_does_not_run(tmp_path: Path) -> None:
    topology = tmp_path / "topology.py"
    topology.write_text(TOPOLOGY)
    with serving("run", str(topology), "--dashboard", "0") as (proc, line):
        port = url_in(line).rstrip("/").rpartition(":")[2]
        done = subprocess.run(
            [*TROUPE, "run", str(topology), "--dashboard", port],
            check=False,
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        interrupt(proc)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith(f"troupe: cannot serve the dashboard on 127.0.0.1:{port}: ")
    assert done.stderr.count("\n") == 1, done.stderr
    assert "ready" not in done.stdout


# Issue 22: Ctrl-C ends a run the same way whatever task it comes in (the dashboard's server's
# too): the system stops, the summary is printed, `troupe: interrupted`, exit status 130.

DASHBOARD = pytest.mark.parametrize("dashboard", [["--dashboard", "0"], []], ids=["dashboard", "alone"])


STOPS_WHEN_TOLD = """
import pathlib
import trio
import troupe

class Slow(troupe.Actor[int]):
    async def receive(self, msg: int) -> None:
        pass

    async def on_stop(self) -> None:
        print("stopping", flush=True)
        while not pathlib.Path({go!r}).exists():
            await trio.sleep(0.01)

async def main(system):
    await system.spawn(Slow, name="slow")
    print("ready", flush=True)
"""

NEVER_STOPS = """
import trio
import troupe

class Stubborn(troupe.Actor[int]):
    async def receive(self, msg: int) -> None:
        pass

    async def on_stop(self) -> None:
        print("stopping", flush=True)
        await trio.sleep_forever()

async def main(system):
    await system.spawn(Stubborn, name="stubborn")
    print("ready", flush=True)
    await trio.sleep_forever()
"""

# `troupe` that presses Ctrl-C itself once the dashboard is served: before the topology starts.
CTRL_C_ONCE_SERVED = """
import os, signal, sys
import troupe.web
from troupe.cli import main

serve = troupe.web.serve

async def serve_then_ctrl_c(*args, **kwargs):
    dashboard = await serve(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGINT)
    return dashboard

troupe.web.serve = serve_then_ctrl_c
sys.exit(main())
"""


def _ready(proc: subprocess.Popen[str], line: str) -> str:
    """What it printed up to the topology's "ready" (the first line, or the ones after the dashboard's)."""
    return line if "ready" in line else line + read_until(proc, "ready")


def _ctrl_c(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in its terminal does


@DASHBOARD
@pytest.mark.parametrize("body", [TOPOLOGY, IN_A_NURSERY, SYNC_SLEEP], ids=["await", "nursery", "sync"])
def test_issue_22_ctrl_c_while_the_topology_runs(tmp_path: Path, body: str, dashboard: list[str]) -> None:
    topology = tmp_path / "topology.py"
    topology.write_text(body)
    with serving("run", str(topology), *dashboard) as (proc, line):
        _ready(proc, line)
        status, out, err = interrupt(proc)
    assert (status, err) == (130, "troupe: interrupted\n"), out
    assert "summary:" in out  # the system stopped cleanly, then the summary


def test_issue_22_ctrl_c_before_the_topology_starts(tmp_path: Path) -> None:
    topology = tmp_path / "topology.py"
    topology.write_text(TOPOLOGY)
    command = [sys.executable, "-c", CTRL_C_ONCE_SERVED]
    with serving("run", str(topology), "--dashboard", "0", troupe=command) as (proc, line):
        assert line.startswith("dashboard at "), line
        status, out, err = ended(proc)
    assert (status, err) == (130, "troupe: interrupted\n"), out
    assert "ready" not in out  # not started
    assert "summary:" in out


@DASHBOARD
def test_issue_22_ctrl_c_while_the_system_shuts_down(tmp_path: Path, dashboard: list[str]) -> None:
    go = tmp_path / "go"
    topology = tmp_path / "topology.py"
    topology.write_text(STOPS_WHEN_TOLD.format(go=str(go)))
    with serving("run", str(topology), *dashboard) as (proc, line):
        seen = _ready(proc, line)
        if "stopping" not in seen:
            read_until(proc, "stopping")  # the topology returned: the system is shutting down
        _ctrl_c(proc)
        go.touch()  # the shutdown goes on and ends
        status, out, err = ended(proc)
    assert (status, err) == (130, "troupe: interrupted\n"), out
    assert "summary:" in out


@DASHBOARD
def test_issue_22_a_second_ctrl_c_cuts_the_shutdown_short(tmp_path: Path, dashboard: list[str]) -> None:
    topology = tmp_path / "topology.py"
    topology.write_text(NEVER_STOPS)
    with serving("run", str(topology), *dashboard) as (proc, line):
        _ready(proc, line)
        _ctrl_c(proc)
        read_until(proc, "stopping")
        status, out, err = interrupt(proc)
    assert (status, err) == (130, "troupe: interrupted\n"), out
    # Not stopped by the shutdown timeout (10 s), which ends with a summary naming the stuck actor.
    assert "summary" not in out
