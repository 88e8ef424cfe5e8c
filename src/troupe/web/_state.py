"""What the API shows of a running system: actors, tasks, dead letters, counters.

Read from the system's cells when asked (nothing is paid between requests),
plus what the event tap counts (tasks that finished, the latest dead
letters) and the ``troupe.failure`` log (why actors failed).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..actors._cell import _Cell
from ..protocol import BusEvent, DeadLetter
from ..tasks._task import _TaskActor
from ._encode import dead_letter_json
from ._failures import FailureReasons

if TYPE_CHECKING:
    from ..actors import ActorSystem

STATES = ("starting", "running", "stopping", "down", "dead")  # by the cell's state number
LATEST_DEAD_LETTERS = 50
TASKS_SHOWN = 500  # live tasks listed by /api/tasks (all are counted)
_TASK_ENDS = {
    "troupe.task.finished": "finished",
    "troupe.task.failed": "failed",
    "troupe.task.cancelled": "cancelled",
}


class NotFound(LookupError):
    """Nothing at the path or id asked for; the message says what to do."""


class SystemView:
    """The dashboard's view of one system."""

    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        self.failures = FailureReasons()
        self.task_ends: Counter[str] = Counter()
        self.dead_letters: deque[dict[str, Any]] = deque(maxlen=LATEST_DEAD_LETTERS)
        self.started_at = time.time()
        self._started = time.monotonic()
        self.stopped = False

    def see(self, event: BusEvent) -> None:
        """Count what an event says (the tap calls it for every ``troupe.**`` event)."""
        topic = event.topic
        end = _TASK_ENDS.get(topic)
        if end is not None:
            self.task_ends[end] += 1
        elif topic == "troupe.dead_letter" and isinstance(event.data, DeadLetter):
            self.dead_letters.append(dead_letter_json(event.data))

    def system_json(self, *, read_only: bool) -> dict[str, Any]:
        """``GET /api/system``."""
        system = self.system
        stats = system.statistics()
        return {
            "mode": "system",
            "name": system.name,
            "running": not (self.stopped or system._closing),
            "started_at": self.started_at,
            "uptime": round(time.monotonic() - self._started, 3),
            "stats": {
                "actors": stats.alive,
                "started": stats.actors_started,
                "restarts": stats.restarts,
                "failures": stats.failures,
                "dead_letters": stats.dead_letters,
            },
            "has_jobs": system.jobs is not None,
            "read_only": read_only,
        }

    def actors_json(self, *, offset: int, limit: int, under: str | None) -> dict[str, Any]:
        """``GET /api/actors``: the live actors in tree order (parents first, in spawn order).

        The whole tree is counted by the system's counters, so a page near the
        top walks only as far as its last row (a page refreshed during a storm
        of spawns does not walk 10,000 actors); a subtree is walked and counted.
        """
        system = self.system
        roots, include_root = self._roots(under)
        whole = under is None or under == "/"
        reasons = self.failures.reasons
        items: list[dict[str, Any]] = []
        seen = 0
        for cell in _preorder(roots, include_root):
            if seen >= offset:
                if len(items) < limit:
                    items.append(_actor_json(cell, reasons))
                elif whole:
                    break
            seen += 1
        total = system.statistics().alive if whole else seen
        return {"total": total, "offset": offset, "items": items}

    def _roots(self, under: str | None) -> tuple[list[_Cell], bool]:
        system = self.system
        if under is None or under == "/":
            return [system._user, system._system_guardian], False
        found = _find(system._root, under)
        if found is None:
            msg = f"no live actor at {under!r}; /api/actors lists the paths (or leave out under=)"
            raise NotFound(msg)
        return [found], found.guardian_strategy is None

    def tasks_json(self) -> dict[str, Any]:
        """``GET /api/tasks``: counts by state, and the live tasks (the first ``TASKS_SHOWN``)."""
        live: list[dict[str, Any]] = []
        running = pending = 0
        root = self.system._system_guardian.children
        tasks = root.get("tasks") if root else None
        for cell in (tasks.children or {}).values() if tasks is not None else ():
            actor = cell.actor
            if not isinstance(actor, _TaskActor) or cell.state == _DEAD:
                continue
            rec = actor.record
            state = "finished" if rec.finished else "running" if rec.started else "pending"
            running += state == "running"
            pending += state == "pending"
            if len(live) < TASKS_SHOWN:
                live.append(
                    {
                        "name": rec.name,
                        "state": state,
                        "job_id": rec.job_id,
                        "has_channel": rec.channel is not None,
                    }
                )
        ends = self.task_ends
        counts = {
            "pending": pending,
            "running": running,
            **{k: ends[k] for k in ("finished", "failed", "cancelled")},
        }
        return {"counts": counts, "total": running + pending, "items": live}

    def dead_letters_json(self) -> dict[str, Any]:
        """``GET /api/deadletters``: how many so far, and the latest (newest last)."""
        return {"count": self.system.dead_letters.count, "latest": list(self.dead_letters)}


_DEAD = 4


def _preorder(roots: list[_Cell], include_root: bool) -> Iterator[_Cell]:
    """The live cells below ``roots`` (and the roots if ``include_root``), parents first, in spawn order."""
    for root in roots:
        stack = [root]
        while stack:
            cell = stack.pop()
            if cell is not root or include_root:
                yield cell
            if cell.children:
                stack.extend(c for c in reversed(cell.children.values()) if c.state != _DEAD)


def _find(root: _Cell, path: str) -> _Cell | None:
    if not path.startswith("/"):
        return None
    cell = root
    for part in path.rstrip("/")[1:].split("/"):
        found = cell.children.get(part) if cell.children else None
        if found is None or found.state == _DEAD:
            return None
        cell = found
    return cell


def _actor_json(cell: _Cell, reasons: dict[str, str]) -> dict[str, Any]:
    actor = cell.actor
    kind: object = type(actor) if actor is not None else cell.factory
    parent = cell.parent
    return {
        "path": cell.path,
        "name": cell.name,
        "parent": parent.path if parent is not None else None,
        "class": getattr(kind, "__qualname__", None) if isinstance(kind, type) else None,
        "state": STATES[cell.state],
        "queued": len(cell.q) if cell.q else 0,
        "capacity": cell.capacity,
        "restarts": len(cell.restart_times) if cell.restart_times else 0,
        "children": sum(1 for c in cell.children.values() if c.state != _DEAD) if cell.children else 0,
        "failure": reasons.get(cell.path),
    }
