"""Typed events for AWS payloads that no built-in event models.

SQS messages, EventBridge events, CloudWatch Logs subscription deliveries and
CloudTrail API calls; the Cognito triggers live in ``_cognito_events``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from .._events import Event

__all__ = [
    "ApiCall",
    "CloudWatchLogsEvent",
    "EventBridgeEvent",
    "LogEvent",
    "QueueMessage",
]


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


@attrs.frozen
class LogEvent:
    """One log event of a CloudWatch Logs subscription payload.

    Attributes:
        event_id: CloudWatch's id of the log event (``id``).
        timestamp: when it was logged (aware, UTC, millisecond precision).
        message: the log line.

    .. versionadded:: 0.2
    """

    event_id: str
    timestamp: datetime
    message: str


def _log_events(value: Iterable[LogEvent]) -> tuple[LogEvent, ...]:
    return tuple(value)


@attrs.frozen
class CloudWatchLogsEvent(Event, type_name="eventbus.aws.CloudWatchLogsEvent"):
    """The log events a CloudWatch Logs subscription filter delivered in one invocation.

    Read from the ``awslogs.data`` payload (base64 of gzip- or
    zlib-compressed JSON). The envelope ``source`` is the log group, ``time``
    the first log event's timestamp (the Unix epoch when there is none) and
    ``id`` is derived from the payload, so equal payloads read as equal events.

    Attributes:
        log_group: the log group name.
        log_stream: the log stream name.
        owner: the AWS account id that owns the log group.
        subscription_filters: names of the subscription filters that matched.
        message_type: ``"DATA_MESSAGE"``, or ``"CONTROL_MESSAGE"`` for the
            reachability check CloudWatch Logs sends.
        log_events: the log events, in order.
        policy_level: ``"ACCOUNT_LEVEL_POLICY"`` when an account-level
            subscription policy delivered them, else ``None``.

    .. versionadded:: 0.2
    """

    log_group: str
    log_stream: str
    owner: str
    subscription_filters: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    message_type: str = "DATA_MESSAGE"
    log_events: tuple[LogEvent, ...] = attrs.field(default=(), converter=_log_events)
    policy_level: str | None = None


@attrs.frozen
class ApiCall(Event, type_name="eventbus.aws.ApiCall"):
    """An API call (or other activity) recorded by AWS CloudTrail.

    Read from a bare CloudTrail record -- alone, or in a ``Records`` array as
    in CloudTrail's log files -- or from an EventBridge event whose
    ``detail-type`` ends in ``"via CloudTrail"`` (``"AWS API Call via
    CloudTrail"``). The envelope ``time`` is ``eventTime``; ``source`` is
    the EventBridge source (``"aws.s3"``), derived from ``eventSource`` for a
    bare record; ``id`` is the EventBridge event's id, or ``eventID``.

    Attributes:
        event_source: the service called (``"s3.amazonaws.com"``).
        event_name: the API action (``"PutObject"``).
        region: the region the call was made to (``awsRegion``).
        user_identity: who made the call (``userIdentity``), as plain values.
        request_parameters: the call's parameters, or ``None``.
        response_elements: what the call returned, or ``None``.
        source_ip: the caller's address, or the calling service's name.
        user_agent: the caller's agent, if recorded.
        event_id: CloudTrail's ``eventID``.
        request_id: the service's request id (``requestID``), if any.
        record_type: CloudTrail's ``eventType``: ``"AwsApiCall"``, ``"AwsServiceEvent"``,
            ``"AwsConsoleSignIn"``, ...
        event_version: the record format version (``"1.08"``).
        read_only: whether the call only read, if recorded.
        error_code: the error the call failed with, if it did.
        error_message: its message, if any.
        recipient_account_id: the account that received the record.
        extra: every other field of the record (``additionalEventData``,
            ``resources``, ``managementEvent``, ``tlsDetails``, ...), kept
            so that rendering gives them back.
        detail_type: the EventBridge ``detail-type`` when the record came
            through EventBridge, else ``None``.

    .. versionadded:: 0.2
    """

    event_source: str
    event_name: str
    region: str = ""
    user_identity: Mapping[str, Any] = attrs.field(factory=dict)
    request_parameters: Mapping[str, Any] | None = None
    response_elements: Mapping[str, Any] | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    event_id: str = ""
    request_id: str | None = None
    record_type: str | None = None
    event_version: str = "1.08"
    read_only: bool | None = None
    error_code: str | None = None
    error_message: str | None = None
    recipient_account_id: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)
    detail_type: str | None = None
