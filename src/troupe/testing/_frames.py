"""Whose code a frame runs (trio's, troupe's, the standard library's or the user's), and where."""

from __future__ import annotations

import functools
import linecache
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import trio

if TYPE_CHECKING:
    from types import FrameType

_TRIO = str(Path(trio.__file__).resolve().parent)
_TROUPE = str(Path(__file__).resolve().parent.parent)
_TESTING = str(Path(__file__).resolve().parent)
_STDLIB = str(Path(os.__file__).resolve().parent)

Origin = Literal["trio", "troupe", "testing", "stdlib", "user"]


@functools.lru_cache(maxsize=1024)
def origin_of(filename: str) -> Origin:
    """Whose code ``filename`` is (``testing`` is troupe's testing kit itself)."""
    if filename.startswith("<"):
        return "stdlib"  # <frozen ...>, <string>
    path = str(Path(filename).resolve())
    if path.startswith(_TESTING):
        return "testing"
    if path.startswith(_TROUPE):
        return "troupe"
    if path.startswith(_TRIO):
        return "trio"
    if path.startswith(_STDLIB) and "site-packages" not in path:
        return "stdlib"
    return "user"


def origin(frame: FrameType) -> Origin:
    return origin_of(frame.f_code.co_filename)


def where(frame: FrameType, *, source: bool = False) -> str:
    """``file:line in function`` (and the source line, with ``source``)."""
    code = frame.f_code
    text = f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
    if source:
        line = linecache.getline(code.co_filename, frame.f_lineno).strip()
        if line:
            text += f": {line}"
    return text
