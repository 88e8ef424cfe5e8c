"""DESIGN.md's dependency direction: protocol <- actors <- tasks <- jobs <- cli."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "troupe"
ORDER = ["protocol", "actors", "tasks", "jobs", "testing", "cli"]


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "troupe" and parts[1] in ORDER else None


def imports_of(path: Path) -> set[str]:
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0] + ".__init__"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: -node.level]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("layer", [d.name for d in SRC.iterdir() if d.is_dir() and d.name in ORDER])
def test_layers_only_import_downwards(layer: str) -> None:
    mine = ORDER.index(layer)
    for path in (SRC / layer).rglob("*.py"):
        for module in imports_of(path):
            other = layer_of(module)
            if other is not None and other != layer:
                assert ORDER.index(other) < mine, f"{path.relative_to(SRC)} imports {module}"


def test_protocol_imports_nothing_of_ours_but_util() -> None:
    for path in (SRC / "protocol").rglob("*.py"):
        for module in imports_of(path):
            if module.startswith("troupe."):
                assert module.startswith("troupe.protocol") or module == "troupe._util", module
