"""What ``troupe run`` learns from the system's lifecycle events (``troupe.**``).

Actors spawned, restarted, failed, stopped; tasks started and finished; job
transitions; dead letters; and for ``troupe node``, the cluster as each
refresh saw it (nodes joined and left, their names, the connection). Both
the live view and the plain log lines are drawn from one `RunState`.
"""

from __future__ import annotations

from collections import Counter, deque

import attrs

from ..cluster import ClusterMember
from ..jobs import JobRecord
from ..protocol import BusEvent, DeadLetter, DeadLetterReason

_ACTOR_WORDS = {
    "troupe.spawned": "spawned",
    "troupe.started": "started",
    "troupe.restarted": "restarted",
    "troupe.failed": "failed",
    "troupe.stopped": "stopped",
}
_NOTABLE = {
    "troupe.restarted",
    "troupe.failed",
    "troupe.dead_letter",
    "troupe.task.failed",
    "cluster.disconnected",
    "cluster.reconnected",
}
_MAX_NOTES = 6


@attrs.frozen
class Note:
    """One event, in words."""

    topic: str
    line: str

    @property
    def notable(self) -> bool:
        """Whether the live view keeps it among the last events (and plain mode prints it)."""
        return self.topic in _NOTABLE

    @property
    def logged(self) -> bool:
        """Whether plain mode prints it without ``--events``: the notable ones and job transitions."""
        job = self.topic.startswith("troupe.job.") and self.topic != "troupe.job.progress"
        return self.notable or job or self.topic.startswith("cluster.")


@attrs.frozen
class ClusterSeen:
    """The cluster as ``troupe node`` saw it at its last refresh."""

    name: str
    """The cluster's name."""
    node: str
    """This node's name."""
    node_id: str
    """This node's id (of this run)."""
    url: str
    """The server, without credentials."""
    connected: bool
    """Whether the connection to the server was up."""
    members: tuple[ClusterMember, ...]
    """The live nodes, this one first, with their registered names."""
    left: bool = False
    """Whether this node has left (the system is gone)."""


def _names(member: ClusterMember) -> str:
    return ", ".join(member.names) if member.names else "(no names)"


class RunState:
    """What the events said so far."""

    def __init__(self) -> None:
        self.actor_state: dict[str, str] = {}
        """The last lifecycle word of each actor seen, by path."""
        self.tasks: Counter[str] = Counter()
        """Task events by kind: started, finished (a success), failed, cancelled."""
        self.jobs: dict[str, JobRecord] = {}
        """Each job's last record, by id, in the order they first appeared."""
        self.last_events: list[Note] = []
        """The last few notable events, oldest first."""
        self.reasons: dict[str, str] = {}
        """Why each failed actor failed last, by path (from the ``troupe.failure`` log)."""
        self.cluster: ClusterSeen | None = None
        """The cluster at the last refresh (``troupe node``); None for ``troupe run``."""
        self._logged: dict[str, deque[str]] = {}
        self._held: Note | None = None
        self._held_for = ""

    def failure_logged(self, path: str, reason: str) -> None:
        """The ``troupe.failure`` log said why ``path`` failed: its next ``troupe.failed`` event is that.

        The log comes as the actor fails, its event later (the listener
        lags): each event takes the oldest reason logged for its path. A
        failure that is not logged (``on_stop`` raising, a shutdown cut off)
        has no reason of its own: in a burst of one actor's failures it may
        show the next one's.
        """
        self._logged.setdefault(path, deque()).append(reason)

    def apply(self, event: BusEvent) -> list[Note]:
        """Record ``event``; return what it says, in the order to show it.

        The message an actor failed on becomes a dead letter just before its
        ``troupe.failed`` event: that dead letter is held back and shown after
        the failure it belongs to.
        """
        note = self._apply(event)
        held, self._held = self._held, None
        if held is not None and event.topic == "troupe.failed" and str(event.data) == self._held_for:
            notes = [note, held]  # the failure, then the message it failed on
        else:
            notes = [held, note]
        recipient = event.data.recipient if isinstance(event.data, DeadLetter) else ""
        if _failed_on(event) and self.actor_state.get(recipient) != "failed":
            self._held, self._held_for = notes.pop(), recipient
        return self._remember([n for n in notes if n is not None])

    def flush(self) -> list[Note]:
        """What is still held back (at the end of the run)."""
        held, self._held = self._held, None
        return self._remember([] if held is None else [held])

    def cluster_seen(self, seen: ClusterSeen) -> list[Note]:
        """Record the cluster as a refresh saw it; return what changed since the last one, in words.

        The first refresh says that this node joined (and its names, if it
        has some); then nodes that joined or left (left or were lost: the
        table does not tell them apart), names that changed, and the
        connection going down and coming back.
        """
        before, self.cluster = self.cluster, seen
        notes: list[Note] = []
        if before is None:
            line = f"[cluster] node {seen.node} joined cluster {seen.name} at {seen.url}"
            notes.append(Note("cluster.joined", line))
        elif before.connected != seen.connected:
            if seen.connected:
                notes.append(Note("cluster.reconnected", f"[cluster] reconnected to {seen.url}"))
            else:
                line = f"[cluster] disconnected from {seen.url}; reconnecting"
                notes.append(Note("cluster.disconnected", line))
        old = {m.node_id: m for m in before.members} if before is not None else {}
        new = {m.node_id: m for m in seen.members}
        for node_id, member in new.items():
            was = old.get(node_id)
            if was is None and node_id != seen.node_id:
                notes.append(Note("cluster.node", f"[node joined] {member.node}: {_names(member)}"))
            elif (was.names if was is not None else ()) != member.names:
                notes.append(Note("cluster.node", f"[node  names] {member.node}: {_names(member)}"))
        notes.extend(
            Note("cluster.node", f"[node   left] {member.node}")
            for node_id, member in old.items()
            if node_id not in new
        )
        return self._remember(notes)

    def cluster_left(self, detail: str) -> list[Note]:
        """This node left the cluster (its system is gone); ``detail`` goes at the end of the line."""
        seen = self.cluster
        if seen is None or seen.left:
            return []
        self.cluster = attrs.evolve(seen, connected=False, left=True)
        return [Note("cluster.left", f"[cluster] node {seen.node} left cluster {seen.name} ({detail})")]

    def _remember(self, notes: list[Note]) -> list[Note]:
        for note in notes:
            if note.notable:
                self.last_events = [*self.last_events[-(_MAX_NOTES - 1) :], note]
        return notes

    def _apply(self, event: BusEvent) -> Note | None:
        topic, data = event.topic, event.data
        word = _ACTOR_WORDS.get(topic)
        if word is not None:
            path = str(data)
            self.actor_state[path] = word
            logged = self._logged.get(path)
            reason = logged.popleft() if word == "failed" and logged else None
            if reason is not None:
                self.reasons[path] = reason
            return Note(topic, f"[{word:>9}] {path}" + (f": {reason}" if reason else ""))
        if topic.startswith("troupe.task."):
            kind = topic.rsplit(".", 1)[1]
            self.tasks[kind] += 1
            return Note(topic, f"[task {kind:>9}] {data}")
        if topic.startswith("troupe.job.") and isinstance(data, JobRecord):
            self.jobs[data.id] = data
            if topic == "troupe.job.progress":
                line = f"[job progress] {data.name}: {data.progress:.0%} {data.progress_message}"
                return Note(topic, line.rstrip())
            return Note(topic, f"[job {data.status.value:>11}] {data.name} ({data.id[:8]})")
        if topic == "troupe.dead_letter" and isinstance(data, DeadLetter):
            line = f"[dead letter] {type(data.message).__name__} to {data.recipient}: {data.reason.value}"
            return Note(topic, line)
        return None


def _failed_on(event: BusEvent) -> bool:
    data = event.data
    return isinstance(data, DeadLetter) and data.reason is DeadLetterReason.FAILED
