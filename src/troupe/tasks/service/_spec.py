"""The model every task-list reader produces: specs of tasks, and the type names."""

from __future__ import annotations

import attrs

NONE = "none"
TYPES = frozenset({NONE, "function", "event", "task", "xml", "component", "script", "import-task"})
"""The action and handler types (``default`` and ``""`` mean ``none``)."""
_NONE_ALIASES = frozenset({"", "none", "default"})


def normalize_type(value: object) -> str | None:
    """The canonical type name, or None when ``value`` names no type."""
    if value is None:
        return NONE
    if not isinstance(value, str):
        return None
    if value in _NONE_ALIASES:
        return NONE
    return value if value in TYPES else None


def unknown_type_message(value: object, what: str) -> str:
    """What to say about an unknown action or handler type."""
    known = ", ".join(sorted(TYPES))
    return f"unknown {what} type {shown(value)}; use one of {known} (or default)"


EXECUTOR_BODIES = frozenset({"function", "component"})
"""The body types an executor runs (``script`` and ``xml`` bodies run in the service)."""


def executor_problem(executor: object, action_type: str, handler_type: str) -> str | None:
    """What is wrong with a task's ``executor`` given its action and handler types (None if nothing)."""
    if not isinstance(executor, str) or not executor:
        return (
            "executor is an executor's name (inline, thread, process, dask, or one configured with "
            f"troupe.use_executor), got {shown(executor)}"
        )
    for what, kind in (("action", action_type), ("handler", handler_type)):
        if kind in ("script", "xml"):
            return (
                f"executor {shown(executor)} runs function and component bodies, and its {what} is "
                f"{kind}, which runs in the service: move the {kind} {what} to a task of its own, "
                "or remove executor"
            )
    if action_type not in EXECUTOR_BODIES and handler_type not in EXECUTOR_BODIES:
        return (
            f"executor {shown(executor)} runs function and component bodies, and this task has none "
            f"(action {action_type}, handler {handler_type}); remove executor"
        )
    return None


_SHOWN = 60  # characters of a document's value quoted in an error message


def shown(value: object) -> str:
    """``repr(value)`` for an error message, cut to a readable length (a document may hold megabytes)."""
    if isinstance(value, str) and len(value) > _SHOWN:
        return f"{value[:_SHOWN]!r}... ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= 2 * _SHOWN else text[: 2 * _SHOWN] + "..."


@attrs.frozen
class ChildSpec:
    """``<task rid auto-execute>``: the holder depends on task ``rid``."""

    rid: str
    auto_execute: bool
    line: int | None
    executor: str | None = None
    """The executor its ``function`` and ``component`` bodies run on (None: the service's default)."""


@attrs.frozen
class TaskSpec:
    """One task of a list, as written (types normalised, ``#cdata`` resolved)."""

    id: str
    action_type: str
    action: str | None
    handler_type: str
    handler: str | None
    params: tuple[object, ...]
    children: tuple[ChildSpec, ...]
    depends: tuple[tuple[str, int | None], ...]
    auto_execute: bool
    line: int | None
    executor: str | None = None
    """The executor its ``function`` and ``component`` bodies run on (None: the service's default)."""
