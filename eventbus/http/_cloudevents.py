"""CloudEvents over HTTP: the structured, batched and binary content modes (internal).

See the CloudEvents HTTP protocol binding 1.0. Events are decoded with
:func:`eventbus.from_cloudevent`, so only registered event classes come out.
Nothing here needs Starlette.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import unquote

from .._events import Event
from .._exceptions import SerializationError
from .._serialization import from_cloudevent
from ._codec import parse_json
from ._errors import HttpError

__all__ = ["BATCH", "STRUCTURED", "decode_cloudevents", "media_type"]

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
#: The W3C trace-context headers, carried as CloudEvents extension attributes.
_TRACE_HEADERS: Final = ("traceparent", "tracestate")


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` value, lower case, without parameters."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def decode_cloudevents(headers: Sequence[tuple[str, str]], body: bytes) -> tuple[list[Event], bool]:
    """Decode the CloudEvents of one request; return them and whether it was a batch.

    *headers* are ``(lower-case name, value)`` pairs.

    Raises:
        HttpError: 415 when the request is in no CloudEvents content mode;
            400 when the body or an event is malformed, or its type is not
            a registered event class (the message says which and where).
    """
    content_type = next((v for k, v in headers if k == "content-type"), None)
    kind = media_type(content_type)
    if kind == STRUCTURED:
        return [_decode(parse_json(body), "body")], False
    if kind == BATCH:
        documents = parse_json(body)
        if not isinstance(documents, list):
            raise HttpError(
                400,
                "InvalidCloudEvent",
                f"a {BATCH} body must be a JSON array of CloudEvents",
            )
        return [_decode(doc, f"body[{i}]") for i, doc in enumerate(documents)], True
    if any(k == "ce-specversion" for k, _ in headers):
        return [_decode(_binary_document(headers, content_type, kind, body), "headers")], False
    raise HttpError(
        415,
        "UnsupportedMediaType",
        f"POST a CloudEvent: structured mode (Content-Type: {STRUCTURED}), batched "
        f"({BATCH}), or binary mode (ce-specversion, ce-id, ce-source and ce-type headers "
        f"with a JSON body); got Content-Type {content_type or 'none'!r:.80}",
    )


def _binary_document(
    headers: Sequence[tuple[str, str]], content_type: str | None, kind: str, body: bytes
) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name, value in headers:
        if name.startswith("ce-") and len(name) > 3:
            document.setdefault(name[3:], unquote(value))
    for name, value in headers:
        if name in _TRACE_HEADERS:
            document.setdefault(name, value)
    if content_type is not None:
        document["datacontenttype"] = content_type
    if body.strip():
        if kind and kind != "application/json" and not kind.endswith("+json"):
            raise HttpError(
                415,
                "UnsupportedMediaType",
                f"binary-mode CloudEvents carry eventbus events as JSON data; send "
                f"Content-Type: application/json, not {content_type!r:.80}",
            )
        document["data"] = parse_json(body)
    return document


def _decode(document: Any, where: str) -> Event:
    if not isinstance(document, Mapping):
        raise HttpError(400, "InvalidCloudEvent", f"{where}: a CloudEvent must be a JSON object")
    try:
        return from_cloudevent(document)
    except (SerializationError, TypeError, ValueError) as exc:
        raise HttpError(400, "InvalidCloudEvent", f"{where}: {exc}") from None
