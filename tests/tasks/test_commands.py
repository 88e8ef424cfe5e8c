"""Command tasks: real programs, no shell, timeouts that kill the process group."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import troupe

from kit import eventually


def _session_members(sid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


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
    await eventually(lambda: not _session_members(sid))


async def test_forced_cancel_kills_the_process_group(system: troupe.ActorSystem, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    t = await troupe.run_command(["sh", "-c", f"echo $$ > {pid_file}; sleep 300 & wait"])
    await eventually(lambda: pid_file.exists() and pid_file.read_text().strip())
    await t.cancel(force=True)
    assert isinstance(await t.error(), troupe.TaskCancelled)
    sid = int(pid_file.read_text())
    await eventually(lambda: not _session_members(sid))


async def test_cwd_and_env(system: troupe.ActorSystem, tmp_path: Path) -> None:
    t = await troupe.run_command(
        ["sh", "-c", "pwd; echo $GREETING"], cwd=tmp_path, env={**os.environ, "GREETING": "hi"}
    )
    out = (await t.result()).stdout.decode().split()
    assert out == [str(tmp_path), "hi"]
