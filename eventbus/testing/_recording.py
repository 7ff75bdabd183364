"""Recording what a bus publishes: ``capture``, ``expect``, ``assert_published``.

Both ``capture`` and ``expect`` *tap* the bus: they add a subscription whose
``where`` predicate sees every event of its types as it is routed -- in the
publisher's task, before any handler runs -- records it and answers False,
so the tap never takes delivery. Taps therefore record events the moment
``publish`` routes them, add nothing to ``Receipt.subscriptions``, never
hold up ``bus.drain()``, and never dead-letter.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from types import FrameType, TracebackType
from typing import Any, Final, Generic, TypeVar, final, overload

import anyio

from .._bus import Bus
from .._deadletter import DeadLetter
from .._events import Event
from ._filters import EventFilter, Where, describe_event, summarize_types
from ._payload import Payload, payload

__all__ = [
    "EventRecorder",
    "Expectation",
    "assert_published",
    "capture",
    "expect",
    "expect_dead_letters",
]

E = TypeVar("E", bound=Event)

_TAP_PREFIX: Final = "eventbus.testing"
_MAX_LISTED: Final = 10
_tap_numbers = itertools.count(1)


# -- taps ----------------------------------------------------------------------------


def _called_by_explain() -> bool:
    """Whether the predicate is being run by ``Bus.explain`` (which publishes nothing)."""
    explain = Bus.explain.__code__
    frame: FrameType | None = sys._getframe(2)  # the caller of the tap
    for _ in range(3):
        if frame is None:
            return False
        if frame.f_code is explain:
            return True
        frame = frame.f_back
    return False


@final
class _Tap:
    """The ``where`` predicate of a tap subscription: records, and declines delivery."""

    __slots__ = ("active", "record")

    def __init__(self, record: Callable[[Event], None]) -> None:
        self.record = record
        self.active = True

    def __call__(self, event: Event) -> bool:
        if self.active and not _called_by_explain():
            self.record(event)
        return False


async def _tap_handler(event: Event) -> None:
    """A tap subscription's handler; the tap declines every event, so it never runs."""


def _add_tap(
    bus: Bus, kind: str, event_types: tuple[type[Event], ...], record: Callable[[Event], None]
) -> tuple[_Tap, str]:
    if not isinstance(bus, Bus):
        raise TypeError(
            f"expected an eventbus.Bus, got {type(bus).__name__}; pass the bus the code under "
            "test publishes on (the 'bus' fixture, or the one from 'async with Bus() as bus')"
        )
    tap = _Tap(record)
    name = f"{_TAP_PREFIX}.{kind}-{next(_tap_numbers)}"
    bus.subscribe(event_types, _tap_handler, name=name, where=tap)
    return tap, name


# -- capture -------------------------------------------------------------------------


@final
class EventRecorder(Generic[E]):
    """The events of some types that a bus published, in publish order; made by :func:`capture`.

    ``EventRecorder(bus, event_types, where=...)`` is the same as
    ``capture(bus, event_types, where=...)``.

    Events are recorded as ``publish`` routes them, before handlers run, so
    ``len(recorder)`` is up to date as soon as ``await bus.publish(...)``
    returns -- for follow-ups that handlers publish, after ``await
    bus.drain()``.

    Use it as a context manager to stop recording at the end of the block;
    the events recorded so far stay available.

    Attributes:
        events: the recorded events (a list you may read and slice).
        subscription: the name of the tap subscription on the bus.

    .. versionadded:: 0.1
    """

    __slots__ = ("_filter", "_tap", "events", "subscription")

    def __init__(
        self,
        bus: Bus,
        event_types: type[Event] | tuple[type[Event], ...] = Event,
        *,
        where: Where = None,
    ) -> None:
        self.events: list[E] = []
        self._filter = flt = EventFilter(event_types, where)
        self._tap, self.subscription = _add_tap(bus, "capture", flt.event_types, self._record)

    def _record(self, event: Event) -> None:
        if self._filter.mismatch(event) is None:
            self.events.append(event)  # type: ignore[arg-type]

    @property
    def recording(self) -> bool:
        """Whether new events are still recorded (False after :meth:`stop`)."""
        return self._tap.active

    def stop(self) -> None:
        """Stop recording; the events recorded so far are kept."""
        self._tap.active = False

    def clear(self) -> None:
        """Forget the events recorded so far (recording goes on)."""
        self.events.clear()

    def payloads(self) -> list[Payload]:
        """The recorded events without their envelopes, to compare with events you build.

        ::

            assert reports.payloads() == [DailyReport("2024-03-01", 1)]

        .. versionadded:: 0.2
        """
        return [payload(event) for event in self.events]

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[E]:
        return iter(list(self.events))

    def __getitem__(self, index: int) -> E:
        return self.events[index]

    def __enter__(self) -> EventRecorder[E]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "recording" if self.recording else "stopped"
        return f"<EventRecorder {self._filter.describe()} {state}, {len(self.events)} event(s)>"


@overload
def capture(bus: Bus, event_types: type[E], *, where: Where = None) -> EventRecorder[E]: ...
@overload
def capture(
    bus: Bus, event_types: tuple[type[Event], ...] = ..., *, where: Where = None
) -> EventRecorder[Event]: ...
@overload
def capture(bus: type[E], *, where: Where = None) -> EventRecorder[E]: ...
@overload
def capture(bus: tuple[type[Event], ...], *, where: Where = None) -> EventRecorder[Event]: ...
def capture(
    bus: Bus | type[Event] | tuple[type[Event], ...],
    event_types: type[Event] | tuple[type[Event], ...] | None = None,
    *,
    where: Where = None,
) -> EventRecorder[Any]:
    """Record the events of *event_types* (subclasses included) that *bus* publishes from now on.

    ::

        shipped = capture(bus, OrderShipped, where={"carrier": ["ups"]})
        await bus.publish(OrderPlaced("o-1"))
        await bus.drain()
        assert [e.order_id for e in shipped] == ["o-1"]

    Args:
        bus: the bus to watch; it may be started or not yet.
        event_types: an event class or a tuple of them (default: every event).
        where: only record events matching this EventBridge-style pattern
            or predicate, as ``Bus.subscribe(where=...)`` takes, or with the
            payload of this example event (envelope ignored).

    Returns:
        An :class:`EventRecorder`; ``with capture(...) as recorder:`` stops
        recording at the end of the block.

    Raises:
        TypeError: *bus* is not a Bus, or *event_types* or *where* is not valid.
        PatternError: the pattern is invalid or names a field the classes lack.
        BusClosed: the bus is closing or closed.

    The recorder is a subscription named ``eventbus.testing.capture-<n>``
    (it shows in ``bus.metrics()``, always idle) whose ``where`` predicate
    records each event and declines it.

    Inside a test that uses the ``bus`` fixture, the bus may be left out:
    ``capture(OrderShipped)`` watches the fixture's bus.

    .. versionadded:: 0.1
    """
    target, types = _with_default_bus(bus, event_types, "capture")
    return EventRecorder(target, types if types is not None else Event, where=where)


# -- expect --------------------------------------------------------------------------


@final
class Expectation(Generic[E]):
    """An event the test is waiting for; made by :func:`expect`, resolved by ``await``.

    ``Expectation(bus, event_types, where=..., timeout=...)`` is the same as
    ``expect(bus, event_types, where=..., timeout=...)``.

    Awaiting it returns the first matching event published since
    :func:`expect` was called, waiting if there is none yet; it raises
    :class:`AssertionError` when the timeout passes first. Awaiting it again
    returns the same event.

    .. versionadded:: 0.1
    """

    __slots__ = (
        "_bus",
        "_deadline",
        "_failure",
        "_filter",
        "_found",
        "_late",
        "_misses",
        "_others",
        "_tap",
        "_timeout",
        "_wakeup",
        "subscription",
    )

    def __init__(
        self,
        bus: Bus,
        event_types: type[Event] | tuple[type[Event], ...],
        *,
        where: Where = None,
        timeout: float | None = 5.0,
    ) -> None:
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0
        ):
            raise ValueError(f"expect(timeout=...) must be seconds >= 0 or None, got {timeout!r}")
        self._bus = bus
        self._filter = EventFilter(event_types, where)
        self._timeout = timeout
        self._deadline = math.inf if timeout is None else bus.clock.now() + timeout
        self._found: E | None = None
        self._late: tuple[E, float] | None = None
        self._misses: list[tuple[Event, str]] = []
        self._others: Counter[str] = Counter()
        self._wakeup: anyio.Event | None = None
        self._failure: str | None = None
        self._tap, self.subscription = _add_tap(bus, "expect", (Event,), self._record)

    def _record(self, event: Event) -> None:
        if self._found is not None:
            return
        if not self._filter.has_type(event):
            self._others[type(event).__name__] += 1
            return
        reason = self._filter.mismatch(event)
        if reason is not None:
            self._misses.append((event, reason))
            return
        late = self._bus.clock.now() - self._deadline
        if late > 0:
            if self._late is None:
                self._late = (event, late)  # type: ignore[assignment]
            return
        self._found = event  # type: ignore[assignment]
        self._tap.active = False
        if self._wakeup is not None:
            self._wakeup.set()

    def _result(self) -> E | None:
        return self._found

    @property
    def done(self) -> bool:
        """Whether a matching event has been published."""
        return self._found is not None

    def close(self) -> None:
        """Stop watching the bus (awaiting afterwards still returns an event already seen)."""
        self._tap.active = False

    def __enter__(self) -> Expectation[E]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __await__(self) -> Generator[Any, None, E]:
        return self._wait().__await__()

    async def _wait(self) -> E:
        if self._found is not None:
            return self._found
        if self._failure is None and self._tap.active:
            self._wakeup = anyio.Event()
            try:
                if self._deadline == math.inf:
                    await self._wakeup.wait()
                else:
                    with self._bus.clock.deadline_scope(self._deadline):
                        await self._wakeup.wait()
            finally:
                self._wakeup = None
                self._tap.active = False
        found = self._result()
        if found is not None:
            return found
        if self._failure is None:
            self._failure = self._explain_failure()
        raise AssertionError(self._failure)

    def _explain_failure(self) -> str:
        wanted = self._filter.describe()
        within = (
            "before expect() was closed"
            if self._timeout is None
            else f"within {self._timeout:g}s (on the bus clock)"
        )
        lines = [f"expected {wanted} to be published {within}, but none was"]
        if self._late is not None:
            event, late = self._late
            lines.append(
                f"a matching event was published {late:g}s after the deadline: "
                f"{describe_event(event)}; raise timeout=..."
            )
        names = " or ".join(t.__name__ for t in self._filter.event_types)
        if self._misses:
            lines.append(
                f"{len(self._misses)} {names} event(s) were published meanwhile but did not match:"
            )
            lines.extend(_bullets((describe_event(e), why) for e, why in self._misses))
        elif not self._late:
            lines.append(f"no {names} was published meanwhile")
        if self._others:
            others = ", ".join(f"{n} {name}" for name, n in self._others.most_common())
            lines.append(f"other events published meanwhile: {others}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        state = "resolved" if self._found is not None else "waiting"
        return f"<Expectation {self._filter.describe()} {state}>"


@overload
def expect(
    bus: Bus, event_types: type[E], *, where: Where = None, timeout: float | None = 5.0
) -> Expectation[E]: ...
@overload
def expect(
    bus: Bus,
    event_types: tuple[type[Event], ...],
    *,
    where: Where = None,
    timeout: float | None = 5.0,
) -> Expectation[Event]: ...
@overload
def expect(bus: type[E], *, where: Where = None, timeout: float | None = 5.0) -> Expectation[E]: ...
@overload
def expect(
    bus: tuple[type[Event], ...], *, where: Where = None, timeout: float | None = 5.0
) -> Expectation[Event]: ...
def expect(
    bus: Bus | type[Event] | tuple[type[Event], ...],
    event_types: type[Event] | tuple[type[Event], ...] | None = None,
    *,
    where: Where = None,
    timeout: float | None = 5.0,
) -> Expectation[Any]:
    """Expect an event of *event_types* matching *where* to be published on *bus*.

    Watching starts at the call; ``await`` the result for the event::

        shipped = expect(bus, OrderShipped, where={"order_id": ["o-1"]})
        await bus.publish(OrderPlaced("o-1"))   # a handler ships it
        event = await shipped

    or, for something that happens on its own (a schedule, another task),
    ``event = await expect(bus, ReportReady, timeout=60)``. An example event
    as ``where`` matches by payload, ignoring ``id``, ``time`` and the rest
    of the envelope: ``await expect(bus, DailyReport, where=DailyReport("2024-03-01", 1))``.

    The timeout runs from the call on the bus clock: with a
    :class:`~eventbus.testing.FakeClock` it passes only when the test
    advances the clock, and an event published after the deadline does not
    count.

    Args:
        bus: the bus to watch.
        event_types: an event class or a tuple of them (subclasses included).
        where: an EventBridge-style pattern or a predicate the event must
            match, or an example event whose payload it must have.
        timeout: seconds (bus clock) to wait from the call; ``None`` waits forever.

    Returns:
        An awaitable :class:`Expectation` resolving to the event.

    Raises:
        AssertionError: (when awaited) no matching event was published in
            time; the message lists the near misses -- events of the right
            type that were published meanwhile, with the first clause of the
            pattern each one failed -- and how many events of other types
            went by.
        TypeError, PatternError: as :func:`capture`.
        ValueError: *timeout* is negative.

    Cancelling the ``await`` stops watching. Inside a test that uses the
    ``bus`` fixture, the bus may be left out: ``await expect(OrderShipped)``.

    .. versionadded:: 0.1
    """
    target, types = _with_default_bus(bus, event_types, "expect")
    if types is None:
        raise TypeError(
            "expect() needs the event type(s) to wait for, e.g. expect(bus, OrderShipped)"
        )
    return Expectation(target, types, where=where, timeout=timeout)


# -- assert_published ----------------------------------------------------------------


@final
class _FixtureState:
    """What the ``bus`` fixture keeps about its bus: its history and the letters expected."""

    __slots__ = ("bus", "expected_letters", "history")

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.history: EventRecorder[Event] = EventRecorder(bus)
        self.expected_letters: set[str] = set()


_fixture_states: dict[int, _FixtureState] = {}


def attach_fixture_state(bus: Bus) -> _FixtureState:
    """Start keeping history and expected dead letters for a fixture-made *bus* (internal)."""
    state = _FixtureState(bus)
    _fixture_states[id(bus)] = state
    return state


def detach_fixture_state(bus: Bus) -> None:
    """Forget *bus* (internal; at fixture teardown)."""
    state = _fixture_states.pop(id(bus), None)
    if state is not None:
        state.history.stop()


def fixture_state(bus: Bus) -> _FixtureState | None:
    """The fixture state of *bus*, if the ``bus`` fixture made it (internal)."""
    state = _fixture_states.get(id(bus))
    return state if state is not None and state.bus is bus else None


def _check_count(count: object, function: str) -> None:
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise ValueError(f"{function}(count=...) must be an int >= 0 or None, got {count!r}")


def _bullets(items: Iterable[tuple[str, str]]) -> list[str]:
    listed = list(items)
    lines = [f"  - {what}: {why}" for what, why in listed[:_MAX_LISTED]]
    if len(listed) > _MAX_LISTED:
        lines.append(f"  ... and {len(listed) - _MAX_LISTED} more")
    return lines


@overload
def assert_published(
    source: Bus | EventRecorder[Any],
    event_types: type[E],
    *,
    where: Where = None,
    count: int | None = None,
) -> list[E]: ...
@overload
def assert_published(
    source: Bus | EventRecorder[Any],
    event_types: tuple[type[Event], ...] = ...,
    *,
    where: Where = None,
    count: int | None = None,
) -> list[Event]: ...
def assert_published(
    source: Bus | EventRecorder[Any],
    event_types: type[Event] | tuple[type[Event], ...] = Event,
    *,
    where: Where = None,
    count: int | None = None,
) -> list[Any]:
    """Assert that events of *event_types* matching *where* were published, and return them.

    ::

        await bus.drain()
        [receipt] = assert_published(bus, ReceiptSent, where={"order_id": ["o-1"]}, count=1)

    Args:
        source: a recorder from :func:`capture`, or a bus made by the
            ``bus`` fixture (which records everything published on it).
        event_types: an event class or a tuple of them (default: any event).
        where: an EventBridge-style pattern, a predicate, or an example event
            (matched by payload) to match.
        count: how many must match exactly; ``None`` (default) means at least one.

    Returns:
        The matching events, in publish order.

    Raises:
        AssertionError: the number of matching events is wrong; the message
            lists the events of those types that did not match, with the
            first clause each failed, and the other types recorded.
        TypeError: *source* is a bus the ``bus`` fixture did not make (use
            :func:`capture` on it first), or an argument is invalid.
        ValueError: *count* is negative.

    .. versionadded:: 0.1
    """
    _check_count(count, "assert_published")
    flt = EventFilter(event_types, where)
    if isinstance(source, EventRecorder):
        recorded = list(source.events)
        where_from = "recorded"
    elif isinstance(source, Bus):
        state = fixture_state(source)
        if state is None:
            raise TypeError(
                "assert_published(bus, ...) needs the history the 'bus' fixture keeps; for "
                "another bus, record with 'recorder = capture(bus, ...)' before publishing and "
                "pass the recorder"
            )
        recorded = list(state.history.events)
        where_from = "published on the bus"
    else:
        raise TypeError(
            f"assert_published() takes a recorder from capture() or the 'bus' fixture's bus, "
            f"got {type(source).__name__}"
        )
    of_type = [e for e in recorded if flt.has_type(e)]
    matched: list[Event] = []
    misses: list[tuple[str, str]] = []
    for event in of_type:
        reason = flt.mismatch(event)
        if reason is None:
            matched.append(event)
        else:
            misses.append((describe_event(event), reason))
    if (count is None and matched) or (count is not None and len(matched) == count):
        return matched
    wanted = "at least one" if count is None else f"exactly {count}"
    lines = [f"expected {wanted} {flt.describe()}, found {len(matched)}"]
    if count is not None and matched:
        lines.append("matching:")
        lines.extend(_bullets((describe_event(e), "matched") for e in matched))
    names = " or ".join(t.__name__ for t in flt.event_types)
    if misses:
        lines.append(f"{len(misses)} {names} event(s) {where_from} did not match:")
        lines.extend(_bullets(misses))
    elif not of_type:
        lines.append(f"no {names} was {where_from}")
    others = [e for e in recorded if not flt.has_type(e)]
    if others:
        lines.append(f"other events {where_from}: {summarize_types(others)}")
    raise AssertionError("\n".join(lines))


# -- dead letters --------------------------------------------------------------------


def describe_letter(letter: DeadLetter) -> str:
    """One line about a dead letter: subscription, event, condition and error."""
    error = letter.error
    return (
        f"subscription {letter.subscription!r}: {describe_event(letter.event)} -- "
        f"{letter.condition} after {letter.attempts} attempt(s): "
        f"{error.error_type}: {error.error_message}"
    )


def expect_dead_letters(
    bus: Bus,
    event_types: type[Event] | tuple[type[Event], ...] = Event,
    *,
    where: Where = None,
    subscription: str | None = None,
    count: int | None = None,
) -> list[DeadLetter]:
    """Assert that *bus* dead-lettered events like these, and mark them as expected.

    The ``bus`` fixture fails a test whose bus dead-lettered events at
    teardown, unless the test expected them: letters this function returns
    no longer count. Call it once the failures have happened (after ``await
    bus.drain()``, or advancing a fake clock past the retries)::

        await bus.publish(OrderPlaced("o-13"))
        await bus.drain()
        [letter] = expect_dead_letters(bus, OrderPlaced, subscription="charge_card")
        assert letter.error.error_type == "CardDeclined"

    Args:
        bus: the bus whose default sink (``bus.dead_letters``) to read.
        event_types: the class(es) of the dead-lettered events (default: any).
        where: an EventBridge-style pattern or predicate over the event.
        subscription: only letters from the subscription of this name.
        count: how many letters must match exactly; ``None`` means at least one.

    Returns:
        The matching :class:`~eventbus.DeadLetter`\\ s, oldest first.

    Raises:
        AssertionError: the number of matching letters is wrong; the
            message lists every letter in the sink.
        ValueError: *count* is negative.

    .. versionadded:: 0.1
    """
    _check_count(count, "expect_dead_letters")
    flt = EventFilter(event_types, where)
    letters = list(bus.dead_letters)
    matched = [
        letter
        for letter in letters
        if flt.has_type(letter.event)
        and (subscription is None or letter.subscription == subscription)
        and flt.mismatch(letter.event) is None
    ]
    if (count is None and matched) or (count is not None and len(matched) == count):
        state = fixture_state(bus)
        if state is not None:
            state.expected_letters.update(letter.id for letter in matched)
        return matched
    wanted = "at least one" if count is None else f"exactly {count}"
    source = "" if subscription is None else f" from subscription {subscription!r}"
    lines = [f"expected {wanted} dead letter(s) for {flt.describe()}{source}, found {len(matched)}"]
    if letters:
        lines.append(f"the bus's dead letters ({len(letters)}):")
        lines.extend(f"  - {describe_letter(letter)}" for letter in letters[:_MAX_LISTED])
        if len(letters) > _MAX_LISTED:
            lines.append(f"  ... and {len(letters) - _MAX_LISTED} more")
    else:
        lines.append(
            "the bus has no dead letters (still retrying? await bus.drain() or advance "
            "the fake clock first)"
        )
    raise AssertionError("\n".join(lines))


# -- the bus fixture's bus, for calls that leave the bus out ----------------------------

_fixture_buses: list[Bus] = []


def push_default_bus(bus: Bus) -> None:
    """Make *bus* the one ``capture(EventType)`` and ``expect(EventType)`` use (the fixture's)."""
    _fixture_buses.append(bus)


def pop_default_bus(bus: Bus) -> None:
    """Forget *bus* as a default (the fixture's teardown)."""
    if bus in _fixture_buses:
        _fixture_buses.remove(bus)


def _with_default_bus(
    first: object, event_types: type[Event] | tuple[type[Event], ...] | None, verb: str
) -> tuple[Bus, type[Event] | tuple[type[Event], ...] | None]:
    if isinstance(first, Bus):
        return first, event_types
    if event_types is not None or not (
        isinstance(first, tuple) or (isinstance(first, type) and issubclass(first, Event))
    ):
        raise TypeError(
            f"{verb}() expected an eventbus.Bus (or, inside a test using the 'bus' fixture, "
            f"just the event type) first; got {type(first).__name__} {first!r:.60}"
        )
    if not _fixture_buses:
        raise TypeError(
            f"{verb}(EventType) without a bus needs the 'bus' fixture of eventbus's pytest "
            f"plugin in this test; otherwise pass the bus: {verb}(bus, EventType)"
        )
    return _fixture_buses[-1], first
