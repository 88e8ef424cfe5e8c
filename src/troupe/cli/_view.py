"""``troupe run``'s live view: a frame fitted to the terminal, redrawn from a `RunState`.

The frame never takes the whole terminal: a quarter of its height stays free
for what the topology prints (shown above the frame). Inside, the counters
come first; for ``troupe node``, the cluster (this node, the connection and
the live nodes with their names, at most a third of the lines, capped with
a "+N more nodes" line); then the actor tree and the jobs share the lines
left, each capped with a "+N more" line (failed and restarted actors,
running jobs first), and the last notable events. The frame left on the screen at the
end shows the end state: every actor stopped (or failed), the jobs as they
ended.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import attrs
from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..actors import ActorSystem, SystemStatistics
from ..actors import _cell as cells
from ..jobs import JobRecord, JobStatus
from ._output import status_text
from ._state import ClusterSeen, RunState

_ACTIVE = ("running", "stopping")
"""The phases in which the tree is read from the live system."""
_WORD_STYLE = {"failed": "red", "restarted": "yellow", "stopped": "dim", "running": "green"}
_PHASE_STYLE = {"running": "green", "stopping": "yellow", "stopped": "dim"}
_JOB_ORDER = {
    JobStatus.RUNNING: 0,
    JobStatus.PENDING: 1,
    JobStatus.FAILED: 2,
    JobStatus.INTERRUPTED: 2,
    JobStatus.CANCELLED: 3,
    JobStatus.SUCCEEDED: 3,
}
_NOTES = 3  # the last notable events shown, at most
_WIDE = 100  # from this width on, the progress bars are long
_NAME_SHARE = 0.4  # of the columns left by the fixed ones, the job names take at most this share


@attrs.frozen
class ActorRow:
    """One actor of the tree as last seen."""

    path: str
    name: str
    depth: int
    guardian: bool


def actor_rows(system: ActorSystem) -> list[ActorRow]:
    """The live actor tree, depth first, the user's actors before the system's."""
    rows: list[ActorRow] = []
    guardians = sorted(system._guardians, key=lambda g: g.name != "user")
    stack = [(g, 0) for g in reversed(guardians)]
    while stack:
        cell, depth = stack.pop()
        rows.append(ActorRow(cell.path, cell.name or "/", depth, cell.guardian_strategy is not None))
        children = [c for c in (cell.children or {}).values() if c.state != cells.DEAD]
        stack.extend((c, depth + 1) for c in reversed(children))
    return rows


@attrs.frozen
class Frame:
    """One frame of the live view; it fits the console it is drawn on."""

    state: RunState
    stats: SystemStatistics
    rows: Sequence[ActorRow]
    name: str
    """The system's name (the target)."""
    elapsed: float
    phase: str = "running"
    """running, stopping, then how the run ended: stopped, interrupted, failed, exited N."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        height = options.height or options.max_height
        yield self.fitted(options.max_width, height - max(3, height // 4))

    def fitted(self, width: int, height: int) -> Panel:
        """The frame in at most ``width`` columns and ``height`` lines (if that is at least 8)."""
        inner = max(width - 4, 20)  # the panel's border and padding
        left = height - 4  # the border and the two counters lines
        shown = min(_NOTES, (left - 2) // 3)  # a third of the lines left, but the tree and jobs need two
        notes = self.state.last_events[-shown:] if shown > 0 else []
        left -= len(notes)
        seen = self.state.cluster
        cluster = _cluster(seen, max(1, left // 3), inner) if seen is not None else []
        left -= len(cluster)
        jobs = _ordered(self.state.jobs.values())
        tree_lines, jobs_lines = _share(left, 1 + len(self.rows), 2 + len(jobs) if jobs else 0)
        parts: list[RenderableType] = [*self._counters(), *cluster, *self._tree(tree_lines)]
        parts.extend(_jobs(jobs, jobs_lines, inner))
        parts.extend(_line(note.line, "red" if "failed" in note.topic else "yellow") for note in notes)
        phase = Text(self.phase, style=_PHASE_STYLE.get(self.phase, "red"))
        command = "troupe run" if seen is None else "troupe node"
        title = Text.assemble(f"{command}  {self.elapsed:.1f} s  ", phase)
        return Panel(Group(*parts), title=title, border_style="blue")

    def _counters(self) -> list[Text]:
        tasks, stats = self.state.tasks, self.stats
        return [
            _assembled(
                ("tasks   ", "bold"),
                f"started {tasks['started']}  succeeded {tasks['finished']}  ",
                (f"failed {tasks['failed']}", "red" if tasks["failed"] else ""),
                f"  cancelled {tasks['cancelled']}",
            ),
            _assembled(
                ("actors  ", "bold"),
                f"alive {stats.alive}  ",
                (f"restarts {stats.restarts}", "yellow" if stats.restarts else ""),
                "  ",
                (f"failures {stats.failures}", "red" if stats.failures else ""),
                "  ",
                (f"dead letters {stats.dead_letters}", "yellow" if stats.dead_letters else ""),
            ),
        ]

    def _word(self, row: ActorRow) -> str:
        word = self.state.actor_state.get(row.path, "running")
        if self.phase not in _ACTIVE:  # the system is gone: every actor stopped (or failed)
            return "failed" if word == "failed" else "stopped"
        return "running" if word in {"spawned", "started"} else word

    def _tree(self, lines: int) -> list[RenderableType]:
        if lines <= 0:
            return []
        header = _line(f"actors of {self.name}", "bold")
        if lines == 1 or not self.rows:
            return [header]
        shown = _pick(self.rows, lines - 1, lambda row: self._word(row) in {"failed", "restarted"})
        tree = Tree(header)
        nodes: list[Tree] = [tree]
        for row in shown:
            del nodes[row.depth + 1 :]
            label = _line(row.name, "")
            if not row.guardian:
                word = self._word(row)
                label.append(f"  {word}", style=_WORD_STYLE.get(word, ""))
                if word == "failed" and row.path in self.state.reasons:
                    label.append(f"  {self.state.reasons[row.path]}", style="red")
            nodes.append(nodes[-1].add(label))
        hidden = len(self.rows) - len(shown)
        if hidden:
            tree.add(_line(f"+{hidden} more actors", "dim"))
        return [tree]


def _assembled(*parts: str | tuple[str, str]) -> Text:
    text = Text.assemble(*parts)
    text.no_wrap, text.overflow = True, "ellipsis"
    return text


def _line(text: str, style: str) -> Text:
    """``text`` as one line: cut with an ellipsis, never wrapped, never read as markup."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def _share(lines: int, tree: int, jobs: int) -> tuple[int, int]:
    """Split ``lines`` between the tree and the jobs, who need ``tree`` and ``jobs`` lines."""
    if tree + jobs <= lines or not jobs:
        return min(tree, lines), jobs
    half = lines // 2
    if tree <= half:
        return tree, lines - tree
    if jobs <= lines - half:
        return lines - jobs, jobs
    return half, lines - half


def _pick(rows: Sequence[ActorRow], room: int, notable: Callable[[ActorRow], bool]) -> list[ActorRow]:
    """At most ``room - 1`` rows (a "+N more" line takes the last), notable ones first, with their parents.

    ``rows`` come depth first, so a row's parent is the last row before it
    that is one level up.
    """
    if len(rows) <= room:
        return list(rows)
    room -= 1
    parents: list[int | None] = []
    last_at: dict[int, int] = {}
    for i, row in enumerate(rows):
        parents.append(last_at.get(row.depth - 1))
        last_at[row.depth] = i
    chosen: set[int] = set()

    def take(i: int) -> None:
        line: list[int] = []
        at: int | None = i
        while at is not None and at not in chosen:
            line.append(at)
            at = parents[at]
        if len(chosen) + len(line) <= room:
            chosen.update(line)

    for i, row in enumerate(rows):
        if notable(row):
            take(i)
    for i in range(len(rows)):
        parent = parents[i]
        if len(chosen) < room and (parent is None or parent in chosen):
            take(i)
    return [rows[i] for i in sorted(chosen)]


def _cluster(seen: ClusterSeen, lines: int, width: int) -> list[Text]:
    """The cluster in at most ``lines`` lines: this node and the connection, then each live node's names."""
    if seen.left:
        state = ("left", "dim")
    else:
        state = ("connected", "green") if seen.connected else ("disconnected: reconnecting", "red")
    count = len(seen.members)
    header = _assembled(
        ("cluster ", "bold"),
        f"{seen.name}  node {seen.node}  ",
        state,
        f"  {seen.url}  {count} node{'' if count == 1 else 's'}",
    )
    members = list(seen.members)
    room = lines - 1
    shown = members if len(members) <= room else members[: max(room - 1, 0)]
    hidden = len(members) - len(shown)
    column = max(8, min(max((len(m.node) for m in shown), default=0) + 2, width * 2 // 5))
    rows = [header]
    for member in shown:
        this = member.node_id == seen.node_id  # the first row, in bold
        names = ", ".join(member.names) if member.names else "-"
        rows.append(
            _assembled(
                "  ",
                (f"{member.node[: column - 2]:<{column}}", "bold" if this else ""),
                (names, "cyan" if member.names else "dim"),
            )
        )
    if hidden and room > 0:
        rows.append(_line(f"  +{hidden} more nodes", "dim"))
    return rows


def _ordered(records: Iterable[JobRecord]) -> list[JobRecord]:
    """Running and pending jobs first (oldest first), then the finished ones (newest first)."""

    def key(item: tuple[int, JobRecord]) -> tuple[int, int]:
        i, record = item
        rank = _JOB_ORDER[record.status]
        return rank, (i if rank < _JOB_ORDER[JobStatus.FAILED] else -i)

    return [record for _, record in sorted(enumerate(records), key=key)]


def _jobs(jobs: list[JobRecord], lines: int, width: int) -> list[RenderableType]:
    """The jobs in at most ``lines`` lines: a table, and a "+N more" line for the rest."""
    if lines <= 0 or not jobs:
        return []
    rows = len(jobs) if 2 + len(jobs) <= lines else lines - 3
    hidden = jobs[max(rows, 0) :]
    more = Counter(r.status.value for r in hidden)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(more.items()))
    if rows <= 0:
        return [_line(f"jobs: {len(jobs)} ({summary})", "dim")]
    bar = 15 if width >= _WIDE else 8
    fixed = 11 + bar + 5 + 3 * 3  # status, progress bar and percent, the gaps between columns
    free = width - fixed  # for the name and the note (a progress message, an error): the note gets most
    name = max(8, min(max(len(r.name) for r in jobs[:rows]), 34, int(free * _NAME_SHARE)))
    note = max(free - name, 1)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), expand=False)
    table.add_column("job", width=name, no_wrap=True, overflow="ellipsis")
    table.add_column("status", width=11, no_wrap=True)
    table.add_column("progress", width=bar + 5, no_wrap=True)
    table.add_column("note", width=note, no_wrap=True, overflow="ellipsis")
    for record in jobs[:rows]:
        progress = Table.grid(padding=(0, 1))
        progress.add_row(
            ProgressBar(total=1.0, completed=record.progress, width=bar), f"{record.progress:4.0%}"
        )
        text = record.error.splitlines()[0] if record.error else record.progress_message
        table.add_row(Text(record.name), status_text(record.status), progress, Text(text))
    parts: list[RenderableType] = [table]
    if hidden:
        parts.append(_line(f"+{len(hidden)} more jobs: {summary}", "dim"))
    return parts


class LiveView:
    """The live view of one run: started once the system is open, finished once it is gone."""

    def __init__(self, out: Console, state: RunState) -> None:
        self._live = Live(
            console=out, auto_refresh=False, transient=False, redirect_stdout=True, vertical_overflow="crop"
        )
        self._state = state
        self._started = time.monotonic()
        self._system: ActorSystem | None = None
        self._rows: list[ActorRow] = []
        self._phase = "running"

    def start(self, system: ActorSystem) -> None:
        """Draw the first frame."""
        self._system = system
        self._live.start()
        self.draw()

    def draw(self) -> None:
        """Draw the next frame."""
        system = self._system
        if system is None:
            return
        rows = actor_rows(system) if self._phase in _ACTIVE else self._rows
        if self._phase == "running":
            self._rows = rows  # what the last frame shows, if the run ends without stopping()
        frame = Frame(
            self._state, system.statistics(), rows, system.name, time.monotonic() - self._started, self._phase
        )
        self._live.update(frame, refresh=True)

    def stopping(self) -> None:
        """The topology returned: the system stops; the last frame will show the actors as they were."""
        if self._system is not None:
            self._rows = actor_rows(self._system)
        self._phase = "stopping"

    def finish(self, phase: str) -> None:
        """Draw the frame left on the screen (``phase``: how the run ended) and stop."""
        self._phase = phase
        self.draw()
        self._live.stop()
