"""Stores for stateful subscriptions: ``subscribe(..., ordered_by=..., state=store)``.

:class:`MemoryState` keeps state in this process; :class:`SqliteState` in a
SQLite file that survives restarts and crashes. ``RedisState`` (in
``eventbus.bridges.redis``) shares one authoritative state between processes.
Each implements :class:`~eventbus.StateStore` (and the optional
:class:`~eventbus.StateKeys` and :class:`~eventbus.ReminderStore`).
"""

from .._state import Reminder as Reminder
from .._state import ReminderStore as ReminderStore
from .._state import StateChange as StateChange
from .._state import StateConflict as StateConflict
from .._state import StateError as StateError
from .._state import StateKeys as StateKeys
from .._state import StateStore as StateStore
from .._state import StoredState as StoredState
from ._memory import MemoryState as MemoryState
from ._sqlite import SqliteState as SqliteState

__all__ = (
    "MemoryState",
    "Reminder",
    "ReminderStore",
    "SqliteState",
    "StateChange",
    "StateConflict",
    "StateError",
    "StateKeys",
    "StateStore",
    "StoredState",
)
