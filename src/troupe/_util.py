"""Small helpers shared by every layer (no troupe imports here)."""

from __future__ import annotations

import types
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")


class NoPublicConstructor(type):
    """Metaclass for classes that users get from troupe but never build.

    ``Cls(...)`` raises `TypeError`; troupe itself calls ``Cls._create(...)``.
    """

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:  # noqa: ARG002 - refuses any call
        msg = (
            f"{cls.__module__}.{cls.__qualname__} has no public constructor: "
            "troupe creates these objects for you"
        )
        raise TypeError(msg)

    def _create(cls: type[T], *args: Any, **kwargs: Any) -> T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc,no-any-return]


def fixup_module_metadata(module_name: str, namespace: dict[str, Any]) -> None:
    """Make public objects report the public module they are imported from."""
    seen: set[int] = set()

    def fix_one(qualname: str, name: str, obj: object) -> None:
        if id(obj) in seen or not isinstance(obj, type | types.FunctionType):
            return
        seen.add(id(obj))
        mod = getattr(obj, "__module__", None)
        if mod is not None and mod.startswith("troupe."):
            obj.__module__ = module_name
            if isinstance(obj, type):
                obj.__name__ = name
                obj.__qualname__ = qualname
                for attr_name, attr_value in obj.__dict__.items():
                    fix_one(f"{qualname}.{attr_name}", attr_name, attr_value)

    for objname, obj in namespace.items():
        if not objname.startswith("_"):
            fix_one(objname, objname, obj)
