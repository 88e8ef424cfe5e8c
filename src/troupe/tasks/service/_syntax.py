"""JSON and TOML task lists as Python data: text checks before the parsers, errors with lines.

``json`` and ``tomllib`` recurse once (``json``) to three times (``tomllib``,
inline tables) per level of nesting, and ``tomllib`` spends time and memory
quadratic in the parts of one dotted key (a 200 KB key takes minutes and
gigabytes). So the text is scanned first, with regular expressions that
skip strings and comments: nesting deeper than `MAX_DEPTH` levels, or a
dotted key of more parts, is refused with its line before either parser
sees it. The twin schema needs five levels, so the bound never refuses a
valid list, and at 64 levels the parsers stay far inside the default
recursion limit; a ``RecursionError`` that still comes out of them (a
limit lowered that far) is a `TaskListError` too, as are integers longer
than Python converts (``sys.get_int_max_str_digits()``).
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from itertools import accumulate

from .._errors import TaskListError

MAX_DEPTH = 64
"""The deepest nesting of a JSON or TOML task list (arrays and tables; parts of a dotted key)."""

_JSON_STRING = r'"[^"\\]*(?:\\[\s\S][^"\\]*)*"?'  # unterminated: to the end (a syntax error anyway)
_JSON_TOKENS = re.compile(rf"{_JSON_STRING}|(?P<open>[\[{{]+)|(?P<close>[\]}}]+)")

_TOML_BARE = r"[A-Za-z0-9_-]"
_TOML_BASIC = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'
_TOML_LITERAL = r"'[^'\n]*'"
_TOML_STRINGS = (  # the multi-line ones first; they may end with up to two more quotes
    r'"""[^"\\]*(?:(?:\\[\s\S]|"(?!""))[^"\\]*)*"""(?:""?)?'
    rf"|'''[\s\S]*?'''(?:''?)?|{_TOML_BASIC}|{_TOML_LITERAL}"
)
_TOML_KEY_PART = rf"(?:{_TOML_BARE}+|{_TOML_BASIC}|{_TOML_LITERAL})"
_TOML_TOKENS = re.compile(
    # a dotted key of more than MAX_DEPTH parts, tried before the strings its parts may be
    rf"(?P<key>(?<!{_TOML_BARE})(?:{_TOML_KEY_PART}[ \t]*\.[ \t]*){{{MAX_DEPTH}}})"
    rf"|{_TOML_STRINGS}|#[^\n]*|(?P<open>[\[{{]+)|(?P<close>[\]}}]+)"
)
_TOKENS = {"json": _JSON_TOKENS, "toml": _TOML_TOKENS}

# An integer outside strings: not part of a float, a date or a hex number.
_INTEGER = re.compile(r"(?<![\w.+-])[+-]?[0-9][0-9_]*(?![\w.])")
_SKIP = {"json": re.compile(_JSON_STRING), "toml": re.compile(rf"{_TOML_STRINGS}|#[^\n]*")}


def load_data(data: bytes, fmt: str, file: str) -> object:
    """The JSON or TOML document in ``data``, parsed.

    Raises:
        TaskListError: not UTF-8, nested too deeply, malformed, or an
            integer too long to convert; with the line wherever it is known.
    """
    text = utf8_text(data, file)
    _check_nesting(text, fmt, file)
    try:
        return json.loads(text) if fmt == "json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskListError(f"malformed JSON: {exc.msg}", file=file, line=exc.lineno) from exc
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))  # or "(at end of document)": the last line
        line = int(found.group(1)) if found else line_at(text, len(text))
        raise TaskListError(f"malformed TOML: {exc}", file=file, line=line) from exc
    except RecursionError:
        msg = (
            f"nested too deeply for Python's recursion limit ({sys.getrecursionlimit()}), which "
            "was lowered below what the parser needs; raise it, or flatten the document"
        )
        _, deepest = _scan(text, fmt)
        raise TaskListError(msg, file=file, line=line_at(text, deepest)) from None  # no 1000-frame cause
    except ValueError as exc:  # int() past sys.get_int_max_str_digits(); nothing else reaches here
        limit = sys.get_int_max_str_digits()
        at = _long_integer(text, fmt, limit)
        if at is None:  # pragma: no cover - the parsers raise no other ValueError
            raise TaskListError(f"malformed {fmt.upper()}: {exc}", file=file) from exc
        msg = (
            f"an integer of more than {limit} digits, which Python refuses to convert "
            "(sys.set_int_max_str_digits()); give it as a string parameter"
        )
        raise TaskListError(msg, file=file, line=line_at(text, at)) from exc


_TOML_LINE = re.compile(r"at line (\d+)")


def utf8_text(data: bytes, file: str) -> str:
    """``data`` decoded as UTF-8.

    Raises:
        TaskListError: not UTF-8 (the line of the first bad byte named).
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        msg = f"not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        raise TaskListError(msg, file=file, line=line) from exc


def encoded(text: str, file: str) -> bytes:
    """``text`` (a document given as a str) encoded as UTF-8.

    Raises:
        TaskListError: ``text`` holds a lone surrogate (half of a UTF-16 pair).
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = line_at(text, exc.start)
        column = exc.start - text.rfind("\n", 0, exc.start)
        msg = (
            f"not valid Unicode text: a lone surrogate {text[exc.start]!r} at column {column} (half of "
            "a UTF-16 pair, as left by a bad decode or a '\\ud800' escape); fix the text that made it"
        )
        raise TaskListError(msg, file=file, line=line) from None


def line_at(text: str, offset: int) -> int:
    """The 1-based line of ``text`` that character ``offset`` is on."""
    return text.count("\n", 0, offset) + 1


def _check_nesting(text: str, fmt: str, file: str) -> None:
    """Refuse nesting past `MAX_DEPTH`, and TOML dotted keys of more parts.

    A quick pass first, all in C: strings and comments removed, the depth
    is a running sum over the brackets left. Only when it finds too much
    does the exact scan (`_scan`) run, to decide and to find the line.
    """
    skeleton = _SKIP[fmt].sub("", text)
    deepest = max(accumulate(map(_DELTA.__getitem__, _NOT_BRACKET.sub("", skeleton))), default=0)
    if deepest > MAX_DEPTH or (fmt == "toml" and _LONG_KEY.search(skeleton) is not None):
        problem, at = _scan(text, fmt)
        if problem is not None:
            raise TaskListError(_PROBLEMS[problem], file=file, line=line_at(text, at))


_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DELTA = {"[": 1, "{": 1, "]": -1, "}": -1}
_LONG_KEY = re.compile(rf"\.(?:[A-Za-z0-9_ \t-]*\.){{{MAX_DEPTH - 1}}}")  # a part, and MAX_DEPTH more
_PROBLEMS = {
    "open": (
        f"nested more than {MAX_DEPTH} levels deep (arrays, objects and tables); a task list "
        "needs five (see its schema), so this is not one"
    ),
    "key": (
        f"a dotted key of more than {MAX_DEPTH} parts (each part one level of tables); a task list "
        "needs two, so this is not one"
    ),
}


def _scan(text: str, fmt: str) -> tuple[str | None, int]:
    """The first problem (``"open"``: too deep, ``"key"``: too long) and its offset.

    Without one, ``(None, offset)`` of the deepest point.
    """
    depth = deepest = at = 0
    for token in _TOKENS[fmt].finditer(text):
        opened = token.group("open")
        if opened is not None:
            depth += len(opened)
            if depth > MAX_DEPTH:
                return "open", token.start() + len(opened) - (depth - MAX_DEPTH)
            if depth > deepest:
                deepest, at = depth, token.end() - 1
        elif token.group("close") is not None:
            depth -= len(token.group("close"))
        elif fmt == "toml" and token.group("key") is not None:
            return "key", token.start()
    return None, at


def _long_integer(text: str, fmt: str, limit: int) -> int | None:
    """The offset of the first integer of more than ``limit`` digits outside strings, if any."""
    skip = _SKIP[fmt]
    string = skip.search(text)
    number = _INTEGER.search(text)
    while number is not None:
        if string is not None and string.start() <= number.start():  # the number may be in a string
            if number.start() < string.end():
                number = _INTEGER.search(text, string.end())
            string = skip.search(text, max(string.end(), string.start() + 1))
            continue
        digits = number.group().lstrip("+-").replace("_", "")
        if limit and len(digits) > limit:
            return number.start()
        number = _INTEGER.search(text, number.end())
    return None
