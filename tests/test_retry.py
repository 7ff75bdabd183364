"""Retry policies as units, and retries and timeouts as the bus applies them (on virtual time)."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.to_thread
import attrs
import pytest

from eventbus import (
    Bus,
    Context,
    Event,
    ExponentialBackoff,
    GiveUp,
    HandlerTimeout,
    InvocationError,
    NoRetry,
    RetryPolicy,
)
from eventbus.testing import FakeClock
from eventbus.testing._clock import _wait_all_tasks_blocked as settle

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)  # the fake_clock fixture's start


@attrs.frozen
class Task(Event):
    n: int = 0


BOOM = RuntimeError("boom")


# -- ExponentialBackoff as a unit --------------------------------------------------------


def test_delays_grow_exponentially_up_to_max_delay() -> None:
    """Without jitter, delays are initial * multiplier ** (attempt - 1), capped at max_delay."""
    policy = ExponentialBackoff(
        max_attempts=10, initial=1, multiplier=2, max_delay=5, jitter=False, max_event_age=None
    )
    assert [policy.next_delay(BOOM, attempt, 0) for attempt in range(1, 6)] == [1, 2, 4, 5, 5]


def test_other_multiplier_and_initial() -> None:
    """initial and multiplier shape the sequence."""
    policy = ExponentialBackoff(max_attempts=5, initial=0.5, multiplier=3, jitter=False)
    assert [policy.next_delay(BOOM, attempt, 0) for attempt in (1, 2, 3)] == [0.5, 1.5, 4.5]


def test_jitter_stays_between_zero_and_the_backoff() -> None:
    """With jitter, each delay is drawn uniformly between 0 and the un-jittered delay."""
    random.seed(42)
    policy = ExponentialBackoff(max_attempts=10, initial=1, multiplier=2, max_delay=6)
    for attempt, cap in [(1, 1), (2, 2), (3, 4), (4, 6), (5, 6)]:
        delays = [policy.next_delay(BOOM, attempt, 0) for _ in range(200)]
        assert all(isinstance(d, float) and 0 <= d <= cap for d in delays)
        assert len(set(delays)) > 1


def test_max_attempts_counts_the_first_attempt() -> None:
    """max_attempts=3 allows two retries; the third failure gives up (RetriesExhausted)."""
    policy = ExponentialBackoff(max_attempts=3, jitter=False)
    assert isinstance(policy.next_delay(BOOM, 1, 0), float)
    assert isinstance(policy.next_delay(BOOM, 2, 0), float)
    assert policy.next_delay(BOOM, 3, 0) == GiveUp("RetriesExhausted")


def test_max_attempts_one_never_retries() -> None:
    """max_attempts=1 gives up after the first failure."""
    assert ExponentialBackoff(max_attempts=1).next_delay(BOOM, 1, 0) == GiveUp("RetriesExhausted")


def test_retry_on_limits_what_is_retried() -> None:
    """An exception outside retry_on is not retried (NotRetryable)."""
    policy = ExponentialBackoff(retry_on=(ConnectionError, TimeoutError), jitter=False)
    assert policy.next_delay(ConnectionResetError(), 1, 0) == 1.0
    assert policy.next_delay(ValueError(), 1, 0) == GiveUp("NotRetryable")


def test_retry_on_accepts_a_single_class() -> None:
    """retry_on= may be a single exception class."""
    policy = ExponentialBackoff(retry_on=KeyError)
    assert policy.retry_on == (KeyError,)
    assert policy.next_delay(ValueError(), 1, 0) == GiveUp("NotRetryable")


def test_give_up_on_wins_over_retry_on() -> None:
    """An exception in give_up_on is never retried, even though retry_on covers it."""
    policy = ExponentialBackoff(give_up_on=(PermissionError,), jitter=False)
    assert policy.next_delay(PermissionError(), 1, 0) == GiveUp("NotRetryable")
    assert policy.next_delay(OSError(), 1, 0) == 1.0


def test_max_event_age_gives_up_when_the_retry_would_be_too_late() -> None:
    """If the event would be older than max_event_age at the retry, give up (EventAgeExceeded)."""
    policy = ExponentialBackoff(max_attempts=5, initial=10, jitter=False, max_event_age=100)
    assert policy.next_delay(BOOM, 1, 90) == 10
    assert policy.next_delay(BOOM, 1, 90.5) == GiveUp("EventAgeExceeded")
    assert policy.next_delay(BOOM, 1, 500) == GiveUp("EventAgeExceeded")


def test_max_event_age_none_means_no_limit() -> None:
    """max_event_age=None never gives up on age."""
    policy = ExponentialBackoff(initial=1, jitter=False, max_event_age=None)
    assert policy.next_delay(BOOM, 1, 10**9) == 1


def test_defaults_follow_lambda() -> None:
    """The defaults: 3 attempts, 1 s initial delay doubling, jitter on, 6 hours max age."""
    policy = ExponentialBackoff()
    assert (policy.max_attempts, policy.initial, policy.multiplier) == (3, 1.0, 2.0)
    assert policy.jitter is True
    assert policy.max_event_age == 6 * 3600
    assert policy.retry_on == (Exception,)
    assert policy.give_up_on == ()


def test_no_retry_always_gives_up() -> None:
    """NoRetry gives up at the first failure (RetriesExhausted)."""
    assert NoRetry().next_delay(BOOM, 1, 0) == GiveUp("RetriesExhausted")


def test_built_in_policies_satisfy_the_protocol() -> None:
    """ExponentialBackoff and NoRetry are RetryPolicy implementations."""
    assert isinstance(ExponentialBackoff(), RetryPolicy)
    assert isinstance(NoRetry(), RetryPolicy)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"max_attempts": 0},
            ValueError,
            r"max_attempts=\.\.\.\) must be an int >= 1 \(1 means no retry\), got 0",
        ),
        ({"max_attempts": True}, ValueError, r"max_attempts=\.\.\.\) must be an int >= 1"),
        ({"max_attempts": 2.5}, ValueError, r"max_attempts=\.\.\.\) must be an int >= 1"),
        ({"initial": 0}, ValueError, r"initial=\.\.\.\) must be > 0, got 0"),
        ({"max_delay": -1}, ValueError, r"max_delay=\.\.\.\) must be > 0, got -1"),
        ({"max_event_age": 0}, ValueError, r"max_event_age=\.\.\.\) must be > 0, got 0"),
        ({"multiplier": 0.5}, ValueError, r"multiplier=\.\.\.\) must be >= 1, got 0\.5"),
        (
            {"retry_on": (int,)},
            TypeError,
            r"retry_on=\.\.\.\) must be a tuple of exception classes",
        ),
        (
            {"give_up_on": ("ValueError",)},
            TypeError,
            r"give_up_on=\.\.\.\) must be a tuple of exception classes",
        ),
        (
            {"retry_on": 5},
            TypeError,
            r"retry_on=\.\.\.\) must be a tuple of exception classes, got 5",
        ),
    ],
)
def test_invalid_parameters_are_refused(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Out-of-range parameters raise with a message naming the parameter."""
    with pytest.raises(error, match=rf"ExponentialBackoff\({message}"):
        ExponentialBackoff(**kwargs)


def test_policies_are_frozen_values() -> None:
    """Policies are immutable and compare by value."""
    assert ExponentialBackoff(max_attempts=4) == ExponentialBackoff(max_attempts=4)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ExponentialBackoff().max_attempts = 9  # type: ignore[misc]


# -- retries on the bus ------------------------------------------------------------------


def _failing(times: int, log: list[tuple[int, float]], clock: FakeClock) -> Any:
    async def handler(task: Task, ctx: Context) -> str:
        log.append((ctx.attempt, clock.now()))
        if ctx.attempt <= times:
            raise RuntimeError(f"failure {ctx.attempt}")
        return "ok"

    return handler


async def test_retries_wait_the_policy_delays(fake_clock: FakeClock) -> None:
    """Each retry runs after the delay the policy gave, in virtual time."""
    log: list[tuple[int, float]] = []
    retry = ExponentialBackoff(max_attempts=4, initial=1, multiplier=2, jitter=False)
    async with Bus(clock=fake_clock, retry=retry) as bus:
        bus.subscribe(Task, _failing(3, log, fake_clock), name="flaky")
        await bus.publish(Task())
        await settle()
        assert log == [(1, 0)]
        metrics = bus.metrics()["flaky"]
        assert (metrics.waiting_retry, metrics.in_flight, metrics.queued) == (1, 0, 0)
        await fake_clock.advance(0.999)
        assert log == [(1, 0)]
        await fake_clock.advance(10)
    assert log == [(1, 0), (2, 1), (3, 3), (4, 7)]
    metrics = bus.metrics()["flaky"]
    assert (metrics.succeeded, metrics.errors, metrics.retries, metrics.dead_lettered) == (
        1,
        3,
        3,
        0,
    )


async def test_exhausted_retries_dead_letter_the_event(fake_clock: FakeClock) -> None:
    """After max_attempts failures the event is dead-lettered with RetriesExhausted."""
    log: list[tuple[int, float]] = []
    retry = ExponentialBackoff(max_attempts=3, initial=2, jitter=False)
    async with Bus(clock=fake_clock, retry=retry) as bus:
        bus.subscribe(Task, _failing(99, log, fake_clock), name="broken")
        task = Task()
        await bus.publish(task)
        await fake_clock.advance(100)
    assert [attempt for attempt, _ in log] == [1, 2, 3]
    [letter] = bus.dead_letters
    assert letter.event is task
    assert letter.subscription == "broken"
    assert letter.condition == "RetriesExhausted"
    assert letter.attempts == 3
    assert letter.error.error_type == "RuntimeError"
    assert letter.error.error_message == "failure 3"
    assert letter.first_failure == EPOCH
    assert letter.last_failure == EPOCH + timedelta(seconds=6)
    metrics = bus.metrics()["broken"]
    assert (metrics.errors, metrics.retries, metrics.dead_lettered, metrics.succeeded) == (
        3,
        2,
        1,
        0,
    )


async def test_not_retryable_errors_dead_letter_at_once(fake_clock: FakeClock) -> None:
    """An error outside retry_on is dead-lettered after one attempt with NotRetryable."""
    attempts: list[int] = []

    async def handler(task: Task, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        raise ValueError("bad input")

    retry = ExponentialBackoff(retry_on=(ConnectionError,))
    async with Bus(clock=fake_clock, retry=retry) as bus:
        bus.subscribe(Task, handler, name="strict")
        await bus.publish(Task())
    assert attempts == [1]
    [letter] = bus.dead_letters
    assert (letter.condition, letter.attempts) == ("NotRetryable", 1)


async def test_too_old_events_are_dead_lettered_with_event_age_exceeded(
    fake_clock: FakeClock,
) -> None:
    """A failing event older than max_event_age is not retried (EventAgeExceeded)."""
    attempts: list[int] = []

    async def handler(task: Task, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        raise RuntimeError("down")

    retry = ExponentialBackoff(max_attempts=5, max_event_age=3600, jitter=False)
    async with Bus(clock=fake_clock, retry=retry) as bus:
        bus.subscribe(Task, handler, name="old")
        await bus.publish(Task(time=EPOCH - timedelta(hours=2)))
    assert attempts == [1]
    [letter] = bus.dead_letters
    assert letter.condition == "EventAgeExceeded"


async def test_event_age_is_measured_on_the_bus_clock(fake_clock: FakeClock) -> None:
    """Retries stop once virtual time makes the event too old."""
    attempts: list[int] = []

    async def handler(task: Task, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        raise RuntimeError("down")

    retry = ExponentialBackoff(
        max_attempts=10, initial=10, multiplier=1, jitter=False, max_event_age=25
    )
    async with Bus(clock=fake_clock, retry=retry) as bus:
        bus.subscribe(Task, handler, name="aging")
        await bus.publish(Task(time=EPOCH))
        await fake_clock.advance(100)
    assert attempts == [1, 2, 3]
    assert [letter.condition for letter in bus.dead_letters] == ["EventAgeExceeded"]


async def test_subscription_retry_overrides_the_bus_default(fake_clock: FakeClock) -> None:
    """retry= on subscribe replaces the bus-wide policy for that subscription."""
    log_a: list[tuple[int, float]] = []
    log_b: list[tuple[int, float]] = []
    async with Bus(clock=fake_clock, retry=ExponentialBackoff(max_attempts=3, jitter=False)) as bus:
        bus.subscribe(Task, _failing(99, log_a, fake_clock), name="default")
        bus.subscribe(Task, _failing(99, log_b, fake_clock), name="none", retry=NoRetry())
        await bus.publish(Task())
        await fake_clock.advance(100)
    assert len(log_a) == 3
    assert len(log_b) == 1


async def test_custom_policy_gets_error_attempt_and_age(fake_clock: FakeClock) -> None:
    """A RetryPolicy is called with the failure, the attempt that failed and the event age."""
    calls: list[tuple[str, int, float]] = []

    class Twice:
        def next_delay(
            self, error: BaseException, attempt: int, event_age: float
        ) -> float | GiveUp | None:
            calls.append((str(error), attempt, event_age))
            return 5.0 if attempt < 2 else None

    log: list[tuple[int, float]] = []
    async with Bus(clock=fake_clock, retry=Twice()) as bus:
        bus.subscribe(Task, _failing(99, log, fake_clock), name="custom")
        await bus.publish(Task(time=EPOCH - timedelta(seconds=30)))
        await fake_clock.advance(5)
    assert calls == [("failure 1", 1, 30.0), ("failure 2", 2, 35.0)]
    [letter] = bus.dead_letters
    assert letter.condition == "RetriesExhausted"


async def test_policy_may_choose_the_dead_letter_condition(fake_clock: FakeClock) -> None:
    """A policy returning GiveUp(condition) records that condition on the letter."""

    class Never:
        def next_delay(self, error: BaseException, attempt: int, event_age: float) -> GiveUp:
            return GiveUp("NotRetryable")

    async with Bus(clock=fake_clock, retry=Never()) as bus:
        bus.subscribe(Task, _failing(99, [], fake_clock), name="never")
        await bus.publish(Task())
    assert [letter.condition for letter in bus.dead_letters] == ["NotRetryable"]


async def test_unordered_retry_frees_the_worker(fake_clock: FakeClock) -> None:
    """While an unordered event waits for its retry, the worker handles other events."""
    done: list[int] = []

    async def handler(task: Task, ctx: Context) -> None:
        if task.n == 0 and ctx.attempt == 1:
            raise RuntimeError("later")
        done.append(task.n)

    async with Bus(clock=fake_clock, retry=ExponentialBackoff(initial=60, jitter=False)) as bus:
        bus.subscribe(Task, handler, name="one-worker", concurrency=1)
        for n in range(3):
            await bus.publish(Task(n))
        await settle()
        assert done == [1, 2]
        await fake_clock.advance(60)
    assert done == [1, 2, 0]


# -- timeouts ----------------------------------------------------------------------------


async def test_timeout_fails_the_attempt_then_retries_then_dead_letters(
    fake_clock: FakeClock,
) -> None:
    """A handler past its timeout fails with HandlerTimeout, is retried, then dead-lettered ('Timeout')."""
    attempts: list[int] = []

    async def hang(task: Task, ctx: Context) -> None:
        attempts.append(ctx.attempt)
        await anyio.sleep_forever()

    retry = ExponentialBackoff(max_attempts=2, initial=1, jitter=False)
    async with Bus(clock=fake_clock, retry=retry) as bus:
        bus.subscribe(Task, hang, name="slow", timeout=5)
        await bus.publish(Task())
        await fake_clock.advance(4.5)
        assert bus.metrics()["slow"].in_flight == 1
        await fake_clock.advance(0.5)
        metrics = bus.metrics()["slow"]
        assert (metrics.errors, metrics.timeouts, metrics.retries) == (1, 1, 1)
        assert metrics.waiting_retry == 1
        await fake_clock.advance(1)
        assert attempts == [1, 2]
        await fake_clock.advance(5)
    metrics = bus.metrics()["slow"]
    assert (metrics.errors, metrics.timeouts, metrics.dead_lettered) == (2, 2, 1)
    [letter] = bus.dead_letters
    assert letter.condition == "Timeout"
    assert letter.attempts == 2
    assert letter.error.error_type == "HandlerTimeout"
    assert "did not finish within its timeout of 5s (attempt 2" in letter.error.error_message
    assert isinstance(letter.exception, HandlerTimeout)


async def test_timeout_without_retries_is_dead_lettered_as_timeout(fake_clock: FakeClock) -> None:
    """With NoRetry, a timed-out event goes straight to the dead letters, condition Timeout."""

    async def hang(task: Task) -> None:
        await anyio.sleep_forever()

    async with Bus(clock=fake_clock, retry=NoRetry()) as bus:
        bus.subscribe(Task, hang, name="slow", timeout=2)
        await bus.publish(Task())
        await fake_clock.advance(2)
    assert [letter.condition for letter in bus.dead_letters] == ["Timeout"]


async def test_handler_finishing_in_time_is_not_timed_out(fake_clock: FakeClock) -> None:
    """A handler that completes before its deadline succeeds and leaves no timer behind."""

    async def quick(task: Task) -> None:
        await fake_clock.sleep_until(fake_clock.now() + 4)

    async with Bus(clock=fake_clock) as bus:
        bus.subscribe(Task, quick, name="quick", timeout=5)
        await bus.publish(Task())
        await fake_clock.advance(4)
    metrics = bus.metrics()["quick"]
    assert (metrics.succeeded, metrics.timeouts) == (1, 0)
    assert fake_clock.pending() == 0


async def test_invoke_timeout_raises_invocation_error(fake_clock: FakeClock) -> None:
    """invoke past the subscription's timeout raises InvocationError of type HandlerTimeout."""
    errors: list[InvocationError] = []

    async def hang(task: Task) -> None:
        await anyio.sleep_forever()

    async with Bus(clock=fake_clock) as bus:
        bus.subscribe(Task, hang, name="slow", timeout=3)

        async def call() -> None:
            try:
                await bus.invoke("slow", Task())
            except InvocationError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await fake_clock.advance(3)
    [err] = errors
    assert err.error_type == "HandlerTimeout"
    assert err.to_dict()["errorType"] == "HandlerTimeout"
    assert bus.metrics()["slow"].timeouts == 1


async def test_sync_handler_past_its_timeout_is_abandoned(fake_clock: FakeClock) -> None:
    """A plain ``def`` handler stuck past its timeout fails the attempt; the loop stops waiting."""
    unblock = threading.Event()
    entered = threading.Event()

    def stuck(task: Task) -> None:
        entered.set()
        unblock.wait()

    try:
        async with Bus(clock=fake_clock, retry=NoRetry()) as bus:
            bus.subscribe(Task, stuck, name="stuck", timeout=1)
            await bus.publish(Task())
            await anyio.to_thread.run_sync(entered.wait)
            await fake_clock.advance(1)
    finally:
        unblock.set()
    assert [letter.condition for letter in bus.dead_letters] == ["Timeout"]
    assert bus.metrics()["stuck"].timeouts == 1


def test_handler_timeout_is_a_timeout_error() -> None:
    """HandlerTimeout is also the builtin TimeoutError."""
    assert issubclass(HandlerTimeout, TimeoutError)
