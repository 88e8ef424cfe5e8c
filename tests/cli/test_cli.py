from __future__ import annotations

from pathlib import Path

import pytest

from troupe.cli import main


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "topology.py"
    path.write_text(body)
    return path


def test_run_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        """
import troupe

class Sink(troupe.Actor[int]):
    async def receive(self, msg: int) -> None:
        if msg < 0:
            raise ValueError(msg)

async def go(system):
    ref = await system.spawn(Sink, name="sink")
    await ref.tell(1)
    try:
        await ref.ask(-1)
    except troupe.ActorCrashed:
        pass
    await ref.stop()
    await ref.tell(2)
""",
    )
    assert main(["run", f"{path}:go", "--events"]) == 0
    out = capsys.readouterr().out
    assert "[  spawned] /user/sink" in out
    assert "[   failed] /user/sink" in out
    assert "actors started : 1" in out
    assert "restarts       : 1" in out
    assert "dead letters   : 2" in out


@pytest.mark.parametrize(
    ("body", "target_suffix", "message"),
    [
        ("x = 1\n", "", "has no function 'main'"),
        ("def main(system):\n    pass\n", "", "is not an async function"),
        ("async def main(system):\n    pass\n", ":other", "has no function 'other'"),
    ],
)
def test_bad_targets_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, target_suffix: str, message: str
) -> None:
    path = write(tmp_path, body)
    assert main(["run", f"{path}{target_suffix}"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_missing_file_or_module(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no/such/file.py"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["run", "no_such_module_xyz"]) == 2
    assert "no file or module" in capsys.readouterr().err


def test_actor_failed_is_reported_with_exit_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        """
import trio
import troupe

class Bad(troupe.Actor[int]):
    async def receive(self, msg: int) -> None:
        raise ValueError("always")

async def main(system):
    ref = await system.spawn(Bad, name="bad")
    for i in range(5):
        await ref.tell(i)
    await trio.sleep_forever()
""",
    )
    assert main(["run", str(path)]) == 1
    captured = capsys.readouterr()
    assert "/user/bad failed with ValueError: always" in captured.err
    assert "failures       : 4" in captured.out
