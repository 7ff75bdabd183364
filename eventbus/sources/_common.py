"""Helpers shared by the embedded sources: argument checks, sequencers, worker threads."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Final, TypeVar, final

import anyio
import anyio.to_thread

from .._bus import Bus
from .._exceptions import BusClosed

__all__ = ["Sequencer", "check_bus", "check_name", "ensure_running", "run_sync"]

T = TypeVar("T")

_NAME: Final = re.compile(r"[A-Za-z0-9_.\-]{1,255}")


def check_bus(owner: str, bus: object) -> Bus:
    """Return *bus* if it is a :class:`~eventbus.Bus`.

    Raises:
        TypeError: it is not (the message names *owner*, e.g. ``"Table"``).
    """
    if not isinstance(bus, Bus):
        raise TypeError(
            f"{owner}(bus, ...) needs an eventbus.Bus (the one inside 'async with Bus() as bus:'), "
            f"got {type(bus).__name__}"
        )
    return bus


def check_name(owner: str, what: str, value: object) -> str:
    """Check a bucket, table or topic name: 1-255 letters, digits, ``_``, ``-`` or ``.``, not only dots.

    Raises:
        TypeError: *value* is not a string.
        ValueError: it is empty, too long, or has other characters.
    """
    if not isinstance(value, str):
        raise TypeError(f"{owner}({what}=...) must be a string, got {type(value).__name__}")
    if not _NAME.fullmatch(value) or not value.strip("."):
        raise ValueError(
            f"{owner}({what}={value!r:.80}): a {what} is 1 to 255 characters from "
            "letters, digits, '_', '-' and '.' (not only dots)"
        )
    return value


def ensure_running(bus: Bus, owner: str) -> None:
    """Refuse to write when *bus* cannot publish, before anything is changed.

    Raises:
        BusClosed: the bus is not running (or is draining, and the caller is
            not one of its handlers).
    """
    if not bus.accepting:
        raise BusClosed(
            f"{owner}: the bus is not running, so the change could not be published; "
            "write inside 'async with Bus() as bus:' (nothing was changed)"
        )


async def run_sync(limiter: anyio.CapacityLimiter | None, fn: Callable[[], T]) -> T:
    """Run *fn* in a worker thread (never cancelled half-way), or inline when *limiter* is None.

    A source with an in-memory backend passes ``None``: its work is quick and
    thread hops would only cost time.
    """
    if limiter is None:
        return fn()
    return await anyio.to_thread.run_sync(fn, limiter=limiter)


@final
class Sequencer:
    """Increasing, fixed-width upper-case hex strings, like S3's ``sequencer``.

    Values follow the wall clock in nanoseconds but never repeat or go back
    within a process, so that a later event for a key compares greater (as
    a string, too) than an earlier one. A store that outlives the process
    stays increasing as long as the system clock does not jump back.
    """

    __slots__ = ("_last", "_lock")

    WIDTH: Final = 16

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def observe(self, value: str) -> None:
        """Make every later value greater than *value* (one seen in stored data)."""
        try:
            number = int(value, 16)
        except ValueError:
            return
        with self._lock:
            self._last = max(self._last, number)

    def next(self) -> str:
        """The next value."""
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return f"{self._last:0{self.WIDTH}X}"
