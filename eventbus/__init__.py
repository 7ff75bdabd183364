"""eventbus: an embeddable, typed anyio/asyncio event bus with the AWS Lambda event model."""

from ._events import Event as Event
from ._exceptions import BusClosed as BusClosed
from ._exceptions import BusFull as BusFull
from ._exceptions import DuplicateSubscription as DuplicateSubscription
from ._exceptions import EventBusError as EventBusError
from ._exceptions import HandlerTimeout as HandlerTimeout
from ._exceptions import InvocationError as InvocationError
from ._exceptions import PatternError as PatternError
from ._exceptions import ScheduleError as ScheduleError
from ._exceptions import SerializationError as SerializationError
from ._exceptions import UnknownSubscription as UnknownSubscription
from ._serialization import from_cloudevent as from_cloudevent
from ._serialization import to_cloudevent as to_cloudevent
from .sources.logs import LogRecord as LogRecord
from .sources.objects import ObjectCreated as ObjectCreated
from .sources.objects import ObjectRemoved as ObjectRemoved
from .sources.schedules import ScheduledEvent as ScheduledEvent
from .sources.tables import TableChange as TableChange
from .sources.topics import TopicMessage as TopicMessage

__all__ = (
    "BusClosed",
    "BusFull",
    "DuplicateSubscription",
    "Event",
    "EventBusError",
    "HandlerTimeout",
    "InvocationError",
    "LogRecord",
    "ObjectCreated",
    "ObjectRemoved",
    "PatternError",
    "ScheduleError",
    "ScheduledEvent",
    "SerializationError",
    "TableChange",
    "TopicMessage",
    "UnknownSubscription",
    "from_cloudevent",
    "to_cloudevent",
)

__version__ = "0.1.0.dev0"
