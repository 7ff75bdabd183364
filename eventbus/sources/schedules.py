"""Schedule events: :class:`ScheduledEvent` and :class:`ScheduleInfo`.

The scheduler itself is part of the core (it serves ``Bus.schedule``); the
names stay importable from here for compatibility.
"""

from .._events import ScheduledEvent as ScheduledEvent
from .._scheduler import ScheduleInfo as ScheduleInfo
from .._scheduler import Scheduler as Scheduler

__all__ = ["ScheduleInfo", "ScheduledEvent", "Scheduler"]
