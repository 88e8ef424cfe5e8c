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
