"""Command tasks: real programs, no shell, timeouts that kill the process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

import troupe

from kit import eventually, session_members


async def test_a_command_and_its_result(system: troupe.ActorSystem) -> None:
    t = await troupe.run_command(
        [sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr)"]
    )
    result = await t.result()
    assert result.returncode == 0
    assert result.succeeded
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\n"
    assert result.argv[0] == sys.executable


async def test_no_shell_unless_asked(system: troupe.ActorSystem, tmp_path: Path) -> None:
    t = await troupe.run_command(["echo", "$HOME", ";", "true"])
    assert (await t.result()).stdout == b"$HOME ; true\n"
    shell = await troupe.run_command("echo $((1 + 2))", shell=True)
    assert (await shell.result()).stdout == b"3\n"
    with pytest.raises(TypeError, match="list"):
        await troupe.run_command("echo hi")
    with pytest.raises(TypeError, match="one string"):
        await troupe.run_command(["echo"], shell=True)


async def test_a_failing_command_fails_its_task_unless_check_is_false(system: troupe.ActorSystem) -> None:
    failing = await troupe.run_command(["sh", "-c", "exit 3"])
    error = await failing.error()
    assert isinstance(error, subprocess.CalledProcessError)
    assert error.returncode == 3
    unchecked = await troupe.run_command(["sh", "-c", "exit 3"], check=False)
    assert (await unchecked.result()).returncode == 3


async def test_a_missing_program_names_itself(system: troupe.ActorSystem) -> None:
    t = await troupe.run_command(["no-such-program-xyz", "--flag"])
    error = await t.error()
    assert isinstance(error, FileNotFoundError)
    assert "no-such-program-xyz" in str(error)


async def test_timeout_kills_the_command_and_its_grandchildren(
    system: troupe.ActorSystem, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    script = f"echo $$ > {pid_file}; sleep 300 & sleep 300 & wait"
    t = await troupe.run_command(["sh", "-c", script], timeout=0.5)
    error = await t.error()
    assert isinstance(error, TimeoutError)
    assert "did not finish within 0.5 s" in str(error)
    sid = int(pid_file.read_text())
    await eventually(lambda: not session_members(sid))


async def test_forced_cancel_kills_the_process_group(system: troupe.ActorSystem, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    t = await troupe.run_command(["sh", "-c", f"echo $$ > {pid_file}; sleep 300 & wait"])
    await eventually(lambda: pid_file.exists() and pid_file.read_text().strip())
    await t.cancel(force=True)
    assert isinstance(await t.error(), troupe.TaskCancelled)
    sid = int(pid_file.read_text())
    await eventually(lambda: not session_members(sid))


async def test_cwd_and_env(system: troupe.ActorSystem, tmp_path: Path) -> None:
    t = await troupe.run_command(
        ["sh", "-c", "pwd; echo $GREETING"], cwd=tmp_path, env={**os.environ, "GREETING": "hi"}
    )
    out = (await t.result()).stdout.decode().split()
    assert out == [str(tmp_path), "hi"]


# -- issue 17 ---------------------------------------------------------------


def _pid(pid_file: Path) -> int | None:
    text = pid_file.read_text().strip() if pid_file.exists() else ""
    return int(text) if text else None


async def _started(pid_file: Path) -> int:
    await eventually(lambda: _pid(pid_file))
    pid = _pid(pid_file)
    assert pid is not None
    return pid


async def test_issue_17_21_a_cooperative_cancel_sends_sigterm_to_the_process_group(
    system: troupe.ActorSystem, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    t = await troupe.run_command(["sh", "-c", f"sleep 300 & echo $$ > {pid_file}; wait"])
    sid = await _started(pid_file)
    with trio.fail_after(10):
        await t.cancel()
        error = await t.error()
    assert isinstance(error, troupe.TaskCancelled)
    assert not error.forced
    result = await t.result()  # the cooperative exit value: what the command did
    assert result.returncode == -signal.SIGTERM
    assert not await t.succeeded()
    await eventually(lambda: not session_members(sid))


async def test_issue_17_21_a_command_that_traps_sigterm_ends_cancelled_with_its_output(
    system: troupe.ActorSystem, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    script = f"trap 'echo cleaned up; exit 0' TERM; echo $$ > {pid_file}; sleep 300 & wait"
    t = await troupe.run_command(["sh", "-c", script])
    sid = await _started(pid_file)
    with trio.fail_after(10):
        await t.cancel()
        result = await t.result()
    assert (result.returncode, result.stdout) == (0, b"cleaned up\n")
    error = await t.error()
    assert isinstance(error, troupe.TaskCancelled)
    assert not error.forced
    await eventually(lambda: not session_members(sid))


async def test_issue_17_21_a_command_that_ignores_sigterm_runs_on_until_force(
    system: troupe.ActorSystem, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    ready = tmp_path / "ready"
    script = f"trap '' TERM; echo $$ > {pid_file}; while true; do touch {ready}; sleep 0.05; done"
    t = await troupe.run_command(["sh", "-c", script])
    sid = await _started(pid_file)
    await t.cancel()
    ready.unlink(missing_ok=True)
    await eventually(ready.exists)  # still running after the SIGTERM
    assert not t.finished
    await t.cancel(force=True)  # SIGKILL
    error = await t.error()
    assert isinstance(error, troupe.TaskCancelled)
    assert error.forced
    await eventually(lambda: not session_members(sid))


async def test_issue_17_21_a_cancel_after_the_command_ended_changes_nothing(
    system: troupe.ActorSystem,
) -> None:
    t = await troupe.run_command(["true"])
    assert (await t.result()).returncode == 0
    await t.cancel()
    assert await t.succeeded()


async def test_issue_17_18_a_command_exiting_with_sys_exit_only_fails_its_task(
    system: troupe.ActorSystem,
) -> None:
    t = await troupe.run_command([sys.executable, "-c", "import sys; sys.exit(7)"])
    error = await t.error()
    assert isinstance(error, subprocess.CalledProcessError)
    assert error.returncode == 7
    assert (await (await troupe.run_command(["true"])).result()).returncode == 0
    assert system.statistics().failures == 0
