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
