"""From HTTP to typed events and from handler results back to HTTP (internal).

Typed events are built with the CloudEvents codec's per-field decoders
(:mod:`eventbus._serialization`), so a field accepts over HTTP exactly what
it accepts in a CloudEvent. Nothing here needs Starlette.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, NoReturn

import attrs

from .._events import Event
from .._exceptions import SerializationError
from .._serialization import (
    _ENVELOPE,
    _codec,
    _parse_constant,
    _parse_float,
    _parse_int,
    to_cloudevent,
)
from ._errors import HttpError

__all__ = ["ProxyResponse", "build_event", "encode_json", "parse_json", "proxy_response"]

_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE: Final = re.compile(r"[\r\n\x00]")


def parse_json(body: bytes, where: str = "body") -> Any:
    """Parse *body* as JSON, or raise a 400 saying where it broke."""
    try:
        return json.loads(
            body,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except SerializationError as exc:  # a number past the CloudEvents codec's limits
        raise HttpError(400, "InvalidJSON", f"the {where} is not acceptable JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise HttpError(
            400,
            "InvalidJSON",
            f"the {where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
            f"(byte {exc.pos})",
        ) from None
    except UnicodeDecodeError as exc:
        raise HttpError(
            400, "InvalidJSON", f"the {where} is not UTF-8 text: byte {exc.start} is invalid"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise HttpError(400, "InvalidJSON", f"the {where} is not acceptable JSON: {exc}") from None


def event_fields(cls: type[Event]) -> dict[str, attrs.Attribute[Any]]:
    """The declared (non-envelope) fields of *cls*, by name."""
    return {f.name: f for f in attrs.fields(cls) if f.name not in _ENVELOPE and f.init}


def build_event(
    cls: type[Event],
    body: bytes,
    path_params: Mapping[str, str],
    *,
    request_id: str,
    source: str,
    envelope: Mapping[str, Any] | None = None,
) -> Event:
    """Build *cls* from a JSON object body plus the route's path parameters.

    Path parameters win over body fields of the same name. Unknown body
    fields are ignored (as :func:`eventbus.from_cloudevent` does).
    *envelope* adds envelope fields (the trace context).

    Raises:
        HttpError: 400 naming the missing or mistyped field, or saying where
            the JSON broke.
    """
    document: Any = parse_json(body) if body.strip() else {}
    if not isinstance(document, Mapping):
        raise HttpError(
            400,
            "InvalidBody",
            f"the body must be a JSON object with the fields of {cls.__name__}, "
            f"got a JSON {_json_kind(document)}",
        )
    fields = event_fields(cls)
    kwargs: dict[str, Any] = {}
    try:
        for name, _, decode in _codec(cls):
            if name in path_params:
                kwargs[name] = _decode_path(decode, path_params[name], name)
            elif name in document:
                kwargs[name] = decode(document[name], f"body.{name}")
    except SerializationError as exc:
        raise HttpError(400, "InvalidField", str(exc)) from None
    missing = [
        name
        for name, field in fields.items()
        if name not in kwargs and field.default is attrs.NOTHING
    ]
    if missing:
        raise HttpError(
            400,
            "MissingField",
            f"body.{missing[0]}: required field of {cls.__name__} is missing"
            + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""),
        )
    try:
        return cls(**kwargs, **(envelope or {}), id=request_id, source=source)
    except (TypeError, ValueError) as exc:
        raise HttpError(400, "InvalidField", f"cannot build {cls.__name__}: {exc}") from None


def _decode_path(decode: Any, raw: str, name: str) -> Any:
    where = f"path.{name}"
    try:
        return decode(raw, where)
    except SerializationError:
        # A number or a boolean in the path arrives as text: read it as JSON.
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            raise SerializationError(
                f"{where}: {raw!r:.60} is not a valid value for this field"
            ) from None
        if isinstance(value, str):
            raise
        return decode(value, where)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _default(value: Any) -> Any:
    if isinstance(value, Event):
        return to_cloudevent(value)
    if attrs.has(type(value)):
        return {f.name: getattr(value, f.name) for f in attrs.fields(type(value))}
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"a {type(value).__name__} value cannot be written as JSON")


def encode_json(value: Any) -> bytes:
    """*value* as compact UTF-8 JSON; attrs objects, datetimes, bytes and sets included.

    Raises:
        HttpError: 500 ``SerializationError`` when the value cannot be written.
    """
    try:
        text = json.dumps(
            value, default=_default, allow_nan=False, ensure_ascii=False, separators=(",", ":")
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise HttpError(
            500,
            "SerializationError",
            f"the handler's result cannot be sent as JSON: {exc}; return JSON values, attrs "
            "objects, or an API Gateway proxy response ({'statusCode': ..., 'body': ...})",
        ) from None
    return text.encode("utf-8", errors="surrogateescape")


@attrs.frozen
class ProxyResponse:
    """An API Gateway proxy-style result, checked (internal)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def is_proxy_response(value: Any) -> bool:
    """Whether a handler's result is API Gateway proxy style (a dict with ``statusCode``)."""
    return isinstance(value, Mapping) and "statusCode" in value


def proxy_response(value: Mapping[str, Any]) -> ProxyResponse:
    """Read ``statusCode``, ``headers``, ``multiValueHeaders``, ``cookies``, ``body``, ``isBase64Encoded``.

    Raises:
        HttpError: 502 ``MalformedProxyResponse`` naming the bad part (as
            API Gateway answers a malformed Lambda proxy response).
    """
    status = value.get("statusCode")
    if isinstance(status, str) and status.isascii() and status.isdigit():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        _malformed(f"statusCode must be an int from 200 to 599, got {status!r:.40}")
    headers: list[tuple[str, str]] = []
    single = value.get("headers") or {}
    multi = value.get("multiValueHeaders") or {}
    if not isinstance(single, Mapping) or not isinstance(multi, Mapping):
        _malformed("headers and multiValueHeaders must be objects")
    for name, item in single.items():
        headers.append(_header(name, item))
    for name, items in multi.items():
        if not isinstance(items, list):
            _malformed(f"multiValueHeaders.{name!s:.40} must be an array")
        headers.extend(_header(name, item) for item in items)
    cookies = value.get("cookies") or []
    if not isinstance(cookies, list):
        _malformed("cookies must be an array of strings")
    headers.extend(_header("set-cookie", cookie) for cookie in cookies)
    body = value.get("body")
    data: bytes
    if body is None:
        data = b""
    elif value.get("isBase64Encoded"):
        if not isinstance(body, str):
            _malformed("a base64-encoded body must be a string")
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            _malformed("body is marked isBase64Encoded but is not valid base64")
    elif isinstance(body, str):
        data = body.encode("utf-8", errors="surrogateescape")
    else:
        data = encode_json(body)
    if status in (204, 304):
        data = b""  # HTTP forbids a body with these statuses
    if data and not any(name == "content-type" for name, _ in headers):
        headers.append(("content-type", "application/json"))
    return ProxyResponse(status, headers, data)


def _header(name: Any, value: Any) -> tuple[str, str]:
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        _malformed(f"header name {name!r:.40} is not a valid HTTP header name")
    if isinstance(value, bool):
        value = "true" if value else "false"
    if not isinstance(value, str | int | float):
        _malformed(f"header {name}: the value must be text or a number")
    text = str(value)
    if _BAD_VALUE.search(text) or not _latin1(text):
        _malformed(f"header {name}: the value holds a line break, a NUL or non-Latin-1 text")
    return name.lower(), text


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _malformed(message: str) -> NoReturn:
    raise HttpError(502, "MalformedProxyResponse", f"the handler's proxy response: {message}")
