"""Stuck detection: every task of a service that cannot move by itself, and why."""

from __future__ import annotations

from ._model import Record, StuckTask, TaskState
from ._tasklist import cycles_through


def stuck(tasks: dict[str, Record]) -> list[StuckTask]:
    """Every task that cannot move by itself, with the reason."""
    out = []
    cycles = cycles_through({task_id: [n for n in t.waits if n in tasks] for task_id, t in tasks.items()})
    for t in tasks.values():
        if t.running or t.state in (TaskState.INITIALIZED, TaskState.COMPLETE, TaskState.DESTROYED):
            continue
        waits = tuple(t.waits)
        if t.error is not None and t.note is not None:  # its body, or serving it, raised
            reason = f"{t.note}; advance() it to move it on"
        elif t.state == TaskState.BUSY or (t.state == TaskState.ACTIVE and t.handled):
            part, kind = (
                ("handler", t.handler_type) if t.state == TaskState.ACTIVE else ("action", t.action_type)
            )
            did = t.note if t.note is not None else f"its {kind} {part} did not advance"
            reason = f"{did}; advance() it to move it on"
        elif waits:
            cycle = cycles.get(t.id)
            if cycle is not None:
                reason = f"it is part of the dependency cycle {' -> '.join(cycle)}"
            else:
                reason = "it waits for " + ", ".join(_describe(n, tasks) for n in waits)
        else:
            reason = "nothing served it since its dependencies were returned; advance() it"
        out.append(StuckTask(t.id, t.state, waits, reason))
    return out


def _describe(name: str, tasks: dict[str, Record]) -> str:
    t = tasks.get(name)
    if t is None:
        return f"dependency {name!r} (not returned yet)"
    if t.state == TaskState.INITIALIZED:
        return f"task {name!r} (never executed)"
    return f"task {name!r} ({t.state.name})"
