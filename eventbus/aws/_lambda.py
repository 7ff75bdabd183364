"""``from_lambda_event`` / ``to_lambda_event``: AWS Lambda payloads <-> typed events."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from .._events import Event, LogRecord, ScheduledEvent
from .._exceptions import SerializationError
from ..http._request import HttpRequest
from ..sources.objects import ObjectCreated, ObjectRemoved
from ..sources.tables import TableChange
from ..sources.topics import TopicMessage
from . import (
    _apigateway,
    _cloudtrail,
    _cloudwatch_logs,
    _cognito,
    _dynamodb,
    _eventbridge,
    _kinesis,
    _s3,
    _sns,
    _sqs,
)
from ._cognito_events import CognitoSync, UserPoolTrigger
from ._common import DEFAULT_ACCOUNT, DEFAULT_REGION, RenderOptions, as_list, as_object, kind
from ._events import ApiCall, CloudWatchLogsEvent, EventBridgeEvent, QueueMessage
from ._limits import check_json, load_json

__all__ = ["from_lambda_event", "to_lambda_event"]

_Parser = Callable[[Mapping[str, Any], str], Event]

# eventSource value -> (service label, record parser)
_BY_EVENT_SOURCE: dict[str, tuple[str, _Parser]] = {
    "aws:s3": ("S3", _s3.parse_record),
    "aws:dynamodb": ("DynamoDB", _dynamodb.parse_record),
    "aws:sns": ("SNS", _sns.parse_record),
    "aws:sqs": ("SQS", _sqs.parse_record),
    "aws:kinesis": ("Kinesis", _kinesis.parse_record),
}

# When eventSource is missing or foreign (MinIO sends "minio:s3"), the record's
# shape tells the service: the key that holds the service-specific part.
_BY_SHAPE: tuple[tuple[str, str], ...] = (
    ("s3", "aws:s3"),
    ("dynamodb", "aws:dynamodb"),
    ("Sns", "aws:sns"),
    ("kinesis", "aws:kinesis"),
    ("body", "aws:sqs"),
)

_SERVICE_OF: tuple[tuple[type[Event], str], ...] = (
    (ObjectCreated, "S3"),
    (ObjectRemoved, "S3"),
    (TableChange, "DynamoDB"),
    (TopicMessage, "SNS"),
    (QueueMessage, "SQS"),
    (LogRecord, "Kinesis"),
    (ScheduledEvent, "EventBridge"),
    (EventBridgeEvent, "EventBridge"),
    (HttpRequest, "API Gateway"),
    (CloudWatchLogsEvent, "CloudWatch Logs"),
    (ApiCall, "CloudTrail"),
    (CognitoSync, "Cognito Sync"),
    (UserPoolTrigger, "Cognito User Pools"),
)

#: Services whose payload is one event, not an array of records.
SINGLE_EVENT_SERVICES = frozenset(
    {"EventBridge", "API Gateway", "CloudWatch Logs", "Cognito Sync", "Cognito User Pools"}
)


def from_lambda_event(payload: Mapping[str, Any] | str | bytes) -> list[Event]:
    """Turn an AWS Lambda event payload into typed events.

    Understands the payloads Lambda receives from S3 (``ObjectCreated:*``,
    ``ObjectRemoved:*``), DynamoDB Streams, SNS, SQS, Kinesis Data Streams,
    EventBridge (CloudWatch Events), API Gateway (REST API 1.0 and HTTP API
    2.0 proxy requests), CloudWatch Logs subscriptions, CloudTrail (bare
    records, log files, or via EventBridge) and Cognito (Sync and User Pool
    triggers), and returns, in record order,
    :class:`~eventbus.ObjectCreated` / :class:`~eventbus.ObjectRemoved`,
    :class:`~eventbus.TableChange`, :class:`~eventbus.TopicMessage`,
    :class:`QueueMessage`, :class:`~eventbus.LogRecord`,
    :class:`~eventbus.ScheduledEvent`, :class:`EventBridgeEvent`,
    :class:`~eventbus.http.HttpRequest`, :class:`CloudWatchLogsEvent`,
    :class:`ApiCall`, :class:`CognitoSync` or a :class:`UserPoolTrigger`
    subclass.

    The payload is untrusted: it is checked against :class:`PayloadLimits`
    (size, nesting depth, number digits and exponents) before anything is
    converted, so a hostile payload fails fast.

    The conversion is deterministic: the same payload always gives equal
    events (ids come from the payload, or are derived from its content where
    the service sends none). Unknown extra fields are ignored; optional
    fields may be missing. See the ``aws`` documentation page for the
    field-by-field mapping.

    Args:
        payload: the event as Lambda passes it to a handler (a parsed JSON
            object), or its JSON text.

    Returns:
        The typed events; an empty list for ``{"Records": []}``.

    Raises:
        SerializationError: the payload is malformed, past a limit, or comes
            from a service or event type this module does not convert; the
            message names the record and field, e.g.
            ``Records[2].s3.object.key: missing``. No other exception escapes
            for a bad payload.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       API Gateway, CloudWatch Logs, CloudTrail and Cognito payloads; limits.
    """
    if isinstance(payload, str | bytes | bytearray):
        payload = load_json(payload)
    elif isinstance(payload, Mapping):
        check_json(payload)
    if not isinstance(payload, Mapping):
        raise SerializationError(
            f"payload: expected a JSON object (a Lambda event), got {kind(payload)}"
        )
    try:
        return _parse_payload(payload)
    except SerializationError:
        raise
    except (RecursionError, OverflowError, ArithmeticError, ValueError) as exc:
        # A safety net: every reader validates, so this means a reader missed a
        # case; the caller still gets the one error type it is promised.
        raise SerializationError(
            f"payload: cannot be read ({type(exc).__name__}: {exc!s:.200})"
        ) from None


def _parse_payload(payload: Mapping[str, Any]) -> list[Event]:
    if "Records" in payload:
        records = as_list(payload["Records"], "Records")
        return [_parse_record(record, f"Records[{i}]") for i, record in enumerate(records)]
    if "detail-type" in payload:
        if _cloudtrail.is_eventbridge(payload):
            return [_cloudtrail.parse_eventbridge(payload)]
        return [_eventbridge.parse_event(payload)]
    if _apigateway.is_v2(payload):
        return [_apigateway.parse_v2(payload)]
    if _apigateway.is_v1(payload):
        return [_apigateway.parse_v1(payload)]
    if "awslogs" in payload:
        return [_cloudwatch_logs.parse_payload(payload)]
    if _cognito.is_sync(payload):
        return [_cognito.parse_sync(payload)]
    if _cognito.is_user_pool(payload):
        return [_cognito.parse_user_pool(payload)]
    if _cloudtrail.is_record(payload):
        return [_cloudtrail.parse_record(payload, "")]
    raise SerializationError(
        "payload: not a Lambda event this module understands: expected 'Records' "
        "(S3, DynamoDB Streams, SNS, SQS, Kinesis, CloudTrail), an EventBridge event "
        "('detail-type' and 'source'), an API Gateway proxy request ('httpMethod', or "
        "'version' 2.0 and 'routeKey'), CloudWatch Logs ('awslogs'), a Cognito trigger "
        "('eventType': 'SyncTrigger', or 'triggerSource' and 'userPoolId') or a CloudTrail "
        "record ('eventSource', 'eventName', 'eventTime')"
    )


def _parse_record(value: object, path: str) -> Event:
    record = as_object(value, path)
    source = record.get("eventSource", record.get("EventSource"))
    if _cloudtrail.is_record(record):
        return _cloudtrail.parse_record(record, path)
    entry = _BY_EVENT_SOURCE.get(source) if isinstance(source, str) else None
    if entry is None:
        for key, event_source in _BY_SHAPE:
            if key in record:
                entry = _BY_EVENT_SOURCE[event_source]
                break
    if entry is None:
        if source is None:
            raise SerializationError(
                f"{path}: cannot tell which service sent this record: it has no eventSource "
                "and none of the keys s3, dynamodb, Sns, kinesis or body"
            )
        raise SerializationError(
            f"{path}.eventSource: unsupported event source {source!r:.60}; "
            f"supported: {', '.join(_BY_EVENT_SOURCE)} and EventBridge events"
        )
    return entry[1](record, path)


def to_lambda_event(
    events: Sequence[Event],
    *,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """Render typed events as the AWS Lambda payload they correspond to.

    The inverse of :func:`from_lambda_event`: S3, DynamoDB, SNS, SQS and
    Kinesis events become ``{"Records": [...]}``, one record per event; a
    :class:`~eventbus.ScheduledEvent` or :class:`EventBridgeEvent` becomes a
    single EventBridge event; an :class:`~eventbus.http.HttpRequest` the
    API Gateway proxy payload of its ``version``; a
    :class:`CloudWatchLogsEvent` an ``awslogs`` payload; a Cognito event its
    trigger payload (``response`` included); one :class:`ApiCall` the
    record or EventBridge event it came as, several a CloudTrail log file's
    ``{"Records": [...]}``. What is rendered validates against the
    Powertools parser models whenever the payload it was read from does. For a payload ``p``,
    ``from_lambda_event(to_lambda_event(from_lambda_event(p)))`` equals
    ``from_lambda_event(p)``.

    AWS-only details come from each event's ``source`` when it is an ARN of
    the service (as :func:`from_lambda_event` sets it); otherwise ARNs are
    built from the typed fields with *region* and *account*. Fields that no
    event keeps (request ids, signatures, ``requestParameters``) are filled
    with fixed, deterministic placeholders.

    Args:
        events: events of a single service, in record order.
        region: the AWS region written when an event's source names none.
        account: the AWS account id written when an event's source names none.

    Returns:
        The payload, a JSON-serializable dict; ``{"Records": []}`` for no events.

    Raises:
        SerializationError: the events mix services, there is more than one
            event of a service that sends one event per invocation
            (EventBridge, API Gateway, CloudWatch Logs, Cognito), an event
            type has no Lambda payload form, or a
            field holds a value the payload cannot carry (the message names
            ``events[i]`` and the field).

    .. versionadded:: 0.1
    """
    if isinstance(events, Event):
        raise SerializationError(
            "to_lambda_event() takes a sequence of events; wrap a single event in a list"
        )
    options = RenderOptions(region=region, account=account)
    items = list(events)
    services = [_service_of(event, f"events[{i}]") for i, event in enumerate(items)]
    if not items:
        return {"Records": []}
    first = services[0]
    for i, service in enumerate(services):
        if service != first:
            raise SerializationError(
                f"events[{i}]: a Lambda payload carries one service's records, but events[0] "
                f"({type(items[0]).__name__}) comes from {first} and events[{i}] "
                f"({type(items[i]).__name__}) from {service}; render each service separately"
            )
    if first in SINGLE_EVENT_SERVICES:
        if len(items) != 1:
            raise SerializationError(
                f"events: {first} invokes a function with one event at a time; got "
                f"{len(items)} events, render them one by one"
            )
        return _render(items[0], "events[0]", options)
    if first == "CloudTrail":
        # One record: the bare record, or the EventBridge event it came in;
        # several: a CloudTrail log file's {"Records": [...]}.
        if len(items) == 1:
            return _render(items[0], "events[0]", options)
        return {
            "Records": [
                _cloudtrail.render_record(cast("ApiCall", event), f"events[{i}]")
                for i, event in enumerate(items)
            ]
        }
    return {"Records": [_render(event, f"events[{i}]", options) for i, event in enumerate(items)]}


def is_single_event(event: Event) -> bool:
    """Whether Lambda receives *event* alone, never batched with others.

    EventBridge events (a CloudTrail record that came through EventBridge
    too), API Gateway requests, CloudWatch Logs deliveries and Cognito
    triggers each make one invocation.
    """
    for cls, service in _SERVICE_OF:
        if isinstance(event, cls):
            if isinstance(event, ApiCall):
                return event.detail_type is not None
            return service in SINGLE_EVENT_SERVICES
    return False


def _service_of(event: object, path: str) -> str:
    for cls, service in _SERVICE_OF:
        if isinstance(event, cls):
            return service
    if isinstance(event, Event):
        raise SerializationError(
            f"{path}: {type(event).__name__} has no AWS Lambda payload form; supported: "
            "ObjectCreated, ObjectRemoved, TableChange, TopicMessage, QueueMessage, "
            "LogRecord, ScheduledEvent, EventBridgeEvent, HttpRequest, CloudWatchLogsEvent, "
            "ApiCall, CognitoSync and the UserPoolTrigger classes"
        )
    raise SerializationError(f"{path}: expected an Event, got {type(event).__name__}")


def _render(event: Event, path: str, options: RenderOptions) -> dict[str, Any]:
    try:
        if isinstance(event, ScheduledEvent | EventBridgeEvent):
            return _eventbridge.render_event(event, path, options)
        if isinstance(event, ObjectCreated | ObjectRemoved):
            return _s3.render_record(event, path, options)
        if isinstance(event, TableChange):
            return _dynamodb.render_record(event, path, options)
        if isinstance(event, TopicMessage):
            return _sns.render_record(event, path, options)
        if isinstance(event, QueueMessage):
            return _sqs.render_record(event, path, options)
        if isinstance(event, LogRecord):
            return _kinesis.render_record(event, path, options)
        if isinstance(event, HttpRequest):
            return _apigateway.render(event, path, options)
        if isinstance(event, CloudWatchLogsEvent):
            return _cloudwatch_logs.render_payload(event, path)
        if isinstance(event, ApiCall):
            if event.detail_type is None:
                return _cloudtrail.render_record(event, path)
            return _cloudtrail.render(event, path)
        if isinstance(event, CognitoSync):
            return _cognito.render_sync(event, path)
        if isinstance(event, UserPoolTrigger):
            return _cognito.render_user_pool(event, path)
    except (TypeError, AttributeError, ValueError, OverflowError) as exc:
        if isinstance(exc, SerializationError):
            raise
        # A field of the wrong type (the events are not validated on creation).
        raise SerializationError(f"{path}: cannot render {type(event).__name__}: {exc}") from exc
    raise SerializationError(f"{path}: {type(event).__name__} has no AWS Lambda payload form")
