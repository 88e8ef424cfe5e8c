"""Task lists: the one model the XML, JSON and TOML readers produce, and its checks.

Reading never runs code: it builds `TaskList` (plain frozen data) and
refuses anything malformed with a `TaskListError` naming the file and line.
`check` then validates a list against a service (ids, rids, registries,
cycles) before anything of it is created.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .._errors import TaskListError
from ._spec import (
    NONE,
    ChildSpec,
    TaskSpec,
    executor_problem,
    normalize_type,
    shown,
    unknown_type_message,
)
from ._syntax import encoded, load_data
from ._xml import read_xml

FORMATS = ("xml", "json", "toml")


@attrs.frozen
class TaskList:
    """A whole task list: its tasks in document order, where it came from."""

    file: str
    tasks: tuple[TaskSpec, ...]
    base: Path | None
    """The folder relative paths (``xml`` actions) are read from."""

    def error(self, what: str, line: int | None = None) -> TaskListError:
        """A `TaskListError` about this list."""
        return TaskListError(what, file=self.file, line=line)


def read_task_list(source: str | os.PathLike[str], fmt: str | None = None) -> TaskList:
    """Read a task list: a path (format from its suffix) or the document as a str.

    Raises:
        TaskListError: unreadable, malformed, or unsafe (see the task service guide).
        ValueError: ``fmt`` is not one of xml, json, toml (or missing for text).
    """
    if isinstance(source, os.PathLike):
        path = Path(source)
        fmt = fmt or path.suffix.lstrip(".").lower()
        if fmt not in FORMATS:
            msg = f"cannot tell the format of {path} from its suffix; pass format='xml', 'json' or 'toml'"
            raise ValueError(msg)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TaskListError(f"cannot read the task list: {exc.strerror or exc}", file=str(path)) from exc
        return parse_task_list(data, fmt, file=str(path), base=path.parent)
    if not isinstance(source, str):
        msg = f"load() takes a path (os.PathLike) or the document as a str, got {source!r}"
        raise TypeError(msg)
    if fmt is None:
        msg = "load() of a document given as a str needs format='xml', 'json' or 'toml'"
        raise ValueError(msg)
    return parse_task_list(encoded(source, "<string>"), fmt, file="<string>", base=None)


def parse_task_list(data: bytes, fmt: str, *, file: str, base: Path | None) -> TaskList:
    """Parse ``data`` in format ``fmt`` (``xml``, ``json`` or ``toml``)."""
    if fmt == "xml":
        tasks = read_xml(data, file)
    elif fmt in ("json", "toml"):
        tasks = _from_data(load_data(data, fmt, file), file)
    else:
        msg = f"unknown task list format {fmt!r}; use 'xml', 'json' or 'toml'"
        raise ValueError(msg)
    seen: dict[str, int | None] = {}
    for spec in tasks:
        if spec.id in seen:
            first = seen[spec.id]
            at = f" (first defined on line {first})" if first is not None else ""
            msg = f"duplicate task id {spec.id!r}{at}; every id must be unique"
            raise TaskListError(msg, file=file, line=spec.line)
        seen[spec.id] = spec.line
    return TaskList(file, tuple(tasks), base)


_TASK_KEYS = frozenset(
    {
        "id",
        "action_type",
        "action",
        "handler_type",
        "handler",
        "params",
        "children",
        "depends",
        "auto_execute",
        "executor",
    }
)
_CHILD_KEYS = frozenset({"rid", "auto_execute"})


class _Shape:
    """Type checks of the JSON/TOML twin schema, each naming where it failed."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, where: str, what: str) -> TaskListError:
        return TaskListError(
            f"{where}: {what} (see the task list schema in the task service guide)", file=self.file
        )

    def obj(self, value: object, where: str, keys: frozenset[str]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a table/object, got {_kind(value)}")
        unknown = sorted(set(value) - keys)
        if unknown:
            raise self.fail(where, f"unknown key {shown(unknown[0])}; known keys: {', '.join(sorted(keys))}")
        return value

    def text(self, value: object, where: str, *, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or (not optional and not value):
            raise self.fail(where, f"expected a non-empty string, got {_kind(value)}")
        return self.unicode(value, where)

    def unicode(self, value: str, where: str) -> str:
        """``value``, refused if it holds a lone surrogate (which a JSON escape of half a pair makes)."""
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                lone = value[exc.start]
                raise self.fail(
                    where, f"a lone surrogate {lone!r} is not Unicode text; escape whole pairs"
                ) from None
        return value

    def flag(self, value: object, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {_kind(value)}")
        return value

    def items(self, value: object, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {_kind(value)}")
        return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the string {value!r}" if value == "" else f"a string ({shown(value)})"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    return f"a {type(value).__name__}"


def _from_data(data: object, file: str) -> list[TaskSpec]:
    shape = _Shape(file)
    top = shape.obj(data, "the document", frozenset({"tasks"}))
    if "tasks" not in top:
        raise shape.fail("the document", "no 'tasks' list")
    return [_task_from(shape, raw, f"tasks[{i}]") for i, raw in enumerate(shape.items(top["tasks"], "tasks"))]


def _task_from(shape: _Shape, raw: object, where: str) -> TaskSpec:
    task = shape.obj(raw, where, _TASK_KEYS)
    if "id" not in task:
        raise shape.fail(where, "a task needs an 'id'")
    kinds = {}
    for key in ("action_type", "handler_type"):
        value = task.get(key, NONE)
        kind = normalize_type(value) if isinstance(value, str) else None
        if kind is None:
            what = "action" if key == "action_type" else "handler"
            if isinstance(value, str):
                raise shape.fail(f"{where}.{key}", unknown_type_message(value, what))
            raise shape.fail(f"{where}.{key}", f"expected a type name, got {_kind(value)}")
        kinds[key] = kind
    params = tuple(
        _param(shape, p, f"{where}.params[{j}]")
        for j, p in enumerate(shape.items(task.get("params", []), f"{where}.params"))
    )
    children = []
    for j, raw_child in enumerate(shape.items(task.get("children", []), f"{where}.children")):
        at = f"{where}.children[{j}]"
        child = shape.obj(raw_child, at, _CHILD_KEYS)
        if "rid" not in child:
            raise shape.fail(at, "a child needs a 'rid' (the id of the task it depends on)")
        rid = shape.text(child["rid"], f"{at}.rid")
        auto = shape.flag(child.get("auto_execute", False), f"{at}.auto_execute")
        children.append(ChildSpec(rid or "", auto, None))
    depends = tuple(
        (shape.text(d, f"{where}.depends[{j}]") or "", None)
        for j, d in enumerate(shape.items(task.get("depends", []), f"{where}.depends"))
    )
    executor = None
    if "executor" in task:
        executor = shape.text(task["executor"], f"{where}.executor")
        problem = executor_problem(executor, kinds["action_type"], kinds["handler_type"])
        if problem is not None:
            raise shape.fail(f"{where}.executor", problem)
    return TaskSpec(
        id=shape.text(task["id"], f"{where}.id") or "",
        action_type=kinds["action_type"],
        action=shape.text(task.get("action"), f"{where}.action", optional=True),
        handler_type=kinds["handler_type"],
        handler=shape.text(task.get("handler"), f"{where}.handler", optional=True),
        params=params,
        children=tuple(children),
        depends=depends,
        auto_execute=shape.flag(task.get("auto_execute", False), f"{where}.auto_execute"),
        line=None,
        executor=executor,
    )


def _param(shape: _Shape, value: object, where: str) -> object:
    if isinstance(value, str):
        return shape.unicode(value, where)
    if isinstance(value, int | float | bool):
        return value
    raise shape.fail(where, f"a parameter is a string, number or boolean, got {_kind(value)}")


@attrs.frozen
class Registries:
    """What names in a task list may refer to, and whether scripts are allowed."""

    function: Callable[[str], Callable[..., Any] | None]
    component: Callable[[str], Callable[..., Any] | None]
    trusted: bool


def check(
    tasks: TaskList,
    *,
    known: Mapping[str, Iterable[str]],
    registries: Registries,
) -> None:
    """Validate ``tasks`` against a service whose tasks are ``known`` (id -> task ids it waits for).

    Raises:
        TaskListError: the first problem found.
    """
    ids = {spec.id for spec in tasks.tasks}
    for spec in tasks.tasks:
        if spec.id in known:
            msg = f"task id {spec.id!r} is already in the service; clear it first or rename it"
            raise tasks.error(msg, spec.line)
        for child in spec.children:
            if child.rid not in ids and child.rid not in known:
                msg = (
                    f"task {spec.id!r} has a child rid {child.rid!r} that names no task of this list or "
                    "the service; define it, or use <depends rid> for an outside dependency"
                )
                raise tasks.error(msg, child.line)
        for handler, kind, value in (
            (False, spec.action_type, spec.action),
            (True, spec.handler_type, spec.handler),
        ):
            problem = value_problem(kind, value, handler=handler, registries=registries)
            if problem is not None:
                raise tasks.error(f"task {spec.id!r}: {problem}", spec.line)
    edges: dict[str, list[str]] = {
        task_id: [n for n in waits if n in known or n in ids] for task_id, waits in known.items()
    }
    for spec in tasks.tasks:
        edges[spec.id] = [c.rid for c in spec.children] + [
            n for n, _ in spec.depends if n in ids or n in known
        ]
    cycle = find_cycle(edges, [spec.id for spec in tasks.tasks])
    if cycle is not None:
        lines = {spec.id: spec.line for spec in tasks.tasks}
        path = " -> ".join(cycle)
        msg = f"dependency cycle {path}: these tasks would wait for each other for ever; remove one edge"
        raise tasks.error(msg, lines.get(cycle[0]))


def value_problem(  # noqa: PLR0911 - one answer per type
    kind: str, value: object, *, handler: bool, registries: Registries
) -> str | None:
    """What is wrong with an action or handler ``value`` of type ``kind`` (None if nothing)."""
    what = "handler" if handler else "action"
    if kind == NONE:
        return None
    if kind == "script" and not registries.trusted:
        return (
            f"a script {what} runs Python source, and this service is not trusted; "
            "open it with new_task_service(trusted=True) only for task lists you wrote"
        )
    if kind in ("function", "component") and callable(value):
        return None
    if not isinstance(value, str) or not value:
        return f"a {kind} {what} needs a value (a {_VALUE_OF[kind]}), got {value!r}"
    if kind in ("function", "component"):
        lookup = registries.function if kind == "function" else registries.component
        if lookup(value) is None:
            return (
                f"{kind} {value!r} (its {what}) is not registered; pass it in new_task_service({kind}s=...)"
            )
    if kind == "event" and ("*" in value or "" in value.split(".")):
        return f"event topic {value!r} is not a topic name (dot-separated words, no wildcards)"
    return None


_VALUE_OF = {
    "function": "function or its registered name",
    "component": "class or its registered name",
    "event": "topic name",
    "task": "task id",
    "xml": "path to an XML file",
    "script": "Python source",
    "import-task": "task id",
}


def find_cycle(edges: Mapping[str, Iterable[str]], starts: Iterable[str]) -> list[str] | None:
    """A cycle reachable from ``starts`` as ``[a, b, ..., a]``, or None (iterative DFS)."""
    done: set[str] = set()
    for start in starts:
        if start in done:
            continue
        on_path: dict[str, int] = {start: 0}
        path = [start]
        stack = [iter(edges.get(start, ()))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                node = path.pop()
                del on_path[node]
                done.add(node)
                continue
            if nxt in on_path:
                return [*path[on_path[nxt] :], nxt]
            if nxt in done:
                continue
            on_path[nxt] = len(path)
            path.append(nxt)
            stack.append(iter(edges.get(nxt, ())))
    return None


def cycles_through(edges: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """For every node on a cycle, a shortest cycle through it as ``[a, ..., a]``.

    One pass finds the strongly connected components (iterative Tarjan), so
    nodes on no cycle cost nothing more; only members of a cycle get a
    breadth-first search, inside their own component.
    """
    found: dict[str, list[str]] = {}
    for component in _components(edges):
        member = next(iter(component))
        if len(component) > 1 or member in edges.get(member, ()):
            for start in component:
                found[start] = _shortest_cycle(edges, component, start)
    return found


def _components(edges: Mapping[str, Iterable[str]]) -> list[set[str]]:
    """The strongly connected components of ``edges`` (Tarjan's algorithm, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            nxt = next(successors, None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    components.append(_pop_component(stack, on_stack, node))
            elif nxt not in index:
                index[nxt] = low[nxt] = len(index)
                stack.append(nxt)
                on_stack.add(nxt)
                work.append((nxt, iter(edges.get(nxt, ()))))
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
    return components


def _pop_component(stack: list[str], on_stack: set[str], root: str) -> set[str]:
    component = set()
    while True:
        member = stack.pop()
        on_stack.discard(member)
        component.add(member)
        if member == root:
            return component


def _shortest_cycle(edges: Mapping[str, Iterable[str]], component: set[str], start: str) -> list[str]:
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in edges.get(node, ()):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if nxt in component and nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    msg = f"{start} is in a strongly connected component, so a cycle goes through it"  # pragma: no cover
    raise AssertionError(msg)  # pragma: no cover
