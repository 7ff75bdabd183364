"""eventbus.testing: capture, expect, assert_published, expect_dead_letters and the factories."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import anyio
import anyio.lowlevel
import attrs
import pytest

from eventbus import (
    Bus,
    Context,
    Event,
    NoRetry,
    ObjectCreated,
    Pattern,
    PatternError,
    TableChange,
)
from eventbus.testing import (
    EventRecorder,
    FakeClock,
    assert_published,
    capture,
    expect,
    expect_dead_letters,
    make_log_record,
    make_object_created,
    make_object_removed,
    make_scheduled_event,
    make_table_change,
    make_topic_message,
)


@attrs.frozen
class OrderPlaced(Event):
    order_id: str
    total: int = 0


@attrs.frozen
class OrderShipped(Event):
    order_id: str
    carrier: str = "ups"


@attrs.frozen
class Refund(Event):
    order_id: str


async def ship(event: OrderPlaced, ctx: Context) -> None:
    """Publish an OrderShipped for every OrderPlaced."""
    await ctx.publish(OrderShipped(event.order_id))


# -- capture ---------------------------------------------------------------------------


async def test_capture_records_events_as_they_are_published() -> None:
    """A recorder holds the events of its type as soon as publish returns."""
    async with Bus() as bus:
        placed = capture(bus, OrderPlaced)
        first, second = OrderPlaced("o-1"), OrderPlaced("o-2")
        await bus.publish(first)
        await bus.publish(Refund("o-1"))
        await bus.publish(second)
        assert placed.events == [first, second]
        assert len(placed) == 2
        assert list(placed) == [first, second]
        assert placed[1] is second


async def test_capture_sees_follow_ups_after_drain() -> None:
    """Events that handlers publish are recorded too."""
    async with Bus() as bus:
        bus.subscribe(OrderPlaced, ship)
        shipped = capture(bus, OrderShipped)
        await bus.publish(OrderPlaced("o-1"))
        await bus.drain()
        assert [e.order_id for e in shipped] == ["o-1"]


async def test_capture_filters_with_a_pattern() -> None:
    """where= takes an EventBridge-style pattern, as subscribe does."""
    async with Bus() as bus:
        big = capture(bus, OrderPlaced, where={"total": [{"numeric": [">", 100]}]})
        await bus.publish(OrderPlaced("small", total=5))
        await bus.publish(OrderPlaced("big", total=500))
        assert [e.order_id for e in big] == ["big"]


async def test_capture_filters_with_a_predicate() -> None:
    """where= takes a predicate too."""
    async with Bus() as bus:
        odd = capture(bus, OrderPlaced, where=lambda e: e.total % 2 == 1)
        for total in range(4):
            await bus.publish(OrderPlaced("o", total=total))
        assert [e.total for e in odd] == [1, 3]


async def test_capture_of_several_types_and_of_everything() -> None:
    """A tuple of types records each; no type records every event."""
    async with Bus() as bus:
        orders = capture(bus, (OrderPlaced, Refund))
        everything = capture(bus)
        events = [OrderPlaced("a"), OrderShipped("a"), Refund("a")]
        for event in events:
            await bus.publish(event)
        assert orders.events == [events[0], events[2]]
        assert everything.events == events


async def test_capture_as_context_manager_stops_recording() -> None:
    """Leaving the with block stops recording but keeps what was recorded."""
    async with Bus() as bus:
        with capture(bus, OrderPlaced) as placed:
            await bus.publish(OrderPlaced("in"))
        await bus.publish(OrderPlaced("out"))
        assert [e.order_id for e in placed] == ["in"]
        assert not placed.recording


async def test_capture_clear_forgets_but_keeps_recording() -> None:
    """clear() empties the recorder; later events are still recorded."""
    async with Bus() as bus:
        placed = capture(bus, OrderPlaced)
        await bus.publish(OrderPlaced("old"))
        placed.clear()
        await bus.publish(OrderPlaced("new"))
        assert [e.order_id for e in placed] == ["new"]


async def test_capture_before_the_bus_starts() -> None:
    """A recorder can be made on a bus that is not running yet."""
    bus = Bus()
    placed = capture(bus, OrderPlaced)
    async with bus:
        await bus.publish(OrderPlaced("o-1"))
    assert len(placed) == 1


async def test_taps_leave_receipts_drain_and_handlers_alone() -> None:
    """A recorder takes no delivery: receipts, metrics and handlers are as without it."""
    seen: list[Event] = []

    async def handler(event: OrderPlaced) -> None:
        seen.append(event)

    async with Bus() as bus:
        bus.subscribe(OrderPlaced, handler, name="handler")
        recorder = capture(bus, OrderPlaced)
        receipt = await bus.publish(OrderPlaced("o-1"))
        unrouted = await bus.publish(Refund("o-1"))
        await bus.drain()
        assert receipt.subscriptions == ("handler",)
        assert unrouted.subscriptions == ()
        assert bus.metrics()[recorder.subscription].accepted == 0
    assert len(seen) == 1


async def test_explain_does_not_count_as_publishing() -> None:
    """bus.explain() runs filters but publishes nothing, so recorders stay empty."""
    async with Bus() as bus:
        placed = capture(bus, OrderPlaced)
        pending = expect(bus, OrderPlaced, timeout=None)
        bus.explain(OrderPlaced("o-1"))
        assert len(placed) == 0
        assert not pending.done
        pending.close()


async def test_capture_rejects_bad_arguments() -> None:
    """Bad types, patterns and buses fail at the call, with a clear message."""
    async with Bus() as bus:
        with pytest.raises(TypeError, match="Event subclass"):
            capture(bus, dict)  # type: ignore[type-var]
        with pytest.raises(PatternError, match='did you mean "order_id"'):
            capture(bus, OrderPlaced, where={"orderid": ["x"]})
        with pytest.raises(TypeError, match="pattern"):
            capture(bus, OrderPlaced, where=42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"expected an eventbus\.Bus"):
        capture(object(), OrderPlaced)  # type: ignore[call-overload]


def test_recorder_repr_names_the_filter() -> None:
    """The recorder's repr says what it records and how many events it has."""
    recorder: EventRecorder[OrderPlaced] = capture(Bus(), OrderPlaced, where={"total": [1]})
    assert (
        repr(recorder) == '<EventRecorder OrderPlaced where {"total": [1]} recording, 0 event(s)>'
    )


# -- expect ----------------------------------------------------------------------------


async def test_expect_resolves_with_an_event_published_after_the_call() -> None:
    """Awaiting the expectation returns the first matching event since the call."""
    async with Bus() as bus:
        bus.subscribe(OrderPlaced, ship)
        shipped = expect(bus, OrderShipped, where={"order_id": ["o-2"]})
        await bus.publish(OrderPlaced("o-1"))
        await bus.publish(OrderPlaced("o-2"))
        event = await shipped
        assert event.order_id == "o-2"
        assert shipped.done
        assert await shipped is event


async def test_expect_ignores_events_published_before_the_call() -> None:
    """An event published before expect() does not satisfy it."""
    clock = FakeClock()
    async with Bus(clock=clock) as bus:
        await bus.publish(OrderShipped("o-1"))
        shipped = expect(bus, OrderShipped, timeout=1)
        await clock.advance(1)
        with pytest.raises(AssertionError, match="none was"):
            await shipped


async def test_expect_waits_for_an_event_published_later() -> None:
    """await expect(...) waits until another task publishes the event."""
    async with Bus() as bus, anyio.create_task_group() as tg:
        waiting = expect(bus, OrderShipped, timeout=None)

        async def later() -> None:
            await anyio.lowlevel.checkpoint()
            await bus.publish(OrderShipped("o-9"))

        tg.start_soon(later)
        assert (await waiting).order_id == "o-9"


async def test_expect_failure_lists_near_misses_with_reasons() -> None:
    """On timeout the message lists same-type events that did not match, and why."""
    clock = FakeClock()
    async with Bus(clock=clock) as bus:
        shipped = expect(bus, OrderShipped, where={"order_id": ["o-1"]}, timeout=5)
        await bus.publish(OrderShipped("o-2"))
        await bus.publish(OrderShipped("o-3", carrier="dhl"))
        await bus.publish(OrderPlaced("o-1"))
        await clock.advance(5)
        with pytest.raises(AssertionError) as info:
            await shipped
    message = str(info.value)
    assert message.startswith(
        'expected OrderShipped where {"order_id": ["o-1"]} to be published within 5s '
        "(on the bus clock), but none was"
    )
    assert "2 OrderShipped event(s) were published meanwhile but did not match:" in message
    assert "OrderShipped(order_id='o-2', carrier='ups')" in message
    assert 'where.order_id: "o-2" is not' in message
    assert "other events published meanwhile: 1 OrderPlaced" in message


async def test_expect_timeout_runs_on_the_fake_clock() -> None:
    """With a FakeClock, the timeout passes only when the test advances the clock."""
    clock = FakeClock()
    async with Bus(clock=clock) as bus:
        shipped = expect(bus, OrderShipped, timeout=10)
        async with anyio.create_task_group() as tg:
            failures: list[AssertionError] = []

            async def wait() -> None:
                try:
                    await shipped
                except AssertionError as exc:
                    failures.append(exc)

            tg.start_soon(wait)
            await clock.advance(9)
            assert not failures
            await clock.advance(1)
        assert len(failures) == 1
        assert "no OrderShipped was published meanwhile" in str(failures[0])


async def test_expect_reports_a_late_event() -> None:
    """An event after the deadline does not count, and the message says it came late."""
    clock = FakeClock()
    async with Bus(clock=clock) as bus:
        shipped = expect(bus, OrderShipped, timeout=1)
        await clock.advance(3)
        await bus.publish(OrderShipped("o-1"))
        with pytest.raises(AssertionError, match=r"published 2s after the deadline"):
            await shipped


async def test_expect_sees_scheduled_events_when_the_clock_advances() -> None:
    """A schedule firing in virtual time satisfies an expectation made before."""
    clock = FakeClock(start=datetime(2024, 1, 1, tzinfo=UTC))
    async with Bus(clock=clock) as bus:
        from eventbus import ScheduledEvent

        bus.schedule("rate(1 minute)", name="tick")
        tick = expect(bus, ScheduledEvent, where={"rule": ["tick"]}, timeout=120)
        await clock.advance(60)
        assert (await tick).rule == "tick"


async def test_closed_expectation_fails_without_waiting() -> None:
    """After close(), awaiting an unmet expectation fails at once."""
    async with Bus() as bus:
        shipped = expect(bus, OrderShipped, timeout=None)
        with shipped:
            pass
        await bus.publish(OrderShipped("o-1"))
        with pytest.raises(AssertionError, match="before expect\\(\\) was closed"):
            await shipped


async def test_expect_rejects_a_negative_timeout() -> None:
    """timeout= must be >= 0 or None."""
    async with Bus() as bus:
        with pytest.raises(ValueError, match="timeout"):
            expect(bus, OrderShipped, timeout=-1)


async def test_expect_with_a_predicate_names_it_in_the_failure() -> None:
    """A predicate filter is named in the failure, with why each event missed."""
    clock = FakeClock()

    def is_express(event: OrderShipped) -> bool:
        return event.carrier == "express"

    async with Bus(clock=clock) as bus:
        shipped = expect(bus, OrderShipped, where=is_express, timeout=0)
        await bus.publish(OrderShipped("o-1"))
        with pytest.raises(AssertionError) as info:
            await shipped
    assert "OrderShipped where " in str(info.value)
    assert "is_express(event)" in str(info.value)


# -- assert_published --------------------------------------------------------------------


async def test_assert_published_on_a_recorder_returns_the_matches() -> None:
    """assert_published returns the matching events."""
    async with Bus() as bus:
        recorder = capture(bus)
        await bus.publish(OrderPlaced("o-1", total=3))
        await bus.publish(OrderPlaced("o-2", total=4))
        [event] = assert_published(recorder, OrderPlaced, where={"total": [4]}, count=1)
        assert event.order_id == "o-2"
        assert len(assert_published(recorder, OrderPlaced)) == 2
        assert assert_published(recorder, Refund, count=0) == []


async def test_assert_published_explains_a_wrong_count() -> None:
    """The failure lists non-matching events of the type and the other types seen."""
    async with Bus() as bus:
        recorder = capture(bus)
        await bus.publish(OrderPlaced("o-1", total=3))
        await bus.publish(Refund("o-1"))
        with pytest.raises(AssertionError) as info:
            assert_published(recorder, OrderPlaced, where={"total": [4]})
    message = str(info.value)
    assert message.startswith('expected at least one OrderPlaced where {"total": [4]}, found 0')
    assert "1 OrderPlaced event(s) recorded did not match:" in message
    assert "where.total: 3 is not 4" in message
    assert "other events recorded: 1 Refund" in message


async def test_assert_published_exact_count_lists_the_matches() -> None:
    """With count=, too many matches fail and are listed."""
    async with Bus() as bus:
        recorder = capture(bus, OrderPlaced)
        await bus.publish(OrderPlaced("o-1"))
        await bus.publish(OrderPlaced("o-2"))
        with pytest.raises(AssertionError, match=r"expected exactly 1 OrderPlaced, found 2"):
            assert_published(recorder, OrderPlaced, count=1)


async def test_assert_published_needs_history_for_a_plain_bus() -> None:
    """A bus the fixture did not make has no history: pass a recorder instead."""
    async with Bus() as bus:
        with pytest.raises(TypeError, match="capture\\(bus"):
            assert_published(bus, OrderPlaced)
        with pytest.raises(ValueError, match="count"):
            assert_published(capture(bus), OrderPlaced, count=-1)


async def test_assert_published_on_the_bus_fixture(bus: Bus) -> None:
    """The bus fixture records everything published on it."""
    bus.subscribe(OrderPlaced, ship)
    await bus.publish(OrderPlaced("o-1"))
    await bus.drain()
    assert_published(bus, OrderShipped, where={"order_id": ["o-1"]}, count=1)
    assert_published(bus, Event, count=2)


async def test_bus_fixture_uses_the_fake_clock(bus: Bus, fake_clock: FakeClock) -> None:
    """A test asking for fake_clock gets a bus on it."""
    assert bus.clock is fake_clock


# -- dead letters -----------------------------------------------------------------------


async def test_expect_dead_letters_returns_the_letters(bus: Bus) -> None:
    """Letters that match are returned (and so expected by the bus fixture)."""

    @bus.on(OrderPlaced, retry=NoRetry())
    async def charge(event: OrderPlaced) -> None:
        if event.total > 100:
            raise ValueError("card declined")

    await bus.publish(OrderPlaced("o-1", total=5))
    await bus.publish(OrderPlaced("o-2", total=500))
    await bus.drain()
    [letter] = expect_dead_letters(bus, OrderPlaced, subscription="charge", count=1)
    assert isinstance(letter.event, OrderPlaced)
    assert letter.event.order_id == "o-2"
    assert letter.error.error_message == "card declined"


async def test_expect_dead_letters_lists_the_sink_on_failure() -> None:
    """A wrong count fails, listing the letters there are."""
    async with Bus(retry=NoRetry()) as bus:

        async def boom(event: OrderPlaced) -> None:
            raise RuntimeError("boom")

        bus.subscribe(OrderPlaced, boom, name="boom")
        await bus.publish(OrderPlaced("o-1"))
        await bus.drain()
        with pytest.raises(AssertionError) as info:
            expect_dead_letters(bus, OrderPlaced, where={"order_id": ["o-2"]})
        message = str(info.value)
        assert "found 0" in message
        assert "subscription 'boom': OrderPlaced(order_id='o-1', total=0)" in message
        assert "RetriesExhausted after 1 attempt(s): RuntimeError: boom" in message
        with pytest.raises(AssertionError, match="still retrying"):
            expect_dead_letters(Bus(), OrderPlaced)


# -- factories ---------------------------------------------------------------------------


def test_make_object_created_derives_size_and_etag() -> None:
    """size and etag fit the body."""
    event = make_object_created("a/b.txt", "héllo", bucket="docs")
    assert isinstance(event, ObjectCreated)
    assert (event.bucket, event.key, event.size) == ("docs", "a/b.txt", 6)
    assert event.etag == hashlib.md5("héllo".encode()).hexdigest()
    assert make_object_created(size=7).size == 7


def test_make_table_change_builds_images_per_operation() -> None:
    """INSERT has a new image, REMOVE an old one, MODIFY both; all hold the keys."""
    insert = make_table_change("INSERT", {"id": "1"}, new={"n": 1})
    modify = make_table_change("MODIFY", {"id": "1"}, old={"n": 1}, new={"n": 2})
    remove = make_table_change("REMOVE", {"id": "1"}, old={"n": 2})
    assert (insert.new_image, insert.old_image) == ({"n": 1, "id": "1"}, None)
    assert (modify.old_image, modify.new_image) == ({"n": 1, "id": "1"}, {"n": 2, "id": "1"})
    assert (remove.new_image, remove.old_image) == (None, {"n": 2, "id": "1"})
    assert isinstance(insert, TableChange)


def test_make_table_change_refuses_images_the_operation_lacks() -> None:
    """An old image on an INSERT, or a new one on a REMOVE, is an error."""
    with pytest.raises(ValueError, match="INSERT has no old image"):
        make_table_change("INSERT", old={"n": 1})
    with pytest.raises(ValueError, match="REMOVE has no new image"):
        make_table_change("REMOVE", new={"n": 1})
    with pytest.raises(ValueError, match="op must be"):
        make_table_change("UPSERT")  # type: ignore[arg-type]


def test_other_factories_fill_defaults() -> None:
    """Every factory makes a valid event with only the fields a test cares about."""
    assert make_object_removed("k").key == "k"
    assert make_topic_message("hi", attributes={"kind": "x"}).attributes == {"kind": "x"}
    assert make_log_record("text").data == b"text"
    fired = datetime(2024, 5, 1, 12, tzinfo=UTC)
    tick = make_scheduled_event(fired, rule="nightly")
    assert (tick.rule, tick.scheduled_time, tick.time) == ("nightly", fired, fired)
    assert make_scheduled_event().scheduled_time.microsecond == 0
    with pytest.raises(ValueError, match="timezone-aware"):
        make_scheduled_event(datetime(2024, 1, 1))


def test_pattern_objects_are_accepted_as_where() -> None:
    """A compiled Pattern works as where= too."""
    recorder = capture(Bus(), OrderPlaced, where=Pattern({"order_id": [{"prefix": "o-"}]}))
    assert "prefix" in repr(recorder)
