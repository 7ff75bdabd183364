"""Checks of a topic's message, attributes and FIFO fields, and its subscription filters."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

__all__ = ["check_attributes", "check_message", "check_subject", "check_token", "compile_filter"]

_ATTRIBUTE_NAME: Final = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")
_RESERVED: Final = ("aws.", "amazon.")
MAX_ATTRIBUTE_NAME: Final = 256
MAX_SUBJECT: Final = 100
MAX_TOKEN: Final = 128
_TOKEN: Final = re.compile(r"[!-~]+")  # printable ASCII, no spaces, as SNS allows


def check_message(message: object) -> str:
    """The message body as text: a string as is, other JSON values encoded as JSON.

    Raises:
        TypeError: the value cannot be encoded as JSON.
    """
    if isinstance(message, str):
        return message
    try:
        return json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"publish(message=...) takes a string or a JSON-serialisable value; {exc}"
        ) from None


def check_subject(subject: object) -> str | None:
    """An SNS-style subject: 1-100 characters on one line, or None.

    Raises:
        TypeError, ValueError: anything else.
    """
    if subject is None:
        return None
    if not isinstance(subject, str):
        raise TypeError(f"publish(subject=...) must be a string, got {type(subject).__name__}")
    if not subject or len(subject) > MAX_SUBJECT:
        raise ValueError(f"publish(subject=...) must be 1 to {MAX_SUBJECT} characters long")
    if any(ord(c) < 0x20 for c in subject):
        raise ValueError("publish(subject=...) must be one line without control characters")
    return subject


def _check_attribute_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"attribute names must be strings, got {name!r}")
    if not name or len(name) > MAX_ATTRIBUTE_NAME or not _ATTRIBUTE_NAME.fullmatch(name):
        raise ValueError(
            f"attribute name {name!r:.60}: use 1-{MAX_ATTRIBUTE_NAME} letters, digits, '_', "
            "'-' and single '.' between them"
        )
    if name.lower().startswith(_RESERVED):
        raise ValueError(
            f"attribute name {name!r:.60}: names starting with 'AWS.' or 'Amazon.' are reserved"
        )
    return name


def check_attributes(attributes: object) -> dict[str, Any]:
    """Typed message attributes: strings, numbers, or lists of strings.

    Returns:
        A new dict; tuples become lists.

    Raises:
        TypeError: a value of another type (the message names the attribute and the fix).
        ValueError: a bad name, or a number that is not finite.
    """
    if attributes is None:
        return {}
    if not isinstance(attributes, Mapping):
        raise TypeError(
            f"publish(attributes=...) must be a mapping of names to values, got {type(attributes).__name__}"
        )
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        _check_attribute_name(name)
        where = f"attribute {name!r}"
        if isinstance(value, str):
            out[name] = value
        elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise ValueError(f"{where}: numbers must be finite, got {value!r}")
            out[name] = value
        elif isinstance(value, list | tuple):
            if not all(isinstance(v, str) for v in value):
                raise TypeError(f"{where}: a string array holds only strings, got {value!r:.80}")
            out[name] = list(value)
        else:
            hint = " (send booleans as 'true'/'false')" if isinstance(value, bool) else ""
            raise TypeError(
                f"{where}: attributes are strings, numbers or lists of strings, "
                f"got {type(value).__name__}{hint}"
            )
    return out


def check_token(what: str, value: object) -> str | None:
    """A FIFO group or deduplication id: 1-128 printable ASCII characters, or None.

    Raises:
        TypeError, ValueError: anything else.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"publish({what}=...) must be a string, got {type(value).__name__}")
    if not _TOKEN.fullmatch(value) or len(value) > MAX_TOKEN:
        raise ValueError(
            f"publish({what}={value!r:.60}) must be 1-{MAX_TOKEN} printable ASCII characters without spaces"
        )
    return value


def compile_filter(policy: object, scope: str) -> Callable[[Any], bool]:
    """A test of a :class:`~eventbus.TopicMessage` from a filter policy.

    *policy* is an EventBridge-style pattern (a mapping, matched with
    :class:`~eventbus.Pattern`) or a predicate; *scope* says what it sees:
    ``"attributes"`` (the message attributes) or ``"body"`` (the message
    parsed as JSON; messages that are not JSON objects never match).

    Raises:
        ValueError: an unknown *scope*.
        PatternError: the pattern is invalid.
        TypeError: *policy* is neither a mapping nor callable.
    """
    if scope not in ("attributes", "body"):
        raise ValueError(f"filter_scope must be 'attributes' or 'body', got {scope!r}")
    test: Callable[[Any], bool]
    if isinstance(policy, Mapping):
        from ..patterns import Pattern

        test = Pattern(dict(policy)).matches
    elif callable(policy):
        test = policy
    else:
        raise TypeError(
            f"filter_policy must be a pattern (a mapping) or a predicate, got {type(policy).__name__}"
        )
    if scope == "attributes":
        return lambda event: bool(test(event.attributes))

    def on_body(event: Any) -> bool:
        try:
            body = json.loads(event.message)
        except ValueError:
            return False
        return isinstance(body, dict) and bool(test(body))

    return on_body
