"""What ``troupe`` prints besides the live view: its console, job statuses, a run's summary."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..actors import SystemStatistics
from ..jobs import JobStatus
from ._state import RunState

STATUS_STYLE = {
    JobStatus.PENDING: "yellow",
    JobStatus.RUNNING: "cyan",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "magenta",
    JobStatus.INTERRUPTED: "red",
}


def console() -> Console:
    """The console ``troupe`` writes to."""
    return Console(highlight=False)


def one_line(text: str) -> str:
    """``text`` with its lines joined: the command line's errors are one line."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def status_text(status: JobStatus) -> Text:
    """A job status, coloured."""
    return Text(status.value, style=STATUS_STYLE[status])


def _tasks_line(state: RunState) -> str:
    tasks = state.tasks  # a task ends with one of these events: finished is a success
    return f"{tasks['finished']} succeeded, {tasks['failed']} failed, {tasks['cancelled']} cancelled"


def _jobs_line(state: RunState) -> str:
    by_status = Counter(r.status.value for r in state.jobs.values())
    return ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))


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
    if state.jobs:
        table.add_row("jobs", _jobs_line(state))
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
    if state.jobs:
        lines.append(f"  jobs           : {_jobs_line(state)}")
    if stats.stuck_at_shutdown:
        lines.append(f"  stuck at shutdown (cancelled): {', '.join(stats.stuck_at_shutdown)}")
    return "\n".join(lines)
