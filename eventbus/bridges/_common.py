"""What the broker bridges share (internal; imports no client library)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .._deadletter import UndecodableEvent
from .._events import Event, event_class
from .._exceptions import SerializationError
from .._serialization import _parse_json as parse_json
from .._serialization import from_cloudevent

__all__ = ["decode_message", "report_undecodable"]

logger = logging.getLogger("eventbus.bridges")


def decode_message(
    warned: set[tuple[str, str]], group: str, data: Any, where: str | Callable[[], str]
) -> Event | None:
    """Decode one broker message for consumer group *group*; never raise.

    *where* names the message in logs (a callable is asked only if one is
    written: the transports pay nothing for it per message).

    Returns:
        The event; ``None`` for a message to acknowledge and skip (an
        event type no class in this process is registered for: another
        service's event); or an :class:`~eventbus.UndecodableEvent` holding
        the raw message text and the reason, for any other failure -- not
        JSON, not a CloudEvent, a field the registered class cannot take,
        or any exception the decoder raised (a poison message). The bus
        dead-letters an ``UndecodableEvent`` in the subscription and then
        acknowledges it, so one bad message never stops a consumer.
    """
    try:
        return from_cloudevent(data)
    except Exception as exc:  # any failure of untrusted input: never stop the consumer
        error = exc
    if not isinstance(where, str):
        where = where()
    document = _peek(data)
    type_name = document.get("type") if document is not None else None
    if not isinstance(type_name, str):
        type_name = None
    if (
        isinstance(error, SerializationError)
        and type_name is not None
        and not _is_registered(type_name)
    ):
        report_undecodable(warned, group, data, error, where)
        return None
    reason = f"{type(error).__name__}: {_bounded(str(error))}"
    text, exact = _text(data)
    if not exact:
        reason += " (the message is not UTF-8; its bytes are kept with backslash escapes)"
    logger.error(
        "subscription %r received a message that cannot be decoded (%s): %s; it is "
        "dead-lettered as an eventbus.UndecodableEvent and acknowledged",
        group,
        where,
        reason,
    )
    return undecodable_event(type_name or "", text, reason, document)


def undecodable_event(
    type_name: str, text: str, reason: str, document: dict[str, Any] | None
) -> UndecodableEvent:
    """An :class:`~eventbus.UndecodableEvent` keeping what envelope *document* still gives."""
    envelope: dict[str, Any] = {}
    if document is not None:
        event_id = document.get("id")
        if isinstance(event_id, str) and event_id and len(event_id) <= 256:
            envelope["id"] = event_id
        source = document.get("source")
        if isinstance(source, str) and source != "/" and len(source) <= 1024:
            envelope["source"] = source
        for key, field in (("correlationid", "correlation_id"), ("causationid", "causation_id")):
            value = document.get(key)
            if isinstance(value, str) and len(value) <= 1024:
                envelope[field] = value
        when = document.get("time")
        if isinstance(when, str) and len(when) <= 64:
            try:
                moment = datetime.fromisoformat(when)
                if moment.tzinfo is not None:
                    envelope["time"] = moment.astimezone(UTC)
            except (ValueError, OverflowError):
                pass
    return UndecodableEvent(type_name, text, reason, **envelope)


def report_undecodable(
    warned: set[tuple[str, str]], group: str, data: Any, error: BaseException, where: str
) -> None:
    """Log a message the group skips: unknown event types once per type, others each time."""
    document = _peek(data)
    type_name = document.get("type") if document is not None else None
    if isinstance(type_name, str) and not _is_registered(type_name):
        key = (group, type_name)
        if key in warned:
            logger.debug("subscription %r skipped another %r event (%s)", group, type_name, where)
            return
        warned.add(key)
        logger.warning(
            "subscription %r received an event of type %r (%s), which no Event class in this "
            "process is registered for; it was acknowledged and skipped. Import the module that "
            "defines it to handle such events (further ones are logged at debug level)",
            group,
            _bounded(type_name),
            where,
        )
        return
    logger.error(
        "subscription %r received a message that is not a valid eventbus CloudEvent (%s): %s; "
        "it was acknowledged and skipped",
        group,
        where,
        _bounded(str(error)),
    )


def _peek(data: Any) -> dict[str, Any] | None:
    """The message as a JSON object, or ``None`` when it is not one (never raises)."""
    if isinstance(data, dict):
        return data
    try:
        document = parse_json(data)
    except Exception:  # too large, too deep, bad UTF-8, ...: not peekable
        return None
    return document if isinstance(document, dict) else None


def _text(data: Any) -> tuple[str, bool]:
    """The message as text, and whether that text is exactly its bytes."""
    if isinstance(data, str):
        return data, True
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        try:
            return raw.decode("utf-8"), True
        except UnicodeDecodeError:
            return raw.decode("utf-8", errors="backslashreplace"), False
    try:
        return json.dumps(data), True
    except Exception:
        return repr(data)[:10_000], False


def _bounded(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _is_registered(type_name: str) -> bool:
    try:
        event_class(type_name)
    except SerializationError:
        return False
    return True
