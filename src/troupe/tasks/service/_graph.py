"""Drawing a task list: Mermaid flowcharts and Graphviz dot.

Tasks are boxes labelled with their action, handler and executor; a solid arrow goes
from a task to each child task it waits for (``auto-execute`` on the arrow
when the child runs at load); a dashed arrow to each ``<depends rid>``,
whose outside names are rounded nodes.
"""

from __future__ import annotations

from ._spec import NONE, TaskSpec
from ._tasklist import TaskList

GRAPH_FORMATS = ("mermaid", "dot")
_LONGEST = 32  # characters of an action or handler value shown in a node


def _part(kind: str, value: str | None) -> str:
    if kind == NONE:
        return NONE
    if kind == "script" or not value:
        return kind
    shown = value if len(value) <= _LONGEST else value[: _LONGEST - 1] + "…"
    return f"{kind} {shown}"


def _lines(spec: TaskSpec) -> list[str]:
    lines = [spec.id, f"action: {_part(spec.action_type, spec.action)}"]
    lines.append(f"handler: {_part(spec.handler_type, spec.handler)}")
    if spec.executor is not None:
        name = spec.executor
        lines.append(f"executor: {name if len(name) <= _LONGEST else name[: _LONGEST - 1] + '…'}")
    if spec.auto_execute:
        lines.append("auto-execute")
    return lines


def render(tasks: TaskList, fmt: str) -> str:
    """``tasks`` drawn in ``fmt`` (``"mermaid"`` or ``"dot"``).

    Raises:
        ValueError: an unknown format.
    """
    if fmt == "mermaid":
        return _mermaid(tasks)
    if fmt == "dot":
        return _dot(tasks)
    msg = f"unknown graph format {fmt!r}; use one of {', '.join(GRAPH_FORMATS)}"
    raise ValueError(msg)


def _outside(tasks: TaskList) -> list[str]:
    ids = {spec.id for spec in tasks.tasks}
    names: dict[str, None] = {}
    for spec in tasks.tasks:
        for child in spec.children:
            if child.rid not in ids:
                names[child.rid] = None
        for name, _ in spec.depends:
            if name not in ids:
                names[name] = None
    return list(names)


def _mermaid(tasks: TaskList) -> str:
    node: dict[str, str] = {}
    out = ["flowchart TD"]
    for i, spec in enumerate(tasks.tasks):
        node[spec.id] = f"t{i}"
        label = "<br/>".join(_mermaid_text(line) for line in _lines(spec))
        out.append(f'    t{i}["{label}"]')
    for i, name in enumerate(_outside(tasks)):
        node[name] = f"d{i}"
        out.append(f'    d{i}(["{_mermaid_text(name)}"])')
    for spec in tasks.tasks:
        for child in spec.children:
            arrow = "-->|auto-execute|" if child.auto_execute else "-->"
            out.append(f"    {node[spec.id]} {arrow} {node[child.rid]}")
        for name, _ in spec.depends:
            out.append(f"    {node[spec.id]} -.->|depends| {node[name]}")
    return "\n".join(out) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "#quot;").replace("<", "&lt;").replace(">", "&gt;")


def _dot(tasks: TaskList) -> str:
    out = ["digraph tasks {", "    rankdir=TB;", '    node [shape=box, fontname="Helvetica"];']
    for spec in tasks.tasks:
        label = "\\n".join(_dot_text(line) for line in _lines(spec))
        out.append(f'    "{_dot_text(spec.id)}" [label="{label}"];')
    out.extend(f'    "{_dot_text(name)}" [shape=ellipse, style=dashed];' for name in _outside(tasks))
    for spec in tasks.tasks:
        for child in spec.children:
            attrs = ' [label="auto-execute"]' if child.auto_execute else ""
            out.append(f'    "{_dot_text(spec.id)}" -> "{_dot_text(child.rid)}"{attrs};')
        for name, _ in spec.depends:
            out.append(f'    "{_dot_text(spec.id)}" -> "{_dot_text(name)}" [style=dashed, label="depends"];')
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
