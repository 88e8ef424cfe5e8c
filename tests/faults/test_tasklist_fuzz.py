"""Task lists under fuzzing (issue 17, item 13): only `TaskListError` ever comes out.

For each format, hypothesis makes documents of five kinds: (a) random bytes
and (b) random text (lone surrogates included); (c) documents generated from
the schema, XML with inline definitions, mutated (unknown keys and
attributes, wrong types, missing and duplicate ids, cycles, names of the
service's own tasks); (d) documents nested about as deep as the readers'
bounds, or with integers about as long as Python converts; and any of them
with its text cut, spliced or sprinkled with surrogates, brackets, quotes,
DTDs and entities. Each goes to the reader in its three forms (the document
as a str, as bytes, in a file) and to a real service's ``load()``; XML ones
also through an import-task (``execute_task_loader``).

A reader returns a task list or raises `TaskListError` naming the file and a
line (always one for XML), and the forms agree. A failed load publishes no
state change and leaves every task as it was; the service answers afterwards.
"""

from __future__ import annotations

import collections
import json
import math
import re
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import troupe
from troupe import TaskListError, TaskState
from troupe.tasks.service._tasklist import TaskList, parse_task_list, read_task_list

import faultkit

FORMATS = ("xml", "json", "toml")

# -- what documents are made of ------------------------------------------------

_SAFE_TEXT = st.text(st.characters(exclude_characters="/\\"), max_size=6)  # never a path outside
# Mostly names that fit together (so that many lists load, and run), else anything.
_COMMON_IDS = st.sampled_from(["a", "b", "c", "d", "e"])
_IDS = st.one_of(
    _COMMON_IDS,
    _COMMON_IDS,
    st.sampled_from(["existing", "done", "e/f", "g%2F", "h:i", "dependency:x", ".", "..", ""]),
    _SAFE_TEXT,
)
_TYPES = st.one_of(
    st.sampled_from(["none", "function", "event"]),
    st.sampled_from(["", "default", "task", "xml", "component", "script", "import-task", "shell"]),
)
_VALUES = st.one_of(
    st.sampled_from(["f", "g", "boom", "topic.x"]),
    st.none() | st.sampled_from(["C", "missing", "a.*", "a", "#cdata", "nothing.xml"]) | _SAFE_TEXT,
)
_PARAMS = st.one_of(_SAFE_TEXT, st.integers(), st.floats(), st.booleans())  # mutations add lists, tables
_REFERENCE = st.fixed_dictionaries({"rid": _IDS}, optional={"auto_execute": st.booleans()})


def _task(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"id": _IDS},
        optional={
            "action_type": _TYPES,
            "action": _VALUES,
            "handler_type": _TYPES,
            "handler": _VALUES,
            "params": st.lists(_PARAMS, max_size=3),
            "children": st.lists(children, max_size=3),
            "depends": st.lists(_IDS, max_size=2),
            "auto_execute": st.booleans(),
        },
    )


_TASKS = st.lists(
    st.recursive(
        _task(_REFERENCE),
        lambda inner: _task(_REFERENCE | inner.map(lambda t: {"define": t})),
        max_leaves=6,
    ),
    max_size=5,
)
_JUNK = st.sampled_from(
    [
        "\ud800",
        "\udfff",
        "\\ud800",
        "[",
        "{",
        "]",
        "}",
        '"',
        '"""',
        "'",
        "'''",
        "<",
        ">",
        "&",
        "&x;",
        "&#xD800;",
        '<!DOCTYPE t [<!ENTITY x "y">]>',
        '<?xml version="1.0" encoding="utf-16"?>',
        "<![CDATA[",
        "]]>",
        "\x00",
        "\n",
        "#",
        ".",
        "=",
        ",",
        "9" * 4301,
        "[[tasks]]",
        "<task>",
        "</task>",
        "<task id='z'>",
        "NaN",
        "1e999",
    ]
) | st.text(st.characters() | st.characters(categories=["Cs"]), max_size=4)
_RAW_TEXT = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=200)


# -- rendering a model in each format ------------------------------------------


def _flatten(tasks: list[Any], *, keep_inline: bool) -> list[Any]:
    """JSON and TOML have no inline definitions: move them to the top (or keep them, a mutation)."""
    if keep_inline:
        return tasks
    out: list[Any] = []
    todo = list(reversed(tasks))
    while todo:
        task = todo.pop()
        if not isinstance(task, dict) or not isinstance(task.get("children"), list):
            out.append(task)
            continue
        children = []
        inline = []
        for child in task["children"]:
            if isinstance(child, dict) and isinstance(child.get("define"), dict) and "id" in child["define"]:
                children.append({"rid": child["define"]["id"]})
                inline.append(child["define"])
            else:
                children.append(child)
        out.append({**task, "children": children})
        todo.extend(reversed(inline))
    return out


_XML_ATTRIBUTE = {
    "action_type": "action-type",
    "handler_type": "handler-type",
    "auto_execute": "auto-execute",
}


def _xml_value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _xml_task(task: object) -> str:
    if not isinstance(task, dict):
        return f"<task>{escape(str(task))}</task>"
    if "define" in task and len(task) == 1:
        return _xml_task(task["define"])
    attributes = "".join(
        f" {_XML_ATTRIBUTE.get(key, key)}={quoteattr(_xml_value(value))}"
        for key, value in task.items()
        if key not in ("params", "children", "depends") and value is not None
    )
    inner = []
    for key in ("params", "depends", "children"):
        items = task.get(key, [])
        for item in items if isinstance(items, list) else [items]:
            if key == "params":
                inner.append(f"<param>{escape(_xml_value(item))}</param>")
            elif key == "depends":
                inner.append(f"<depends rid={quoteattr(_xml_value(item))}/>")
            else:
                inner.append(_xml_task(item))
    return f"<task{attributes}>{''.join(inner)}</task>"


def _xml(tasks: object) -> str:
    if not isinstance(tasks, list):  # a mutation replaced the list
        return f"<tasks>{escape(str(tasks))}</tasks>"
    return "<tasks>\n" + "\n".join(_xml_task(task) for task in tasks) + "\n</tasks>"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        pairs = (f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items() if v is not None)
        return "{" + ", ".join(pairs) + "}"
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")  # TOML refuses a raw DEL


def _toml(document: object) -> str:
    if not isinstance(document, dict):
        return f"tasks = {_toml_value(document)}\n"
    lines = [f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in document.items() if k != "tasks"]
    tasks = document.get("tasks")
    if isinstance(tasks, list) and all(isinstance(t, dict) for t in tasks):
        for task in tasks:
            lines.append("[[tasks]]")
            lines.extend(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in task.items() if v is not None)
    elif tasks is not None:
        lines.insert(0, f"tasks = {_toml_value(tasks)}")
    return "\n".join(lines) + "\n"


# -- mutations --------------------------------------------------------------------


def _places(tree: object) -> list[tuple[Any, Any]]:
    """Every (container, key) of a JSON-like tree."""
    found: list[tuple[Any, Any]] = []
    todo: list[Any] = [tree]
    while todo:
        node = todo.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else []
        for key in keys:
            found.append((node, key))
            todo.append(node[key])
    return found


def _mutate_model(draw: st.DrawFn, document: dict[str, Any]) -> str:
    """Change ``document`` in place in a way the schema may refuse; what was done."""
    places = _places(document)
    container, key = draw(st.sampled_from(places)) if places else (document, "tasks")
    how = draw(
        st.sampled_from(["replace", "unknown key", "delete", "duplicate id", "cycle", "existing id", "no id"])
    )
    tasks = document.get("tasks")
    if how == "replace":
        container[key] = draw(st.none() | _PARAMS | _IDS | st.lists(_PARAMS, max_size=2) | st.just({"x": 1}))
    elif how == "unknown key" and isinstance(container[key], dict):
        container[key][draw(st.sampled_from(["colour", "id ", "ID", "rids", "tasks"]))] = 1
    elif how == "delete" and isinstance(container, dict):
        del container[key]
    elif isinstance(tasks, list) and tasks and all(isinstance(t, dict) for t in tasks):
        first = tasks[0]
        if how == "duplicate id":
            tasks.append({"id": first.get("id", "a")})
        elif how == "cycle":
            first.setdefault("depends", [])
            if isinstance(first["depends"], list):
                first["depends"].append(first.get("id", "a"))
        elif how == "existing id":
            first["id"] = "existing"
        else:
            first.pop("id", None)
    return how


def _splice(draw: st.DrawFn, text: str) -> str:
    """``text`` cut, spliced, or with junk put in at a few places."""
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, len(text)))
        how = draw(st.sampled_from(["insert", "insert", "delete", "duplicate", "truncate"]))
        if how == "insert":
            text = text[:i] + draw(_JUNK) + text[i:]
        elif how == "delete":
            text = text[:i] + text[j:]
        elif how == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        else:
            text = text[:i]
    return text


def _long_integer(draw: st.DrawFn, fmt: str) -> str:
    """A document holding an integer about as long as Python converts."""
    number = draw(st.sampled_from(["", "-"])) + "9" * draw(st.integers(4290, 4310))
    if fmt == "xml":
        return f"<tasks><task id='a'><param>{number}</param></task></tasks>"
    if fmt == "json":
        return f'{{"tasks": [{{"id": "a", "params": [{number}]}}]}}'
    return f"[[tasks]]\nid = 'a'\nparams = [{number}]\n"


def _deep(draw: st.DrawFn, fmt: str) -> str:
    """A document nested about as deep as the reader's bound."""
    if fmt == "xml":
        levels = draw(st.integers(250, 262) | st.just(3000))
        newline = draw(st.sampled_from(["", "\n"]))
        opening = "".join(f'<task id="t{i}" auto-execute="1">{newline}' for i in range(levels))
        return "<tasks>" + opening + "</task>" * levels + "</tasks>"
    levels = draw(st.integers(56, 70) | st.just(100_000))
    shape = draw(st.sampled_from(["arrays", "tables", "dotted"] if fmt == "toml" else ["arrays", "objects"]))
    if shape == "arrays":
        inner = "[" * levels + "]" * levels
    elif shape == "objects":
        inner = '{"x": ' * levels + "1" + "}" * levels
    elif shape == "tables":
        inner = "{x = " * levels + "1" + "}" * levels
    else:
        return f"[[tasks]]\nid = 'a'\n{'.'.join(['p'] * levels)} = 1\n"
    if fmt == "json":
        return f'{{"tasks": [{{"id": "a", "params": [{inner}]}}]}}'
    return f"[[tasks]]\nid = 'a'\nparams = [{inner}]\n"


@st.composite
def _documents(draw: st.DrawFn, fmt: str) -> tuple[str, str | bytes]:
    """(kind, document): the document as text or as bytes."""
    kind = draw(
        st.sampled_from(["bytes", "text", "generated", "generated", "generated", "deep", "long integer"])
    )
    if kind == "bytes":
        return kind, draw(st.binary(max_size=200))
    if kind == "text":
        return kind, draw(_RAW_TEXT)
    if kind == "deep":
        text = _deep(draw, fmt)
    elif kind == "long integer":
        text = _long_integer(draw, fmt)
    else:
        document: dict[str, Any] = {"tasks": draw(_TASKS)}
        if draw(st.booleans()):
            kind = f"mutated ({_mutate_model(draw, document)})"
        if fmt == "xml":
            text = _xml(document.get("tasks"))
            if draw(st.integers(0, 5)) == 5:
                text = (
                    draw(
                        st.sampled_from(
                            [
                                '<?xml version="1.0"?>\n<!DOCTYPE tasks [<!ENTITY x "y">]>\n',
                                '<!DOCTYPE tasks SYSTEM "file:///etc/passwd">\n',
                                "<?pi data?><!-- note -->\n",
                                '<?xml version="1.0" encoding="latin-1"?>\n',
                            ]
                        )
                    )
                    + text
                )
        else:
            if isinstance(document.get("tasks"), list):
                document["tasks"] = _flatten(document["tasks"], keep_inline=draw(st.integers(0, 4)) == 4)
            text = (
                json.dumps(document, ensure_ascii=draw(st.booleans())) if fmt == "json" else _toml(document)
            )
    if draw(st.integers(0, 3)) == 3:
        text = _splice(draw, text)
        kind += ", spliced"
    return kind, text


# -- the checks -------------------------------------------------------------------


def _outcome(read: Any, file: str, fmt: str) -> TaskList | TaskListError:
    """What a reader gave: a task list, or the TaskListError it raised (checked)."""
    try:
        found: TaskList | TaskListError = read()
    except TaskListError as exc:
        found = exc
    if isinstance(found, TaskListError):
        assert found.file == file
        assert found.line is None or (isinstance(found.line, int) and found.line >= 1)
        assert fmt != "xml" or found.line is not None, found  # XML errors always have a line
        assert str(found).startswith(f"{file}:{found.line}: " if found.line is not None else f"{file}: ")
    else:
        assert isinstance(found, TaskList)
        assert found.file == file
    return found


def _same(a: TaskList | TaskListError, b: TaskList | TaskListError) -> None:
    if isinstance(a, TaskList) and isinstance(b, TaskList):
        assert repr(a.tasks) == repr(b.tasks)  # repr: a NaN parameter equals no other NaN
    else:
        assert type(a) is type(b), (a, b)
        assert isinstance(a, TaskListError)
        assert isinstance(b, TaskListError)
        assert (a.line, str(a).removeprefix(a.file)) == (b.line, str(b).removeprefix(b.file))


def _read_every_form(
    doc: str | bytes, fmt: str, path: Path, seen: collections.Counter[str]
) -> tuple[str | Path, str]:
    """Read ``doc`` as a str, as bytes and from a file; what to hand ``load()``, and an entry task id."""
    if isinstance(doc, str):
        text, data = doc, doc.encode("utf-8", "surrogatepass")
    else:
        text, data = doc.decode("utf-8", "surrogateescape"), doc
    path.write_bytes(data)
    as_str = _outcome(lambda: read_task_list(text, fmt), "<string>", fmt)
    as_bytes = _outcome(lambda: parse_task_list(data, fmt, file="<string>", base=None), "<string>", fmt)
    from_file = _outcome(lambda: read_task_list(path), str(path), fmt)
    _same(as_bytes, from_file)
    if _encodable(text):
        _same(as_str, as_bytes)
    else:
        assert isinstance(as_str, TaskListError)  # a lone surrogate
        assert "lone surrogate" in str(as_str)
    seen["read: task lists" if isinstance(from_file, TaskList) else "read: refused"] += 1
    entry = from_file.tasks[0].id if isinstance(from_file, TaskList) and from_file.tasks else "a"
    return (path if isinstance(as_str, TaskListError) else text), entry


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


FUNCTIONS = {"f": lambda *_: True, "g": lambda *_: False}
LOADER = "the-loader"  # longer than any generated id, so a list never holds it
ALIVE = "still-alive"


def _boom(*_: object) -> bool:
    msg = "boom"
    raise RuntimeError(msg)


class C:
    """A registered component."""

    def __init__(self, *args: object) -> None:
        self.args = args


async def _service() -> troupe.TaskService:
    """A service with a task in each kind of state: INITIALIZED, COMPLETE, BUSY (stuck)."""
    service = await troupe.new_task_service(functions={**FUNCTIONS, "boom": _boom}, components={"C": C})
    await service.add_task("existing")
    await service.add_task("done", auto_execute=True)
    await service.add_task("held", action_type="function", action="g", auto_execute=True)
    await service.add_dependency("existing", "held")
    return service


async def _snapshot(service: troupe.TaskService) -> tuple[Any, ...]:
    states = [await service.state(task_id) for task_id in ("existing", "done", "held")]
    return (*states, await service.stuck())


async def _answers(service: troupe.TaskService) -> None:
    await service.add_task(ALIVE, auto_execute=True)
    assert await service.state(ALIVE) is TaskState.COMPLETE
    await service.clear_task(ALIVE)


async def _in_service(
    source: str | Path, entry: str, fmt: str, path: Path, seen: collections.Counter[str]
) -> None:
    with trio.fail_after(60):  # a hang guard, in real time: loads run in worker threads
        async with troupe.open_system() as system:
            service = await _service()
            before = await _snapshot(service)
            async with system.events.listen("troupe.service.state") as changes:
                try:
                    ids = await service.load(source, format=fmt if isinstance(source, str) else None)
                except TaskListError:
                    seen["load: refused"] += 1
                    with pytest.raises(trio.WouldBlock):
                        changes.receive_nowait()  # nothing was published: nothing changed
                    assert await _snapshot(service) == before
                else:
                    seen["load: loaded"] += 1
                    seen["load: tasks"] += len(ids)
                    for task_id in ids:
                        await service.state(task_id)
            await _answers(service)
            if fmt == "xml":
                await _import(await _service(), path, entry, seen)


async def _import(
    service: troupe.TaskService, path: Path, entry: str, seen: collections.Counter[str]
) -> None:
    """The same document through an import-task: at worst the loader is stuck with the error."""
    loader = await service.execute_task_loader(LOADER, path, entry)
    state = await service.state(LOADER)
    if loader.error is None:
        seen["import: imported" if state >= TaskState.HANDLED else "import: waiting"] += 1
    elif state is TaskState.ACTIVE:  # the import-task handler refused the list
        assert isinstance(loader.error, TaskListError), loader.error
        seen["import: refused"] += 1
    else:  # the xml action could not parse the file (any error of its parser)
        assert state is TaskState.BUSY
        seen["import: unreadable"] += 1
    assert LOADER in {s.id for s in await service.stuck()} or loader.error is None
    await _answers(service)


@pytest.mark.parametrize("fmt", FORMATS)
def test_issue_17_13_task_lists_only_ever_raise_task_list_error(fmt: str, tmp_path: Path) -> None:
    seen = collections.Counter[str]()
    slowest = 0.0

    @faultkit.fuzz_settings(ci=120, soak=20_000)
    @given(_documents(fmt))
    def run(made: tuple[str, str | bytes]) -> None:
        nonlocal slowest
        kind, doc = made
        start = time.perf_counter()
        seen["documents"] += 1
        seen[f"kind: {kind.split(' (')[0].split(',')[0]}"] += 1
        seen["spliced"] += kind.endswith("spliced")
        path = tmp_path / f"list.{fmt}"
        source, entry = _read_every_form(doc, fmt, path, seen)
        trio.run(_in_service, source, entry, fmt, path, seen)
        slowest = max(slowest, time.perf_counter() - start)

    run()
    faultkit.report(
        f"issue 17.13 task lists ({fmt})",
        **dict(sorted(seen.items())),
        slowest_ms=round(slowest * 1000),
        other_errors=0,
    )
