"""What crosses the wire: subjects, envelopes, answers and errors, as JSON.

Subjects, under ``troupe.<cluster>``:

- ``.hb``: heartbeats, hellos and goodbyes (every node listens);
- ``.a.<node id>.<actor id>``: one actor (a node subscribes ``.a.<node id>.*``);
- ``.n.<name>``: a registered name, a NATS queue group over its members;
- ``.c.<node id>``: a node's control messages (remote watches);
- ``.i.<node id>.<n>``: a node's inbox (answers to asks; ``t<n>`` for tells
  the server found no subscriber for; ``m<n>``, the node's own marks that
  the server has handled its tells up to ``n``).

Payloads are JSON. A tell is the codec's encoding of the message (an
object with ``"type"``); an ask is ``{"ask": timeout, "m": message}``; an
answer is ``{"ok": value}`` or ``{"err": {...}}``. Nothing is ever
unpickled or imported: only registered ``@message`` classes are built.
"""

from __future__ import annotations

import json
import math
import re
import traceback
from typing import Any, Final, final

from ..actors import ActorCrashed, ActorStopped, AskTimeout, MailboxFull, MessageTypeError
from ..protocol import message
from ._errors import ClusterError, RemoteError

TOKEN: Final = re.compile(r"[A-Za-z0-9_-]+")
"""A name that may be one token of a NATS subject."""

_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _not_json(value: object) -> Any:
    msg = f"Object of type {type(value).__name__} is not JSON serializable"
    raise TypeError(msg)


_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_SORT_KEYS = _SKIP_KEYS = _ALLOW_NAN = False
_c_encode = (
    None
    if _c_make_encoder is None  # (markers, default, encoder, indent, separators, flags): no cycles to mark
    else _c_make_encoder(
        None,
        _not_json,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        _SORT_KEYS,
        _SKIP_KEYS,
        _ALLOW_NAN,
    )
)


def dumps(data: Any) -> str:
    """Compact JSON of ``data`` (no NaN): `json.JSONEncoder.encode`, without building an encoder per call.

    ``data`` is the codec's output (no cycles). Raises ValueError (NaN, an
    int too long for a str) or TypeError (not JSON data) as `json` does.
    """
    if _c_encode is None or type(data) is not dict:
        return _dumps(data)
    return "".join(_c_encode(data, 0))


_raw_decode = json.JSONDecoder().raw_decode


def loads(payload: bytes) -> Any:
    """`json.loads` of ``payload``, without its per-call detours for the usual case.

    UTF-8 text holding one JSON value and nothing else is read at once;
    anything else goes to `json.loads`, for the same value or error.

    Raises:
        ValueError: not one JSON value (a `json.JSONDecodeError`), or bytes
            no encoding JSON allows can read.
        RecursionError: nested too deeply.
    """
    try:
        text = payload.decode()
        data, end = _raw_decode(text)
    except ValueError:
        return json.loads(payload)
    if end != len(text):
        return json.loads(payload)  # whitespace after the value, or something that is not
    return data


@final
@message(name="troupe.cluster.UnreadableMessage")
class UnreadableMessage:
    """A dead letter's message when what arrived from another node was not one.

    Garbage bytes, JSON that is not a message, an unknown message type,
    wrong fields, or more than the node's ``max_payload``: the recipient's
    node records it with `DeadLetterReason.REFUSED` and this in place of
    the message it could not build.
    """

    reason: str
    """What was wrong with it."""
    size: int
    """Its size in bytes."""
    preview: str
    """Its first bytes, for a person to look at."""


def unreadable(reason: str, payload: bytes) -> UnreadableMessage:
    """The `UnreadableMessage` for ``payload``."""
    return UnreadableMessage(reason, len(payload), payload[:120].decode("utf-8", errors="replace"))


def check_name(name: object, what: str = "name") -> str:
    """``name`` if it can be a subject token, else ValueError saying what a name may hold."""
    if not isinstance(name, str) or not TOKEN.fullmatch(name):
        msg = (
            f"a cluster {what} is made of letters, digits, '_' and '-' (it becomes part of a NATS "
            f"subject), got {name!r}"
        )
        raise ValueError(msg)
    return name


def read_ask_timeout(value: object) -> float | None:
    """An ask envelope's timeout: seconds >= 0, or None; ValueError for anything else.

    Anything at all may arrive here (the wire is hostile): a bool, a string,
    NaN, an infinity, a negative number, or an int too large for a float
    (JSON sets no limit) are each a ValueError, never another exception.
    """
    if value is None:
        return None
    if type(value) is int:
        try:
            seconds = float(value)
        except OverflowError:
            bits = value.bit_length()
            msg = f"the ask's timeout must be a number of seconds >= 0 or null, got an int of {bits} bits"
            raise ValueError(msg) from None
    elif type(value) is float:
        seconds = value
    else:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        msg = f"the ask's timeout must be a number of seconds >= 0 or null, got {value!r:.60}"
        raise ValueError(msg)
    return seconds


def error_data(exc: BaseException) -> dict[str, Any]:  # noqa: PLR0911 - one case per kind of error
    """An ask's failure on the answering node, as JSON data for the asker."""
    if isinstance(exc, ActorCrashed):
        cause = exc.__cause__
        if cause is None:
            return {"kind": "restarted", "text": str(exc)}
        return {"kind": "crashed", **exception_data(cause)}
    if isinstance(exc, ActorStopped):
        return {"kind": "stopped", "text": str(exc)}
    if isinstance(exc, AskTimeout):
        return {"kind": "timeout", "text": str(exc)}
    if isinstance(exc, MailboxFull):
        return {"kind": "full", "capacity": exc.capacity, "text": str(exc)}
    if isinstance(exc, MessageTypeError):
        return {"kind": "type", "accepts": exc.accepts, "text": str(exc)}
    return {"kind": "raised", **exception_data(exc)}


def exception_data(exc: BaseException) -> dict[str, str]:
    """An exception as JSON data: its type name, text and traceback."""
    return {
        "type": type(exc).__qualname__,
        "text": str(exc),
        "tb": "".join(traceback.format_exception(exc)),
    }


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    return value if isinstance(value, str) else repr(value)


def remote_error(data: dict[str, Any], node: str) -> RemoteError:
    """The `RemoteError` an error's data describes."""
    return RemoteError(_text(data, "type") or "Exception", _text(data, "text"), _text(data, "tb"), node)


_CLUSTER_KINDS: Final = {
    "refused": "refused the message",  # not a message the node could read
    "unsent": "could not send what it answered",  # over the server's limit
}
"""Error answers the asker raises as `ClusterError`: the text after the path, by kind."""


def error_from(  # noqa: PLR0911 - one case per kind of error
    data: object, path: str, msg: object, timeout: float | None, node: str
) -> BaseException:
    """What the asker raises for an error answer (``data`` from the wire: anything at all)."""
    if not isinstance(data, dict):
        return ClusterError(f"{path} answered with an error this node cannot read: {data!r:.200}")
    node = data["node"] if isinstance(data.get("node"), str) else node
    kind = data.get("kind")
    if kind == "crashed":
        crashed = ActorCrashed(path, remote_error(data, node))
        crashed.__cause__ = remote_error(data, node)
        return crashed
    if kind == "restarted":
        return ActorCrashed(path, None)
    if kind == "stopped":
        return ActorStopped(path)
    if kind == "timeout":
        return AskTimeout(path, msg, timeout or 0.0)
    if kind == "full":
        capacity = data.get("capacity")
        return MailboxFull(path, capacity if type(capacity) is int else 0)
    if kind == "type":
        return MessageTypeError(path, msg, _text(data, "accepts") or "other types")
    if kind in _CLUSTER_KINDS:
        return ClusterError(f"{path} {_CLUSTER_KINDS[kind]}: {_text(data, 'text')}")
    if kind == "raised":
        return remote_error(data, node)
    return ClusterError(f"{path} answered {_text(data, 'text') or data!r:.200}")
