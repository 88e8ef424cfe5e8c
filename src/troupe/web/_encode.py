"""What the API sends: JSON (ASCII, no NaN), job records, dead letters and bus events as data."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import Response

from ..jobs import JobRecord
from ..jobs._record import as_json
from ..protocol import BusEvent, DeadLetter, codec
from ..protocol._message import is_message_class

_TEXT_LIMIT = 300  # characters of a repr shown for a value that is not JSON data
_DEPTH = 6  # nesting followed in plain data before the rest is shown as a repr
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def dumps(data: object) -> bytes:
    """``data`` as JSON bytes: ASCII only (lone surrogates survive), no NaN or infinity (as null)."""
    try:
        text = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    except (ValueError, TypeError):
        text = json.dumps(_clean(data, 0), ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.encode("ascii")


def json_response(data: object, status: int = 200) -> Response:
    """A JSON response, never cached."""
    return Response(dumps(data), status_code=status, media_type="application/json", headers=_HEADERS)


def error_response(status: int, error: str) -> Response:
    """``{"error": ...}`` with a 4xx or 5xx status."""
    return json_response({"error": error}, status)


def shorten(text: str, limit: int = _TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis says so)."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def describe(value: object) -> str:
    """A short ``repr`` of ``value`` for people (a failing ``__repr__`` is named, not raised)."""
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001 - a user's __repr__ may raise anything
        text = f"<{type(value).__qualname__}: repr failed: {type(exc).__name__}>"
    return shorten(text)


def value_json(value: object) -> Any:
    """Any value as JSON data: messages through the codec, plain data as is, the rest as a short repr."""
    return _clean(value, 0)


def _clean(value: object, depth: int) -> Any:  # noqa: PLR0911 - one return per kind of value
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes | bytearray):
        return bytes(value[:100_000]).decode("utf-8", "backslashreplace")
    if depth >= _DEPTH:
        return describe(value)
    if isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in value[:1000]]
    if isinstance(value, dict):
        return {str(k): _clean(v, depth + 1) for k, v in list(value.items())[:1000]}
    if is_message_class(type(value)):
        try:
            return _clean(codec.encode(value), depth + 1)
        except Exception:  # noqa: BLE001 - a message the codec cannot take is shown as its repr
            return describe(value)
    return describe(value)


def dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    """``{"message", "recipient", "reason"}``: the message as a short repr."""
    return {"message": describe(letter.message), "recipient": letter.recipient, "reason": letter.reason.value}


def event_json(event: BusEvent) -> dict[str, Any]:
    """``{"topic", "data"}``: paths and names as strings, job records as ``troupe jobs list --json`` does."""
    data = event.data
    if isinstance(data, str):
        shown: Any = data
    elif isinstance(data, JobRecord):
        shown = _clean(as_json(data), 0)
    elif isinstance(data, DeadLetter):
        shown = dead_letter_json(data)
    elif isinstance(data, BaseException):
        shown = shorten(f"{type(data).__name__}: {data}")
    else:
        shown = value_json(data)
    return {"topic": event.topic, "data": shown}


def record_json(record: JobRecord) -> dict[str, Any]:
    """A job record as ``troupe jobs list --json`` prints it (no NaN: strict JSON)."""
    return as_json(record)
