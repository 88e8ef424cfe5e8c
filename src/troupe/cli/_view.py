"""What ``troupe run`` shows while a topology runs: a rich live view, or plain log lines.

Both are fed by the system's lifecycle events (``troupe.**``): actors
spawned, restarted, failed, stopped; tasks started and finished; job
transitions; dead letters.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..actors import ActorSystem, SystemStatistics
from ..actors import _cell as cells
from ..jobs import JobRecord, JobStatus
from ..protocol import BusEvent, DeadLetter

_ACTOR_WORDS = {
    "troupe.spawned": "spawned",
    "troupe.started": "started",
    "troupe.restarted": "restarted",
    "troupe.failed": "failed",
    "troupe.stopped": "stopped",
}
_NOTABLE = {"troupe.restarted", "troupe.failed"}
_STATUS_STYLE = {
    JobStatus.PENDING: "yellow",
    JobStatus.RUNNING: "cyan",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "magenta",
    JobStatus.INTERRUPTED: "red",
}
_MAX_TREE = 30
_MAX_JOBS = 12
_MAX_NOTES = 6


class RunState:
    """What the events said so far."""

    def __init__(self) -> None:
        self.actor_state: dict[str, str] = {}
        self.tasks: Counter[str] = Counter()
        self.jobs: dict[str, JobRecord] = {}
        self.last_events: list[str] = []
        self.reasons: dict[str, str] = {}
        """Why each failed actor failed, by path (from the ``troupe.failure`` log)."""

    def apply(self, event: BusEvent) -> str | None:
        """Record ``event``; return a log line for it, or None if it is not worth one."""
        line = self._apply(event)
        if line is not None and _notable(event.topic):
            self.last_events = [*self.last_events[-(_MAX_NOTES - 1) :], line]
        return line

    def _apply(self, event: BusEvent) -> str | None:
        topic, data = event.topic, event.data
        word = _ACTOR_WORDS.get(topic)
        if word is not None:
            self.actor_state[str(data)] = word
            reason = self.reasons.get(str(data)) if word == "failed" else None
            return f"[{word:>9}] {data}" + (f": {reason}" if reason else "")
        if topic.startswith("troupe.task."):
            kind = topic.rsplit(".", 1)[1]
            self.tasks[kind] += 1
            return f"[task {kind:>9}] {data}"
        if topic.startswith("troupe.job.") and isinstance(data, JobRecord):
            self.jobs[data.id] = data
            if topic == "troupe.job.progress":
                return f"[job progress] {data.name}: {data.progress:.0%} {data.progress_message}".rstrip()
            return f"[job {data.status.value:>11}] {data.name} ({data.id[:8]})"
        if topic == "troupe.dead_letter" and isinstance(data, DeadLetter):
            return f"[dead letter] {type(data.message).__name__} to {data.recipient}: {data.reason.value}"
        return None


def _notable(topic: str) -> bool:
    return topic in _NOTABLE or topic in {"troupe.dead_letter", "troupe.task.failed"}


def plain_line(event: BusEvent, line: str, *, every: bool) -> str | None:
    """In plain mode: the line to print for ``event`` (all with ``--events``, else the notable ones)."""
    topic = event.topic
    if every or _notable(topic) or (topic.startswith("troupe.job.") and topic != "troupe.job.progress"):
        return line
    return None


def _tree(system: ActorSystem, state: RunState) -> Tree:
    root = Tree(Text(f"actors of {system.name}", style="bold"))
    shown = 0
    hidden = 0
    stack: list[tuple[Tree, Any]] = [(root, g) for g in reversed(system._guardians)]
    while stack:
        parent, cell = stack.pop()
        if shown >= _MAX_TREE:
            hidden += 1
            children = cell.children or {}
            stack.extend((parent, c) for c in children.values())
            continue
        word = state.actor_state.get(cell.path, "running")
        word = "running" if word in {"spawned", "started"} else word
        style = {"failed": "red", "restarted": "yellow", "stopped": "dim"}.get(word, "green")
        label = Text(cell.name or "/")
        if cell.guardian_strategy is None:
            label.append(f"  {word}", style=style)
            if word == "failed" and cell.path in state.reasons:
                label.append(f"  {state.reasons[cell.path]}", style="red")
        node = parent.add(label)
        shown += 1
        children = cell.children or {}
        stack.extend((node, c) for c in reversed(list(children.values())) if c.state != cells.DEAD)
    if hidden:
        root.add(Text(f"... and {hidden} more", style="dim"))
    return root


def status_text(status: JobStatus) -> Text:
    """A job status, coloured."""
    return Text(status.value, style=_STATUS_STYLE[status])


def _jobs_table(state: RunState) -> Table:
    # Fixed columns keep their width (rich would squeeze them to nothing first).
    table = Table(title="jobs", expand=True, title_justify="left")
    table.add_column("job", min_width=16, max_width=34, no_wrap=True, overflow="ellipsis")
    table.add_column("status", min_width=11, no_wrap=True)
    table.add_column("progress", width=22, no_wrap=True)
    table.add_column("note", min_width=16, no_wrap=True, overflow="ellipsis", ratio=1)
    for record in list(state.jobs.values())[-_MAX_JOBS:]:
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=1.0, completed=record.progress, width=15), f"{record.progress:4.0%}")
        note = record.error.splitlines()[0] if record.error else record.progress_message
        table.add_row(record.name, status_text(record.status), bar, note)
    return table


def _counters(stats: SystemStatistics, state: RunState) -> Text:
    tasks = state.tasks
    return Text.assemble(
        ("tasks ", "bold"),
        f"started {tasks['started']}  succeeded {tasks['finished']}  ",
        (f"failed {tasks['failed']}", "red" if tasks["failed"] else ""),
        f"  cancelled {tasks['cancelled']}   ",
        ("actors ", "bold"),
        f"alive {stats.alive}  ",
        (f"restarts {stats.restarts}", "yellow" if stats.restarts else ""),
        "  ",
        (f"failures {stats.failures}", "red" if stats.failures else ""),
        "  ",
        (f"dead letters {stats.dead_letters}", "yellow" if stats.dead_letters else ""),
    )


def render(system: ActorSystem, state: RunState, started: float) -> RenderableType:
    """The live view's frame."""
    parts: list[RenderableType] = [_counters(system.statistics(), state), _tree(system, state)]
    if state.jobs:
        parts.append(_jobs_table(state))
    if state.last_events:
        parts.append(Text("\n".join(state.last_events), style="yellow"))
    return Panel(Group(*parts), title=f"troupe run  {time.monotonic() - started:5.1f} s", border_style="blue")


def _tasks_line(state: RunState) -> str:
    tasks = state.tasks  # a task ends with one of these events: finished is a success
    return f"{tasks['finished']} succeeded, {tasks['failed']} failed, {tasks['cancelled']} cancelled"


def summary_table(stats: SystemStatistics, state: RunState, elapsed: float) -> Table:
    """The summary at the end, for a terminal."""
    table = Table(title=f"summary ({elapsed:.1f} s)", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("actors started", str(stats.actors_started))
    table.add_row("restarts", str(stats.restarts))
    table.add_row("failures", str(stats.failures))
    table.add_row("dead letters", str(stats.dead_letters))
    table.add_row("tasks", _tasks_line(state))
    by_status = Counter(r.status.value for r in state.jobs.values())
    if by_status:
        table.add_row("jobs", ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())))
    if stats.stuck_at_shutdown:
        table.add_row("stuck at shutdown", ", ".join(stats.stuck_at_shutdown))
    return table


def summary_text(stats: SystemStatistics, state: RunState) -> str:
    """The summary at the end, as plain lines."""
    lines = [
        "",
        "summary:",
        f"  actors started : {stats.actors_started}",
        f"  restarts       : {stats.restarts}",
        f"  failures       : {stats.failures}",
        f"  dead letters   : {stats.dead_letters}",
        f"  tasks          : {_tasks_line(state)}",
    ]
    by_status = Counter(r.status.value for r in state.jobs.values())
    if by_status:
        lines.append(f"  jobs           : {', '.join(f'{n} {s}' for s, n in sorted(by_status.items()))}")
    if stats.stuck_at_shutdown:
        lines.append(f"  stuck at shutdown (cancelled): {', '.join(stats.stuck_at_shutdown)}")
    return "\n".join(lines)


def console() -> Console:
    """The console ``troupe`` writes to."""
    return Console(highlight=False)
