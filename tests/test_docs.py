"""The code in the README and the guides runs as written and prints what they say.

A runnable block (one that calls ``trio.run(`` or ``codec.encode``, or is
followed by a ``prints`` paragraph: ``troupe.testing.explore`` runs trio
itself) states its output in one of three ways, checked line for line
against what it prints:

- a ``prints`` paragraph right after it, then a ```` ```text ```` block;
- comment lines at its very end, after the last line of code;
- a comment on each ``print(...)`` line, when each prints one line.

``...`` in a stated line stands for any text; a line that is only ``...``
for any number of lines.

A fence may name its file (```` ```python title="counter.py" ````): a page's
named blocks make up a project, in which the page's tests run, as a reader
would save them.
"""

from __future__ import annotations

import ast
import html.parser
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from urllib.parse import urlsplit

import attrs
import pytest

import troupe

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
TITLE = re.compile(r'title="([^"]+)"')
INLINE = re.compile(r"^\s*print\(.*\)  # (.*)$")


@attrs.frozen
class Block:
    """One fenced block of a page, with what the page says it prints."""

    where: str
    language: str
    code: str
    title: str | None
    prints: str | None  # the text block after "prints", if any

    @property
    def runnable(self) -> bool:
        stated = self.prints is not None  # a block followed by "prints" is meant to run
        runs = "trio.run(" in self.code or "codec.encode" in self.code or stated
        return self.language == "python" and runs

    @property
    def is_test(self) -> bool:
        return self.language == "python" and "async def test_" in self.code


def page_blocks(page: Path) -> list[Block]:
    text = page.read_text()
    fences = list(FENCE.finditer(text))
    found = []
    for i, fence in enumerate(fences):
        language, info, code = fence.groups()
        prints = None
        if i + 1 < len(fences) and fences[i + 1].group(1) == "text":
            between = text[fence.end() : fences[i + 1].start()]
            if between.strip() == "prints":
                prints = fences[i + 1].group(3)
        title = TITLE.search(info)
        where = f"{page.relative_to(ROOT)}#{i}"
        found.append(Block(where, language, code, title and title.group(1), prints))
    return found


BLOCKS = [block for page in PAGES for block in page_blocks(page)]
SCRIPTS = [block for block in BLOCKS if block.runnable]
TESTS = [block for block in BLOCKS if block.is_test]


def stated_output(block: Block) -> list[str] | None:
    """What the page says ``block`` prints, a line each; None if it does not say."""
    if block.prints is not None:
        return block.prints.splitlines()
    lines = block.code.rstrip("\n").splitlines()
    tail: list[str] = []
    while lines and lines[-1].startswith("#"):
        tail.insert(0, lines.pop().removeprefix("#").removeprefix(" "))
    if tail:
        return tail
    inline = inline_output(block)
    printing = [line for line in block.code.splitlines() if line.lstrip().startswith("print(")]
    if inline and len(inline) == len(printing):
        return inline
    return None


def inline_output(block: Block) -> list[str]:
    return [m.group(1) for m in map(INLINE.match, block.code.splitlines()) if m]


def pattern(expected: list[str]) -> re.Pattern[str]:
    parts = []
    for line in expected:
        if line == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*".join(map(re.escape, line.split("..."))) + "\n")
    return re.compile("".join(parts))


def matches(expected: list[str], printed: str) -> bool:
    return pattern(expected).fullmatch(printed) is not None


def appear_in_order(expected: list[str], printed: str) -> bool:
    return pattern(["...", *[x for line in expected for x in (line, "...")]]).fullmatch(printed) is not None


def run_as_script(block: Block) -> None:
    """Run ``block`` as ``python file.py`` would: as ``__main__``."""
    module = types.ModuleType("__main__")
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = module  # so that type hints resolve, as in a real script
    try:
        exec(compile(block.code, block.where, "exec", dont_inherit=True), module.__dict__)  # noqa: S102 - our own docs
    finally:
        sys.modules["__main__"] = saved


@pytest.mark.parametrize("block", SCRIPTS, ids=[b.where for b in SCRIPTS])
def test_script_blocks_print_what_the_page_says(block: Block, capsys: pytest.CaptureFixture[str]) -> None:
    expected = stated_output(block)
    assert expected is not None, (
        f"{block.where} does not say what it prints: end it with the output as comments, "
        "follow it with 'prints' and a text block, or comment each print() line"
    )
    run_as_script(block)
    printed = capsys.readouterr().out
    assert matches(expected, printed), f"{block.where} prints\n{printed}\nbut the page says\n" + "\n".join(
        expected
    )
    assert appear_in_order(inline_output(block), printed), f"{block.where}: a print() line's comment is stale"


@pytest.mark.parametrize("block", TESTS, ids=[b.where for b in TESTS])
def test_test_blocks_pass_in_a_fresh_project(block: Block, pytester: pytest.Pytester) -> None:
    page = block.where.split("#")[0]
    named = {b.title: b.code for b in BLOCKS if b.where.split("#")[0] == page and b.title}
    if "pyproject.toml" not in named and "pytest.ini" not in named:
        pytester.makeini("[pytest]\ntrio_mode = true\n")
    for name, code in named.items():
        (pytester.path / name).write_text(code)
    if block.title is None:
        pytester.makepyfile(test_from_docs=block.code)
    result = pytester.runpytest_subprocess(block.title or "test_from_docs.py")
    result.assert_outcomes(passed=block.code.count("async def test_"))


def test_issue_18_the_readme_test_is_a_whole_project() -> None:
    # the README's pytest snippet once failed outside the repository: no
    # trio_mode, no imports; its files are named so that the test above runs
    # them as a reader would save them
    readme = {b.title: b for b in BLOCKS if b.where.startswith("README.md#") and b.title}
    assert sorted(readme) == ["counter.py", "pyproject.toml", "test_counter.py"]
    assert "trio_mode = true" in readme["pyproject.toml"].code
    assert readme["test_counter.py"].is_test


def test_issue_18_the_comparison_catches_stale_output() -> None:
    block = Block("x#0", "python", 'print("count:", 4)  # count: 3\n', None, None)
    assert stated_output(block) == ["count: 3"]
    assert not matches(["count: 3"], "count: 4\n")
    assert matches(["count: ...", "...", "end"], "count: 4\nmore\nlines\nend\n")
    assert matches(["...", "end"], "end\n")
    assert not matches(["a", "b"], "a\nb\nc\n")
    assert not appear_in_order(["b", "a"], "a\nb\n")
    loop = Block("x#1", "python", "for i in range(2):\n    print(i)  # 0\nprint(2)\n", None, None)
    assert stated_output(loop) is None  # one comment per print() line, or a whole output


def test_every_guide_has_a_runnable_example() -> None:
    covered = {b.where.split("#")[0] for b in SCRIPTS + TESTS}
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


def test_issue_18_every_public_name_is_on_a_reference_page() -> None:
    # a docstring's link to troupe.FromThread once broke the docs build: the
    # name was public but on no page
    public = {name for name in dir(troupe) if not name.startswith("_")}
    public -= {name for name in public if isinstance(getattr(troupe, name), types.ModuleType)}
    pages = " ".join(p.read_text() for p in (ROOT / "docs" / "reference").glob("*.md"))
    shown = set(re.findall(r"^::: troupe\.(\w+)$", pages, re.MULTILINE))
    assert sorted(public - shown) == []


def docstrings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    nodes = [
        tree,
        *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)),
    ]
    return [(getattr(n, "lineno", 1), doc) for n in nodes if (doc := ast.get_docstring(n, clean=False))]


def test_issue_18_docstring_examples_are_markdown() -> None:
    # mkdocstrings renders Google-style docstrings as Markdown: an "Example::"
    # literal block (reST) showed as text, its code unhighlighted
    for path in sorted((ROOT / "src" / "troupe").rglob("*.py")):
        for line, doc in docstrings(path):
            literal = [text for text in doc.splitlines() if text.rstrip().endswith("::")]
            assert not literal, (
                f"{path.relative_to(ROOT)}:{line}: {literal[0].strip()!r} is reST; use a fenced block"
            )


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [value for name, value in attrs if name in {"href", "src"} and value]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    # Not --quiet: it hides the warnings from --strict too, and a broken cross-reference passed.
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", out],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    return out


def test_issue_18_the_site_works_opened_from_disk(site: Path) -> None:
    # make docs, then opening site/index.html once gave folder listings: every
    # link to a page must name a file, as a browser on file:// needs
    pages = sorted(set(site.rglob("*.html")) - {site / "404.html"})  # 404.html is for a web server only
    assert len(pages) > 20
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text())
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or not parts.path:
                continue
            target = (page.parent / parts.path).resolve()
            assert target.is_file(), f"{page.relative_to(site)} links to {link}, which is not a file"
    assert (site / "search" / "search_index.js").is_file()  # the search works from disk too


def test_issue_18_the_reference_renders_examples_and_signatures(site: Path) -> None:
    reference = {p.stem: p.read_text() for p in (site / "reference").glob("*.html")}
    for name, text in reference.items():
        assert "Example::" not in text, name
        assert 'class="example"' in text, name  # the examples are rendered ...
    assert '<span class="nd">@message</span>' in reference["protocol"]  # ... as highlighted code
    testing = reference["testing"]
    contents = testing[testing.index('class="md-nav md-nav--secondary"') :]
    assert ">_plugin<" not in re.sub(r"\s+", "", contents)  # the fixtures' private module is not listed
    expect = testing[
        testing.index('id="troupe.TestProbe.expect"') : testing.index(
            'id="troupe.TestProbe.expect_no_message"'
        )
    ]
    assert expect.count("doc-signature") == 2  # its two overloads, not the implementation too
