from __future__ import annotations

import logging
from pathlib import Path

import pytest

from troupe import BusEvent, DeadLetter, DeadLetterReason
from troupe.cli import main
from troupe.cli._state import RunState


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
    assert "[   failed] /user/sink: ValueError: -1" in out  # why, from the troupe.failure log
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


@pytest.mark.parametrize("flags", [[], ["--jobs", "{db}"]])
def test_a_topology_that_raises_is_one_line_with_exit_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    path = write(
        tmp_path,
        """
async def main(system):
    raise KeyError("no such shard")
""",
    )
    db = tmp_path / "store" / "jobs.sqlite"
    assert main(["run", str(path), *(f.format(db=db) for f in flags)]) == 1
    captured = capsys.readouterr()
    [line] = captured.err.strip().splitlines()
    assert line == f"troupe: {path} raised KeyError: 'no such shard' (run with --traceback for the traceback)"
    assert "summary:" in captured.out
    assert db.exists() == bool(flags)


def test_a_job_store_that_cannot_be_opened_is_one_line_with_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "async def main(system):\n    pass\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["run", str(path), "--jobs", str(blocker / "jobs.sqlite")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"troupe: {blocker / 'jobs.sqlite'}: cannot create its folder")


def test_traceback_lets_the_error_raise(tmp_path: Path) -> None:
    path = write(tmp_path, "async def main(system):\n    raise KeyError('no such shard')\n")
    with pytest.raises(BaseExceptionGroup) as caught:
        main(["run", str(path), "--traceback"])
    assert caught.group_contains(KeyError)


def test_run_keeps_the_jobs_in_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        """
import troupe

async def main(system):
    t = await troupe.submit_job(lambda: 42, name="answer")
    assert await t.result() == 42
""",
    )
    db = tmp_path / "jobs.sqlite"
    assert main(["run", str(path), "--jobs", str(db)]) == 0
    out = capsys.readouterr().out
    assert "[job     running] answer" in out
    assert "[job   succeeded] answer" in out
    assert "  jobs           : 1 succeeded" in out
    assert main(["jobs", "list", "--db", str(db)]) == 0
    assert "answer" in capsys.readouterr().out


LIST = """<tasks>
  <task id="root" handler-type="function" handler="done">
    <task rid="leaf" auto-execute="1"/>
    <depends rid="outside"/>
  </task>
  <task id="leaf" action-type="xml" action="doc.xml"/>
</tasks>
"""


def write_list(tmp_path: Path) -> Path:
    (tmp_path / "doc.xml").write_text("<doc/>")
    (tmp_path / "fns.py").write_text(
        "def done(task_id, service):\n    print('done:', task_id)\n    return True\n"
    )
    path = tmp_path / "tasks.xml"
    path.write_text(LIST)
    return path


def test_run_a_task_list_reports_final_states(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_list(tmp_path)
    argv = ["run", str(path), "--entry", "root", "--functions", str(tmp_path / "fns.py")]
    assert main([*argv, "--return", "outside"]) == 0
    out = capsys.readouterr().out
    assert "done: root" in out
    assert "  root  COMPLETE (5)" in out  # issue 18: a state's name first, its number in brackets
    assert "  leaf  COMPLETE (5)" in out
    assert "--return" not in out
    assert main(argv) == 1  # the entry waits for 'outside': not complete
    out = capsys.readouterr().out
    assert "  root  ACTIVE (3)" in out
    assert "root: it waits for dependency 'outside' (not returned yet)" in out
    # issue 18: the command line's way to return it
    assert out.endswith("return them with: --return outside\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["run", "{dir}/tasks.xml", "--entry", "nope", "--functions", "{dir}/fns.py"],
            "--entry 'nope' is not a task",
        ),
        (
            ["run", "{dir}/tasks.xml"],
            (
                "tasks.xml:2: task 'root': its handler is function 'done': "
                "name the .py file or module that defines it with --functions"
            ),
        ),
        (
            ["run", "{dir}/tasks.xml", "--functions", "{dir}/other.py"],
            "tasks.xml:2: task 'root': its handler is function 'done', which {dir}/other.py does not define",
        ),
        (
            ["run", "{dir}/script.json", "--functions", "{dir}/fns.py"],
            (
                "script.json: task 'a': its action is a script (Python source): "
                "run the list with --trusted, only if you wrote it"
            ),
        ),
        (["run", "{dir}/missing.xml"], "no such task list"),
        (["graph", "{dir}/broken.xml"], "broken.xml:2: unknown element <what>"),
        (
            ["graph", "{dir}/fns.py"],
            (
                "fns.py is not a task list: troupe graph draws .xml, .json and .toml files; "
                "`troupe run {dir}/fns.py` runs a topology"
            ),
        ),
    ],
    ids=["entry", "no-functions", "not-in-functions", "script", "missing", "broken", "graph-of-python"],
)
def test_task_list_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    write_list(tmp_path)
    (tmp_path / "broken.xml").write_text("<tasks>\n<task id='a'><what/></task></tasks>")
    (tmp_path / "other.py").write_text("def undone(task_id, service):\n    return True\n")
    (tmp_path / "script.json").write_text(
        '{"tasks": [{"id": "a", "action_type": "script", "action": "x = 1"}]}'
    )
    assert main([a.format(dir=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message.format(dir=tmp_path) in err
    assert "new_task_service" not in err  # issue 18: the command line's advice, not the library's


def test_graph_draws_mermaid_and_dot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_list(tmp_path)
    assert main(["graph", str(path)]) == 0
    mermaid = capsys.readouterr().out
    assert mermaid.splitlines() == [
        "flowchart TD",
        '    t0["root<br/>action: none<br/>handler: function done"]',
        '    t1["leaf<br/>action: xml doc.xml<br/>handler: none"]',
        '    d0(["outside"])',
        "    t0 -->|auto-execute| t1",
        "    t0 -.->|depends| d0",
    ]
    assert main(["graph", str(path), "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    assert '"root" -> "leaf" [label="auto-execute"];' in dot
    assert '"root" -> "outside" [style=dashed, label="depends"];' in dot
    assert '"outside" [shape=ellipse, style=dashed];' in dot


def test_issue_18_in_plain_lines_a_failure_comes_before_the_dead_letter_it_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        """
import troupe

class Sink(troupe.Actor[int]):
    async def receive(self, msg: int) -> None:
        raise ValueError(msg)

async def main(system):
    ref = await system.spawn(Sink, name="sink")
    for i in range(3):
        try:
            await ref.ask(-i)
        except troupe.ActorCrashed:
            pass
""",
    )
    assert main(["run", str(path), "--plain"]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines() if "/user/sink" in line]
    assert lines == [
        line
        for i in range(3)
        for line in (
            f"[   failed] /user/sink: ValueError: {-i}",
            "[dead letter] int to /user/sink: failed",
            "[restarted] /user/sink",
        )
    ]


def letter(recipient: str) -> BusEvent:
    return BusEvent("troupe.dead_letter", DeadLetter(recipient, 1, DeadLetterReason.FAILED))


@pytest.mark.parametrize(
    ("events", "lines"),
    [
        (  # the runtime's order: the dead letter is held until the failure it belongs to
            [letter("/user/a"), BusEvent("troupe.failed", "/user/a")],
            ["[   failed] /user/a", "[dead letter] int to /user/a: failed"],
        ),
        (  # the other order needs no holding
            [BusEvent("troupe.failed", "/user/a"), letter("/user/a")],
            ["[   failed] /user/a", "[dead letter] int to /user/a: failed"],
        ),
        (  # another actor's event: nothing to wait for, in the order they came
            [letter("/user/a"), BusEvent("troupe.failed", "/user/b")],
            ["[dead letter] int to /user/a: failed", "[   failed] /user/b"],
        ),
        (  # the end of the run lets the held one out
            [letter("/user/a")],
            ["[dead letter] int to /user/a: failed"],
        ),
    ],
    ids=["held", "in-order", "someone-else", "flushed"],
)
def test_issue_18_run_state_puts_a_failure_before_its_dead_letter(
    events: list[BusEvent], lines: list[str]
) -> None:
    state = RunState()
    notes = [note for event in events for note in state.apply(event)] + state.flush()
    assert [note.line for note in notes] == lines
    assert [note.line for note in state.last_events] == lines
    assert state.flush() == []


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_the_failure_log_goes_to_the_run_only_and_is_put_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        """
import troupe

class Sink(troupe.Actor[int]):
    async def receive(self, msg: int) -> None:
        raise ValueError(msg)

async def main(system):
    ref = await system.spawn(Sink, name="sink")
    try:
        await ref.ask(7)
    except troupe.ActorCrashed:
        pass
""",
    )
    failure_log = logging.getLogger("troupe.failure")
    users = _Kept()
    logging.getLogger("troupe").addHandler(users)
    failure_log.setLevel(logging.DEBUG)  # the user's own logging shows these records
    try:
        assert main(["run", str(path), "--plain"]) == 0
        assert (failure_log.level, failure_log.propagate, failure_log.handlers) == (logging.DEBUG, True, [])
    finally:
        failure_log.setLevel(logging.NOTSET)
        logging.getLogger("troupe").removeHandler(users)
    assert "[   failed] /user/sink: ValueError: 7" in capsys.readouterr().out  # the run shows it
    assert [r for r in users.records if r.name == "troupe.failure"] == []  # and only the run
