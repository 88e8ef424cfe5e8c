from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import troupe

from kit import Counter, GetCount, Increment, Note


class Echo(troupe.Actor[Any]):
    def __init__(self, to: troupe.ActorRef[Any]) -> None:
        self.to = to

    async def receive(self, msg: Any) -> None:
        await trio.sleep(1)
        await self.to.tell(msg)


async def test_probe_expect_by_type_value_and_predicate(
    system: troupe.ActorSystem, probe: troupe.TestProbe, autojump_clock: trio.testing.MockClock
) -> None:
    echo = await system.spawn(lambda: Echo(probe.ref))
    await echo.tell(Note("a", "b"))
    assert await probe.expect(Note, timeout=2) == Note("a", "b")
    await echo.tell(Note("c", "d"))
    await probe.expect(Note("c", "d"), timeout=2)
    await echo.tell(42)
    assert await probe.expect(lambda m: m == 42, timeout=2) == 42
    assert trio.current_time() == pytest.approx(3)


async def test_probe_failures_say_what_was_expected(
    system: troupe.ActorSystem, probe: troupe.TestProbe, autojump_clock: trio.testing.MockClock
) -> None:
    with pytest.raises(AssertionError, match=r"expected a Note within 2 s, got nothing"):
        await probe.expect(Note, timeout=2)
    probe.ref.tell_nowait("surprise")
    with pytest.raises(AssertionError, match=r"expected no message for 0\.5 s, got 'surprise'"):
        await probe.expect_no_message(0.5)
    probe.ref.tell_nowait("other")
    with pytest.raises(AssertionError, match="expected a Note, got 'other'"):
        await probe.expect(Note)


async def test_current_system_is_the_fixture(system: troupe.ActorSystem) -> None:
    assert troupe.current_system() is system


async def test_assert_no_dead_letters_passes_when_clean(
    system: troupe.ActorSystem, assert_no_dead_letters: None
) -> None:
    counter = await system.spawn(Counter)
    await counter.tell(Increment())
    await counter.tell(Increment())  # left queued at shutdown: does not count
    assert await counter.ask(GetCount()) >= 1


def test_assert_no_dead_letters_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(
        """
        import troupe

        class Sink(troupe.Actor[int]):
            async def receive(self, msg: int) -> None:
                pass

        async def test_leaks(system, assert_no_dead_letters):
            ref = await system.spawn(Sink, name="sink")
            await ref.stop()
            await ref.tell(7)
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*1 dead letter(s) during the test*", "*STOPPED: 7 -> /user/sink*"])


def test_the_plugin_works_in_a_fresh_project_with_autojump(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(
        """
        import trio
        import troupe

        class Later(troupe.Actor[str]):
            async def on_start(self) -> None:
                self.context.timers.start_single("t", 3600, "wake")

            async def receive(self, msg: str) -> None:
                probe_ref.tell_nowait(msg)

        async def test_virtual_hour(system, probe, autojump_clock):
            global probe_ref
            probe_ref = probe.ref
            await system.spawn(Later)
            assert await probe.expect("wake", timeout=4000) == "wake"
            assert trio.current_time() >= 3600
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
