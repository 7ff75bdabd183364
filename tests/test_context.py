"""The handler Context: invocation facts, the bound logger, follow-ups and loop cutting."""

from __future__ import annotations

import itertools
import logging
import math

import anyio
import attrs
import pytest

from eventbus import Bus, Context, Event, ExponentialBackoff, LoopDetected, NoRetry, Receipt
from eventbus.testing import FakeClock
from eventbus.testing._clock import _wait_all_tasks_blocked as settle


@attrs.frozen
class Step(Event):
    n: int = 0


@attrs.frozen
class Echo(Event):
    n: int = 0


# -- invocation facts ------------------------------------------------------------------


async def test_attempt_counts_up_on_retries(fake_clock: FakeClock) -> None:
    """ctx.attempt is 1 on the first try and grows by one on each retry."""
    attempts: list[int] = []

    async def flaky(event: Step, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise RuntimeError("again")

    retry = ExponentialBackoff(max_attempts=5, initial=1, jitter=False)
    async with Bus(clock=fake_clock, retry=retry) as bus:
        bus.subscribe(Step, flaky)
        await bus.publish(Step())
        await fake_clock.advance(10)
    assert attempts == [1, 2, 3]


async def test_invocation_ids_are_unique_per_attempt(fake_clock: FakeClock) -> None:
    """Every attempt of every event gets its own invocation id."""
    ids: list[str] = []

    async def flaky(event: Step, ctx: Context) -> None:
        ids.append(ctx.invocation_id)
        if ctx.attempt == 1:
            raise RuntimeError("again")

    async with Bus(clock=fake_clock, retry=ExponentialBackoff(initial=1, jitter=False)) as bus:
        bus.subscribe(Step, flaky)
        for n in range(5):
            await bus.publish(Step(n))
        await fake_clock.advance(1)
    assert len(ids) == 10
    assert len(set(ids)) == 10
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


async def test_context_names_subscription_and_event() -> None:
    """ctx.subscription is the subscription's name and ctx.event the event handled."""
    seen: list[tuple[str, Event]] = []

    async def handler(event: Step, ctx: Context) -> None:
        seen.append((ctx.subscription, ctx.event))

    async with Bus() as bus:
        bus.subscribe(Step, handler, name="stepper")
        step = Step()
        await bus.publish(step)
    assert seen == [("stepper", step)]


async def test_remaining_time_counts_down_on_the_bus_clock(fake_clock: FakeClock) -> None:
    """With a timeout, deadline is fixed at the start and remaining_time() shrinks with the clock."""
    readings: list[float] = []
    deadlines: list[float | None] = []
    checkpoint = anyio.Event()

    async def handler(event: Step, ctx: Context) -> None:
        deadlines.append(ctx.deadline)
        readings.append(ctx.remaining_time())
        await fake_clock.sleep_until(fake_clock.now() + 3)
        readings.append(ctx.remaining_time())
        checkpoint.set()

    await fake_clock.advance(100)
    async with Bus(clock=fake_clock) as bus:
        bus.subscribe(Step, handler, timeout=10)
        await bus.publish(Step())
        await settle()
        await fake_clock.advance(3)
        await checkpoint.wait()
    assert deadlines == [110]
    assert readings == [10, 7]


async def test_remaining_time_is_infinite_without_timeout() -> None:
    """Without a timeout, deadline is None and remaining_time() is infinite."""
    seen: list[tuple[float | None, float]] = []

    async def handler(event: Step, ctx: Context) -> None:
        seen.append((ctx.deadline, ctx.remaining_time()))

    async with Bus() as bus:
        bus.subscribe(Step, handler)
        await bus.publish(Step())
    assert seen == [(None, math.inf)]


async def test_remaining_time_never_goes_negative(fake_clock: FakeClock) -> None:
    """Past the deadline remaining_time() is 0, not negative."""
    readings: list[float] = []

    async def handler(event: Step, ctx: Context) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            readings.append(ctx.remaining_time())

    async with Bus(clock=fake_clock, retry=NoRetry()) as bus:
        bus.subscribe(Step, handler, timeout=2)
        await bus.publish(Step())
        await fake_clock.advance(5)
    assert readings == [0.0]


async def test_logger_records_carry_the_invocation(caplog: pytest.LogCaptureFixture) -> None:
    """ctx.logger logs to 'eventbus.handler' with subscription, invocation, event and attempt ids."""
    caplog.set_level(logging.INFO, logger="eventbus.handler")
    ids: list[str] = []

    async def handler(event: Step, ctx: Context) -> None:
        ids.append(ctx.invocation_id)
        ctx.logger.info("handling step %d", event.n)
        assert ctx.logger is ctx.logger

    async with Bus() as bus:
        bus.subscribe(Step, handler, name="stepper")
        step = Step(4)
        await bus.publish(step)
    [record] = caplog.records
    assert record.name == "eventbus.handler"
    assert record.getMessage() == "handling step 4"
    assert record.subscription == "stepper"  # type: ignore[attr-defined]
    assert record.invocation_id == ids[0]  # type: ignore[attr-defined]
    assert record.event_id == step.id  # type: ignore[attr-defined]
    assert record.attempt == 1  # type: ignore[attr-defined]


async def test_context_repr() -> None:
    """The repr names the subscription, attempt and invocation id."""
    reprs: list[str] = []

    async def handler(event: Step, ctx: Context) -> None:
        reprs.append(repr(ctx))
        reprs.append(ctx.invocation_id)

    async with Bus() as bus:
        bus.subscribe(Step, handler, name="stepper")
        await bus.publish(Step())
    text, invocation_id = reprs
    assert text == f"Context(subscription='stepper', attempt=1, invocation_id='{invocation_id}')"


# -- follow-ups ------------------------------------------------------------------------


async def test_publish_stamps_correlation_and_causation() -> None:
    """ctx.publish sets causation_id to the handled event and correlation_id to the chain's root."""
    seen: list[Event] = []

    async def first(event: Step, ctx: Context) -> None:
        await ctx.publish(Echo(event.n))

    async def second(event: Echo, ctx: Context) -> None:
        seen.append(event)
        if event.n < 2:
            await ctx.publish(Step(event.n + 1))

    async def watch(event: Step) -> None:
        seen.append(event)

    async with Bus() as bus:
        bus.subscribe(Step, first)
        bus.subscribe(Echo, second)
        bus.subscribe(Step, watch)
        root = Step(0)
        await bus.publish(root)
    chain = sorted(seen, key=lambda e: (e.n, isinstance(e, Echo)))  # type: ignore[attr-defined]
    assert [type(e).__name__ for e in chain] == ["Step", "Echo", "Step", "Echo", "Step", "Echo"]
    assert chain[0] is root
    assert root.correlation_id is None
    for parent, child in itertools.pairwise(chain):
        assert child.causation_id == parent.id
        assert child.correlation_id == root.id


async def test_publish_keeps_an_existing_correlation_id() -> None:
    """A root event's own correlation_id is carried down the chain."""
    seen: list[Echo] = []

    async def first(event: Step, ctx: Context) -> None:
        await ctx.publish(Echo())

    async def second(event: Echo) -> None:
        seen.append(event)

    async with Bus() as bus:
        bus.subscribe(Step, first)
        bus.subscribe(Echo, second)
        root = Step(correlation_id="request-42")
        await bus.publish(root)
    [echo] = seen
    assert (echo.correlation_id, echo.causation_id) == ("request-42", root.id)


async def test_publish_keeps_ids_set_on_the_follow_up() -> None:
    """Ids already set on the follow-up event are left alone."""
    seen: list[Echo] = []

    async def first(event: Step, ctx: Context) -> None:
        await ctx.publish(Echo(correlation_id="mine", causation_id="also-mine"))

    async def second(event: Echo) -> None:
        seen.append(event)

    async with Bus() as bus:
        bus.subscribe(Step, first)
        bus.subscribe(Echo, second)
        await bus.publish(Step())
    assert [(e.correlation_id, e.causation_id) for e in seen] == [("mine", "also-mine")]


async def test_publish_returns_the_receipt() -> None:
    """ctx.publish returns the Receipt of the follow-up."""
    receipts: list[Receipt] = []

    async def first(event: Step, ctx: Context) -> None:
        receipts.append(await ctx.publish(Echo()))

    async def second(event: Echo) -> None:
        pass

    async with Bus() as bus:
        bus.subscribe(Step, first, name="first")
        bus.subscribe(Echo, second, name="second")
        await bus.publish(Step())
    [receipt] = receipts
    assert receipt.subscriptions == ("second",)


# -- loop cutting ----------------------------------------------------------------------


def _looper(chain: list[Step], receipts: list[Receipt]) -> object:
    async def loop(event: Step, ctx: Context) -> None:
        chain.append(event)
        receipts.append(await ctx.publish(Step(event.n + 1)))

    return loop


async def test_self_publishing_loop_is_cut_at_depth_16() -> None:
    """A handler re-publishing its own event type forever is cut after 16 follow-ups."""
    chain: list[Step] = []
    receipts: list[Receipt] = []
    async with Bus() as bus:
        bus.subscribe(Step, _looper(chain, receipts), name="loop")  # type: ignore[arg-type]
        root = Step(0)
        await bus.publish(root)
    assert [e.n for e in chain] == list(range(17))
    [letter] = bus.dead_letters
    cut = letter.event
    assert isinstance(cut, Step)
    assert cut.n == 17
    assert letter.condition == "RecursiveLoop"
    assert letter.subscription == "loop"
    assert letter.attempts == 0
    assert letter.error.error_type == "LoopDetected"
    assert "would be chain depth 17, past max_chain_depth=16" in letter.error.error_message
    assert isinstance(letter.exception, LoopDetected)
    assert receipts[-1] == Receipt(cut.id, ("loop",))
    metrics = bus.metrics()["loop"]
    assert (metrics.accepted, metrics.succeeded, metrics.dead_lettered) == (18, 17, 1)


async def test_ids_are_stamped_along_the_whole_chain() -> None:
    """Along a cut loop, each event's causation is its parent and correlation the root."""
    chain: list[Step] = []
    async with Bus() as bus:
        bus.subscribe(Step, _looper(chain, []), name="loop")  # type: ignore[arg-type]
        root = Step(0)
        await bus.publish(root)
    [letter] = bus.dead_letters
    full = [*chain, letter.event]
    assert full[0] is root
    for parent, child in itertools.pairwise(full):
        assert child.causation_id == parent.id
        assert child.correlation_id == root.id


async def test_max_chain_depth_is_configurable() -> None:
    """Bus(max_chain_depth=3) lets three follow-ups through and cuts the fourth."""
    chain: list[Step] = []
    async with Bus(max_chain_depth=3) as bus:
        bus.subscribe(Step, _looper(chain, []), name="loop")  # type: ignore[arg-type]
        await bus.publish(Step(0))
    assert [e.n for e in chain] == [0, 1, 2, 3]
    assert [(letter.event.n, letter.condition) for letter in bus.dead_letters] == [  # type: ignore[attr-defined]
        (4, "RecursiveLoop")
    ]


async def test_loop_through_two_subscriptions_is_cut() -> None:
    """A ping-pong between two handlers is cut too, whichever subscription is next."""
    handled: list[str] = []

    async def ping(event: Step, ctx: Context) -> None:
        handled.append("ping")
        await ctx.publish(Echo(event.n + 1))

    async def pong(event: Echo, ctx: Context) -> None:
        handled.append("pong")
        await ctx.publish(Step(event.n + 1))

    async with Bus(max_chain_depth=5) as bus:
        bus.subscribe(Step, ping, name="ping")
        bus.subscribe(Echo, pong, name="pong")
        await bus.publish(Step(0))
    assert handled == ["ping", "pong"] * 3
    [letter] = bus.dead_letters
    assert (letter.subscription, letter.event.n, letter.condition) == ("ping", 6, "RecursiveLoop")  # type: ignore[attr-defined]


async def test_cut_event_is_dead_lettered_in_every_subscription_it_would_reach() -> None:
    """The cut event is not delivered anywhere; each matching subscription dead-letters it."""
    chain: list[Step] = []
    watched: list[int] = []

    async def watch(event: Step) -> None:
        watched.append(event.n)

    async with Bus(max_chain_depth=2) as bus:
        bus.subscribe(Step, _looper(chain, []), name="loop")  # type: ignore[arg-type]
        bus.subscribe(Step, watch, name="watch")
        await bus.publish(Step(0))
    assert sorted(watched) == [0, 1, 2]
    letters = sorted((letter.subscription, letter.event.n) for letter in bus.dead_letters)  # type: ignore[attr-defined]
    assert letters == [("loop", 3), ("watch", 3)]


async def test_chain_within_the_limit_completes() -> None:
    """A chain exactly max_chain_depth follow-ups deep is delivered in full."""
    chain: list[int] = []

    async def countdown(event: Step, ctx: Context) -> None:
        chain.append(event.n)
        if event.n < 16:
            await ctx.publish(Step(event.n + 1))

    async with Bus() as bus:
        bus.subscribe(Step, countdown)
        await bus.publish(Step(0))
    assert chain == list(range(17))
    assert len(bus.dead_letters) == 0


async def test_cutting_a_loop_logs_an_error(caplog: pytest.LogCaptureFixture) -> None:
    """A cut loop is logged as an error."""
    async with Bus(max_chain_depth=1) as bus:
        bus.subscribe(Step, _looper([], []), name="loop")  # type: ignore[arg-type]
        await bus.publish(Step(0))
    assert any(
        r.levelno == logging.ERROR and "recursive loop cut" in r.getMessage()
        for r in caplog.records
    )


async def test_retried_handler_keeps_its_chain_depth(fake_clock: FakeClock) -> None:
    """Follow-ups published again on a retry have the same depth, so they are not cut."""
    handled: list[tuple[int, int]] = []
    follow_ups: list[Step] = []

    async def flaky(event: Step, ctx: Context) -> None:
        handled.append((event.n, ctx.attempt))
        await ctx.publish(Step(event.n + 1))
        if ctx.attempt == 1:
            raise RuntimeError("publish, then fail")

    async def record(event: Step) -> None:
        follow_ups.append(event)

    retry = ExponentialBackoff(max_attempts=2, initial=1, jitter=False)
    async with Bus(clock=fake_clock, retry=retry, max_chain_depth=1) as bus:
        bus.subscribe(Step, flaky, name="flaky", where=lambda e: e.n == 0)
        bus.subscribe(Step, record, name="record", where=lambda e: e.n > 0)
        await bus.publish(Step(0))
        await fake_clock.advance(1)
    assert handled == [(0, 1), (0, 2)]
    assert [e.n for e in follow_ups] == [1, 1]
    assert len(bus.dead_letters) == 0


async def test_sync_handler_publishes_follow_ups_from_its_thread() -> None:
    """A plain def handler stamps and publishes follow-ups with ctx.publish_from_thread."""
    followed: list[Echo] = []

    def relay(event: Step, ctx: Context) -> None:
        ctx.publish_from_thread(Echo(event.n))

    async def record(event: Echo) -> None:
        followed.append(event)

    async with Bus() as bus:
        bus.subscribe(Step, relay, name="relay")
        bus.subscribe(Echo, record, name="record")
        origin = Step(7)
        await bus.publish(origin)
    (echo,) = followed
    assert echo.n == 7
    assert echo.causation_id == origin.id
    assert echo.correlation_id == origin.id


async def test_publish_from_thread_on_the_loop_thread_is_refused() -> None:
    """Calling ctx.publish_from_thread inside an async handler raises instead of deadlocking."""
    errors: list[BaseException] = []

    async def wrong(event: Step, ctx: Context) -> None:
        try:
            ctx.publish_from_thread(Echo(1))
        except RuntimeError as exc:
            errors.append(exc)

    async with Bus() as bus:
        bus.subscribe(Step, wrong, name="wrong")
        await bus.publish(Step())
    assert len(errors) == 1
