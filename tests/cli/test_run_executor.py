"""``troupe run LIST --executor NAME[=ADDRESS]``: a task list's bodies on threads, processes or Dask."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from troupe.cli import main

FUNCTIONS = '''
import multiprocessing
import threading


def away(*_):
    """Advances only in a worker process (a Dask worker, a process executor's)."""
    return multiprocessing.parent_process() is not None


def off_loop(*_):
    return threading.current_thread() is not threading.main_thread()


class Made:
    def __init__(self, *params):
        self.params = params
'''

LIST = """
[[tasks]]
id = "all"
handler_type = "component"
handler = "Made"
children = [{rid = "away", auto_execute = true}, {rid = "threaded", auto_execute = true}]

[[tasks]]
id = "away"
action_type = "function"
action = "away"
params = [1]

[[tasks]]
id = "threaded"
action_type = "function"
action = "off_loop"
params = [2]
executor = "thread"
"""


def write(tmp_path: Path) -> list[str]:
    """The task list and its functions module; the ``troupe run`` arguments for them."""
    (tmp_path / "fns.py").write_text(FUNCTIONS)
    (tmp_path / "tasks.toml").write_text(LIST)
    return ["run", str(tmp_path / "tasks.toml"), "--entry", "all", "--functions", str(tmp_path / "fns.py")]


def test_dask_runs_the_bodies_on_an_embedded_cluster_end_to_end(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "troupe.cli", *write(tmp_path), "--executor", "dask"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, ""), done
    lines = done.stdout.splitlines()
    assert lines[0] == "executor: dask (an embedded cluster)"
    # 'away' ran in a Dask worker; 'threaded' in a thread (its own executor); 'all' made its component there
    for task_id in ("all", "away", "threaded"):
        assert f"{task_id:<8}  COMPLETE (5)" in done.stdout


def test_thread_and_process_set_the_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = write(tmp_path)
    assert main([*argv, "--executor", "process"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("executor: process\nloading ")
    assert "  away      COMPLETE (5)" in out
    assert main([*argv, "--executor", "thread"]) == 1  # 'away' advances only in a worker process
    out = capsys.readouterr().out
    assert "  away: its action returned False (a false value)" in out
    assert "  threaded  COMPLETE (5)" in out


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            "gpu",
            "--executor 'gpu': unknown executor 'gpu'; use inline, thread, process, dask, or dask=tcp://",
        ),
        ("thread=tcp://h:8786", "--executor 'thread=tcp://h:8786': only dask takes an address"),
        ("dask=", "--executor 'dask=': the address is the Dask scheduler's, like dask=tcp://HOST:8786"),
        ("", "--executor '': unknown executor ''"),
    ],
)
def test_bad_values_are_one_line_errors_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, message: str
) -> None:
    assert main([*write(tmp_path), "--executor", option]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err


def test_executor_is_for_task_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "topology.py").write_text("async def main(system):\n    pass\n")
    assert main(["run", str(tmp_path / "topology.py"), "--executor", "dask"]) == 2
    err = capsys.readouterr().err
    assert "--executor is for task lists (.xml, .json, .toml); " in err
    assert "troupe.use_executor(" in err


def test_without_the_dask_extra_the_message_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises ImportError
    assert main([*write(tmp_path), "--executor", "dask=tcp://127.0.0.1:8786"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "troupe: --executor dask: the DaskExecutor needs troupe's dask extra: "
        "pip install 'trio-troupe[dask]'\n"
    )


def test_graph_shows_a_task_s_executor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path)
    assert main(["graph", str(tmp_path / "tasks.toml")]) == 0
    assert 't2["threaded<br/>action: function off_loop<br/>handler: none<br/>executor: thread"]' in (
        capsys.readouterr().out
    )


def test_dask_at_an_address_gets_the_functions_file_with_the_bodies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dask_cluster: Any
) -> None:
    # The session's cluster started before this file existed: its workers cannot import it.
    address = dask_cluster.scheduler_address
    assert main([*write(tmp_path), "--executor", f"dask={address}"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"executor: dask ({address})\nloading ")
    assert "  away      COMPLETE (5)" in out
