"""The XML task-list reader: defusedxml's SAX parser, for safety and line numbers.

Any DTD is refused (so no entity expansion and no external entity is ever
read), as is whatever else defusedxml forbids. The original schema:

```xml
<tasks>
  <task id="..." action-type="..." action="..." handler-type="..." handler="..." executor="...">
    <task rid="..." auto-execute="1"/>   <!-- this task depends on task rid -->
    <depends rid="..."/>                 <!-- gates this task -->
    <param>...</param>                   <!-- a string parameter -->
    <![CDATA[ script text, used where action or handler is "#cdata" ]]>
  </task>
</tasks>
```
"""

from __future__ import annotations

import xml.sax
import xml.sax.handler
import xml.sax.xmlreader
from collections.abc import Iterator

import attrs
import defusedxml
import defusedxml.sax

from .._errors import TaskListError
from ._spec import ChildSpec, TaskSpec, executor_problem, normalize_type, shown, unknown_type_message

_DEFINITION_ATTRS = frozenset(
    {"id", "action-type", "action", "handler-type", "handler", "auto-execute", "executor"}
)
_REFERENCE_ATTRS = frozenset({"rid", "auto-execute"})
_CDATA = "#cdata"
MAX_DEPTH = 256
"""The deepest nesting of elements in an XML task list (``<tasks>`` is the first level)."""


@attrs.define
class _Node:
    tag: str
    attributes: dict[str, str]
    line: int
    children: list[_Node] = attrs.Factory(list)
    text: list[str] = attrs.Factory(list)


class _Builder(xml.sax.handler.ContentHandler):
    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file
        self.locator: xml.sax.xmlreader.Locator | None = None
        self.stack: list[_Node] = []
        self.root: _Node | None = None

    def setDocumentLocator(self, locator: xml.sax.xmlreader.Locator) -> None:  # noqa: N802 - SAX's name
        self.locator = locator

    @property
    def line(self) -> int:
        found = self.locator.getLineNumber() if self.locator is not None else None
        return found if isinstance(found, int) and found > 0 else 1

    def startElement(self, name: str, attrs: xml.sax.xmlreader.AttributesImpl) -> None:  # noqa: N802
        if len(self.stack) >= MAX_DEPTH:  # raised through expat, which stops there
            msg = (
                f"elements nested more than {MAX_DEPTH} levels deep; define deeply nested inline "
                "tasks at the top level instead, and refer to them with <task rid>"
            )
            raise TaskListError(msg, file=self.file, line=self.line)
        node = _Node(name, dict(attrs), self.line)
        if self.stack:
            self.stack[-1].children.append(node)
        else:
            self.root = node
        self.stack.append(node)

    def endElement(self, name: str) -> None:  # noqa: N802, ARG002 - SAX's signature
        self.stack.pop()

    def characters(self, content: str) -> None:
        if self.stack:
            self.stack[-1].text.append(content)


def read_xml(data: bytes, file: str) -> list[TaskSpec]:
    """The tasks of an XML task list, in document order (nested definitions included)."""
    builder = _Builder(file)
    try:
        defusedxml.sax.parseString(data, builder, forbid_dtd=True)
    except xml.sax.SAXParseException as exc:
        raise TaskListError(
            f"malformed XML: {exc.getMessage()}", file=file, line=exc.getLineNumber()
        ) from exc
    except defusedxml.DTDForbidden as exc:
        msg = (
            "a DTD (<!DOCTYPE ...>) is refused: task lists may not declare entities "
            "or load outside files; remove it"
        )
        raise TaskListError(msg, file=file, line=builder.line) from exc
    except defusedxml.DefusedXmlException as exc:
        raise TaskListError(f"refused unsafe XML ({exc}); remove it", file=file, line=builder.line) from exc
    root = builder.root
    if root is None:  # pragma: no cover - expat reports "no element found" first
        raise TaskListError("no element found", file=file, line=1)
    out: list[TaskSpec] = []
    if root.tag == "task":
        _definitions(root, file, out)
    elif root.tag == "tasks":
        _only_attrs(root, frozenset(), file)
        for node in root.children:
            if node.tag != "task":
                raise _unknown(node, "<tasks>", file)
            _definitions(node, file, out)
    else:
        msg = f"unknown root element {_tag(root)}; a task list is <tasks> holding <task>s, or one <task>"
        raise TaskListError(msg, file=file, line=root.line)
    return out


@attrs.define
class _Open:
    """A definition being read: its checked attributes, and what its children gave so far."""

    node: _Node
    task_id: str
    kinds: tuple[str, str]
    out: list[TaskSpec]  # where its spec goes, followed by its inline definitions
    rest: Iterator[_Node]
    children: list[ChildSpec] = attrs.Factory(list)
    depends: list[tuple[str, int | None]] = attrs.Factory(list)
    params: list[object] = attrs.Factory(list)
    inline: list[TaskSpec] = attrs.Factory(list)


def _definitions(node: _Node, file: str, out: list[TaskSpec]) -> None:
    """The task ``node`` defines, then its inline definitions, in document order.

    A loop over a stack of open definitions rather than a recursion, so that
    no nesting the reader accepts can exhaust the interpreter's stack.
    """
    stack = [_open(node, file, out, top=True)]
    while stack:
        current = stack[-1]
        child = next(current.rest, None)
        if child is None:
            stack.pop()
            current.out.append(_spec(current, file))
            current.out.extend(current.inline)
        elif child.tag == "task":
            auto = _flag(child, file)
            if "rid" in child.attributes:
                _only_attrs(child, _REFERENCE_ATTRS, file)
                current.children.append(ChildSpec(_rid(child, file), auto, child.line))
            else:  # an inline definition is also a child
                stack.append(_open(child, file, current.inline, top=False))
                current.children.append(ChildSpec(child.attributes["id"], auto, child.line))
        elif child.tag == "depends":
            _only_attrs(child, frozenset({"rid"}), file)
            if child.children:
                raise _unknown(child.children[0], "<depends>", file)
            current.depends.append((_rid(child, file), child.line))
        elif child.tag == "param":
            current.params.append(_param(child, file))
        else:
            raise _unknown(child, f"<task id={shown(current.task_id)}>", file)


def _open(node: _Node, file: str, out: list[TaskSpec], *, top: bool) -> _Open:
    """Check a definition's attributes and start reading it."""
    if "id" not in node.attributes:
        raise _no_id(node, file, top=top)
    _only_attrs(node, _DEFINITION_ATTRS, file)
    task_id = node.attributes["id"]
    if not task_id:
        raise TaskListError("a task id must not be empty", file=file, line=node.line)
    kinds: list[str] = []
    for key in ("action-type", "handler-type"):
        raw = node.attributes.get(key, "none")
        kind = normalize_type(raw)
        if kind is None:
            what = unknown_type_message(raw, key.split("-")[0])
            raise TaskListError(f"task {task_id!r}: {what}", file=file, line=node.line)
        kinds.append(kind)
    return _Open(node, task_id, (kinds[0], kinds[1]), out, iter(node.children))


def _spec(done: _Open, file: str) -> TaskSpec:
    node, (action_type, handler_type) = done.node, done.kinds
    text = "".join(node.text).strip()
    action = node.attributes.get("action")
    handler = node.attributes.get("handler")
    executor = node.attributes.get("executor")
    if executor is not None:
        problem = executor_problem(executor, action_type, handler_type)
        if problem is not None:
            raise TaskListError(f"task {done.task_id!r}: {problem}", file=file, line=node.line)
    return TaskSpec(
        id=done.task_id,
        action_type=action_type,
        action=text if action == _CDATA and action_type == "script" else action,
        handler_type=handler_type,
        handler=text if handler == _CDATA and handler_type == "script" else handler,
        params=tuple(done.params),
        children=tuple(done.children),
        depends=tuple(done.depends),
        auto_execute=_flag(node, file),
        line=node.line,
        executor=executor,
    )


def _param(node: _Node, file: str) -> str:
    _only_attrs(node, frozenset({"eval"}), file)
    if node.attributes.get("eval", "0") not in ("0", "false", ""):
        msg = "<param eval> is refused: a task list is never run as code; pass the value as text"
        raise TaskListError(msg, file=file, line=node.line)
    if node.children:
        raise _unknown(node.children[0], "<param>", file)
    return "".join(node.text)


def _only_attrs(node: _Node, allowed: frozenset[str], file: str) -> None:
    for name in node.attributes:
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            msg = f"unknown attribute {shown(name)} on {_tag(node)}; allowed here: {known}"
            raise TaskListError(msg, file=file, line=node.line)


def _unknown(node: _Node, where: str, file: str) -> TaskListError:
    msg = (
        f"unknown element {_tag(node)} in {where}; a task holds <task rid>, <depends rid> and "
        "<param>, which hold no elements"
    )
    return TaskListError(msg, file=file, line=node.line)


def _tag(node: _Node) -> str:
    """``<name>`` of an element, cut to a readable length."""
    name = node.tag if len(node.tag) <= _LONGEST_TAG else node.tag[:_LONGEST_TAG] + "..."
    return f"<{name}>"


_LONGEST_TAG = 60


def _no_id(node: _Node, file: str, *, top: bool) -> TaskListError:
    if top and "rid" in node.attributes:
        msg = "a top-level <task> defines a task and needs an id (rid refers to a task inside another <task>)"
    else:
        msg = (
            "a <task> element has neither an id nor a rid; give it id=... (a definition) or rid=... (a child)"
        )
    return TaskListError(msg, file=file, line=node.line)


def _rid(node: _Node, file: str) -> str:
    rid = node.attributes.get("rid", "")
    if not rid:
        raise TaskListError(f"{_tag(node)} needs a non-empty rid", file=file, line=node.line)
    return rid


def _flag(node: _Node, file: str) -> bool:
    raw = node.attributes.get("auto-execute", "0")
    if raw in ("1", "true"):
        return True
    if raw in ("0", "false", ""):
        return False
    raise TaskListError(f"auto-execute is 0 or 1, got {shown(raw)}", file=file, line=node.line)
