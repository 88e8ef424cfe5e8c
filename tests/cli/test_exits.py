"""How ``troupe run`` ends: Ctrl-C, the topology's ``sys.exit``, a target that cannot be imported.

Each way out is an exit status and at most one line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import pty
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from troupe.cli import main

AWAITING = """
import trio

async def main(system):
    print("ready", flush=True)
    await trio.sleep_forever()
"""

IN_A_NURSERY = """
import trio
import troupe

class Idle(troupe.Actor[int]):
    async def receive(self, msg: int) -> None:
        pass

async def main(system):
    await system.spawn(Idle, name="idle")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep_forever)
        print("ready", flush=True)
        await trio.sleep_forever()
"""

SYNC_SLEEP = """
import time

async def main(system):
    print("ready", flush=True)
    while True:
        time.sleep(0.01)
"""


def _read_until(fd: int, wanted: bytes, deadline: float) -> bytes:
    """What ``fd`` gives until ``wanted`` appears (or it ends, or the deadline passes)."""
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while wanted not in seen and time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # a pty whose other end closed: the process ended
                break
            if not chunk:
                break
            seen += chunk
    return seen


def interrupted_run(
    tmp_path: Path, body: str, *, live: bool, again: bytes | None = None
) -> tuple[int, str, str]:
    """Run ``body`` with ``troupe run``, press Ctrl-C once it printed "ready"; (status, stdout, stderr).

    With ``again``, press Ctrl-C a second time once it printed that.
    """
    path = tmp_path / "topology.py"
    path.write_text(body)
    command = [sys.executable, "-m", "troupe.cli", "run", str(path), *([] if live else ["--plain"])]
    env = {**os.environ, "COLUMNS": "80", "LINES": "24", "TERM": "xterm"}
    errors = tmp_path / "stderr.txt"
    if live:  # the live view is drawn only in a terminal
        reader, writer = pty.openpty()
    else:
        reader, writer = os.pipe()
    with errors.open("w") as stderr:
        proc = subprocess.Popen(command, stdout=writer, stderr=stderr, env=env, start_new_session=True)
    os.close(writer)
    try:
        deadline = time.monotonic() + 60
        out = _read_until(reader, b"ready", deadline)
        assert b"ready" in out, (out, errors.read_text())
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
        if again is not None:
            out += _read_until(reader, again, deadline)
            assert again in out, (out, errors.read_text())
            os.killpg(proc.pid, signal.SIGINT)
        out += _read_until(reader, b"\0never", deadline)
        status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(reader)
    return status, out.decode(errors="replace"), errors.read_text()


@pytest.mark.parametrize("live", [False, True], ids=["plain", "live"])
@pytest.mark.parametrize("body", [AWAITING, IN_A_NURSERY, SYNC_SLEEP], ids=["await", "nursery", "sync"])
def test_issue_18_ctrl_c_exits_130_with_one_line(tmp_path: Path, body: str, live: bool) -> None:
    status, out, err = interrupted_run(tmp_path, body, live=live)
    assert (status, err) == (130, "troupe: interrupted\n"), out
    assert ("summary (" if live else "summary:") in out  # the system stopped cleanly, then the summary


SLOW_TO_STOP = """
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


@pytest.mark.parametrize("live", [False, True], ids=["plain", "live"])
def test_issue_18_a_second_ctrl_c_cuts_a_slow_shutdown_short(tmp_path: Path, live: bool) -> None:
    status, out, err = interrupted_run(tmp_path, SLOW_TO_STOP, live=live, again=b"stopping")
    assert (status, err) == (130, "troupe: interrupted\n"), out
    # Not stopped by the shutdown timeout (10 s), which ends with a summary naming the stuck actor.
    assert "summary" not in out


@pytest.mark.parametrize(
    ("call", "status", "line"),
    [
        ("sys.exit(3)", 3, "troupe: {path} exited with status 3"),
        ("sys.exit(0)", 0, None),
        ("sys.exit()", 0, None),
        ("sys.exit('disk full\\nsee the log')", 1, "troupe: {path} exited: disk full see the log"),
        ("sys.exit(-1)", 255, "troupe: {path} exited with status 255"),
    ],
)
def test_issue_18_a_topology_that_calls_sys_exit_exits_with_its_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], call: str, status: int, line: str | None
) -> None:
    path = tmp_path / "topology.py"
    path.write_text(f"import sys\n\nasync def main(system):\n    {call}\n")
    assert main(["run", str(path)]) == status
    captured = capsys.readouterr()
    assert captured.err == ("" if line is None else line.format(path=path) + "\n")
    assert "summary:" in captured.out


def test_issue_18_sys_exit_inside_the_topologys_nursery_is_its_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "topology.py"
    path.write_text(
        "import sys\nimport trio\n\n"
        "async def leave():\n    sys.exit(4)\n\n"
        "async def main(system):\n"
        "    async with trio.open_nursery() as nursery:\n"
        "        nursery.start_soon(leave)\n"
        "        await trio.sleep_forever()\n"
    )
    assert main(["run", str(path)]) == 4
    assert capsys.readouterr().err == f"troupe: {path} exited with status 4\n"


def test_issue_18_sys_exit_in_a_subprocess_is_exit_status_3(tmp_path: Path) -> None:
    path = tmp_path / "topology.py"
    path.write_text("import sys\n\nasync def main(system):\n    sys.exit(3)\n")
    command = [sys.executable, "-m", "troupe.cli", "run", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert (done.returncode, done.stderr) == (3, f"troupe: {path} exited with status 3\n")


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("x = 1\ndef f(:\n    pass\n", "{path}:2: SyntaxError: invalid syntax"),
        (
            "import no_such_module_xyz\n",
            "{path}:1: ModuleNotFoundError: No module named 'no_such_module_xyz'",
        ),
        ("x = 1\ny = 1 / 0\n", "{path}:2: ZeroDivisionError: division by zero"),
        ("import helper_xyz\n", "{helper}:2: KeyError: 'config'"),
    ],
    ids=["syntax", "import", "raises", "its-import-raises"],
)
def test_issue_18_a_target_that_cannot_be_imported_is_one_line_with_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, line: str
) -> None:
    helper = tmp_path / "helper_xyz.py"
    helper.write_text("settings = {}\nvalue = settings['config']\n")
    path = tmp_path / "broken_target.py"
    path.write_text(body)
    try:
        assert main(["run", str(path)]) == 2
    finally:
        sys.modules.pop("helper_xyz", None)
    expected = line.format(path=path, helper=helper)
    assert capsys.readouterr().err == f"troupe: cannot import {path}: {expected}\n"


def test_issue_18_a_module_target_whose_own_import_fails_names_the_failing_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "target_mod_xyz.py").write_text("import missing_dep_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["run", "target_mod_xyz"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"troupe: cannot import target_mod_xyz: {tmp_path / 'target_mod_xyz.py'}:1: "
        "ModuleNotFoundError: No module named 'missing_dep_xyz'\n"
    )


def test_issue_18_traceback_shows_an_import_error_whole(tmp_path: Path) -> None:
    path = tmp_path / "broken_target.py"
    path.write_text("y = 1 / 0\n")
    with pytest.raises(ZeroDivisionError):
        main(["run", str(path), "--traceback"])


def test_issue_18_a_topology_that_needs_a_job_store_says_to_add_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "topology.py"
    path.write_text("import troupe\n\nasync def main(system):\n    await troupe.submit_job(int, name='n')\n")
    assert main(["run", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"troupe: {path} needs a job store: run it with --jobs PATH, "
        f"as in `troupe run {path} --jobs .troupe/jobs.sqlite`\n"
    )
    assert main(["run", str(path), "--jobs", str(tmp_path / "jobs.sqlite")]) == 0


def test_issue_18_the_showcase_without_jobs_says_what_to_add(capsys: pytest.CaptureFixture[str]) -> None:
    showcase = Path(__file__).parent.parent.parent / "examples" / "showcase.py"
    try:
        assert main(["run", str(showcase)]) == 2
    finally:
        sys.modules.pop("showcase", None)
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        f"troupe: {showcase} needs a job store: run it with --jobs PATH, "
        f"as in `troupe run {showcase} --jobs .troupe/jobs.sqlite`"
    )


def test_a_file_that_is_not_python_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not python")
    assert main(["run", str(path)]) == 2
    assert capsys.readouterr().err == f"troupe: cannot load {path} as Python\n"


def test_issue_18_a_reader_that_goes_away_ends_the_run_quietly(tmp_path: Path) -> None:
    path = tmp_path / "topology.py"
    path.write_text(
        "import troupe\n\n"
        "class Idle(troupe.Actor[int]):\n"
        "    async def receive(self, msg: int) -> None:\n"
        "        pass\n\n"
        "async def main(system):\n"
        "    print('ready', flush=True)\n"
        "    for i in range(100_000):\n"
        "        await (await system.spawn(Idle, name=f'idle-{i}')).stop()\n"
    )
    command = [sys.executable, "-m", "troupe.cli", "run", str(path), "--plain", "--events"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # as `... | head -1`
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (1, b"")  # before: a BrokenPipeError traceback in an exception group
