"""What the broker bridges share (internal; imports no client library)."""

from __future__ import annotations

import json
import logging
from typing import Any

from .._events import event_class
from .._exceptions import SerializationError

__all__ = ["report_undecodable"]

logger = logging.getLogger("eventbus.bridges")


def report_undecodable(
    warned: set[tuple[str, str]], group: str, data: Any, error: SerializationError, where: str
) -> None:
    """Log a message the group skips: unknown event types once per type, others each time."""
    type_name = _peek_type(data)
    if type_name is not None and not _is_registered(type_name):
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
            type_name,
            where,
        )
        return
    logger.error(
        "subscription %r received a message that is not a valid eventbus CloudEvent (%s): %s; "
        "it was acknowledged and skipped",
        group,
        where,
        error,
    )


def _peek_type(data: Any) -> str | None:
    try:
        document = json.loads(data)
    except (ValueError, TypeError):
        return None
    if isinstance(document, dict):
        value = document.get("type")
        if isinstance(value, str):
            return value
    return None


def _is_registered(type_name: str) -> bool:
    try:
        event_class(type_name)
    except SerializationError:
        return False
    return True
