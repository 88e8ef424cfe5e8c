"""Find the async function a ``troupe run`` target names."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from ..protocol import TroupeError


class TargetError(TroupeError):
    """A ``troupe run`` target that cannot be loaded or run."""


def load_module(spec: str) -> ModuleType:
    """A ``.py`` file or an importable module name, imported."""
    path = Path(spec)
    if spec.endswith(".py") or path.exists():
        if not path.is_file():
            raise TargetError(f"no such file: {spec}")
        name = path.stem
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise TargetError(f"cannot load {spec} as Python")
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(path.resolve().parent))
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        raise TargetError(f"no file or module named {spec!r} ({exc})") from exc


def load_target(target: str) -> Callable[[Any], Awaitable[object]]:
    """``FILE_OR_MODULE[:FUNCTION]`` -> the async function (default ``main``)."""
    spec, _, function = target.rpartition(":") if ":" in target else (target, "", "main")
    if not spec:
        raise TargetError(
            f"cannot read target {target!r}; write FILE[:FUNCTION], like examples/pipeline.py:main"
        )
    module = load_module(spec)
    fn = getattr(module, function, None)
    if fn is None:
        raise TargetError(f"{spec} has no function {function!r}; name one with {spec}:FUNCTION")
    if not inspect.iscoroutinefunction(fn):
        raise TargetError(
            f"{spec}:{function} is not an async function; troupe run calls `await {function}(system)`"
        )
    result: Callable[[Any], Awaitable[object]] = fn
    return result
