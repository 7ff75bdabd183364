"""eventbus: an embeddable, typed anyio/asyncio event bus with the AWS Lambda event model."""

import contextlib as _contextlib

import attrs as _attrs

from ._batching import Batching as Batching
from ._batching import BatchResult as BatchResult
from ._batching import StartingPosition as StartingPosition
from ._batching import StreamOptions as StreamOptions
from ._blocking import BlockingBus as BlockingBus
from ._bus import Bus as Bus
from ._bus import Explanation as Explanation
from ._bus import Receipt as Receipt
from ._clock import Clock as Clock
from ._clock import RealClock as RealClock
from ._context import Context as Context
from ._cron import AtSchedule as AtSchedule
from ._cron import CronSchedule as CronSchedule
from ._cron import RateSchedule as RateSchedule
from ._cron import Schedule as Schedule
from ._cron import parse_schedule as parse_schedule
from ._deadletter import DeadLetter as DeadLetter
from ._deadletter import DeadLetterSink as DeadLetterSink
from ._deadletter import ErrorInfo as ErrorInfo
from ._deadletter import MemoryDeadLetters as MemoryDeadLetters
from ._deadletter import UndecodableEvent as UndecodableEvent
from ._deadletter_sqlite import SqliteDeadLetters as SqliteDeadLetters
from ._destinations import Destination as Destination
from ._destinations import InvocationRecord as InvocationRecord
from ._events import Event as Event
from ._exceptions import BatchItemFailure as BatchItemFailure
from ._exceptions import BusClosed as BusClosed
from ._exceptions import BusFull as BusFull
from ._exceptions import ConditionFailed as ConditionFailed
from ._exceptions import DuplicateSubscription as DuplicateSubscription
from ._exceptions import EventBusError as EventBusError
from ._exceptions import HandlerTimeout as HandlerTimeout
from ._exceptions import InvalidObjectKey as InvalidObjectKey
from ._exceptions import InvocationError as InvocationError
from ._exceptions import LoopDetected as LoopDetected
from ._exceptions import ObjectNotFound as ObjectNotFound
from ._exceptions import PatternError as PatternError
from ._exceptions import RecordExpired as RecordExpired
from ._exceptions import ScheduleError as ScheduleError
from ._exceptions import SerializationError as SerializationError
from ._exceptions import TransportError as TransportError
from ._exceptions import UnknownSubscription as UnknownSubscription
from ._flow import CircuitBreaker as CircuitBreaker
from ._flow import CircuitState as CircuitState
from ._flow import RateLimit as RateLimit
from ._idempotency import IdempotencyInProgress as IdempotencyInProgress
from ._idempotency import MemoryIdempotencyStore as MemoryIdempotencyStore
from ._idempotency import SqliteIdempotencyStore as SqliteIdempotencyStore
from ._idempotency import idempotent as idempotent
from ._metrics import SubscriptionMetrics as SubscriptionMetrics
from ._retry import DeadLetterCondition as DeadLetterCondition
from ._retry import ExponentialBackoff as ExponentialBackoff
from ._retry import GiveUp as GiveUp
from ._retry import NoRetry as NoRetry
from ._retry import RetryPolicy as RetryPolicy
from ._serialization import from_cloudevent as from_cloudevent
from ._serialization import to_cloudevent as to_cloudevent
from ._subscription import Handler as Handler
from ._subscription import Subscription as Subscription
from ._transport import Ack as Ack
from ._transport import Deliver as Deliver
from ._transport import MemoryTransport as MemoryTransport
from ._transport import Transport as Transport
from .http._request import HttpRequest as HttpRequest
from .patterns import Pattern as Pattern
from .patterns import PatternIndex as PatternIndex
from .sources.logs import Log as Log
from .sources.logs import LogData as LogData
from .sources.logs import LogRecord as LogRecord
from .sources.objects import ObjectCreated as ObjectCreated
from .sources.objects import ObjectInfo as ObjectInfo
from .sources.objects import ObjectListing as ObjectListing
from .sources.objects import ObjectRemoved as ObjectRemoved
from .sources.objects import ObjectStore as ObjectStore
from .sources.objects import ObjectWatcher as ObjectWatcher
from .sources.objects import StoredObject as StoredObject
from .sources.schedules import ScheduledEvent as ScheduledEvent
from .sources.schedules import ScheduleInfo as ScheduleInfo
from .sources.tables import StreamView as StreamView
from .sources.tables import Table as Table
from .sources.tables import TableChange as TableChange
from .sources.topics import Topic as Topic
from .sources.topics import TopicMessage as TopicMessage

__all__ = (
    "Ack",
    "AtSchedule",
    "BatchItemFailure",
    "BatchResult",
    "Batching",
    "BlockingBus",
    "Bus",
    "BusClosed",
    "BusFull",
    "CircuitBreaker",
    "CircuitState",
    "Clock",
    "ConditionFailed",
    "Context",
    "CronSchedule",
    "DeadLetter",
    "DeadLetterCondition",
    "DeadLetterSink",
    "Deliver",
    "Destination",
    "DuplicateSubscription",
    "ErrorInfo",
    "Event",
    "EventBusError",
    "Explanation",
    "ExponentialBackoff",
    "GiveUp",
    "Handler",
    "HandlerTimeout",
    "HttpRequest",
    "IdempotencyInProgress",
    "InvalidObjectKey",
    "InvocationError",
    "InvocationRecord",
    "Log",
    "LogData",
    "LogRecord",
    "LoopDetected",
    "MemoryDeadLetters",
    "MemoryIdempotencyStore",
    "MemoryTransport",
    "NoRetry",
    "ObjectCreated",
    "ObjectInfo",
    "ObjectListing",
    "ObjectNotFound",
    "ObjectRemoved",
    "ObjectStore",
    "ObjectWatcher",
    "Pattern",
    "PatternError",
    "PatternIndex",
    "RateLimit",
    "RateSchedule",
    "RealClock",
    "Receipt",
    "RecordExpired",
    "RetryPolicy",
    "Schedule",
    "ScheduleError",
    "ScheduleInfo",
    "ScheduledEvent",
    "SerializationError",
    "SqliteDeadLetters",
    "SqliteIdempotencyStore",
    "StartingPosition",
    "StoredObject",
    "StreamOptions",
    "StreamView",
    "Subscription",
    "SubscriptionMetrics",
    "Table",
    "TableChange",
    "Topic",
    "TopicMessage",
    "Transport",
    "TransportError",
    "UndecodableEvent",
    "UnknownSubscription",
    "from_cloudevent",
    "idempotent",
    "parse_schedule",
    "to_cloudevent",
)

__version__ = "0.1.0.dev0"


def _fixup_module_metadata() -> None:
    """Make public objects report ``eventbus`` as their module (cleaner reprs and tracebacks).

    attrs classes keep their defining module: their string annotations are
    resolved there (``typing.get_type_hints``) by patterns and the codec.
    """
    for name in __all__:
        obj = globals()[name]
        if _attrs.has(obj) if isinstance(obj, type) else False:
            continue
        if getattr(obj, "__module__", "").startswith("eventbus.") and hasattr(obj, "__qualname__"):
            with _contextlib.suppress(AttributeError, TypeError):
                obj.__module__ = "eventbus"


_fixup_module_metadata()
del _fixup_module_metadata

# The broker transports live in eventbus.bridges and need their extras
# (eventbus[nats], eventbus[redis]); importing eventbus never imports them.
# They are reachable from here too, loaded on first use.
_BRIDGES = {
    "NatsTransport": "eventbus.bridges.nats",
    "RedisStreamsTransport": "eventbus.bridges.redis",
}


def __getattr__(name: str) -> object:
    module = _BRIDGES.get(name)
    if module is None:
        raise AttributeError(f"module 'eventbus' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
