"""The codec's walk over nested data: one loop and an explicit stack, no recursion.

Each field type is compiled into a `Node` (``_nodes.py``, ``_schema.py``)
that handles one level: a scalar is checked and returned at once, a
container returns an `Open` that lists its parts and says how to assemble
their results. `walk` visits the parts depth first, keeps the path to the
current place for error messages, and bounds nesting at `MAX_DEPTH`, so
deep data is an error whatever Python's recursion limit is.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, final

MAX_DEPTH = 100
"""How deeply containers (messages, lists, dicts...) may nest, on both sides."""

Step = int | str | None
"""One step of a path: an index, a key or field name, or nothing."""


class Bad(Exception):
    """A node's verdict: the value here is wrong. `walk` fills in ``path``."""

    def __init__(self, reason: str, at: Step = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.at = at
        self.path = "$"


@final
class Open:
    """A container being walked: its parts, and how to assemble their results."""

    __slots__ = ("build", "parts")

    def __init__(self, parts: Iterable[tuple[Step, Node, Any]], build: Callable[[list[Any]], Any]) -> None:
        self.parts = parts
        self.build = build


class Node(abc.ABC):
    """One type's codec, one level deep: `encode` and `decode` return a value or an `Open`.

    Both raise `Bad` when the value at hand does not fit the type.
    """

    __slots__ = ("kinds", "name")

    def __init__(self, name: str, kinds: frozenset[str]) -> None:
        self.name = name
        """The type as people write it, for error messages."""
        self.kinds = kinds
        """The JSON kinds (``_nodes.NULL``...) its wire data takes, to tell union members apart."""

    @abc.abstractmethod
    def encode(self, value: Any) -> Any:
        """``value`` as wire data, or an `Open` of its parts."""

    @abc.abstractmethod
    def decode(self, data: Any) -> Any:
        """The value ``data`` stands for, or an `Open` of its parts."""


@final
class _Frame:
    __slots__ = ("build", "done", "parts", "step")

    def __init__(self, step: Step, opened: Open) -> None:
        self.step = step
        self.parts: Iterator[tuple[Step, Node, Any]] = iter(opened.parts)
        self.build = opened.build
        self.done: list[Any] = []


def walk(node: Node, value: Any, *, encoding: bool) -> Any:
    """Encode (or decode) ``value`` as ``node``'s type, all the way down.

    Raises:
        Bad: with ``path`` set, where the first wrong value is.
    """
    stack: list[_Frame] = []
    step: Step = None
    try:
        out = node.encode(value) if encoding else node.decode(value)
        while True:
            if type(out) is Open:
                if len(stack) == MAX_DEPTH:
                    raise _too_deep()
                top = _Frame(step, out)
                stack.append(top)
            elif stack:
                top = stack[-1]
                top.done.append(out)
            else:
                return out
            for step, child, item in top.parts:  # noqa: B007 - `step` is read after the loop, for errors
                out = child.encode(item) if encoding else child.decode(item)
                if type(out) is Open:
                    break  # go down into it; the parts after it wait in the iterator
                top.done.append(out)
            else:  # every part is done: assemble, then hand the result up
                step = None
                out = top.build(top.done)
                stack.pop()
    except Bad as bad:
        bad.path = path_text([*(frame.step for frame in stack), step, bad.at])
        raise


def _too_deep() -> Bad:
    return Bad(f"nested deeper than {MAX_DEPTH} levels")


def path_text(steps: Iterable[Step]) -> str:
    """``$.items[2].by`` from its steps (keys that are not identifiers are quoted)."""
    out = ["$"]
    for step in steps:
        if step is None:
            continue
        if isinstance(step, int):
            out.append(f"[{step}]")
        elif step.isidentifier():
            out.append(f".{step}")
        else:
            out.append(f"[{json.dumps(step)}]")
    return "".join(out)
