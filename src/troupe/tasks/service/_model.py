"""What users see of a task service's tasks: states, events, stuck reports, handles."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

import attrs

from ..._util import NoPublicConstructor
from ...protocol import message

if TYPE_CHECKING:
    from ...actors import ActorRef


class TaskState(enum.IntEnum):
    """A service task's state, with Hemi's numbers."""

    UNINITIALIZED = 0
    """Only while the task is being added."""
    INITIALIZED = 1
    """Added, not executed."""
    BUSY = 2
    """Executed; its action runs (or did not advance: stuck)."""
    ACTIVE = 3
    """The action advanced; the handler waits for the dependencies (or did not advance)."""
    HANDLED = 4
    """The handler advanced; completion waits for the dependencies."""
    COMPLETE = 5
    """Done: the task returned its own id as a dependency."""
    DESTROYED = 99
    """Cleared before completing, then completed and removed."""


@final
@message(name="troupe.TaskEvent")
class TaskEvent:
    """Published on the topic an ``event`` action or handler names."""

    task: str
    """The task's id."""
    state: TaskState
    """Its state when the event was published (ACTIVE from an action, HANDLED from a handler)."""
    handler: bool
    """True when the handler published it, False for the action."""


@final
@message(name="troupe.TaskStateChanged")
class TaskStateChanged:
    """Published on ``troupe.service.state`` at every state change of a service task."""

    service: str
    """The service actor's path."""
    task: str
    """The task's id."""
    state: TaskState
    """The new state."""


@final
@message(name="troupe.DependencyReturned")
class DependencyReturned:
    """Sent to a dependency's subscribers each time it is returned."""

    name: str
    """The dependency's name (a task id for a task's own completion)."""


@final
@attrs.frozen
class StuckTask:
    """A task that cannot move on by itself, and why (from `TaskService.stuck`)."""

    id: str
    """The task's id."""
    state: TaskState
    """Where it stopped."""
    waits_for: tuple[str, ...]
    """The dependency names it still waits for (empty if it waits for nothing)."""
    reason: str
    """What holds it, and what moves it on, in words."""


@attrs.define(slots=True, eq=False)
class Record:
    """One task's state. Written only by the service actor; handles read it."""

    id: str
    action_type: str
    action: Any
    handler_type: str
    handler: Any
    parameters: tuple[Any, ...]
    base: Path | None
    state: TaskState = TaskState.UNINITIALIZED
    executed: bool = False
    handled: bool = False
    waits: dict[str, None] = attrs.Factory(dict)
    auto_destroy: bool = False
    running: bool = False
    data: Any = None
    source: bytes | None = None
    component: Any = None
    error: BaseException | None = None
    note: str | None = None
    ref: ActorRef[Any] | None = None
    executor: Any = None  # its own executor (a name or an object), else None: the service's default


@final
class ServiceTask(metaclass=NoPublicConstructor):
    """A task of a `TaskService` (from ``add_task``, ``get`` or ``task``).

    Every service method that takes a task takes this handle or the id.
    Its properties read the task's current state; only the service changes it.
    """

    __slots__ = ("_record",)

    def __init__(self, record: Record) -> None:
        self._record = record

    def __repr__(self) -> str:
        return f"<ServiceTask {self.id!r} {self.state.name}>"

    @property
    def id(self) -> str:
        """The task's id."""
        return self._record.id

    @property
    def state(self) -> TaskState:
        """The task's state now (a removed task keeps its last one; a destroyed one is DESTROYED)."""
        return self._record.state

    @property
    def data(self) -> Any:
        """What an ``xml`` action or handler loaded (an ``xml.etree.ElementTree.Element``), else None."""
        return self._record.data

    @property
    def parameters(self) -> tuple[Any, ...]:
        """The task's parameters (the arguments of its ``function``)."""
        return self._record.parameters

    @property
    def component(self) -> Any:
        """The object a ``component`` action or handler constructed, else None."""
        return self._record.component

    @property
    def error(self) -> BaseException | None:
        """What its action or handler raised (the task is then stuck), else None."""
        return self._record.error
