"""``@pytest.mark.explore`` and ``--troupe-seed``: run in a fresh pytest project (pytester)."""

from __future__ import annotations

import re

import pytest

PROGRAM = """
import pytest
import trio
import troupe


@troupe.message
class Get:
    pass


@troupe.message
class Put:
    value: int


class Store(troupe.Actor[Get | Put]):
    def __init__(self) -> None:
        self.value = 0

    async def receive(self, msg: Get | Put) -> int | None:
        if isinstance(msg, Get):
            return self.value
        self.value = msg.value
        return None


@troupe.message
class Bump:
    pass


class Client(troupe.Actor[Bump]):
    def __init__(self, store: troupe.ActorRef[Get | Put]) -> None:
        self.store = store

    async def receive(self, msg: Bump) -> None:
        value = await self.store.ask(Get())
        await self.store.tell(Put(value + 1))   # a lost update: another client may have read the same value


SYSTEMS = []


@pytest.mark.explore(schedules=30, seed=11)
async def test_two_clients_bump_once_each(system, autojump_clock) -> None:
    store = await system.spawn(Store, name="store")
    a = await system.spawn(lambda: Client(store), name="a")
    b = await system.spawn(lambda: Client(store), name="b")
    await a.tell(Bump())
    await b.tell(Bump())
    await trio.sleep(1)
    assert await store.ask(Get()) == 2


@pytest.mark.explore(schedules=25, strategy="pct")
async def test_fresh_fixtures_in_every_schedule(system, probe, assert_no_dead_letters, tmp_path) -> None:
    SYSTEMS.append(system)
    assert tmp_path.exists()
    store = await system.spawn(Store, name="store")
    await store.tell(Put(3))
    assert await store.ask(Get()) == 3
    await probe.ref.tell("hello")
    assert await probe.expect(str) == "hello"


def test_every_schedule_had_its_own_system() -> None:
    assert len(SYSTEMS) == 25 + 1   # the schedules, and PCT's one calibration run
    assert all(s is not SYSTEMS[0] for s in SYSTEMS[1:])
"""


def _seed(output: str) -> int:
    found = re.search(r"--troupe-seed=(\d+)", output)
    assert found, output
    return int(found.group(1))


def _trace(output: str) -> list[str]:
    return re.findall(r"^E\s+\d+\. (/\S+ took .*)$", output, re.MULTILINE)


def test_a_failing_schedule_fails_the_test_with_its_seed_and_the_seed_replays_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_store=PROGRAM)
    result = pytester.runpytest_inprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    output = result.stdout.str()
    assert "ScheduleFailure: schedule" in output
    assert "assert 1 == 2" in output
    assert (
        "replay this schedule: pytest 'test_store.py::test_two_clients_bump_once_each' --troupe-seed="
        in output
    )
    seed, trace = _seed(output), _trace(output)
    assert trace, output
    for _ in range(3):
        again = pytester.runpytest_inprocess("-p", "no:randomly", f"--troupe-seed={seed}", "-k", "bump_once")
        again.assert_outcomes(failed=1, deselected=2)
        assert f"seed {seed})" in again.stdout.str()
        assert _trace(again.stdout.str()) == trace


def test_troupe_seed_runs_one_schedule_of_each_explored_test(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_store=PROGRAM.replace("25 + 1", "1 + 1"))
    result = pytester.runpytest_inprocess("-p", "no:randomly", "--troupe-seed=7", "-k", "not bump_once")
    result.assert_outcomes(passed=2, deselected=1)


def test_an_async_fixture_of_the_users_is_refused_with_what_to_do(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(
        test_fixture="""
import pytest

@pytest.fixture
async def connection():
    return "db"

@pytest.mark.explore(schedules=2)
async def test_it(connection) -> None:
    pass
"""
    )
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*fixture 'connection' is async*open 'connection'*inside the test instead*"])


def test_marker_options_are_checked(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(
        test_options="""
import pytest

@pytest.mark.explore(schedule=2)
async def test_typo() -> None:
    pass

@pytest.mark.explore(schedules=2, strategy="dfs")
async def test_bad_strategy() -> None:
    pass

@pytest.mark.explore(schedules=2)
def test_not_async() -> None:
    pass
"""
    )
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines_random(
        [
            "*@pytest.mark.explore has no option schedule; it takes schedules, strategy, seed, max_steps*",
            "*strategy must be one of 'random', 'pct', got 'dfs'*",
            "*test_not_async is marked explore but is not an async def*",
        ]
    )


def test_without_trio_mode_the_marker_still_runs_the_test_under_trio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
import pytest
import trio

RUNS = []

@pytest.mark.explore(schedules=7)
async def test_it(system, autojump_clock) -> None:
    await trio.sleep(3600)
    RUNS.append(trio.current_time())

def test_ran() -> None:
    assert len(RUNS) == 7
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2)
