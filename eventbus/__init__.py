"""eventbus: an embeddable, typed anyio/asyncio event bus with the AWS Lambda event model.

The package's face. Every public name is loaded on first use (PEP 562), so
``import eventbus`` stays cheap: the bus, the sources, AWS interop, the
schedule parser and the SQLite parts are imported only when a program
touches them. Type checkers read the explicit re-exports below.
"""

import contextlib as _contextlib
import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from ._attempts import Handler as Handler
    from ._batching import Batching as Batching
    from ._batching import BatchResult as BatchResult
    from ._batching import StartingPosition as StartingPosition
    from ._batching import StreamOptions as StreamOptions
    from ._blocking import BlockingBus as BlockingBus
    from ._bus import Bus as Bus
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
    from ._events import LogRecord as LogRecord
    from ._events import ScheduledEvent as ScheduledEvent
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
    from ._exceptions import MeteringError as MeteringError
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
    from ._hooks import Delivery as Delivery
    from ._hooks import DeliveryOutcome as DeliveryOutcome
    from ._hooks import Hook as Hook
    from ._idempotency import IdempotencyInProgress as IdempotencyInProgress
    from ._idempotency import MemoryIdempotencyStore as MemoryIdempotencyStore
    from ._idempotency import SqliteIdempotencyStore as SqliteIdempotencyStore
    from ._idempotency import idempotent as idempotent
    from ._metering import CostEstimate as CostEstimate
    from ._metering import LambdaPricing as LambdaPricing
    from ._metering import Metering as Metering
    from ._metering import Usage as Usage
    from ._metering import UsageReport as UsageReport
    from ._metrics import MetricsSnapshot as MetricsSnapshot
    from ._metrics import SubscriptionMetrics as SubscriptionMetrics
    from ._publishing import Explanation as Explanation
    from ._publishing import Receipt as Receipt
    from ._retry import DeadLetterCondition as DeadLetterCondition
    from ._retry import ExponentialBackoff as ExponentialBackoff
    from ._retry import GiveUp as GiveUp
    from ._retry import NoRetry as NoRetry
    from ._retry import RetryPolicy as RetryPolicy
    from ._scheduler import ScheduleInfo as ScheduleInfo
    from ._serialization import from_cloudevent as from_cloudevent
    from ._serialization import to_cloudevent as to_cloudevent
    from ._state import Reminder as Reminder
    from ._state import ReminderStore as ReminderStore
    from ._state import StateChange as StateChange
    from ._state import StateConflict as StateConflict
    from ._state import StateError as StateError
    from ._state import StateKeys as StateKeys
    from ._state import StateStore as StateStore
    from ._state import StoredState as StoredState
    from ._subscription import Subscription as Subscription
    from ._transport import Ack as Ack
    from ._transport import Deliver as Deliver
    from ._transport import MemoryTransport as MemoryTransport
    from ._transport import ReportsStatus as ReportsStatus
    from ._transport import SendsMany as SendsMany
    from ._transport import Transport as Transport
    from ._transport import TransportStatus as TransportStatus
    from .http._request import HttpRequest as HttpRequest
    from .patterns import Pattern as Pattern
    from .patterns import PatternIndex as PatternIndex
    from .patterns import PatternLimits as PatternLimits
    from .sources.logs import Log as Log
    from .sources.logs import LogData as LogData
    from .sources.objects import ObjectCreated as ObjectCreated
    from .sources.objects import ObjectInfo as ObjectInfo
    from .sources.objects import ObjectListing as ObjectListing
    from .sources.objects import ObjectRemoved as ObjectRemoved
    from .sources.objects import ObjectStore as ObjectStore
    from .sources.objects import ObjectWatcher as ObjectWatcher
    from .sources.objects import StoredObject as StoredObject
    from .sources.tables import StreamView as StreamView
    from .sources.tables import Table as Table
    from .sources.tables import TableChange as TableChange
    from .sources.topics import Topic as Topic
    from .sources.topics import TopicMessage as TopicMessage
    from .state import MemoryState as MemoryState
    from .state import SqliteState as SqliteState

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
    "CostEstimate",
    "CronSchedule",
    "DeadLetter",
    "DeadLetterCondition",
    "DeadLetterSink",
    "Deliver",
    "Delivery",
    "DeliveryOutcome",
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
    "Hook",
    "HttpRequest",
    "IdempotencyInProgress",
    "InvalidObjectKey",
    "InvocationError",
    "InvocationRecord",
    "LambdaPricing",
    "Log",
    "LogData",
    "LogRecord",
    "LoopDetected",
    "MemoryDeadLetters",
    "MemoryIdempotencyStore",
    "MemoryState",
    "MemoryTransport",
    "Metering",
    "MeteringError",
    "MetricsSnapshot",
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
    "PatternLimits",
    "RateLimit",
    "RateSchedule",
    "RealClock",
    "Receipt",
    "RecordExpired",
    "Reminder",
    "ReminderStore",
    "ReportsStatus",
    "RetryPolicy",
    "Schedule",
    "ScheduleError",
    "ScheduleInfo",
    "ScheduledEvent",
    "SendsMany",
    "SerializationError",
    "SqliteDeadLetters",
    "SqliteIdempotencyStore",
    "SqliteState",
    "StartingPosition",
    "StateChange",
    "StateConflict",
    "StateError",
    "StateKeys",
    "StateStore",
    "StoredObject",
    "StoredState",
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
    "TransportStatus",
    "UndecodableEvent",
    "UnknownSubscription",
    "Usage",
    "UsageReport",
    "from_cloudevent",
    "idempotent",
    "parse_schedule",
    "to_cloudevent",
)

__version__ = "0.1.0.dev0"

# Where each public name is defined; ``__getattr__`` imports it on first use.
_EXPORTS: dict[str, str] = {
    "CostEstimate": "._metering",
    "Delivery": "._hooks",
    "DeliveryOutcome": "._hooks",
    "Hook": "._hooks",
    "LambdaPricing": "._metering",
    "Metering": "._metering",
    "MeteringError": "._exceptions",
    "Usage": "._metering",
    "UsageReport": "._metering",
    "Ack": "._transport",
    "AtSchedule": "._cron",
    "BatchItemFailure": "._exceptions",
    "BatchResult": "._batching",
    "Batching": "._batching",
    "BlockingBus": "._blocking",
    "Bus": "._bus",
    "BusClosed": "._exceptions",
    "BusFull": "._exceptions",
    "CircuitBreaker": "._flow",
    "CircuitState": "._flow",
    "Clock": "._clock",
    "ConditionFailed": "._exceptions",
    "Context": "._context",
    "CronSchedule": "._cron",
    "DeadLetter": "._deadletter",
    "DeadLetterCondition": "._retry",
    "DeadLetterSink": "._deadletter",
    "Deliver": "._transport",
    "Destination": "._destinations",
    "DuplicateSubscription": "._exceptions",
    "ErrorInfo": "._deadletter",
    "Event": "._events",
    "EventBusError": "._exceptions",
    "Explanation": "._publishing",
    "ExponentialBackoff": "._retry",
    "GiveUp": "._retry",
    "Handler": "._attempts",
    "HandlerTimeout": "._exceptions",
    "HttpRequest": ".http._request",
    "IdempotencyInProgress": "._idempotency",
    "InvalidObjectKey": "._exceptions",
    "InvocationError": "._exceptions",
    "InvocationRecord": "._destinations",
    "Log": ".sources.logs",
    "LogData": ".sources.logs",
    "LogRecord": "._events",
    "LoopDetected": "._exceptions",
    "MemoryDeadLetters": "._deadletter",
    "MemoryIdempotencyStore": "._idempotency",
    "MemoryTransport": "._transport",
    "MetricsSnapshot": "._metrics",
    "NoRetry": "._retry",
    "ObjectCreated": ".sources.objects",
    "ObjectInfo": ".sources.objects",
    "ObjectListing": ".sources.objects",
    "ObjectNotFound": "._exceptions",
    "ObjectRemoved": ".sources.objects",
    "ObjectStore": ".sources.objects",
    "ObjectWatcher": ".sources.objects",
    "Pattern": ".patterns",
    "PatternError": "._exceptions",
    "PatternIndex": ".patterns",
    "PatternLimits": ".patterns",
    "RateLimit": "._flow",
    "RateSchedule": "._cron",
    "RealClock": "._clock",
    "Receipt": "._publishing",
    "RecordExpired": "._exceptions",
    "RetryPolicy": "._retry",
    "Schedule": "._cron",
    "ScheduleError": "._exceptions",
    "ScheduleInfo": "._scheduler",
    "ScheduledEvent": "._events",
    "SerializationError": "._exceptions",
    "SqliteDeadLetters": "._deadletter_sqlite",
    "SqliteIdempotencyStore": "._idempotency",
    "StartingPosition": "._batching",
    "StoredObject": ".sources.objects",
    "StreamOptions": "._batching",
    "StreamView": ".sources.tables",
    "Subscription": "._subscription",
    "SubscriptionMetrics": "._metrics",
    "Table": ".sources.tables",
    "TableChange": ".sources.tables",
    "Topic": ".sources.topics",
    "TopicMessage": ".sources.topics",
    "ReportsStatus": "._transport",
    "SendsMany": "._transport",
    "Transport": "._transport",
    "TransportStatus": "._transport",
    "TransportError": "._exceptions",
    "UndecodableEvent": "._deadletter",
    "UnknownSubscription": "._exceptions",
    "from_cloudevent": "._serialization",
    "idempotent": "._idempotency",
    "parse_schedule": "._cron",
    "to_cloudevent": "._serialization",
    "MemoryState": ".state",
    "Reminder": "._state",
    "ReminderStore": "._state",
    "SqliteState": ".state",
    "StateChange": "._state",
    "StateConflict": "._state",
    "StateError": "._state",
    "StateKeys": "._state",
    "StateStore": "._state",
    "StoredState": "._state",
}

# The broker transports live in eventbus.bridges and need their extras
# (eventbus[nats], eventbus[redis]); importing eventbus never imports them.
# They are reachable from here too, loaded on first use.
_BRIDGES = {
    "NatsTransport": "eventbus.bridges.nats",
    "RedisStreamsTransport": "eventbus.bridges.redis",
}


def _public_module(obj: object) -> None:
    """Make a public object report ``eventbus`` as its module (cleaner reprs and tracebacks).

    attrs classes keep their defining module: their string annotations are
    resolved there (``typing.get_type_hints``) by patterns and the codec.
    """
    if isinstance(obj, type) and hasattr(obj, "__attrs_attrs__"):
        return
    if getattr(obj, "__module__", "").startswith("eventbus.") and hasattr(obj, "__qualname__"):
        with _contextlib.suppress(AttributeError, TypeError):
            obj.__module__ = "eventbus"


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is not None:
        loaded = _importlib.import_module(module, __name__)
        # Load every public name of that module at once, fixing up each.
        for other, where in _EXPORTS.items():
            if where == module:
                value = getattr(loaded, other)
                _public_module(value)
                globals()[other] = value
        return globals()[name]
    bridge = _BRIDGES.get(name)
    if bridge is not None:
        return getattr(_importlib.import_module(bridge), name)
    raise AttributeError(f"module 'eventbus' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
