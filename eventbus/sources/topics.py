"""Topic events (the SNS model)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .._events import Event

__all__ = ["TopicMessage"]


@attrs.frozen
class TopicMessage(Event, type_name="eventbus.TopicMessage"):
    """A message published to a topic (an SNS notification).

    Attributes:
        topic: the topic name.
        message: the message body (a string, as SNS delivers it).
        attributes: message attributes: strings, numbers or lists of strings.
            Subscriptions filter on them with ``where={"attributes": {...}}``.
        subject: an optional subject line.
        group_id: the message group of a FIFO topic (order is kept per group).
        dedup_id: the deduplication id of a FIFO topic.
    """

    topic: str
    message: str
    attributes: Mapping[str, Any] = attrs.field(factory=dict)
    subject: str | None = None
    group_id: str | None = None
    dedup_id: str | None = None
