"""Find the async function a ``troupe run`` target names."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import traceback as tb
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from ..protocol import TroupeError
from ._output import one_line


class TargetError(TroupeError):
    """A ``troupe run`` target that cannot be loaded or run."""


def _where(exc: BaseException) -> str:
    """``FILE:LINE`` of the code that raised ``exc`` while a module was imported."""
    if isinstance(exc, SyntaxError) and exc.filename is not None:
        return f"{_shown(exc.filename)}:{exc.lineno}"
    frames = [f for f in tb.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen ")]
    return f"{_shown(frames[-1].filename)}:{frames[-1].lineno}" if frames else "?"


def _shown(filename: str) -> str:
    """``filename`` relative to the current folder when it is inside it."""
    path = Path(filename)
    try:
        return str(path.relative_to(Path.cwd())) if path.is_absolute() else filename
    except ValueError:
        return filename


def _missing(spec: str, exc: Exception) -> bool:
    """Whether ``exc`` says that module ``spec`` itself (or its package) does not exist."""
    name = exc.name if isinstance(exc, ModuleNotFoundError) else None
    return name is not None and (spec == name or spec.startswith(f"{name}."))


def load_module(spec: str, *, traceback: bool = False) -> ModuleType:
    """A ``.py`` file or an importable module name, imported.

    Raises:
        TargetError: no such file or module, or importing it raised (one line
            naming the file and line that raised; with ``traceback``, the error
            itself is raised).
    """
    path = Path(spec)
    is_file = spec.endswith(".py") or path.exists()
    if is_file and not path.is_file():
        raise TargetError(f"no such file: {spec}")
    try:
        return _import_file(path) if is_file else importlib.import_module(spec)
    except TargetError:
        raise
    except Exception as exc:
        if not is_file and _missing(spec, exc):
            raise TargetError(f"no file or module named {spec!r} ({exc})") from exc
        if traceback:
            raise
        what = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        msg = f"cannot import {spec}: {_where(exc)}: {type(exc).__name__}: {one_line(what)}"
        raise TargetError(msg) from exc


def _import_file(path: Path) -> ModuleType:
    name = path.stem
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise TargetError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(path.resolve().parent))
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]  # a module that failed half-way is not left importable
        raise
    return module


def load_target(target: str, *, traceback: bool = False) -> Callable[[Any], Awaitable[object]]:
    """``FILE_OR_MODULE[:FUNCTION]`` -> the async function (default ``main``)."""
    spec, _, function = target.rpartition(":") if ":" in target else (target, "", "main")
    if not spec:
        raise TargetError(
            f"cannot read target {target!r}; write FILE[:FUNCTION], like examples/pipeline.py:main"
        )
    module = load_module(spec, traceback=traceback)
    fn = getattr(module, function, None)
    if fn is None:
        raise TargetError(f"{spec} has no function {function!r}; name one with {spec}:FUNCTION")
    if not inspect.iscoroutinefunction(fn):
        raise TargetError(
            f"{spec}:{function} is not an async function; troupe run calls `await {function}(system)`"
        )
    result: Callable[[Any], Awaitable[object]] = fn
    return result
