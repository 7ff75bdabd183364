"""Schedule events (the EventBridge Scheduler model)."""

from __future__ import annotations

from datetime import datetime

import attrs

from .._events import Event

__all__ = ["ScheduledEvent"]


@attrs.frozen
class ScheduledEvent(Event, type_name="eventbus.ScheduledEvent"):
    """A schedule fired (an EventBridge ``Scheduled Event``).

    Attributes:
        rule: the schedule's name.
        scheduled_time: when the fire was due (aware, UTC); ``time`` is when
            it was actually emitted, which can be later after a pause.
    """

    rule: str
    scheduled_time: datetime
