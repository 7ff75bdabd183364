"""Typed events for AWS payloads that no built-in event models: SQS and EventBridge."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .._events import Event

__all__ = ["EventBridgeEvent", "QueueMessage"]


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class QueueMessage(Event, type_name="eventbus.aws.QueueMessage"):
    """A message received from a queue (an SQS record).

    The envelope ``id`` is the SQS ``messageId``, ``time`` its
    ``SentTimestamp`` and ``source`` the queue ARN.

    Attributes:
        queue: the queue name (the last part of the queue ARN).
        body: the message body, as SQS delivers it (a string; a message that
            came through SNS or S3 keeps their JSON envelope here).
        attributes: SQS system attributes, strings as SQS sends them:
            ``ApproximateReceiveCount``, ``SentTimestamp``, ``SenderId``,
            ``ApproximateFirstReceiveTimestamp`` and, on FIFO queues,
            ``MessageGroupId``, ``MessageDeduplicationId``, ``SequenceNumber``.
        message_attributes: message attributes as plain values: ``str`` for
            String, ``int`` or ``float`` for Number, ``bytes`` for Binary.
        receipt_handle: the handle that deletes or re-hides the message.

    .. versionadded:: 0.1
    """

    queue: str
    body: str
    attributes: Mapping[str, str] = attrs.field(factory=dict)
    message_attributes: Mapping[str, Any] = attrs.field(factory=dict)
    receipt_handle: str | None = None

    @property
    def receive_count(self) -> int:
        """How many times the message has been received (``ApproximateReceiveCount``, default 1)."""
        try:
            return int(self.attributes.get("ApproximateReceiveCount", "1"))
        except ValueError:
            return 1

    @property
    def group_id(self) -> str | None:
        """The message group of a FIFO queue (``MessageGroupId``), else ``None``."""
        return self.attributes.get("MessageGroupId")


@attrs.frozen
class EventBridgeEvent(Event, type_name="eventbus.aws.EventBridgeEvent"):
    """An EventBridge (CloudWatch Events) event other than a scheduled one.

    The envelope ``source`` is the EventBridge ``source`` (``"aws.ec2"``,
    ``"com.example.orders"``), so ``where={"source": [...]}`` patterns read
    as they do on EventBridge; ``id`` and ``time`` are the event's own.

    Attributes:
        detail_type: the ``detail-type``, e.g. ``"EC2 Instance State-change Notification"``.
        detail: the event's ``detail`` object.
        resources: ARNs of the resources involved.
        account: the AWS account id that emitted the event (``""``: not known).
        region: the AWS region it was emitted in (``""``: not known).

    .. versionadded:: 0.1
    """

    detail_type: str
    detail: Mapping[str, Any] = attrs.field(factory=dict)
    resources: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    account: str = ""
    region: str = ""
