"""Task lists: XML, JSON and TOML, one model, and every bad input refused with file and line."""

from __future__ import annotations

import inspect
import json
import runpy
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import troupe
from troupe import TaskListError, TaskState


def recorder(into: list[Any]) -> Any:
    """A function body that records its arguments and advances."""

    def record(*args: Any) -> bool:
        into.append(args)
        return True

    return record


EXAMPLES = Path(__file__).parent.parent.parent / "examples" / "hemi"
FUNCTIONS = {"f": lambda *_: True}

XML = """<tasks>
  <task id="root" handler-type="function" handler="f">
    <task rid="mid" auto-execute="1"/>
    <depends rid="outside"/>
  </task>
  <task id="mid" action-type="function" action="f">
    <param>one</param>
    <param><![CDATA[<two>]]></param>
    <task rid="leaf" auto-execute="1"/>
  </task>
  <task id="leaf"/>
</tasks>
"""
JSON = json.dumps(
    {
        "tasks": [
            {
                "id": "root",
                "handler_type": "function",
                "handler": "f",
                "children": [{"rid": "mid", "auto_execute": True}],
                "depends": ["outside"],
            },
            {
                "id": "mid",
                "action_type": "function",
                "action": "f",
                "params": ["one", "<two>"],
                "children": [{"rid": "leaf", "auto_execute": True}],
            },
            {"id": "leaf"},
        ]
    }
)
TOML = """
[[tasks]]
id = "root"
handler_type = "function"
handler = "f"
children = [{rid = "mid", auto_execute = true}]
depends = ["outside"]

[[tasks]]
id = "mid"
action_type = "function"
action = "f"
params = ["one", "<two>"]
children = [{rid = "leaf", auto_execute = true}]

[[tasks]]
id = "leaf"
"""


@pytest.mark.parametrize(("fmt", "text"), [("xml", XML), ("json", JSON), ("toml", TOML)])
async def test_the_three_formats_load_the_same_list(system: troupe.ActorSystem, fmt: str, text: str) -> None:
    order: list[tuple[object, ...]] = []
    service = await troupe.new_task_service(functions={"f": recorder(order)})
    assert await service.load(text, format=fmt) == ("root", "mid", "leaf")
    assert [await service.state(x) for x in ("leaf", "mid", "root")] == [
        TaskState.COMPLETE,
        TaskState.COMPLETE,
        TaskState.INITIALIZED,
    ]
    assert (await service.get("mid")).parameters == ("one", "<two>")
    await service.execute("root")
    assert await service.state("root") is TaskState.ACTIVE
    await service.return_dependency("outside")
    assert await service.state("root") is TaskState.COMPLETE
    assert order == [("one", "<two>"), ("root", service)]


async def test_auto_execute_runs_deepest_first_in_document_order(system: troupe.ActorSystem) -> None:
    calls: list[tuple[str, troupe.TaskService]] = []
    service = await troupe.new_task_service(functions={"log": recorder(calls)})
    doc = """<tasks>
      <task id="top" auto-execute="1" action-type="function" action="log">
        <task rid="a" auto-execute="1"/>
        <task rid="b" auto-execute="1"/>
      </task>
      <task id="a" action-type="function" action="log"><task rid="a1" auto-execute="1"/></task>
      <task id="a1" action-type="function" action="log"/>
      <task id="b" action-type="function" action="log"/>
    </tasks>"""
    await service.load(doc, format="xml")
    assert [task_id for task_id, _ in calls] == ["a1", "a", "b", "top"]


async def test_inline_definitions_and_script_cdata(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service(trusted=True)
    doc = """<task id="outer" auto-execute="1" handler-type="script" handler="#cdata">
      <task id="inner" auto-execute="1"/>
      <![CDATA[
def RunTaskScript(task):
    return task.id == "outer"
]]>
    </task>"""
    assert await service.load(doc, format="xml") == ("outer", "inner")
    assert await service.state("outer") is TaskState.COMPLETE


async def test_load_from_paths_and_the_shipped_examples(system: troupe.ActorSystem) -> None:
    page = runpy.run_path(str(EXAMPLES / "page_load.py"))["FUNCTIONS"]
    for name in ("page_load.xml", "page_load.json"):
        service = await troupe.new_task_service(functions=page)
        await service.load(EXAMPLES / name)
        assert await service.state("create_object") is TaskState.COMPLETE


def test_the_shipped_schema_accepts_the_examples_and_rejects_wrong_types() -> None:
    schema = json.loads(resources.files("troupe.tasks.service").joinpath("task-list.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads((EXAMPLES / "page_load.json").read_text()), schema)
    jsonschema.validate(json.loads(JSON), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tasks": [{"id": "a", "children": [{"rid": 3}]}]}, schema)


@pytest.mark.parametrize(
    ("doc", "line", "match"),
    [
        ("<tasks>\n<task id='a'>\n</tasks>", 3, "malformed XML: mismatched tag"),
        ("<tasks>\n<task id='a'>\n<sub/></task></tasks>", 3, "unknown element <sub>"),
        ("<tasks>\n<task id='a' colour='red'/></tasks>", 2, "unknown attribute 'colour'"),
        ("<tasks><task id='a'>\n<task/></task></tasks>", 2, "neither an id nor a rid"),
        ("<tasks>\n<task action='x'/></tasks>", 2, "neither an id nor a rid"),
        (
            "<tasks><task id='a'/>\n<task id='a'/></tasks>",
            2,
            "duplicate task id 'a' \\(first defined on line 1\\)",
        ),
        (
            "<tasks><task id='a'>\n<task rid='ghost'/></task></tasks>",
            2,
            "child rid 'ghost' that names no task",
        ),
        ("<tasks>\n<task id='a'><depends rid='a'/></task></tasks>", 2, "dependency cycle a -> a"),
        (
            "<tasks>\n<task id='a'><task rid='b'/></task>\n<task id='b'><depends rid='a'/></task></tasks>",
            2,
            "dependency cycle a -> b -> a",
        ),
        ("<tasks>\n<task id='a' action-type='shell'/></tasks>", 2, "unknown action type 'shell'"),
        ("<tasks>\n<task id='a' handler-type='function' handler='nope'/></tasks>", 2, "function 'nope'"),
        ("<tasks>\n<task id='a' action-type='script' action='#cdata'/></tasks>", 2, "not trusted"),
        ("<tasks><task id='a'>\n<param eval='1'>1+1</param></task></tasks>", 2, "eval> is refused"),
        ("<tasks><task id='a' auto-execute='yes'/></tasks>", 1, "auto-execute is 0 or 1"),
        ("<nothing/>", 1, "unknown root element <nothing>"),
    ],
)
async def test_bad_xml_names_the_line_and_leaves_the_service_as_it_was(
    system: troupe.ActorSystem, doc: str, line: int, match: str
) -> None:
    service = await troupe.new_task_service(functions=FUNCTIONS)
    await service.add_task("existing")
    with pytest.raises(TaskListError, match=match) as caught:
        await service.load(doc, format="xml")
    assert (caught.value.file, caught.value.line) == ("<string>", line)
    assert str(caught.value).startswith(f"<string>:{line}: ")
    assert [s.id for s in await service.stuck()] == []
    assert await service.state("existing") is TaskState.INITIALIZED
    await service.add_task("a")  # nothing of the failed list was added


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<tasks><task id="&lol9;"/></tasks>
"""


async def test_xml_bombs_and_external_entities_are_refused_fast(
    system: troupe.ActorSystem, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    external = (
        f'<?xml version="1.0"?>\n<!DOCTYPE t [<!ENTITY x SYSTEM "file://{secret}">]>\n'
        '<tasks><task id="&x;"/></tasks>'
    )
    service = await troupe.new_task_service()
    for doc in (BILLION_LAUGHS, external):
        start = time.perf_counter()
        with pytest.raises(TaskListError, match=r"DTD .* is refused") as caught:
            await service.load(doc, format="xml")
        assert time.perf_counter() - start < 1.0  # refused before any expansion
        assert caught.value.line == 2
        assert "do not read" not in str(caught.value)
    assert await service.stuck() == []


@pytest.mark.parametrize(
    ("fmt", "doc", "line", "match"),
    [
        ("json", '{"tasks": [\n{"id": "a",}]}', 2, "malformed JSON"),
        ("toml", "[[tasks]]\nid = \n", 2, "malformed TOML"),
        ("json", '{"tasks": {"id": "a"}}', None, "tasks: expected a list, got a dict"),
        (
            "json",
            '{"tasks": [{"id": 3}]}',
            None,
            "tasks\\[0\\].id: expected a non-empty string, got a number",
        ),
        ("json", '{"tasks": [{"id": "a", "params": [{"x": 1}]}]}', None, "params\\[0\\]: a parameter is"),
        (
            "json",
            '{"tasks": [{"id": "a", "children": [{"rid": "b", "auto_execute": "1"}]}]}',
            None,
            "true or false",
        ),
        ("json", '{"tasks": [{"id": "a", "colour": "red"}]}', None, "unknown key 'colour'"),
        ("json", '{"tasks": [{"id": "a", "action_type": "shell"}]}', None, "unknown action type 'shell'"),
        ("toml", '[[tasks]]\nid = "a"\ndepends = [1]\n', None, "depends\\[0\\]: expected a non-empty string"),
        ("toml", '[[tasks]]\nid = "a"\n[[tasks]]\nid = "a"\n', None, "duplicate task id 'a'"),
        ("json", '{"things": []}', None, "unknown key 'things'"),
    ],
)
async def test_bad_json_and_toml(
    system: troupe.ActorSystem, fmt: str, doc: str, line: int | None, match: str
) -> None:
    service = await troupe.new_task_service()
    with pytest.raises(TaskListError, match=match) as caught:
        await service.load(doc, format=fmt)
    assert caught.value.line == line


async def test_load_argument_errors(system: troupe.ActorSystem, tmp_path: Path) -> None:
    service = await troupe.new_task_service()
    with pytest.raises(ValueError, match="needs format="):
        await service.load("<tasks/>")
    with pytest.raises(ValueError, match="cannot tell the format"):
        await service.load(tmp_path / "list.yaml")
    with pytest.raises(TaskListError, match="cannot read the task list") as caught:
        await service.load(tmp_path / "missing.xml")
    assert caught.value.file == str(tmp_path / "missing.xml")


async def test_a_list_may_refer_to_tasks_already_in_the_service_but_not_reuse_their_ids(
    system: troupe.ActorSystem,
) -> None:
    service = await troupe.new_task_service()
    await service.add_task("old")
    await service.load('<tasks><task id="new"><task rid="old"/></task></tasks>', format="xml")
    await service.add_dependency("old", "new")
    with pytest.raises(TaskListError, match="already in the service"):
        await service.load('<tasks><task id="old"/></tasks>', format="xml")
    with pytest.raises(TaskListError, match="dependency cycle old -> new -> old"):  # reachable from x
        await service.load('<tasks><task id="x"><task rid="old"/></task></tasks>', format="xml")
    await service.load('<tasks><task id="y"><depends rid="z"/></task><task id="z"/></tasks>', format="xml")


# -- issue 17, item 13: hostile documents are TaskListErrors with file and line ------------------


def _deep_xml(levels: int) -> str:
    """``levels`` inline <task> definitions nested one per line."""
    opening = "".join(f'<task id="t{i}">\n' for i in range(levels))
    return "<tasks>\n" + opening + "</task>" * levels + "</tasks>"


async def test_issue_17_13_deep_inline_tasks_are_refused_at_the_bound(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    with pytest.raises(TaskListError, match="nested more than 256 levels") as caught:
        await service.load(_deep_xml(3000), format="xml")
    # <tasks> is level 1 on line 1, so the 257th level is the 256th <task>, on line 257
    assert (caught.value.file, caught.value.line) == ("<string>", 257)
    assert await service.stuck() == []
    assert len(await service.load(_deep_xml(255), format="xml")) == 255  # the bound itself loads


async def test_issue_17_13_deep_inline_tasks_load_whatever_the_recursion_limit(
    system: troupe.ActorSystem,
) -> None:
    service = await troupe.new_task_service()
    doc = _deep_xml(255)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit // 4, 250))
    try:
        ids = await service.load(doc, format="xml")
    finally:
        sys.setrecursionlimit(limit)
    assert ids[0] == "t0"
    assert ids[-1] == "t254"


@pytest.mark.parametrize(
    ("fmt", "doc", "line", "match"),
    [
        ("json", '{"tasks":\n' + "[" * 100_000 + "]" * 100_000 + "}", 2, "nested more than 64 levels"),
        (
            "json",
            '{"tasks": [\n{"id": "a", "params": ["[[[[", ' + "[" * 64 + "]" * 64 + "]}]}",
            2,
            "64 levels",
        ),
        ("toml", "[[tasks]]\nid = 'a'\nparams = " + "[" * 100_000 + "]" * 100_000, 3, "nested more than 64"),
        ("toml", "[[tasks]]\nid = 'a'\nx = " + "{a=" * 3000 + "1" + "}" * 3000, 3, "nested more than 64"),
        ("toml", "[[tasks]]\n" + ".".join(["a"] * 100_000) + " = 1", 2, "dotted key of more than 64 parts"),
        ("toml", "x = 1\n[" + ".".join(['"a"'] * 100_000) + "]", 2, "dotted key of more than 64 parts"),
    ],
)
async def test_issue_17_13_deep_json_and_toml_are_refused_at_the_bound(
    system: troupe.ActorSystem, fmt: str, doc: str, line: int, match: str
) -> None:
    service = await troupe.new_task_service()
    start = time.perf_counter()
    with pytest.raises(TaskListError, match=match) as caught:
        await service.load(doc, format=fmt)
    assert time.perf_counter() - start < 2.0  # refused before the parser, which is quadratic on dotted keys
    assert (caught.value.file, caught.value.line) == ("<string>", line)
    assert await service.stuck() == []


def _json_params(levels: int) -> str:
    return '{"tasks": [{"id": "a", "params": [' + "[" * levels + "]" * levels + "]}]}"  # 4 levels more


def _toml_params(levels: int) -> str:
    return "[[tasks]]\nid = 'a'\nparams = [" + "{x = " * levels + "1" + "}" * levels + "]"  # 1 more


def _toml_key(parts: int) -> str:
    return "[[tasks]]\nid = 'a'\n" + ".".join(['"p"'] * parts) + " = 1"


@pytest.mark.parametrize(
    ("fmt", "at_the_bound", "past_it", "match"),
    [
        ("json", _json_params(60), _json_params(61), r"params\[0\]: a parameter is a string"),
        ("toml", _toml_params(63), _toml_params(64), r"params\[0\]: a parameter is a string"),
        ("toml", _toml_key(64), _toml_key(65), "unknown key 'p'"),
    ],
)
async def test_issue_17_13_nesting_at_the_bound_is_not_refused_by_the_scan(
    system: troupe.ActorSystem, fmt: str, at_the_bound: str, past_it: str, match: str
) -> None:
    service = await troupe.new_task_service()
    with pytest.raises(TaskListError, match=match):  # parsed, then refused by the schema
        await service.load(at_the_bound, format=fmt)
    with pytest.raises(TaskListError, match="more than 64") as caught:
        await service.load(past_it, format=fmt)
    assert caught.value.line == (1 if fmt == "json" else 3)


def test_issue_17_13_a_recursion_limit_too_low_for_the_parser_is_a_task_list_error() -> None:
    # The last line of defence behind the depth scan: json and tomllib recurse
    # per level, so a recursion limit lowered below what 64 levels need makes
    # them raise RecursionError. This drives the reader directly: lowering the
    # process-wide limit under a running trio loop would break trio itself.
    from troupe.tasks.service._tasklist import read_task_list  # noqa: PLC0415 - the reader, not a service

    doc = "[[tasks]]\nid = 'a'\nx = " + "{a=" * 60 + "1" + "}" * 60
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 60)
    try:
        with pytest.raises(TaskListError, match="too deeply for Python's recursion limit") as caught:
            read_task_list(doc, "toml")
    finally:
        sys.setrecursionlimit(limit)
    assert caught.value.line == 3


async def test_issue_17_13_a_root_task_without_id(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    for doc in ("<task></task>", "<task rid='a'/>", "<task action='x'>\n<task id='b'/></task>"):
        with pytest.raises(TaskListError, match=r"<task>.* an id") as caught:
            await service.load(doc, format="xml")
        assert caught.value.line == 1


@pytest.mark.parametrize(
    ("fmt", "doc", "line"),
    [
        ("json", '{"tasks": [{"id": "a",\n"params": [' + "1" * 5000 + "]}]}", 2),
        (
            "json",
            '{"tasks": [{"id": "'
            + "1" * 5000
            + '",\n"params": [1e'
            + "3" * 5000
            + ", -"
            + "2" * 5000
            + "]}]}",
            2,
        ),
        ("toml", '[[tasks]]\nid = "a"\nparams = [' + "1" * 5000 + "]\n", 3),
        (
            "toml",
            '[[tasks]]\nid = "'
            + "1" * 5000
            + '" # '
            + "1" * 5000
            + "\nparams = [\n  1.5, 0x"
            + "f" * 5000
            + ", -"
            + "2_2" * 2200
            + "]\n",
            4,
        ),
    ],
)
async def test_issue_17_13_huge_integers(system: troupe.ActorSystem, fmt: str, doc: str, line: int) -> None:
    service = await troupe.new_task_service()
    with pytest.raises(TaskListError, match="an integer of more than 4300 digits") as caught:
        await service.load(doc, format=fmt)
    assert caught.value.line == line
    assert await service.stuck() == []


async def test_issue_17_13_huge_floats_are_numbers(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    await service.load('{"tasks": [{"id": "a", "params": [' + "1" * 5000 + ".5]}]}", format="json")
    assert (await service.get("a")).parameters == (float("1" * 5000 + ".5"),)


@pytest.mark.parametrize(
    ("fmt", "doc"),
    [
        ("xml", '<tasks>\n<task id="\ud800"/></tasks>'),
        ("json", '{"tasks":\n[{"id": "\udfff"}]}'),
        ("toml", '[[tasks]]\nid = "a\ud83d"'),
    ],
)
async def test_issue_17_13_lone_surrogates_in_a_str_document(
    system: troupe.ActorSystem, fmt: str, doc: str
) -> None:
    service = await troupe.new_task_service()
    with pytest.raises(TaskListError, match="not valid Unicode text: a lone surrogate") as caught:
        await service.load(doc, format=fmt)
    assert (caught.value.file, caught.value.line) == ("<string>", 2)


async def test_issue_17_13_lone_surrogates_escaped_in_json(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    for doc in ('{"tasks": [{"id": "\\ud800"}]}', '{"tasks": [{"id": "a", "params": ["x\\udc00"]}]}'):
        with pytest.raises(TaskListError, match="a lone surrogate"):
            await service.load(doc, format="json")
    await service.load('{"tasks": [{"id": "\\ud83d\\ude00"}]}', format="json")  # a pair is a character
    assert await service.state("\N{GRINNING FACE}") is TaskState.INITIALIZED


async def test_issue_17_13_a_toml_syntax_error_at_the_end_names_the_last_line(
    system: troupe.ActorSystem,
) -> None:
    service = await troupe.new_task_service()
    with pytest.raises(TaskListError, match="end of document") as caught:
        await service.load("[[tasks]]\nid = 'a'\nparams = [", format="toml")
    assert caught.value.line == 3


@pytest.mark.parametrize("fmt", ["json", "toml"])
async def test_issue_17_13_bad_utf8_names_the_line(
    system: troupe.ActorSystem, tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / f"list.{fmt}"
    path.write_bytes(b'{"tasks": []}\n\n"\xff"' if fmt == "json" else b'[[tasks]]\n\nid = "\xff"')
    service = await troupe.new_task_service()
    with pytest.raises(TaskListError, match="not UTF-8 text") as caught:
        await service.load(path)
    assert (caught.value.file, caught.value.line) == (str(path), 3)


async def test_issue_17_13_depends_holds_no_elements(system: troupe.ActorSystem) -> None:
    service = await troupe.new_task_service()
    with pytest.raises(TaskListError, match="unknown element <sub> in <depends>") as caught:
        await service.load(
            "<tasks><task id='a'>\n<depends rid='x'>\n<sub/></depends></task></tasks>", format="xml"
        )
    assert caught.value.line == 3


@pytest.mark.parametrize(
    ("fmt", "doc"),
    [
        ("xml", "<tasks><task id='a' action-type='" + "x" * 100_000 + "'/></tasks>"),
        ("xml", "<tasks><task id='a' " + "x" * 100_000 + "='1'/></tasks>"),
        ("xml", "<" + "x" * 100_000 + "/>"),
        ("json", '{"tasks": [{"id": "a", "' + "x" * 100_000 + '": 1}]}'),
        ("json", '{"tasks": [{"id": "a", "auto_execute": "' + "x" * 100_000 + '"}]}'),
        ("toml", "[[tasks]]\nid = 3\n" + "x" * 100_000 + " = 1"),
        ("toml", "[[tasks]]\nid = 'a'\nauto_execute = '" + "x" * 100_000 + "'"),
    ],
)
async def test_issue_17_13_values_quoted_in_messages_are_cut(
    system: troupe.ActorSystem, fmt: str, doc: str
) -> None:
    service = await troupe.new_task_service()
    with pytest.raises(TaskListError) as caught:
        await service.load(doc, format=fmt)
    assert len(str(caught.value)) < 400
