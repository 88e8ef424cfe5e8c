"""Refs on the wire: only between the nodes of a cluster, and only as addresses.

A field typed ``ActorRef[...]`` or ``Ref[...]`` compiles to `RefNode`.
Outside a cluster (the job store, the command line) a ref is refused on
both sides, as before. A cluster installs its `RefCodec` in `REF_CODEC`
around its own encode and decode calls: the codec then turns a ref into
the address of its actor (a small object of strings) and an address back
into a ref, and nothing else about the ref ever travels.
"""

from __future__ import annotations

import typing
from contextvars import ContextVar
from typing import Any, Protocol, final

from ._nodes import OBJECT, show
from ._walk import Bad, Node

_OUTSIDE = (
    "refs travel only between the nodes of a cluster (troupe.Cluster), as addresses; "
    "here send plain data instead"
)


class RefCodec(Protocol):
    """How a cluster writes a ref as an address, and reads one back."""

    def encode_ref(self, ref: object) -> dict[str, str]:
        """The address of ``ref``'s actor.

        Raises:
            ValueError: the ref cannot be addressed from other nodes.
        """

    def decode_ref(self, address: dict[str, str]) -> object:
        """A ref to the actor at ``address``.

        Raises:
            ValueError: ``address`` is not one this cluster wrote.
        """


REF_CODEC: ContextVar[RefCodec | None] = ContextVar("troupe_ref_codec", default=None)
"""The cluster encoding or decoding on this task right now, if any."""


def is_ref_type(tp: object) -> bool:
    """Whether ``tp`` is a ref type (``ActorRef``, ``Ref``, ``RemoteRef``, parametrized or not)."""
    return bool(
        getattr(tp, "__troupe_ref__", False) or getattr(typing.get_origin(tp), "__troupe_ref__", False)
    )


def is_ref(value: object) -> bool:
    """Whether ``value`` is a ref."""
    return bool(getattr(type(value), "__troupe_ref__", False))


@final
class RefNode(Node):
    """A field typed as a ref: ``{"ref": ..., ...}``, a cluster's address of an actor."""

    __slots__ = ()

    def __init__(self, name: str) -> None:
        super().__init__(name, frozenset({OBJECT}))

    def encode(self, value: Any) -> Any:
        if not is_ref(value):
            raise Bad(f"expected {self.name}, got {show(value)}")
        codec = REF_CODEC.get()
        if codec is None:
            raise Bad(f"a {type(value).__name__} cannot be encoded: {_OUTSIDE}")
        try:
            return codec.encode_ref(value)
        except ValueError as exc:
            raise Bad(str(exc)) from None

    def decode(self, data: Any) -> Any:
        codec = REF_CODEC.get()
        if codec is None:
            raise Bad(f"a field typed {self.name} cannot be decoded: {_OUTSIDE}")
        if type(data) is not dict or type(data.get("ref")) is not str:
            raise Bad(f"expected the address of an actor ({self.name}), got {show(data)}")
        if any(type(key) is not str or type(value) is not str for key, value in data.items()):
            raise Bad(f"the address of an actor holds strings only, got {show(data)}")
        try:
            return codec.decode_ref(data)
        except ValueError as exc:
            raise Bad(str(exc)) from None
