"""Dead letters: where an event goes when its handler cannot succeed.

Two sinks ship with the package. :class:`MemoryDeadLetters` (the default)
keeps letters in the process; :class:`SqliteDeadLetters` keeps them in an
SQLite file, so they survive a crash or restart. Both answer the same
questions -- :meth:`~SqliteDeadLetters.query` by subscription, condition,
error type and time range, :meth:`~SqliteDeadLetters.purge` with the same
filters -- and both :meth:`~SqliteDeadLetters.redrive` letters back to the
subscription each one failed in.
"""

from __future__ import annotations

import functools
import logging
import typing
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, final, runtime_checkable

import attrs

from ._events import Event
from ._exceptions import error_info
from ._retry import DeadLetterCondition
from ._settle import publish_to_tracked

if TYPE_CHECKING:
    from ._bus import Bus

__all__ = [
    "DeadLetter",
    "DeadLetterSink",
    "ErrorInfo",
    "MemoryDeadLetters",
    "UndecodableEvent",
]

logger = logging.getLogger("eventbus.deadletters")

T = TypeVar("T")

_CONDITIONS: Final = frozenset(typing.get_args(DeadLetterCondition))
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DELETE_BATCH: Final = 64  # redriven letters forgotten per transaction


@final
@attrs.frozen
class ErrorInfo:
    """A failure in AWS Lambda's error shape.

    Attributes:
        error_type: the exception's class name (``errorType``).
        error_message: ``str(exception)`` (``errorMessage``).
        stack_trace: the formatted traceback lines (``stackTrace``).
    """

    error_type: str
    error_message: str
    stack_trace: tuple[str, ...] = ()

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Describe *exc*."""
        info = error_info(exc)
        return cls(info["errorType"], info["errorMessage"], tuple(info["stackTrace"]))

    def to_dict(self) -> dict[str, Any]:
        """``{"errorType", "errorMessage", "stackTrace"}``, as Lambda reports errors."""
        return {
            "errorType": self.error_type,
            "errorMessage": self.error_message,
            "stackTrace": list(self.stack_trace),
        }


@final
@attrs.frozen
class DeadLetter:
    """An event that one subscription could not handle, and why.

    Attributes:
        event: the event, unchanged.
        subscription: the name of the subscription that failed it.
        error: the last failure, in Lambda's error shape.
        attempts: how many times the handler ran (0 when it never did).
        first_failure: when the first attempt failed (aware UTC).
        last_failure: when the last attempt failed (aware UTC).
        condition: why the bus gave up: ``RetriesExhausted``,
            ``EventAgeExceeded``, ``Timeout``, ``RecursiveLoop``, ``Shutdown``
            or ``NotRetryable``.
        id: this letter's own id.
        exception: the exception object itself, when the letter was made in
            this process (not stored by durable sinks; not compared).
    """

    event: Event
    subscription: str
    error: ErrorInfo
    attempts: int
    first_failure: datetime
    last_failure: datetime
    condition: DeadLetterCondition = "RetriesExhausted"
    id: str = attrs.field(factory=lambda: uuid.uuid4().hex)
    exception: BaseException | None = attrs.field(default=None, eq=False, repr=False)


@final
@attrs.frozen
class UndecodableEvent(Event, type_name="eventbus.UndecodableEvent"):
    """Stands in for an event that cannot be decoded in this process.

    :class:`SqliteDeadLetters` stores events as CloudEvents JSON and decodes
    them into their registered classes when it reads them. When the class is
    not imported (or no longer fits the stored data), the letter is still
    listed, counted and queryable, with this in place of the event; it is
    never redriven. Import the module that defines the event class and read
    the sink again to get the real event back.

    A broker transport also hands the bus one for each *poison* message --
    one that cannot be decoded at all (not JSON, not a CloudEvent, a field
    its class refuses, anything the decoder raised): the bus dead-letters it
    (condition ``NotRetryable``, error type ``SerializationError``) with the
    message's raw text in :attr:`document`, then acknowledges the message.

    The envelope (``id``, ``time``, ``source``, ...) is taken from the stored
    document where it can be.

    Attributes:
        event_type_name: the stored CloudEvents ``type``.
        document: the stored CloudEvents JSON text, unchanged.
        reason: why it could not be decoded.

    .. versionadded:: 0.1
    """

    event_type_name: str
    document: str
    reason: str


@runtime_checkable
class DeadLetterSink(Protocol):
    """**Protocol:** keeps the events the bus gave up on.

    ``put`` must store the letter durably enough for the sink's promise
    before returning; the bus counts the event as dead-lettered only then.
    A sink that raises from ``put`` is logged and the letter falls back to
    an in-memory sink, so no event is lost. A sink iterates over its letters
    (oldest first), has ``len()``, and ``redrive(bus)`` delivers them again,
    each to the subscription it failed in. The built-in sinks take more
    filters (``where=``, ``condition=``, ...); a custom sink needs only
    ``subscription=``.
    """

    async def put(self, letter: DeadLetter) -> None:
        """Store *letter*."""
        ...

    def __iter__(self) -> Iterator[DeadLetter]:
        """The letters, oldest first."""
        ...

    def __len__(self) -> int:
        """How many letters the sink holds."""
        ...

    async def redrive(self, bus: Bus, *, subscription: str | None = None) -> int:
        """Deliver letters again to their original subscriptions; return how many."""
        ...


# -- filters ---------------------------------------------------------------------------


@final
@attrs.frozen
class _Filter:
    """The selection shared by ``query``, ``purge`` and ``redrive``."""

    subscription: str | None = None
    condition: str | None = None
    error_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    where: Callable[[DeadLetter], bool] | None = None

    def matches_columns(self, letter: DeadLetter) -> bool:
        """Everything but ``where``."""
        if self.subscription is not None and letter.subscription != self.subscription:
            return False
        if self.condition is not None and letter.condition != self.condition:
            return False
        if self.error_type is not None and letter.error.error_type != self.error_type:
            return False
        if self.since is not None and letter.last_failure < self.since:
            return False
        return not (self.until is not None and letter.last_failure >= self.until)

    def matches(self, letter: DeadLetter) -> bool:
        """Every filter, ``where`` last."""
        return self.matches_columns(letter) and (self.where is None or bool(self.where(letter)))

    def sql(self) -> tuple[str, list[Any]]:
        """A ``WHERE`` clause (possibly ``1``) and its parameters, ``where`` excluded."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("subscription", self.subscription),
            ("condition", self.condition),
            ("error_type", self.error_type),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.since is not None:
            clauses.append("last_failure_us >= ?")
            params.append(_to_us(self.since))
        if self.until is not None:
            clauses.append("last_failure_us < ?")
            params.append(_to_us(self.until))
        return (" AND ".join(clauses) or "1"), params


def _make_filter(
    method: str,
    *,
    subscription: str | None,
    condition: DeadLetterCondition | None,
    error_type: str | None,
    since: datetime | None,
    until: datetime | None,
    where: Callable[[DeadLetter], bool] | None,
) -> _Filter:
    """Check the filter arguments of *method* and bundle them."""
    for option, value in (("subscription", subscription), ("error_type", error_type)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{method}({option}=...) takes a string, got {type(value).__name__}")
    if condition is not None and condition not in _CONDITIONS:
        raise ValueError(
            f"{method}(condition=...): {condition!r} is not a dead letter condition; "
            f"use one of {', '.join(sorted(_CONDITIONS))}"
        )
    for option, moment in (("since", since), ("until", until)):
        if moment is None:
            continue
        if not isinstance(moment, datetime):
            raise TypeError(
                f"{method}({option}=...) takes an aware datetime, got {type(moment).__name__}"
            )
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(
                f"{method}({option}=...) must be timezone-aware, e.g. datetime(..., tzinfo=UTC)"
            )
    if where is not None and not callable(where):
        raise TypeError(
            f"{method}(where=...) takes a predicate (letter) -> bool, got {type(where).__name__}"
        )
    return _Filter(subscription, condition, error_type, since, until, where)


def _redrivable(bus: Bus, letter: DeadLetter) -> bool:
    """Whether *letter* can go back to its subscription on *bus* (logs why not)."""
    if isinstance(letter.event, UndecodableEvent):
        logger.warning(
            "dead letter %s for subscription %r not redriven: its event (type %r) cannot be "
            "decoded (%s); import the module that defines it",
            letter.id,
            letter.subscription,
            letter.event.event_type_name,
            letter.event.reason,
        )
        return False
    if not bus.has_subscription(letter.subscription):
        logger.info(
            "dead letter %s not redriven: no subscription named %r on this bus",
            letter.id,
            letter.subscription,
        )
        return False
    types = bus.subscription(letter.subscription).event_types
    if not isinstance(letter.event, types):
        logger.warning(
            "dead letter %s not redriven: subscription %r no longer takes %s",
            letter.id,
            letter.subscription,
            type(letter.event).__name__,
        )
        return False
    return True


# -- in memory -------------------------------------------------------------------------


@final
class MemoryDeadLetters:
    """The default sink: dead letters kept in memory, in arrival order.

    Iterate over it (``list(bus.dead_letters)``), take ``len()``,
    :meth:`query` it, :meth:`purge` letters, and ``await sink.redrive(bus)``
    to deliver letters again to their original subscriptions. The letters
    are lost with the process; use :class:`SqliteDeadLetters` to keep them.

    Args:
        maxlen: keep at most this many letters; older ones are evicted,
            counted in :attr:`evicted` and logged. ``None`` (default): unbounded.

    Raises:
        ValueError: *maxlen* is not a positive int or ``None``.
    """

    __slots__ = ("_letters", "_redriving", "evicted", "maxlen")

    def __init__(self, *, maxlen: int | None = None) -> None:
        if maxlen is not None and (isinstance(maxlen, bool) or maxlen < 1):
            raise ValueError(f"MemoryDeadLetters(maxlen=...) must be >= 1 or None, got {maxlen!r}")
        self.maxlen = maxlen
        self.evicted = 0
        self._letters: dict[str, DeadLetter] = {}  # by id, in arrival order
        self._redriving: set[str] = set()  # letters whose redriven event has not settled

    async def put(self, letter: DeadLetter) -> None:
        """Keep *letter*, evicting the oldest one when full."""
        self.append(letter)

    def append(self, letter: DeadLetter) -> None:
        """Keep *letter* (synchronous form of :meth:`put`); a letter already kept is ignored."""
        if letter.id in self._letters:
            return
        self._letters[letter.id] = letter
        if self.maxlen is not None and len(self._letters) > self.maxlen:
            old = self._letters.pop(next(iter(self._letters)))
            self.evicted += 1
            logger.warning(
                "dead letter %s for subscription %r evicted: MemoryDeadLetters(maxlen=%d) is full",
                old.id,
                old.subscription,
                self.maxlen,
            )

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(tuple(self._letters.values()))

    def __len__(self) -> int:
        return len(self._letters)

    def __bool__(self) -> bool:
        return True

    def clear(self) -> None:
        """Forget every letter."""
        self._letters.clear()

    def remove(self, letter: DeadLetter) -> None:
        """Forget one letter (by identity of its ``id``); a letter not kept is ignored."""
        self._letters.pop(letter.id, None)

    def query(
        self,
        *,
        subscription: str | None = None,
        condition: DeadLetterCondition | None = None,
        error_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Callable[[DeadLetter], bool] | None = None,
        limit: int | None = None,
    ) -> list[DeadLetter]:
        """The letters that match every given filter, oldest first.

        Args:
            subscription: the subscription the event failed in.
            condition: why the bus gave up (``"Timeout"``, ...).
            error_type: the error's ``errorType``, e.g. ``"KeyError"``.
            since: letters whose ``last_failure`` is at or after this (aware).
            until: letters whose ``last_failure`` is before this (aware).
            where: a predicate ``(letter) -> bool``, applied last.
            limit: at most this many letters.

        Returns:
            The matching letters.

        Raises:
            TypeError, ValueError: a filter is invalid (the message says which).
            Exception: whatever *where* raises.
        """
        flt = _make_filter(
            "query",
            subscription=subscription,
            condition=condition,
            error_type=error_type,
            since=since,
            until=until,
            where=where,
        )
        _check_limit(limit)
        out: list[DeadLetter] = []
        for letter in tuple(self._letters.values()):
            if limit is not None and len(out) >= limit:
                break
            if flt.matches(letter):
                out.append(letter)
        return out

    async def purge(
        self,
        *,
        subscription: str | None = None,
        condition: DeadLetterCondition | None = None,
        error_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Callable[[DeadLetter], bool] | None = None,
    ) -> int:
        """Forget the letters that match every given filter (all of them when none is given).

        The filters are those of :meth:`query`.

        Returns:
            How many letters were forgotten.

        Raises:
            TypeError, ValueError: a filter is invalid; nothing is forgotten.
            Exception: whatever *where* raises; nothing is forgotten.
        """
        flt = _make_filter(
            "purge",
            subscription=subscription,
            condition=condition,
            error_type=error_type,
            since=since,
            until=until,
            where=where,
        )
        doomed = [letter.id for letter in tuple(self._letters.values()) if flt.matches(letter)]
        for letter_id in doomed:
            del self._letters[letter_id]
        return len(doomed)

    async def redrive(
        self,
        bus: Bus,
        *,
        subscription: str | None = None,
        where: Callable[[DeadLetter], bool] | None = None,
        condition: DeadLetterCondition | None = None,
        error_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Deliver letters again to the subscription each one failed in.

        Each event goes to its original subscription only
        (``bus.publish_to``); other subscriptions never see it. Each letter
        is removed once that subscription has *settled* the event again:
        handled it, or dead-lettered it (as a new letter). Until then the
        letter stays listed, and another redrive skips it. The filters are
        those of :meth:`query`. Letters that stay in the sink: those of a
        subscription the bus does not have, or whose event that subscription
        no longer takes.

        Args:
            bus: the running bus to deliver on.
            subscription, where, condition, error_type, since, until: which
                letters to redrive (default: all).

        Returns:
            How many letters were redriven.

        Raises:
            TypeError, ValueError: a filter is invalid.
            BusClosed: the bus is not running; the letters not yet accepted stay.
            Exception: whatever *where* raises; the letters not yet accepted stay.

        On cancellation, the letters accepted so far leave the sink as
        their events settle; the rest stay.

        .. versionchanged:: 0.2
           A letter is removed once its event has settled, not when it is
           accepted.
        """
        flt = _make_filter(
            "redrive",
            subscription=subscription,
            condition=condition,
            error_type=error_type,
            since=since,
            until=until,
            where=where,
        )
        moved = 0
        for letter in tuple(self._letters.values()):
            if not flt.matches(letter) or not _redrivable(bus, letter):
                continue
            if letter.id not in self._letters or letter.id in self._redriving:
                continue  # purged meanwhile, or its event is on its way already
            self._redriving.add(letter.id)
            try:
                await publish_to_tracked(
                    bus, letter.subscription, letter.event, functools.partial(self._settled, letter)
                )
            except BaseException:
                self._redriving.discard(letter.id)
                raise
            moved += 1
        if moved:
            logger.info("redrove %d dead letter(s); %d left", moved, len(self._letters))
        return moved

    def _settled(self, letter: DeadLetter) -> None:
        """The redriven event of *letter* was handled or dead-lettered again."""
        self._redriving.discard(letter.id)
        self._letters.pop(letter.id, None)

    def __repr__(self) -> str:
        return f"MemoryDeadLetters(<{len(self._letters)} letters>)"


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"query(limit=...) must be an int >= 0 or None, got {limit!r}")


def _to_us(moment: datetime) -> int:
    """Microseconds since the epoch (what the SQLite sink stores), without importing sqlite3."""
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
