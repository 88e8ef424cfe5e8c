"""The code in the README and the guides runs as written."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def blocks(kind: str) -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for i, code in enumerate(BLOCK.findall(page.read_text())):
            is_test = "async def test_" in code
            runnable = "trio.run(" in code or "codec.encode" in code
            if (kind == "test" and is_test and "import troupe" in code) or (kind == "script" and runnable):
                found.append((f"{page.relative_to(ROOT)}#{i}", code))
    return found


@pytest.mark.parametrize(("where", "code"), blocks("script"), ids=[w for w, _ in blocks("script")])
def test_script_blocks_run(where: str, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = types.ModuleType("docs_" + re.sub(r"\W", "_", where))
    sys.modules[module.__name__] = module  # so that type hints resolve, as in a real module
    try:
        exec(compile(code, where, "exec", dont_inherit=True), module.__dict__)  # noqa: S102 - our own docs
    finally:
        del sys.modules[module.__name__]
    assert capsys.readouterr().out


@pytest.mark.parametrize(("where", "code"), blocks("test"), ids=[w for w, _ in blocks("test")])
def test_test_blocks_pass(where: str, code: str, pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_from_docs=code)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_every_guide_has_a_runnable_example() -> None:
    covered = {where.split("#")[0] for where, _ in blocks("script") + blocks("test")}
    for guide in [
        "docs/index.md",
        "docs/guide/actors.md",
        "docs/guide/messages.md",
        "docs/guide/supervision.md",
        "docs/guide/testing.md",
        "docs/guide/tasks.md",
        "docs/guide/channels.md",
        "docs/guide/task-manager.md",
        "docs/guide/task-service.md",
        "docs/guide/jobs.md",
        "README.md",
    ]:
        assert guide in covered, guide


def test_every_example_page_includes_its_example() -> None:
    pages = {p.stem: p.read_text() for p in (ROOT / "docs" / "examples").glob("*.md")}
    examples = sorted(p.relative_to(ROOT / "examples") for p in (ROOT / "examples").rglob("*.py"))
    assert examples  # each is shown on the page named for it, or for its folder (examples/hemi/*.py: hemi.md)
    for example in examples:
        page = pages.get(example.parts[0] if len(example.parts) > 1 else example.stem)
        assert page is not None, example
        # the snippet line, exactly: a formatter once broke it into Python
        assert f'--8<-- "examples/{example.as_posix()}"' in page, example
    assert len(pages) == len({e.parts[0] if len(e.parts) > 1 else e.stem for e in examples})
