from __future__ import annotations

import types
from typing import Any, Generic, TypeVar, Union

import pytest

import troupe

from kit import GetCount, Increment

T = TypeVar("T")


def accepts(cls: type) -> object:
    found = cls.__troupe_accepts__  # type: ignore[attr-defined]
    # typing caches Actor[X | Y] and Actor[Y | X] as one alias: order is not kept
    return None if found is None else frozenset(found)


def test_m_is_read_once_from_the_class_bases() -> None:
    class One(troupe.Actor[Increment]):
        pass

    class Two(troupe.Actor[Increment | GetCount]):
        pass

    class Old(troupe.Actor[Union[Increment, GetCount]]):  # noqa: UP007 - the old spelling is supported
        pass

    class Anything(troupe.Actor[Any]):
        pass

    class Objects(troupe.Actor[object]):
        pass

    class Inherits(Two):
        pass

    class Narrower(Two, troupe.Actor[GetCount]):
        pass

    assert accepts(One) == {Increment}
    assert accepts(Two) == {Increment, GetCount}
    assert accepts(Old) == {Increment, GetCount}
    assert accepts(Anything) is None
    assert accepts(Objects) is None
    assert accepts(Inherits) == {Increment, GetCount}
    assert accepts(Narrower) == {GetCount}


def test_unreadable_parameters_fail_at_class_creation() -> None:
    class Box(Generic[T]):
        pass

    with pytest.raises(TypeError, match="parameterised generic"):

        class Bad(troupe.Actor[Box[int]]):
            pass

    with pytest.raises(TypeError, match="string or forward reference"):

        class Worse(troupe.Actor["Increment"]):
            pass


async def test_the_base_needs_no_init_and_ref_is_set_before_on_start(system: troupe.ActorSystem) -> None:
    class NoSuper(troupe.Actor[GetCount]):
        def __init__(self) -> None:
            self.path_at_start = ""

        async def on_start(self) -> None:
            self.path_at_start = self.ref.path
            assert self.context.system is troupe.current_system()

        async def receive(self, msg: GetCount) -> str:
            return self.path_at_start

    ref = await system.spawn(NoSuper, name="ns")
    assert await ref.ask(GetCount()) == "/user/ns"


def test_ref_in_init_is_a_clear_error() -> None:
    class Early(troupe.Actor[GetCount]):
        def __init__(self) -> None:
            self.me = self.ref

    with pytest.raises(RuntimeError, match="from on_start"):
        Early()


async def test_refs_contexts_and_replies_have_no_public_constructor(system: troupe.ActorSystem) -> None:
    for cls in (troupe.ActorRef, troupe.ActorContext, troupe.Reply, troupe.ActorSystem, troupe.TestProbe):
        with pytest.raises(TypeError, match="no public constructor"):
            cls()  # type: ignore[call-arg]


@pytest.mark.parametrize("hook", ["receive", "on_start", "on_stop"])
def test_issue_18_a_sync_hook_is_refused_at_class_creation(hook: str) -> None:
    def sync(self: object, *args: object) -> None:
        return None

    expected = rf"Bad\.{hook} must be a coroutine function: write `async def {hook}"
    with pytest.raises(TypeError, match=expected):
        types.new_class("Bad", (troupe.Actor[int],), exec_body=lambda ns: ns.update({hook: sync}))


def test_issue_18_async_hooks_and_inherited_ones_are_fine() -> None:
    class Base(troupe.Actor[int]):
        async def receive(self, msg: int) -> None:
            return None

        async def on_stop(self) -> None:
            return None

    class Child(Base):  # inherits them: nothing to check again
        pass

    assert Child.__troupe_on_stop__
