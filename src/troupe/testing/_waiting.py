"""What each task of a hung schedule waits on, in one line per task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._frames import origin, where

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

    from trio.lowlevel import Task

_RECEIVE_LOOP = ("_instance", "_run_cut")  # an actor's task, parked in its receive loop when idle


def tasks_under(task: Task) -> Iterator[Task]:
    """``task`` and every task below it, depth first, in creation order."""
    stack = [task]
    while stack:
        current = stack.pop()
        yield current
        children = [child for nursery in current.child_nurseries for child in nursery.child_tasks]
        children.sort(key=lambda t: t._counter, reverse=True)
        stack.extend(children)


def _frames(task: Task) -> list[FrameType]:
    """The task's await chain, outermost first."""
    frames: list[FrameType] = []
    coro: Any = task.coro
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:
            break
        frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return frames


def describe(task: Task, name: str) -> str | None:
    """``"<task>: waiting at file:line in fn: source"``, or None for an actor idle in its receive loop."""
    frames = _frames(task)
    if not frames or any(f.f_code.co_name == "__aexit__" and origin(f) == "trio" for f in frames):
        return None  # nothing to show, or it waits for its nursery's children: they are listed
    mine = [f for f in frames if origin(f) == "troupe"]
    theirs = [f for f in frames if origin(f) in ("user", "testing")]
    idle = bool(mine) and mine[-1].f_code.co_name in _RECEIVE_LOOP
    if not theirs and (idle or not task.name.startswith("/")):
        return None  # troupe's own machinery, or an actor parked for want of a message
    frame = theirs[-1] if theirs else (mine[-1] if mine else frames[-1])
    return f"{name}: waiting at {where(frame, source=True)}"


def waiting(main: Task, skip: set[Task]) -> tuple[str, ...]:
    """One line per task under ``main`` (but ``skip``) that waits on something other than a message."""
    lines = []
    for task in tasks_under(main):
        if task in skip:
            continue
        line = describe(task, "the body" if task is main else task.name)
        if line is not None:
            lines.append(line)
    return tuple(lines)
