"""Dead letters: the letter, the in-memory sink, custom sinks and redrive."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from eventbus import (
    Bus,
    DeadLetter,
    DeadLetterSink,
    ErrorInfo,
    Event,
    MemoryDeadLetters,
    NoRetry,
)

WHEN = datetime(2024, 1, 1, tzinfo=UTC)


@attrs.frozen
class Charge(Event):
    amount: int = 0


def _letter(n: int, subscription: str = "billing") -> DeadLetter:
    return DeadLetter(
        event=Charge(n),
        subscription=subscription,
        error=ErrorInfo("RuntimeError", f"failure {n}"),
        attempts=3,
        first_failure=WHEN,
        last_failure=WHEN,
    )


async def _always_fail(event: Charge) -> None:
    raise RuntimeError(f"cannot charge {event.amount}")


# -- the letter and the error shape ----------------------------------------------------


def test_error_info_from_exception_has_lambda_shape() -> None:
    """ErrorInfo describes an exception as Lambda does, with the traceback lines."""
    try:
        raise KeyError("missing")
    except KeyError as exc:
        info = ErrorInfo.from_exception(exc)
    assert info.error_type == "KeyError"
    assert info.error_message == "'missing'"
    assert info.stack_trace
    assert all(isinstance(line, str) for line in info.stack_trace)
    assert 'raise KeyError("missing")' in info.stack_trace[-1]
    assert info.to_dict() == {
        "errorType": "KeyError",
        "errorMessage": "'missing'",
        "stackTrace": list(info.stack_trace),
    }


def test_dead_letter_defaults_and_identity() -> None:
    """A letter gets its own id, RetriesExhausted by default, and ignores the exception in equality."""
    letter = _letter(1)
    assert letter.condition == "RetriesExhausted"
    assert len(letter.id) == 32
    assert letter.id != _letter(1).id
    assert attrs.evolve(letter, exception=ValueError()) == letter


def test_dead_letter_is_frozen() -> None:
    """Letters are immutable."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        _letter(1).attempts = 5  # type: ignore[misc]


async def test_letter_records_the_failure() -> None:
    """A dead letter carries the event, subscription, last error, attempts and condition."""
    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Charge, _always_fail, name="billing")
        charge = Charge(5)
        await bus.publish(charge)
    [letter] = bus.dead_letters
    assert letter.event is charge
    assert letter.subscription == "billing"
    assert letter.attempts == 1
    assert letter.condition == "RetriesExhausted"
    assert letter.error.error_type == "RuntimeError"
    assert letter.error.error_message == "cannot charge 5"
    assert "_always_fail" in letter.error.stack_trace[-1]
    assert isinstance(letter.exception, RuntimeError)
    assert letter.first_failure.tzinfo is not None
    assert letter.first_failure <= letter.last_failure


async def test_dead_lettering_logs_an_error(caplog: pytest.LogCaptureFixture) -> None:
    """Giving up on an event logs an error naming the subscription, the event and the reason."""
    caplog.set_level(logging.ERROR, logger="eventbus")
    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Charge, _always_fail, name="billing")
        charge = Charge(5)
        await bus.publish(charge)
    [record] = [r for r in caplog.records if r.name == "eventbus"]
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert "'billing' dead-lettered event" in message
    assert charge.id in message
    assert "[RetriesExhausted]" in message
    assert "RuntimeError: cannot charge 5" in message


# -- MemoryDeadLetters -----------------------------------------------------------------


async def test_memory_sink_iterates_oldest_first_and_has_len() -> None:
    """The memory sink keeps letters in arrival order; len() counts them."""
    sink = MemoryDeadLetters()
    letters = [_letter(n) for n in range(3)]
    for letter in letters:
        await sink.put(letter)
    assert list(sink) == letters
    assert len(sink) == 3


def test_empty_memory_sink_is_still_truthy() -> None:
    """An empty sink is truthy, so ``sink or default`` never replaces it."""
    sink = MemoryDeadLetters()
    assert len(sink) == 0
    assert bool(sink) is True


def test_iteration_is_a_snapshot() -> None:
    """Iterating while letters are added does not fail."""
    sink = MemoryDeadLetters()
    sink.append(_letter(1))
    for _ in sink:
        sink.append(_letter(2))
    assert len(sink) == 2


def test_maxlen_evicts_the_oldest_and_counts_it(caplog: pytest.LogCaptureFixture) -> None:
    """Past maxlen the oldest letter is evicted, counted in evicted and logged."""
    sink = MemoryDeadLetters(maxlen=2)
    letters = [_letter(n) for n in range(5)]
    for letter in letters:
        sink.append(letter)
    assert list(sink) == letters[3:]
    assert sink.evicted == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert letters[0].id in warnings[0].getMessage()
    assert "MemoryDeadLetters(maxlen=2) is full" in warnings[0].getMessage()


@pytest.mark.parametrize("bad", [0, -1, True])
def test_maxlen_must_be_positive(bad: int) -> None:
    """maxlen must be at least 1 (or None)."""
    with pytest.raises(
        ValueError, match=r"MemoryDeadLetters\(maxlen=\.\.\.\) must be >= 1 or None"
    ):
        MemoryDeadLetters(maxlen=bad)


def test_clear_and_remove() -> None:
    """clear() forgets everything; remove() forgets one letter by id."""
    sink = MemoryDeadLetters()
    first, second = _letter(1), _letter(2)
    sink.append(first)
    sink.append(second)
    sink.remove(attrs.evolve(first))
    assert list(sink) == [second]
    sink.clear()
    assert len(sink) == 0


def test_memory_sink_satisfies_the_protocol() -> None:
    """MemoryDeadLetters is a DeadLetterSink."""
    assert isinstance(MemoryDeadLetters(), DeadLetterSink)


# -- redrive ---------------------------------------------------------------------------


async def test_redrive_delivers_only_to_the_original_subscription() -> None:
    """redrive sends each letter back to the subscription it failed in; it goes once settled."""
    healed = False
    seen: dict[str, list[int]] = {"billing": [], "audit": []}

    async def billing(event: Charge) -> None:
        if not healed:
            raise RuntimeError("card service down")
        seen["billing"].append(event.amount)

    async def audit(event: Charge) -> None:
        seen["audit"].append(event.amount)

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Charge, billing, name="billing")
        bus.subscribe(Charge, audit, name="audit")
        for amount in (1, 2):
            await bus.publish(Charge(amount))
        await bus.drain()
        assert [letter.event.amount for letter in bus.dead_letters] == [1, 2]  # type: ignore[attr-defined]
        healed = True
        assert await bus.dead_letters.redrive(bus) == 2
        await bus.drain()
        assert len(bus.dead_letters) == 0
    assert seen == {"billing": [1, 2], "audit": [1, 2]}
    metrics = bus.metrics()
    assert (metrics["billing"].accepted, metrics["billing"].succeeded) == (4, 2)
    assert metrics["audit"].accepted == 2


async def test_redrive_can_select_one_subscription() -> None:
    """redrive(subscription=...) leaves other subscriptions' letters in place."""
    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Charge, _always_fail, name="a")
        bus.subscribe(Charge, _always_fail, name="b")
        await bus.publish(Charge())
        await bus.drain()
        letters_b = [letter for letter in bus.dead_letters if letter.subscription == "b"]
        assert await bus.dead_letters.redrive(bus, subscription="a") == 1
        await bus.drain()
    by_sub = sorted(letter.subscription for letter in bus.dead_letters)
    assert by_sub == ["a", "b"]
    assert [letter for letter in bus.dead_letters if letter.subscription == "b"] == letters_b
    assert bus.metrics()["a"].accepted == 2
    assert bus.metrics()["b"].accepted == 1


async def test_redrive_keeps_letters_of_unknown_subscriptions() -> None:
    """A letter whose subscription does not exist on the bus stays in the sink."""
    sink = MemoryDeadLetters()
    sink.append(_letter(1, subscription="gone"))
    async with Bus() as bus:
        assert await sink.redrive(bus) == 0
    assert len(sink) == 1


async def test_redriven_event_that_fails_again_is_a_new_letter() -> None:
    """An event that fails after redrive is dead-lettered again, as a new letter."""
    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Charge, _always_fail, name="billing")
        await bus.publish(Charge(9))
        await bus.drain()
        [old] = bus.dead_letters
        await bus.dead_letters.redrive(bus)
    [new] = bus.dead_letters
    assert new.id != old.id
    assert new.event is old.event


# -- custom and per-subscription sinks -------------------------------------------------


class ListSink:
    """A minimal custom sink."""

    def __init__(self, fail: bool = False) -> None:
        self.letters: list[DeadLetter] = []
        self.fail = fail

    async def put(self, letter: DeadLetter) -> None:
        if self.fail:
            raise OSError("disk full")
        self.letters.append(letter)

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(self.letters)

    def __len__(self) -> int:
        return len(self.letters)

    async def redrive(self, bus: Bus, *, subscription: str | None = None) -> int:
        return 0


async def test_subscription_sink_receives_its_letters() -> None:
    """dead_letter= on subscribe sends that subscription's letters to its own sink."""
    own = ListSink()
    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Charge, _always_fail, name="own", dead_letter=own)
        bus.subscribe(Charge, _always_fail, name="shared")
        await bus.publish(Charge())
    assert [letter.subscription for letter in own.letters] == ["own"]
    assert [letter.subscription for letter in bus.dead_letters] == ["shared"]


async def test_bus_sink_can_be_replaced() -> None:
    """Bus(dead_letters=...) makes a custom sink the bus-wide default."""
    sink = ListSink()
    async with Bus(retry=NoRetry(), dead_letters=sink) as bus:
        bus.subscribe(Charge, _always_fail, name="billing")
        await bus.publish(Charge())
    assert bus.dead_letters is sink
    assert len(sink.letters) == 1


async def test_failing_sink_falls_back_to_memory(caplog: pytest.LogCaptureFixture) -> None:
    """A sink whose put raises is logged, and the letter is kept in the bus's memory sink."""
    broken = ListSink(fail=True)
    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Charge, _always_fail, name="billing", dead_letter=broken)
        charge = Charge()
        await bus.publish(charge)
    [letter] = bus.dead_letters
    assert letter.event is charge
    assert bus.metrics()["billing"].dead_lettered == 1
    assert any("failed to store letter" in r.getMessage() for r in caplog.records)


async def test_failing_bus_sink_still_counts_the_letter() -> None:
    """When the bus-wide sink itself fails, the event still settles as dead-lettered."""
    broken = ListSink(fail=True)
    async with Bus(retry=NoRetry(), dead_letters=broken) as bus:
        bus.subscribe(Charge, _always_fail, name="billing")
        await bus.publish(Charge())
    metrics = bus.metrics()["billing"]
    assert (metrics.accepted, metrics.dead_lettered) == (1, 1)
    assert bus.outstanding == 0


# -- MemoryDeadLetters: query, purge, filtered redrive ---------------------------------


def _filled_memory_sink() -> MemoryDeadLetters:
    """Four letters over two subscriptions, conditions, error types and minutes."""
    sink = MemoryDeadLetters()
    specs = [
        ("billing", "RetriesExhausted", "RuntimeError"),
        ("billing", "Timeout", "HandlerTimeout"),
        ("audit", "RetriesExhausted", "KeyError"),
        ("billing", "NotRetryable", "KeyError"),
    ]
    for n, (subscription, condition, error_type) in enumerate(specs):
        at = WHEN + timedelta(minutes=n)
        sink.append(
            DeadLetter(
                event=Charge(n),
                subscription=subscription,
                error=ErrorInfo(error_type, f"failure {n}"),
                attempts=1,
                first_failure=at,
                last_failure=at,
                condition=condition,  # type: ignore[arg-type]
            )
        )
    return sink


def _amounts(letters: list[DeadLetter]) -> list[int]:
    return [letter.event.amount for letter in letters]  # type: ignore[attr-defined]


def test_memory_query_filters() -> None:
    """query() selects by subscription, condition, error type, time range, predicate and limit."""
    sink = _filled_memory_sink()
    assert _amounts(sink.query(subscription="billing")) == [0, 1, 3]
    assert _amounts(sink.query(condition="Timeout")) == [1]
    assert _amounts(sink.query(error_type="KeyError")) == [2, 3]
    assert _amounts(sink.query(since=WHEN + timedelta(minutes=1))) == [1, 2, 3]
    assert _amounts(sink.query(until=WHEN + timedelta(minutes=1))) == [0]
    assert _amounts(sink.query(where=lambda d: d.attempts == 1, limit=2)) == [0, 1]
    assert _amounts(sink.query(subscription="billing", error_type="KeyError")) == [3]
    assert sink.query() == list(sink)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"condition": "Retried"}, ValueError, r"'Retried' is not a dead letter condition"),
        ({"since": datetime(2024, 1, 1)}, ValueError, r"since=\.\.\.\) must be timezone-aware"),
        ({"until": "yesterday"}, TypeError, r"until=\.\.\.\) takes an aware datetime"),
        ({"subscription": 3}, TypeError, r"subscription=\.\.\.\) takes a string"),
        ({"where": "billing"}, TypeError, r"where=\.\.\.\) takes a predicate"),
    ],
)
def test_memory_query_rejects_bad_filters(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Invalid filters fail with a message naming the option and the fix."""
    with pytest.raises(error, match=message):
        MemoryDeadLetters().query(**kwargs)


async def test_memory_purge_with_filters() -> None:
    """purge() forgets the matching letters and returns how many; no filters forgets all."""
    sink = _filled_memory_sink()
    assert await sink.purge(error_type="KeyError") == 2
    assert _amounts(list(sink)) == [0, 1]
    assert await sink.purge(where=lambda d: d.condition == "Timeout") == 1
    assert _amounts(list(sink)) == [0]
    assert await sink.purge() == 1
    assert len(sink) == 0


async def test_memory_purge_rejects_bad_filters_without_forgetting() -> None:
    """An invalid purge filter raises and forgets nothing."""
    sink = _filled_memory_sink()
    with pytest.raises(ValueError, match="is not a dead letter condition"):
        await sink.purge(condition="Nope")  # type: ignore[arg-type]
    assert len(sink) == 4


async def test_memory_redrive_with_where_and_condition() -> None:
    """redrive(where=..., condition=...) delivers only the selected letters and removes only those."""
    seen: list[int] = []

    async def billing(event: Charge) -> None:
        seen.append(event.amount)

    sink = _filled_memory_sink()
    async with Bus() as bus:
        bus.subscribe(Charge, billing, name="billing")
        assert await sink.redrive(bus, condition="Timeout") == 1
        assert await sink.redrive(bus, where=lambda d: d.event.amount == 3) == 1  # type: ignore[attr-defined]
    assert seen == [1, 3]
    assert _amounts(list(sink)) == [0, 2]


async def test_memory_redrive_skips_letters_the_subscription_no_longer_takes() -> None:
    """A letter whose subscription now takes another event type stays in the sink."""

    @attrs.frozen
    class Other(Event):
        pass

    async def handler(event: Other) -> None:
        raise AssertionError("must not be called")

    sink = MemoryDeadLetters()
    sink.append(_letter(1))
    async with Bus() as bus:
        bus.subscribe(Other, handler, name="billing")
        assert await sink.redrive(bus) == 0
    assert len(sink) == 1


def test_memory_sink_keeps_a_letter_once() -> None:
    """Appending a letter whose id is already kept is a no-op, like the durable sink."""
    sink = MemoryDeadLetters()
    letter = _letter(1)
    sink.append(letter)
    sink.append(letter)
    assert list(sink) == [letter]
