"""Checked by mypy only (not collected by pytest): the generics hold."""

from __future__ import annotations

from typing import assert_type

import troupe


@troupe.message
class Increment:
    by: int = 1


@troupe.message
class GetCount:
    pass


class Counter(troupe.Actor[Increment]):
    async def receive(self, msg: Increment) -> None:
        assert_type(self.ref, troupe.ActorRef[Increment])


async def check(system: troupe.ActorSystem) -> None:
    ref = await system.spawn(Counter)
    assert_type(ref, troupe.ActorRef[Increment])
    await ref.tell(Increment())
    await ref.tell(GetCount())  # type: ignore[arg-type]
    ref.tell_nowait(GetCount())  # type: ignore[arg-type]
    await ref.ask(GetCount())  # type: ignore[arg-type]
    probe = await troupe.TestProbe.create(system)
    assert_type(await probe.expect(Increment), Increment)


class Both(troupe.Actor[Increment | GetCount]):
    async def receive(self, msg: Increment | GetCount) -> None:
        pass


@troupe.message
class AddTo:
    target: troupe.ActorRef[Increment]


async def check_contravariance(system: troupe.ActorSystem) -> None:
    # A ref to an actor that accepts more stands in for one that accepts less ...
    both = await system.spawn(Both)
    AddTo(both)
    narrow: troupe.ActorRef[Increment] = both
    await narrow.tell(Increment())
    # ... and not the other way round.
    counter = await system.spawn(Counter)
    wide: troupe.ActorRef[Increment | GetCount] = counter  # type: ignore[assignment]
    await wide.tell(GetCount())
