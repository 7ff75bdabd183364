"""The Bus: routing, handler shapes, invoke, lifecycle and graceful close."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import attrs
import pytest

from eventbus import (
    Bus,
    BusClosed,
    Context,
    DuplicateSubscription,
    Event,
    ExponentialBackoff,
    InvocationError,
    NoRetry,
    Receipt,
    UnknownSubscription,
)
from eventbus.testing import FakeClock
from eventbus.testing._clock import _wait_all_tasks_blocked as settle


@attrs.frozen
class Animal(Event):
    name: str = "rex"


@attrs.frozen
class Dog(Animal):
    pass


@attrs.frozen
class Cat(Animal):
    pass


@attrs.frozen
class Ping(Event):
    n: int = 0
    key: str = "k"


class Recorder:
    """An async handler that records the events it gets."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)


# -- routing ---------------------------------------------------------------------------


async def test_base_class_subscription_receives_subclasses() -> None:
    """A subscription to a base class receives instances of its subclasses."""
    seen = Recorder()
    async with Bus() as bus:
        bus.subscribe(Animal, seen, name="animals")
        dog, cat, animal = Dog(), Cat(), Animal()
        for event in (dog, cat, animal):
            await bus.publish(event)
    assert seen.events == [dog, cat, animal]


async def test_subclass_subscription_ignores_base_and_siblings() -> None:
    """A subscription to a subclass receives neither its base class nor its siblings."""
    seen = Recorder()
    async with Bus() as bus:
        bus.subscribe(Dog, seen, name="dogs")
        assert (await bus.publish(Animal())).subscriptions == ()
        assert (await bus.publish(Cat())).subscriptions == ()
        dog = Dog()
        await bus.publish(dog)
    assert seen.events == [dog]


async def test_tuple_of_types_receives_each() -> None:
    """A subscription to a tuple of types receives any of them, and only them."""
    seen = Recorder()
    async with Bus() as bus:
        bus.subscribe((Cat, Ping), seen, name="mixed")
        cat, ping = Cat(), Ping()
        for event in (cat, Dog(), ping, Animal()):
            await bus.publish(event)
    assert seen.events == [cat, ping]


async def test_receipt_names_accepting_subscriptions() -> None:
    """The receipt carries the event id and every subscription that accepted it."""
    async with Bus() as bus:
        bus.subscribe(Animal, Recorder(), name="animals")
        bus.subscribe(Dog, Recorder(), name="dogs")
        bus.subscribe(Cat, Recorder(), name="cats")
        dog = Dog()
        receipt = await bus.publish(dog)
    assert isinstance(receipt, Receipt)
    assert receipt.event_id == dog.id
    assert set(receipt.subscriptions) == {"animals", "dogs"}


async def test_unrouted_event_gets_an_empty_receipt() -> None:
    """An event no subscription matches is accepted by none and leaves nothing outstanding."""
    async with Bus() as bus:
        bus.subscribe(Dog, Recorder(), name="dogs")
        receipt = await bus.publish(Ping())
        assert receipt.subscriptions == ()
        assert bus.outstanding == 0
    assert bus.metrics()["dogs"].accepted == 0


async def test_publish_rejects_non_events() -> None:
    """Publishing something that is not an Event is a TypeError."""
    async with Bus() as bus:
        with pytest.raises(
            TypeError, match=r"publish\(\) takes an eventbus.Event instance, got dict"
        ):
            await bus.publish({"name": "rex"})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="got str"):
            bus.publish_nowait("rex")  # type: ignore[arg-type]


async def test_subscribing_while_running_starts_delivery() -> None:
    """A subscription added inside the running block receives events."""
    seen = Recorder()
    async with Bus() as bus:
        await bus.publish(Ping(1))
        bus.subscribe(Ping, seen, name="late")
        ping = Ping(2)
        await bus.publish(ping)
    assert seen.events == [ping]


async def test_each_subscription_gets_its_own_copy_of_the_stream() -> None:
    """Two subscriptions to the same type each receive every event."""
    first, second = Recorder(), Recorder()
    async with Bus() as bus:
        bus.subscribe(Ping, first, name="first")
        bus.subscribe(Ping, second, name="second")
        pings = [Ping(i) for i in range(5)]
        for ping in pings:
            await bus.publish(ping)
    assert first.events == pings
    assert second.events == pings


# -- handler shapes --------------------------------------------------------------------


async def test_handler_taking_the_event_only() -> None:
    """An ``async def h(event)`` handler is called with the event alone."""
    calls: list[tuple[Any, ...]] = []

    async def handler(event: Ping) -> None:
        calls.append((event,))

    async with Bus() as bus:
        bus.subscribe(Ping, handler)
        ping = Ping()
        await bus.publish(ping)
    assert calls == [(ping,)]


async def test_handler_taking_event_and_context() -> None:
    """An ``async def h(event, ctx)`` handler also gets a Context for the invocation."""
    calls: list[tuple[Ping, Context]] = []

    async def handler(event: Ping, ctx: Context) -> None:
        calls.append((event, ctx))

    async with Bus() as bus:
        bus.subscribe(Ping, handler, name="with-ctx")
        ping = Ping()
        await bus.publish(ping)
    [(event, ctx)] = calls
    assert event is ping
    assert isinstance(ctx, Context)
    assert ctx.subscription == "with-ctx"
    assert ctx.event is ping


async def test_callable_object_with_async_call_is_awaited() -> None:
    """An object with ``async def __call__`` is used as an async handler."""
    seen = Recorder()
    async with Bus() as bus:
        bus.subscribe(Ping, seen, name="obj")
        ping = Ping()
        await bus.publish(ping)
    assert seen.events == [ping]


async def test_sync_handler_runs_off_the_loop_thread() -> None:
    """A plain ``def`` handler runs in a worker thread, never on the event-loop thread."""
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def handler(event: Ping) -> None:
        threads.append(threading.get_ident())

    async with Bus() as bus:
        bus.subscribe(Ping, handler)
        await bus.publish(Ping())
    assert len(threads) == 1
    assert threads[0] != loop_thread


async def test_sync_handler_with_context_runs_off_the_loop_thread() -> None:
    """A plain ``def h(event, ctx)`` handler gets its Context, in a worker thread."""
    loop_thread = threading.get_ident()
    seen: list[tuple[int, int]] = []

    def handler(event: Ping, ctx: Context) -> None:
        seen.append((threading.get_ident(), ctx.attempt))

    async with Bus() as bus:
        bus.subscribe(Ping, handler)
        await bus.publish(Ping())
    [(thread, attempt)] = seen
    assert thread != loop_thread
    assert attempt == 1


async def test_sync_handler_failure_is_retried() -> None:
    """An exception from a plain ``def`` handler is a failure like any other."""
    attempts: list[int] = []

    def handler(event: Ping, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise RuntimeError("first time fails")

    async with Bus(retry=ExponentialBackoff(initial=0.001, jitter=False)) as bus:
        bus.subscribe(Ping, handler, name="sync")
        await bus.publish(Ping())
    assert attempts == [1, 2]
    assert bus.metrics()["sync"].succeeded == 1


async def test_on_decorator_subscribes_and_returns_the_handler() -> None:
    """``@bus.on`` subscribes under the handler function's name and returns the handler."""
    seen: list[Ping] = []
    bus = Bus()

    async def handler(event: Ping) -> None:
        seen.append(event)

    decorated = bus.on(Ping, concurrency=2)(handler)
    assert decorated is handler
    assert bus.subscription("handler").concurrency == 2
    async with bus:
        ping = Ping()
        await bus.publish(ping)
    assert seen == [ping]


# -- lookup and names ------------------------------------------------------------------


async def test_unknown_subscription_suggests_a_close_name() -> None:
    """Invoking a misspelt name raises UnknownSubscription with a did-you-mean hint."""
    async with Bus() as bus:
        bus.subscribe(Ping, Recorder(), name="send-receipt")
        with pytest.raises(
            UnknownSubscription,
            match=r'no subscription named "send-reciept"; did you mean "send-receipt"\?',
        ):
            await bus.invoke("send-reciept", Ping())


def test_unknown_subscription_lists_names_when_none_is_close() -> None:
    """Without a close match, the error lists the existing subscriptions."""
    bus = Bus()
    bus.subscribe(Ping, Recorder(), name="alpha")
    bus.subscribe(Ping, Recorder(), name="beta")
    with pytest.raises(
        UnknownSubscription, match=r"no subscription named \"zzz\"; subscriptions: 'alpha', 'beta'"
    ):
        bus.subscription("zzz")


def test_unknown_subscription_is_a_lookup_error() -> None:
    """UnknownSubscription is also a LookupError, and says when there are none yet."""
    with pytest.raises(LookupError, match="subscriptions: none yet"):
        Bus().subscription("anything")


def test_duplicate_subscription_name_is_rejected() -> None:
    """A second subscription with a taken name raises DuplicateSubscription."""
    bus = Bus()
    bus.subscribe(Ping, Recorder(), name="dup")
    with pytest.raises(
        DuplicateSubscription, match="a subscription named 'dup' already exists on this bus"
    ):
        bus.subscribe(Dog, Recorder(), name="dup")
    assert [s.name for s in bus.subscriptions()] == ["dup"]


def test_same_handler_twice_needs_a_name() -> None:
    """Subscribing one handler twice collides on its default name, so the hint says name=."""
    bus = Bus()

    async def handler(event: Ping) -> None:
        pass

    bus.subscribe(Ping, handler)
    with pytest.raises(
        DuplicateSubscription,
        match=r"pass a name of its own: subscribe\(\.\.\., name='handler-2'\)",
    ):
        bus.subscribe(Ping, handler)
    bus.subscribe(Ping, handler, name="second")
    assert bus.has_subscription("second")


# -- invoke ----------------------------------------------------------------------------


async def test_invoke_returns_the_handler_result() -> None:
    """invoke runs the handler once and returns its value."""

    async def double(event: Ping) -> int:
        return event.n * 2

    async with Bus() as bus:
        bus.subscribe(Ping, double, name="double")
        assert await bus.invoke("double", Ping(21)) == 42
    metrics = bus.metrics()["double"]
    assert (metrics.accepted, metrics.succeeded, metrics.errors) == (0, 0, 0)


async def test_invoke_runs_sync_handlers_in_a_thread() -> None:
    """invoke returns a plain ``def`` handler's value, computed off the loop thread."""
    loop_thread = threading.get_ident()

    def whoami(event: Ping) -> int:
        return threading.get_ident()

    async with Bus() as bus:
        bus.subscribe(Ping, whoami, name="whoami")
        assert await bus.invoke("whoami", Ping()) != loop_thread


async def test_invoke_error_has_lambda_shape() -> None:
    """A failing invoke raises InvocationError with Lambda's errorType/errorMessage/stackTrace."""

    async def reject_order(event: Ping) -> None:
        raise ValueError(f"order {event.n} is invalid")

    async with Bus() as bus:
        bus.subscribe(Ping, reject_order, name="reject")
        with pytest.raises(InvocationError) as info:
            await bus.invoke("reject", Ping(7))
    err = info.value
    assert err.error_type == "ValueError"
    assert err.error_message == "order 7 is invalid"
    assert isinstance(err.stack_trace, list)
    assert err.stack_trace
    assert all(isinstance(line, str) for line in err.stack_trace)
    assert "reject_order" in err.stack_trace[-1]
    assert 'raise ValueError(f"order {event.n} is invalid")' in err.stack_trace[-1]
    assert err.to_dict() == {
        "errorType": "ValueError",
        "errorMessage": "order 7 is invalid",
        "stackTrace": err.stack_trace,
    }
    assert isinstance(err.__cause__, ValueError)
    assert str(err) == "'reject' failed: ValueError: order 7 is invalid"
    assert err.subscription == "reject"


async def test_invoke_is_not_retried_but_counts_the_error() -> None:
    """invoke makes exactly one attempt, counted in errors, never dead-lettered."""
    attempts: list[int] = []

    async def fail(event: Ping, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        raise RuntimeError("nope")

    async with Bus() as bus:
        bus.subscribe(Ping, fail, name="fail")
        with pytest.raises(InvocationError):
            await bus.invoke("fail", Ping())
    assert attempts == [1]
    metrics = bus.metrics()["fail"]
    assert (metrics.errors, metrics.retries, metrics.dead_lettered) == (1, 0, 0)
    assert len(bus.dead_letters) == 0


async def test_invoke_ignores_the_where_filter() -> None:
    """invoke calls the handler even for an event its ``where`` would skip."""

    async def echo(event: Ping) -> int:
        return event.n

    async with Bus() as bus:
        bus.subscribe(Ping, echo, name="echo", where=lambda e: e.n > 100)
        assert await bus.invoke("echo", Ping(1)) == 1


async def test_invoke_rejects_an_event_of_the_wrong_type() -> None:
    """invoke with an event the subscription does not take is a TypeError."""
    async with Bus() as bus:
        bus.subscribe(Dog, Recorder(), name="dogs")
        with pytest.raises(TypeError, match="subscription 'dogs' handles Dog, not Cat"):
            await bus.invoke("dogs", Cat())


async def test_invoke_needs_a_running_bus() -> None:
    """invoke before the bus starts raises BusClosed."""
    bus = Bus()
    bus.subscribe(Ping, Recorder(), name="p")
    with pytest.raises(BusClosed, match="not running yet"):
        await bus.invoke("p", Ping())


# -- where predicates ------------------------------------------------------------------


async def test_where_predicate_filters_events() -> None:
    """Only events the predicate accepts reach the handler or count as accepted."""
    seen = Recorder()
    async with Bus() as bus:
        bus.subscribe(Ping, seen, name="even", where=lambda e: e.n % 2 == 0)
        receipts = [await bus.publish(Ping(n)) for n in range(5)]
    assert [e.n for e in seen.events] == [0, 2, 4]  # type: ignore[attr-defined]
    assert [r.subscriptions for r in receipts] == [("even",), (), ("even",), (), ("even",)]
    assert bus.metrics()["even"].accepted == 3


async def test_raising_predicate_dead_letters_without_blocking_others() -> None:
    """A predicate that raises dead-letters the event (NotRetryable) for its subscription only."""
    seen = Recorder()
    called = Recorder()

    def broken(event: Ping) -> bool:
        raise KeyError("missing field")

    async with Bus() as bus:
        bus.subscribe(Ping, called, name="broken", where=broken)
        bus.subscribe(Ping, seen, name="healthy")
        ping = Ping()
        receipt = await bus.publish(ping)
        assert set(receipt.subscriptions) == {"broken", "healthy"}
    assert seen.events == [ping]
    assert called.events == []
    [letter] = bus.dead_letters
    assert letter.subscription == "broken"
    assert letter.condition == "NotRetryable"
    assert letter.attempts == 0
    assert letter.error.error_type == "KeyError"
    assert letter.event is ping
    metrics = bus.metrics()
    assert (metrics["broken"].accepted, metrics["broken"].dead_lettered) == (1, 1)
    assert (metrics["healthy"].accepted, metrics["healthy"].succeeded) == (1, 1)


async def test_raising_predicate_dead_letters_from_publish_nowait() -> None:
    """publish_nowait handles a raising predicate the same way."""

    def broken(event: Ping) -> bool:
        raise ValueError("bad predicate")

    async with Bus() as bus:
        bus.subscribe(Ping, Recorder(), name="broken", where=broken)
        assert bus.publish_nowait(Ping()).subscriptions == ("broken",)
    assert [letter.condition for letter in bus.dead_letters] == ["NotRetryable"]


# -- publish_to and publish_from_thread ------------------------------------------------


async def test_publish_to_delivers_to_one_subscription_only() -> None:
    """publish_to reaches only the named subscription, bypassing its where filter."""
    target, other = Recorder(), Recorder()
    async with Bus() as bus:
        bus.subscribe(Ping, target, name="target", where=lambda e: False)
        bus.subscribe(Ping, other, name="other")
        ping = Ping()
        receipt = await bus.publish_to("target", ping)
    assert receipt == Receipt(ping.id, ("target",))
    assert target.events == [ping]
    assert other.events == []


async def test_publish_to_unknown_name_raises() -> None:
    """publish_to an unknown subscription raises UnknownSubscription."""
    async with Bus() as bus:
        bus.subscribe(Ping, Recorder(), name="target")
        with pytest.raises(UnknownSubscription, match='did you mean "target"'):
            await bus.publish_to("targte", Ping())


async def test_publish_from_a_plain_thread() -> None:
    """publish_from_thread from a non-loop thread delivers and returns the receipt."""
    seen = Recorder()
    receipts: list[Receipt] = []
    ping = Ping()
    async with Bus() as bus:
        bus.subscribe(Ping, seen, name="p")
        thread = threading.Thread(target=lambda: receipts.append(bus.publish_from_thread(ping)))
        thread.start()
        await anyio.to_thread.run_sync(thread.join)
    assert receipts == [Receipt(ping.id, ("p",))]
    assert seen.events == [ping]


async def test_publish_from_thread_on_the_loop_thread_raises() -> None:
    """publish_from_thread on the loop thread itself is refused, pointing to publish()."""
    async with Bus() as bus:
        with pytest.raises(RuntimeError, match=r"use 'await bus\.publish\(event\)' there"):
            bus.publish_from_thread(Ping())


def test_publish_from_thread_before_start_raises() -> None:
    """publish_from_thread before the bus runs raises BusClosed."""
    with pytest.raises(BusClosed, match="not running yet"):
        Bus().publish_from_thread(Ping())


async def test_publish_from_thread_after_close_raises() -> None:
    """publish_from_thread after the block ended raises BusClosed in the calling thread."""
    async with Bus() as bus:
        pass
    with pytest.raises(BusClosed, match="closed"):
        await anyio.to_thread.run_sync(bus.publish_from_thread, Ping())


# -- lifecycle -------------------------------------------------------------------------


async def test_publish_before_entering_raises() -> None:
    """Publishing to a bus that was never started raises BusClosed saying how to start it."""
    bus = Bus()
    with pytest.raises(BusClosed, match=r"not running yet; publish inside 'async with Bus\(\)"):
        await bus.publish(Ping())
    with pytest.raises(BusClosed, match="not running yet"):
        bus.publish_nowait(Ping())
    assert not bus.running


async def test_leaving_the_block_drains() -> None:
    """Leaving the block waits until every accepted event is handled."""
    done: list[int] = []

    async def slow(event: Ping) -> None:
        for _ in range(event.n):
            await anyio.lowlevel.checkpoint()
        done.append(event.n)

    async with Bus() as bus:
        bus.subscribe(Ping, slow, concurrency=3)
        for n in range(20):
            await bus.publish(Ping(n))
        assert len(done) < 20
    assert sorted(done) == list(range(20))
    assert bus.outstanding == 0


async def test_leaving_the_block_waits_for_retries() -> None:
    """Graceful close includes events waiting to be retried."""
    attempts: list[int] = []

    async def flaky(event: Ping, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise RuntimeError("not yet")

    async with Bus(retry=ExponentialBackoff(initial=0.001, jitter=False)) as bus:
        bus.subscribe(Ping, flaky, name="flaky")
        await bus.publish(Ping())
    assert attempts == [1, 2, 3]
    assert bus.metrics()["flaky"].succeeded == 1


async def test_follow_ups_are_accepted_while_draining() -> None:
    """ctx.publish during the closing drain is delivered, so chains complete."""
    seen: list[tuple[int, bool]] = []
    bus = Bus()

    async def chain(event: Ping, ctx: Context) -> None:
        seen.append((event.n, bus.running))
        if event.n < 3:
            await ctx.publish(Ping(event.n + 1))

    bus.subscribe(Ping, chain, name="chain")
    async with bus:
        bus.publish_nowait(Ping(0))  # no checkpoint: the handler first runs while closing
    assert seen == [(0, False), (1, False), (2, False), (3, False)]


async def test_after_close_everything_raises_bus_closed() -> None:
    """After the block, publish, publish_nowait, publish_to, invoke and subscribe raise BusClosed."""
    async with Bus() as bus:
        bus.subscribe(Ping, Recorder(), name="p")
    assert not bus.running
    with pytest.raises(BusClosed, match="closed"):
        await bus.publish(Ping())
    with pytest.raises(BusClosed, match="closed"):
        bus.publish_nowait(Ping())
    with pytest.raises(BusClosed, match="closed"):
        await bus.publish_to("p", Ping())
    with pytest.raises(BusClosed, match="closed"):
        await bus.invoke("p", Ping())
    with pytest.raises(BusClosed, match="cannot subscribe"):
        bus.subscribe(Ping, Recorder(), name="q")


async def test_bus_cannot_be_entered_twice() -> None:
    """A used bus refuses a second ``async with``."""
    bus = Bus()
    async with bus:
        pass
    with pytest.raises(RuntimeError, match=r"create a new Bus\(\) for each 'async with' block"):
        async with bus:
            pass


async def test_body_exception_dead_letters_pending_events_with_shutdown() -> None:
    """An exception in the block dead-letters queued and in-flight events ('Shutdown'); none is lost."""
    blocked = anyio.Event()
    handled: list[int] = []
    cancelled: list[int] = []

    async def handler(event: Ping) -> None:
        if event.n < 3:
            handled.append(event.n)
            return
        blocked.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(event.n)

    bus = Bus()
    bus.subscribe(Ping, handler, name="h", concurrency=2)

    async def run() -> None:
        async with bus:
            for n in range(8):
                await bus.publish(Ping(n))
            await blocked.wait()
            await settle()
            metrics = bus.metrics()["h"]
            assert (metrics.succeeded, metrics.in_flight, metrics.queued) == (3, 2, 3)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await run()
    metrics = bus.metrics()["h"]
    assert metrics.accepted == 8
    assert (metrics.succeeded, metrics.dead_lettered) == (3, 5)
    assert (metrics.in_flight, metrics.queued, metrics.waiting_retry) == (0, 0, 0)
    letters = list(bus.dead_letters)
    assert sorted(letter.event.n for letter in letters) == [3, 4, 5, 6, 7]  # type: ignore[attr-defined]
    assert {letter.condition for letter in letters} == {"Shutdown"}
    assert sorted(handled) == [0, 1, 2]
    assert sorted(cancelled) == [3, 4]
    assert bus.outstanding == 0


async def test_body_exception_dead_letters_events_waiting_for_retry(
    fake_clock: FakeClock,
) -> None:
    """An event waiting for its retry at shutdown is dead-lettered ('Shutdown'), keeping its attempts."""

    async def fail(event: Ping) -> None:
        raise RuntimeError("down")

    bus = Bus(clock=fake_clock, retry=ExponentialBackoff(initial=60, jitter=False))
    bus.subscribe(Ping, fail, name="fail")

    async def run() -> None:
        async with bus:
            await bus.publish(Ping())
            await settle()
            assert bus.metrics()["fail"].waiting_retry == 1
            raise KeyError("stop")

    with pytest.raises(KeyError):
        await run()
    [letter] = bus.dead_letters
    assert (letter.condition, letter.attempts) == ("Shutdown", 1)
    metrics = bus.metrics()["fail"]
    assert (metrics.accepted, metrics.dead_lettered, metrics.waiting_retry) == (1, 1, 0)


async def test_body_exception_dead_letters_ordered_events_waiting_for_retry(
    fake_clock: FakeClock,
) -> None:
    """An ordered event holding its key while it waits to be retried is dead-lettered at shutdown."""

    async def fail(event: Ping) -> None:
        raise RuntimeError("down")

    bus = Bus(clock=fake_clock, retry=ExponentialBackoff(initial=60, jitter=False))
    bus.subscribe(Ping, fail, name="ordered", ordered_by="key")
    first, behind = Ping(1), Ping(2)

    async def run() -> None:
        async with bus:
            await bus.publish(first)
            await bus.publish(behind)
            await settle()
            metrics = bus.metrics()["ordered"]
            assert (metrics.waiting_retry, metrics.queued) == (1, 1)
            raise KeyError("stop")

    with pytest.raises(KeyError):
        await run()
    letters = {letter.event.id: letter for letter in bus.dead_letters}
    assert set(letters) == {first.id, behind.id}
    assert (letters[first.id].condition, letters[first.id].attempts) == ("Shutdown", 1)
    assert (letters[behind.id].condition, letters[behind.id].attempts) == ("Shutdown", 0)
    metrics = bus.metrics()["ordered"]
    assert metrics.dead_lettered == metrics.accepted == 2
    assert (metrics.in_flight, metrics.queued, metrics.waiting_retry) == (0, 0, 0)
    assert bus.outstanding == 0


async def test_cancelling_the_block_dead_letters_pending_events() -> None:
    """Cancellation of the block also dead-letters what is pending, and is not swallowed."""
    gate = anyio.Event()

    async def stuck(event: Ping) -> None:
        await gate.wait()

    bus = Bus()
    bus.subscribe(Ping, stuck, name="stuck")
    with anyio.CancelScope() as scope:
        async with bus:
            for n in range(3):
                await bus.publish(Ping(n))
            scope.cancel()
            await anyio.lowlevel.checkpoint()
            raise AssertionError("not reached: the scope was cancelled")
    assert scope.cancelled_caught
    assert [letter.condition for letter in bus.dead_letters] == ["Shutdown"] * 3
    assert bus.metrics()["stuck"].dead_lettered == 3


def test_bus_arguments_are_validated() -> None:
    """Bus() rejects bad arguments with messages saying what to pass."""
    with pytest.raises(TypeError, match=r"Bus\(transport=\.\.\.\) needs a Transport"):
        Bus(transport=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Bus\(retry=\.\.\.\) needs a RetryPolicy"):
        Bus(retry=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Bus\(dead_letters=\.\.\.\) needs a DeadLetterSink"):
        Bus(dead_letters=[])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Bus\(clock=\.\.\.\) needs a Clock"):
        Bus(clock=object())  # type: ignore[arg-type]
    for depth in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match=r"Bus\(max_chain_depth=\.\.\.\) must be an int >= 1"):
            Bus(max_chain_depth=depth)  # type: ignore[arg-type]


def test_bus_defaults() -> None:
    """A new bus has a memory dead-letter sink, exponential backoff and no subscriptions."""
    bus = Bus()
    assert len(bus.dead_letters) == 0
    assert isinstance(bus.retry, ExponentialBackoff)
    assert bus.subscriptions() == ()
    assert bus.metrics() == {}
    assert Bus(retry=NoRetry()).retry == NoRetry()


async def test_unsubscribe_finishes_accepted_events_and_stops_routing() -> None:
    """unsubscribe() lets accepted events finish, then the subscription receives nothing more."""
    gate = anyio.Event()
    seen: list[int] = []

    async def slow(event: _UnsubEvent) -> None:
        await gate.wait()
        seen.append(event.n)

    async with Bus() as bus:
        bus.subscribe(_UnsubEvent, slow, name="slow")
        await bus.publish(_UnsubEvent(1))
        await bus.publish(_UnsubEvent(2))
        async with anyio.create_task_group() as tg:
            tg.start_soon(bus.unsubscribe, "slow")
            await anyio.lowlevel.checkpoint()
            receipt = await bus.publish(_UnsubEvent(3))  # routing already stopped
            assert receipt.subscriptions == ()
            gate.set()
        assert not bus.has_subscription("slow")
        assert "slow" not in bus.metrics()
        with pytest.raises(UnknownSubscription):
            await bus.unsubscribe("slow")
    assert seen == [1, 2]


async def test_unsubscribe_right_after_subscribe_starts_no_workers() -> None:
    """Removed before its workers got to start, a subscription never starts them."""

    async def handle(event: _UnsubEvent) -> None:
        pass

    async with Bus() as bus:
        await anyio.lowlevel.checkpoint()
        before = len(asyncio.all_tasks())
        bus.subscribe(_UnsubEvent, handle, name="brief", concurrency=8)
        await bus.unsubscribe("brief")
        await settle()
        assert len(asyncio.all_tasks()) == before


@attrs.frozen
class _UnsubEvent(Event):
    n: int


async def test_handlers_may_publish_while_the_bus_drains_on_close() -> None:
    """A chain started before close completes: bus.publish from a handler works during the drain."""
    finished: list[int] = []

    async with Bus() as bus:

        async def first(event: _UnsubEvent) -> None:
            await anyio.lowlevel.checkpoint()  # still running when the block exits
            await bus.publish(_Second(event.n))

        async def second(event: _Second) -> None:
            finished.append(event.n)

        bus.subscribe(_UnsubEvent, first, name="first")
        bus.subscribe(_Second, second, name="second")
        await bus.publish(_UnsubEvent(5))
        assert bus.accepting
    assert finished == [5]
    assert not bus.accepting


async def test_outsiders_cannot_publish_while_the_bus_drains() -> None:
    """During the close drain, only the bus's own handlers are accepting; others get BusClosed."""
    gate = anyio.Event()
    refused: list[BaseException] = []

    async with anyio.create_task_group() as tg:
        bus = Bus()

        async def slow(event: _UnsubEvent) -> None:
            await gate.wait()

        bus.subscribe(_UnsubEvent, slow, name="slow")

        async def outsider() -> None:
            while bus.running:
                await anyio.lowlevel.checkpoint()
            try:
                await bus.publish(_UnsubEvent(2))
            except BusClosed as exc:
                refused.append(exc)
            gate.set()

        async with bus:
            await bus.publish(_UnsubEvent(1))
            tg.start_soon(outsider)
    assert len(refused) == 1


@attrs.frozen
class _Second(Event):
    n: int
