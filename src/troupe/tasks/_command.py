"""Command tasks (Grassroots' SystemAsyncTask): run a program as a task."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import final

import attrs
import trio

from ._handle import CURRENT_TASK, TaskHandle
from ._task import _CancelExit, _new_task


@final
@attrs.frozen
class CommandResult:
    """What a command task returns."""

    argv: tuple[str, ...]
    """The command that ran."""
    returncode: int
    """Its exit status (negative: killed by that signal)."""
    stdout: bytes
    """Everything it wrote to standard output."""
    stderr: bytes
    """Everything it wrote to standard error."""

    @property
    def succeeded(self) -> bool:
        """Whether it exited with status 0."""
        return self.returncode == 0


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


async def _open(
    command: str | tuple[str, ...],
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    *,
    shell: bool,
) -> trio.Process:
    return await trio.lowlevel.open_process(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        shell=shell,
        start_new_session=True,  # its own process group: killing it kills what it started
    )


async def _drain(stream: trio.abc.ReceiveStream | None, into: bytearray) -> None:
    if stream is not None:
        async for chunk in stream:
            into += chunk


async def _run(
    argv: tuple[str, ...],
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    timeout: float | None,
    check: bool,
    shell: bool,
) -> CommandResult:
    task = CURRENT_TASK.get()
    assert task is not None  # noqa: S101 - the body of the task run_command made
    rec = task._record
    if rec.cancel_requested:  # cancelled before it started: it never starts
        raise _CancelExit(None, None)
    command: str | tuple[str, ...] = argv[0] if shell else argv
    try:
        process = await _open(command, cwd, env, shell=shell)
    except FileNotFoundError as exc:
        msg = f"command not found: {argv[0]!r} (is it installed and on PATH?)"
        raise FileNotFoundError(exc.errno, msg) from exc
    terminated = False

    def terminate() -> None:  # a cooperative cancel(): a command cannot cooperate, it gets SIGTERM
        nonlocal terminated
        if process.returncode is None:
            terminated = True
            _signal_group(process.pid, signal.SIGTERM)

    rec.cancel_hook = terminate
    if rec.cancel_requested:  # asked while it was starting
        terminate()
    out, err = bytearray(), bytearray()
    try:
        with trio.move_on_after(timeout if timeout is not None else float("inf")) as deadline:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_drain, process.stdout, out)
                nursery.start_soon(_drain, process.stderr, err)
                await process.wait()
                _signal_group(process.pid, signal.SIGKILL)  # what it left behind would hold the pipes open
    finally:
        rec.cancel_hook = None
        _signal_group(process.pid, signal.SIGKILL)  # a forced cancel or a timeout: the whole group
        with trio.CancelScope(shield=True):
            await process.wait()
    if deadline.cancelled_caught:
        msg = f"command {list(argv)} did not finish within {timeout} s; its process group was killed"
        raise TimeoutError(msg)
    returncode = process.returncode
    assert returncode is not None  # noqa: S101 - waited for above
    result = CommandResult(argv, returncode, bytes(out), bytes(err))
    if terminated:  # ended by cancel(): cancelled, with what it did as the exit value
        rec.cancel_fired = True
        raise _CancelExit(result, None)
    if check and result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, list(argv), result.stdout, result.stderr)
    return result


async def run_command(
    argv: Sequence[str] | str,
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    check: bool = True,
    shell: bool = False,
    job: bool = False,
) -> TaskHandle[CommandResult]:
    """Run a program as a task whose result is a `CommandResult`.

    ``argv`` is a list; no shell is involved unless ``shell=True`` (then
    ``argv`` is one command string). A timeout or a forced cancel
    (``cancel(force=True)``) sends SIGKILL to the command's whole process
    group, grandchildren included.

    A command cannot cooperate, so a plain ``cancel()`` sends SIGTERM to its
    process group. The task then ends when the command does, cancelled
    whatever its exit status (`TaskCancelled`, not forced), and ``result()``
    returns its `CommandResult` (``returncode == -15`` if SIGTERM killed it;
    a command that traps SIGTERM and exits keeps its own status and output).
    A command that ignores SIGTERM runs on; ``cancel(force=True)`` kills it.
    A cancel before the program started means it never starts; a cancel
    after it exited changes nothing.

    Raises:
        TypeError: ``argv`` is a string without ``shell=True``, or empty.

    The task fails with `subprocess.CalledProcessError` on a non-zero exit
    (when ``check``), `TimeoutError` after ``timeout`` seconds, and
    `FileNotFoundError` naming the program if it does not exist.

    With ``job=True`` it is a job named after the command line (Grassroots'
    SystemAsyncTask): ``running`` is durable before the program starts, and
    the outcome with the return code, stdout and stderr after it ends.
    """
    if shell:
        if not isinstance(argv, str):
            msg = "with shell=True, pass the command as one string"
            raise TypeError(msg)
        args: tuple[str, ...] = (argv,)
    else:
        if isinstance(argv, str) or not argv:
            msg = (
                "argv is a non-empty list of strings like ['ls', '-l'] "
                f"(no shell unless shell=True), got {argv!r}"
            )
            raise TypeError(msg)
        args = tuple(os.fspath(a) for a in argv)
    words = args[0].split(maxsplit=1) if shell else list(args)
    program = Path(words[0]).name if words else "sh"
    # Named for the program, not its path: "python3 -c ...", task "python3-7".
    name = " ".join([program, *words[1:]])
    return await _new_task(
        _run,
        (args, cwd, env, timeout, check, shell),
        executor=None,
        job=(name if len(name) <= _JOB_NAME_MAX else name[: _JOB_NAME_MAX - 3] + "...") if job else None,
        base_name=program,
    )


_JOB_NAME_MAX = 80
