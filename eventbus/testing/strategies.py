"""Hypothesis strategies for the built-in events (needs ``hypothesis``, a test dependency).

A property-based test of a handler is then one decorator away::

    from hypothesis import given
    from eventbus.testing import strategies

    @given(strategies.object_created(bucket="uploads"))
    def test_every_upload_gets_a_thumbnail_key(event):
        assert thumbnail_key(event).startswith("thumbnails/")

Every generated event is valid for its service and is exactly what
:func:`eventbus.aws.from_lambda_event` reads from the payload
:func:`eventbus.aws.to_lambda_event` renders for it, so the same values feed
eventbus handlers and, through :func:`lambda_payloads`, Lambda handlers.

Each strategy takes keyword arguments that fix a field, either to a value
or to a strategy of values (``object_created(key=st.just("a.jpg"))``).

.. versionadded:: 0.1
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from .._events import Event
from ..aws._common import DEFAULT_ACCOUNT, DEFAULT_REGION
from ..aws._events import EventBridgeEvent, QueueMessage
from ..aws._kinesis import event_id as kinesis_event_id
from ..aws._lambda import to_lambda_event
from ..aws._s3 import notification_id
from ..sources.logs import LogRecord
from ..sources.objects import ObjectCreated, ObjectRemoved
from ..sources.schedules import ScheduledEvent
from ..sources.tables import TableChange, TableOperation
from ..sources.topics import TopicMessage

__all__ = [
    "attribute_values",
    "bucket_names",
    "eventbridge_events",
    "lambda_payloads",
    "log_records",
    "object_created",
    "object_removed",
    "queue_messages",
    "s3_keys",
    "scheduled_events",
    "table_changes",
    "topic_messages",
]

T = TypeVar("T")

_MIN_TIME: Final = datetime(2000, 1, 1)
_MAX_TIME: Final = datetime(2099, 12, 31)
_NAME_CHARS: Final = string.ascii_letters + string.digits + "_-"
_KEY_SAFE: Final = string.ascii_letters + string.digits + "!-_.*'() +=&@,;$"
_RESERVED_SEGMENTS: Final = frozenset({".", ".."})


def _fixed(value: T | SearchStrategy[T] | None, default: SearchStrategy[T]) -> SearchStrategy[T]:
    """*value* as a strategy: the default when None, itself when a strategy, else ``just``."""
    if value is None:
        return default
    if isinstance(value, SearchStrategy):
        return value
    return st.just(value)


def _times(resolution: timedelta = timedelta(microseconds=1)) -> SearchStrategy[datetime]:
    """Aware UTC datetimes between 2000 and 2099, cut to *resolution*."""
    step = resolution // timedelta(microseconds=1)

    def cut(value: datetime) -> datetime:
        return value.replace(microsecond=value.microsecond - value.microsecond % step)

    return st.datetimes(_MIN_TIME, _MAX_TIME, timezones=st.just(UTC)).map(cut)


def _names(max_size: int = 40) -> SearchStrategy[str]:
    """Resource names (queues, topics, tables, streams, rules): ``[A-Za-z0-9_-]+``."""
    return st.text(_NAME_CHARS, min_size=1, max_size=max_size)


def _uuid_hex() -> SearchStrategy[str]:
    return st.uuids().map(lambda u: u.hex)


# -- object stores (S3) -------------------------------------------------------------


def bucket_names() -> SearchStrategy[str]:
    """Valid S3 bucket names: 3-63 lower-case letters, digits and hyphens, starting and ending alphanumeric."""
    return st.from_regex(r"\A[a-z0-9][a-z0-9-]{1,61}[a-z0-9]\Z").filter(
        lambda name: not name.startswith("xn--")
    )


def _key_segment() -> SearchStrategy[str]:
    chars = st.one_of(
        st.sampled_from(_KEY_SAFE),
        st.characters(codec="utf-8", categories=("L", "N")),
    )
    return st.text(chars, min_size=1, max_size=24).filter(
        lambda s: s not in _RESERVED_SEGMENTS and not s.startswith(".~eventbus-")
    )


def s3_keys() -> SearchStrategy[str]:
    """Object keys valid for S3 and for :class:`~eventbus.ObjectStore` alike.

    ``/``-separated segments of letters, digits, spaces and S3's safe
    punctuation (``!-_.*'()``, and ``+=&@,;$`` that need URL-encoding),
    including non-ASCII letters: no empty, ``.`` or ``..`` segment, no
    leading ``/``, no control characters or backslashes, at most 1024 bytes.
    """
    return (
        st.lists(_key_segment(), min_size=1, max_size=5)
        .map("/".join)
        .filter(lambda key: len(key.encode()) <= 1024 and key.split("/", 1)[0] != ".eventbus")
    )


def _sequencers() -> SearchStrategy[str | None]:
    return st.none() | st.text("0123456789ABCDEF", min_size=16, max_size=18)


def _version_ids() -> SearchStrategy[str | None]:
    return st.none() | st.text(string.ascii_letters + string.digits + "._", min_size=8, max_size=32)


@st.composite
def _object_created(
    draw: st.DrawFn,
    bucket: SearchStrategy[str],
    key: SearchStrategy[str],
    size: SearchStrategy[int],
    reason: SearchStrategy[str],
) -> ObjectCreated:
    bucket_name = draw(bucket)
    object_key = draw(key)
    version_id = draw(_version_ids())
    sequencer = draw(_sequencers())
    why = draw(reason)
    time = draw(_times())
    return ObjectCreated(
        bucket_name,
        object_key,
        draw(size),
        draw(st.binary(min_size=16, max_size=16)).hex(),
        version_id,
        sequencer=sequencer,
        reason=why,
        id=notification_id(
            f"ObjectCreated:{why}", bucket_name, object_key, version_id, sequencer, time
        ),
        time=time,
        source=f"arn:aws:s3:::{bucket_name}",
    )


def object_created(
    *,
    bucket: str | SearchStrategy[str] | None = None,
    key: str | SearchStrategy[str] | None = None,
    size: int | SearchStrategy[int] | None = None,
    reason: str | SearchStrategy[str] | None = None,
) -> SearchStrategy[ObjectCreated]:
    """:class:`~eventbus.ObjectCreated` events: valid bucket names and keys (:func:`s3_keys`).

    ``size`` is up to 5 TiB, ``etag`` 32 hex digits, ``reason`` one of
    ``Put``, ``Post``, ``Copy``, ``CompleteMultipartUpload``; ``version_id``
    and ``sequencer`` are sometimes set. ``metadata`` and ``content_type``
    stay empty: S3 notifications do not carry them.
    """
    return _object_created(
        _fixed(bucket, bucket_names()),
        _fixed(key, s3_keys()),
        _fixed(size, st.integers(0, 5 * 1024**4)),
        _fixed(reason, st.sampled_from(("Put", "Post", "Copy", "CompleteMultipartUpload"))),
    )


@st.composite
def _object_removed(
    draw: st.DrawFn,
    bucket: SearchStrategy[str],
    key: SearchStrategy[str],
    reason: SearchStrategy[str],
) -> ObjectRemoved:
    bucket_name = draw(bucket)
    object_key = draw(key)
    version_id = draw(_version_ids())
    sequencer = draw(_sequencers())
    why = draw(reason)
    time = draw(_times())
    return ObjectRemoved(
        bucket_name,
        object_key,
        version_id,
        sequencer=sequencer,
        reason=why,
        id=notification_id(
            f"ObjectRemoved:{why}", bucket_name, object_key, version_id, sequencer, time
        ),
        time=time,
        source=f"arn:aws:s3:::{bucket_name}",
    )


def object_removed(
    *,
    bucket: str | SearchStrategy[str] | None = None,
    key: str | SearchStrategy[str] | None = None,
    reason: str | SearchStrategy[str] | None = None,
) -> SearchStrategy[ObjectRemoved]:
    """:class:`~eventbus.ObjectRemoved` events (``reason``: ``Delete`` or ``DeleteMarkerCreated``)."""
    return _object_removed(
        _fixed(bucket, bucket_names()),
        _fixed(key, s3_keys()),
        _fixed(reason, st.sampled_from(("Delete", "DeleteMarkerCreated"))),
    )


# -- tables (DynamoDB Streams) --------------------------------------------------------


def _numbers() -> SearchStrategy[Decimal]:
    return st.one_of(
        st.integers(-(10**15), 10**15).map(Decimal),
        st.decimals(
            min_value=-(10**9), max_value=10**9, places=4, allow_nan=False, allow_infinity=False
        ),
    )


def _plain_text() -> SearchStrategy[str]:
    return st.text(st.characters(codec="utf-8"), max_size=20)


def attribute_values() -> SearchStrategy[Any]:
    """Plain values DynamoDB can store, as :func:`eventbus.aws.from_attribute_value` returns them.

    ``str``, ``Decimal``, ``bool``, ``None``, ``bytes``, non-empty sets of
    ``str`` / ``Decimal`` / ``bytes``, and lists and string-keyed dicts of
    these, nested a few levels.
    """
    scalars = st.one_of(
        _plain_text(),
        _numbers(),
        st.booleans(),
        st.none(),
        st.binary(max_size=16),
        st.sets(_plain_text(), min_size=1, max_size=4),
        st.sets(_numbers(), min_size=1, max_size=4),
        st.sets(st.binary(max_size=8), min_size=1, max_size=4),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(_plain_text(), children, max_size=4),
        ),
        max_leaves=12,
    )


def _key_values() -> SearchStrategy[Any]:
    """Key attributes are strings, numbers or binary, never empty."""
    return st.one_of(
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=20),
        _numbers(),
        st.binary(min_size=1, max_size=16),
    )


_VIEWS: Final = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")


@st.composite
def _table_change(
    draw: st.DrawFn,
    table: SearchStrategy[str],
    op: SearchStrategy[TableOperation],
    key_names: Sequence[str],
    view: str,
) -> TableChange:
    name = draw(table)
    operation = draw(op)
    keys = {key: draw(_key_values()) for key in key_names}
    others = st.dictionaries(
        _names(16).filter(lambda n: n not in keys), attribute_values(), max_size=5
    )
    new_image = None if operation == "REMOVE" else {**draw(others), **keys}
    old_image = None if operation == "INSERT" else {**draw(others), **keys}
    if view in ("KEYS_ONLY", "OLD_IMAGE"):
        new_image = None
    if view in ("KEYS_ONLY", "NEW_IMAGE"):
        old_image = None
    return TableChange(
        name,
        operation,
        keys,
        new_image,
        old_image,
        draw(st.integers(0, 10**21)),
        expired=operation == "REMOVE" and draw(st.booleans()),
        id=draw(_uuid_hex()),
        time=draw(_times(timedelta(seconds=1))),
        source=(
            f"arn:aws:dynamodb:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:table/{name}"
            "/stream/2024-01-01T00:00:00.000"
        ),
    )


def table_changes(
    *,
    table: str | SearchStrategy[str] | None = None,
    op: TableOperation | SearchStrategy[TableOperation] | None = None,
    key_names: Sequence[str] = ("id",),
    view: str = "NEW_AND_OLD_IMAGES",
) -> SearchStrategy[TableChange]:
    """:class:`~eventbus.TableChange` events whose images fit their operation.

    An ``INSERT`` has only a new image, a ``REMOVE`` only an old one, a
    ``MODIFY`` both; every image holds the change's keys. ``view`` trims the
    images as a stream with that ``StreamViewType`` would (``KEYS_ONLY``,
    ``NEW_IMAGE``, ``OLD_IMAGE``, ``NEW_AND_OLD_IMAGES``). Values are
    :func:`attribute_values`; key values are strings, numbers or bytes.
    Only removals may be TTL expiries (``expired=True``).

    Raises:
        ValueError: *view* or *key_names* is invalid.
    """
    if view not in _VIEWS:
        raise ValueError(f"view must be one of {', '.join(_VIEWS)}, got {view!r}")
    if isinstance(key_names, str) or not key_names or len(set(key_names)) != len(key_names):
        raise ValueError(
            f"key_names must be a non-empty sequence of distinct names, got {key_names!r}"
        )
    return _table_change(
        _fixed(table, _names()),
        _fixed(op, st.sampled_from(("INSERT", "MODIFY", "REMOVE"))),
        tuple(key_names),
        view,
    )


# -- topics (SNS) ----------------------------------------------------------------------


def _attribute_names() -> SearchStrategy[str]:
    """SNS message attribute names: ``[A-Za-z0-9_-]`` runs joined by single dots, not ``AWS.``/``Amazon.``."""
    return (
        st.lists(st.text(_NAME_CHARS, min_size=1, max_size=10), min_size=1, max_size=3)
        .map(".".join)
        .filter(lambda n: not n.lower().startswith(("aws.", "amazon.")))
    )


def _sns_numbers() -> SearchStrategy[int | float]:
    """Numbers SNS accepts: within +-10^9, at most five decimal places."""
    return st.one_of(
        st.integers(-(10**9), 10**9),
        st.integers(-(10**14), 10**14).map(lambda n: n / 10**5),
    )


def _sns_attribute_values() -> SearchStrategy[Any]:
    text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=30)
    array_items = st.one_of(text, _sns_numbers(), st.booleans(), st.none())
    return st.one_of(
        text,
        _sns_numbers(),
        st.lists(array_items, max_size=5),
        st.binary(min_size=1, max_size=16),
    )


def _subjects() -> SearchStrategy[str | None]:
    printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
    return st.none() | st.text(printable, min_size=1, max_size=100).filter(
        lambda s: not s[0].isspace()
    )


@st.composite
def _topic_message(
    draw: st.DrawFn,
    topic: SearchStrategy[str],
    message: SearchStrategy[str],
    attributes: SearchStrategy[dict[str, Any]],
) -> TopicMessage:
    name = draw(topic)
    return TopicMessage(
        name,
        draw(message),
        draw(attributes),
        draw(_subjects()),
        id=str(draw(st.uuids())),
        time=draw(_times(timedelta(milliseconds=1))),
        source=f"arn:aws:sns:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:{name}",
    )


def topic_messages(
    *,
    topic: str | SearchStrategy[str] | None = None,
    message: str | SearchStrategy[str] | None = None,
    attributes: dict[str, Any] | SearchStrategy[dict[str, Any]] | None = None,
) -> SearchStrategy[TopicMessage]:
    """:class:`~eventbus.TopicMessage` events with SNS-valid message attributes.

    At most 10 attributes; names of letters, digits, ``_``, ``-`` and
    single inner dots, never starting with ``AWS.`` or ``Amazon.``; values
    are non-empty strings, numbers within +-10^9 with up to five decimals,
    arrays (``String.Array``) or non-empty bytes (``Binary``). Messages are
    non-empty; subjects, when present, are printable ASCII of up to 100
    characters.
    """
    default_attributes = st.dictionaries(_attribute_names(), _sns_attribute_values(), max_size=10)
    return _topic_message(
        _fixed(topic, _names()),
        _fixed(message, st.text(st.characters(codec="utf-8"), min_size=1, max_size=200)),
        _fixed(attributes, default_attributes),
    )


# -- logs (Kinesis) --------------------------------------------------------------------


@st.composite
def _log_batch(
    draw: st.DrawFn,
    log: SearchStrategy[str],
    partitions: int,
    min_size: int,
    max_size: int,
) -> list[LogRecord]:
    stream = draw(log)
    keys = draw(st.lists(_names(12), min_size=1, max_size=6, unique=True))
    shard_of = {key: draw(st.integers(0, partitions - 1)) for key in keys}
    picks = draw(st.lists(st.sampled_from(keys), min_size=min_size, max_size=max_size))
    sequence: dict[int, int] = {}
    arrival = draw(_times(timedelta(milliseconds=1)))
    source = f"arn:aws:kinesis:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:stream/{stream}"
    records: list[LogRecord] = []
    for key in picks:
        shard = shard_of[key]
        if shard in sequence:
            number = sequence[shard] + draw(st.integers(1, 10**6))
        else:
            number = draw(st.integers(0, 10**30))
        sequence[shard] = number
        arrival += timedelta(milliseconds=draw(st.integers(0, 1000)))
        records.append(
            LogRecord(
                stream,
                key,
                number,
                draw(st.binary(max_size=64)),
                shard,
                id=kinesis_event_id(shard, number),
                time=arrival,
                source=source,
            )
        )
    return records


def log_records(
    *,
    log: str | SearchStrategy[str] | None = None,
    partitions: int = 4,
    min_size: int = 1,
    max_size: int = 10,
) -> SearchStrategy[list[LogRecord]]:
    """Batches of :class:`~eventbus.LogRecord`\\ s from one log, as a stream consumer receives them.

    Each partition key always lands in the same partition; within a
    partition, sequence numbers strictly increase in batch order (with
    gaps, as Kinesis's do); arrival times never go backwards. Data is up
    to 64 arbitrary bytes.

    Args:
        log: the log (stream) name.
        partitions: how many partitions (shards) records spread over.
        min_size, max_size: bounds on the batch length.

    Raises:
        ValueError: a bound is out of range.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions!r}")
    if not 0 <= min_size <= max_size:
        raise ValueError(f"need 0 <= min_size <= max_size, got {min_size!r} and {max_size!r}")
    return _log_batch(_fixed(log, _names()), partitions, min_size, max_size)


# -- schedules (EventBridge) ---------------------------------------------------------


@st.composite
def _scheduled_event(draw: st.DrawFn, rule: SearchStrategy[str]) -> ScheduledEvent:
    name = draw(rule)
    fired = draw(_times(timedelta(seconds=1)))
    return ScheduledEvent(
        name,
        fired,
        id=str(draw(st.uuids())),
        time=fired,
        source=f"arn:aws:events:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:rule/{name}",
    )


def scheduled_events(
    *, rule: str | SearchStrategy[str] | None = None
) -> SearchStrategy[ScheduledEvent]:
    """:class:`~eventbus.ScheduledEvent`\\ s fired on whole seconds (rule names of up to 64 characters)."""
    rules = st.text(_NAME_CHARS + ".", min_size=1, max_size=64)
    return _scheduled_event(_fixed(rule, rules))


# -- eventbus.aws events ---------------------------------------------------------------


@st.composite
def _queue_message(
    draw: st.DrawFn, queue: SearchStrategy[str], body: SearchStrategy[str]
) -> QueueMessage:
    name = draw(queue)
    sent = draw(_times(timedelta(milliseconds=1)))
    millis = str((sent - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1))
    attributes = {
        "ApproximateReceiveCount": str(draw(st.integers(1, 5))),
        "SentTimestamp": millis,
        "SenderId": DEFAULT_ACCOUNT,
        "ApproximateFirstReceiveTimestamp": millis,
    }
    message_attributes = draw(
        st.dictionaries(
            _attribute_names(),
            st.one_of(
                st.text(st.characters(codec="utf-8"), min_size=1, max_size=30),
                _sns_numbers(),
                st.binary(min_size=1, max_size=16),
            ),
            max_size=10,
        )
    )
    return QueueMessage(
        name,
        draw(body),
        attributes,
        message_attributes,
        "AQEB" + draw(st.binary(min_size=24, max_size=24)).hex(),
        id=str(draw(st.uuids())),
        time=sent,
        source=f"arn:aws:sqs:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:{name}",
    )


def queue_messages(
    *,
    queue: str | SearchStrategy[str] | None = None,
    body: str | SearchStrategy[str] | None = None,
) -> SearchStrategy[QueueMessage]:
    """:class:`~eventbus.aws.QueueMessage`\\ s as Lambda receives them from SQS.

    The standard attributes are set (``ApproximateReceiveCount``,
    ``SentTimestamp`` agreeing with ``time``, ``SenderId``,
    ``ApproximateFirstReceiveTimestamp``), plus up to 10 message attributes
    (strings, numbers, bytes).
    """
    return _queue_message(
        _fixed(queue, _names()),
        _fixed(body, st.text(st.characters(codec="utf-8"), max_size=200)),
    )


def _json_values() -> SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**53), 2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        _plain_text(),
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(_plain_text(), children, max_size=4)
        ),
        max_leaves=10,
    )


@st.composite
def _eventbridge_event(
    draw: st.DrawFn, source: SearchStrategy[str], detail_type: SearchStrategy[str]
) -> EventBridgeEvent:
    origin = draw(source)
    return EventBridgeEvent(
        draw(detail_type),
        draw(st.dictionaries(_plain_text(), _json_values(), max_size=5)),
        draw(st.lists(st.builds(lambda n: f"arn:aws:ec2:{DEFAULT_REGION}::{n}", _names(20)))),
        DEFAULT_ACCOUNT,
        DEFAULT_REGION,
        id=str(draw(st.uuids())),
        time=draw(_times(timedelta(seconds=1))),
        source=origin,
    )


def eventbridge_events(
    *,
    source: str | SearchStrategy[str] | None = None,
    detail_type: str | SearchStrategy[str] | None = None,
) -> SearchStrategy[EventBridgeEvent]:
    """:class:`~eventbus.aws.EventBridgeEvent`\\ s with a JSON ``detail`` (never scheduled events)."""
    sources = (
        st.lists(st.text(string.ascii_lowercase, min_size=1, max_size=10), min_size=2, max_size=3)
        .map(".".join)
        .filter(lambda s: s != "aws.events")
    )
    detail_types = st.text(string.ascii_letters + " -", min_size=1, max_size=40).filter(
        lambda t: t != "Scheduled Event"
    )
    return _eventbridge_event(_fixed(source, sources), _fixed(detail_type, detail_types))


# -- payloads ------------------------------------------------------------------------------


def lambda_payloads(
    events: SearchStrategy[Any],
    *,
    min_size: int = 1,
    max_size: int = 10,
) -> SearchStrategy[dict[str, Any]]:
    """AWS Lambda payloads (JSON-ready dicts) of the events *events* generates.

    *events* may generate single events of one service (batched here into
    lists of *min_size* to *max_size*; EventBridge events always go one per
    payload, as Lambda delivers them) or lists of events, such as
    :func:`log_records`::

        @given(strategies.lambda_payloads(strategies.object_created()))
        def test_handler_accepts_any_upload(payload):
            lambda_handler(payload, LambdaContext("thumbnails"))

    Raises:
        ValueError: the size bounds are out of range.
    """
    if min_size < 1 or max_size < min_size:
        raise ValueError(f"need 1 <= min_size <= max_size, got {min_size!r} and {max_size!r}")
    render: Callable[[Sequence[Event]], dict[str, Any]] = to_lambda_event

    def batch(first: Any) -> SearchStrategy[list[Event]]:
        if isinstance(first, list):
            return st.just(first)
        if isinstance(first, EventBridgeEvent | ScheduledEvent):
            return st.just([first])
        return st.lists(events, min_size=min_size - 1, max_size=max_size - 1).map(
            lambda rest: [first, *rest]
        )

    return events.flatmap(batch).map(render)
