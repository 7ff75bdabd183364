"""SqliteDeadLetters: durable letters, queries, purge, redrive, and surviving SIGKILL."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import attrs
import pytest
from _dlq_events import Charge, Refund

from eventbus import (
    Bus,
    BusClosed,
    DeadLetter,
    DeadLetterSink,
    ErrorInfo,
    Event,
    NoRetry,
    SerializationError,
)
from eventbus._deadletter import UndecodableEvent
from eventbus._deadletter_sqlite import SqliteDeadLetters
from eventbus.testing._clock import _wait_all_tasks_blocked as settle

TESTS = Path(__file__).resolve().parent
WHEN = datetime(2024, 1, 1, tzinfo=UTC)


def _letter(
    order: str,
    *,
    subscription: str = "billing",
    condition: Any = "RetriesExhausted",
    error_type: str = "RuntimeError",
    minutes: int = 0,
) -> DeadLetter:
    at = WHEN + timedelta(minutes=minutes)
    return DeadLetter(
        event=Charge(order, amount=5, source="shop", correlation_id="c-1"),
        subscription=subscription,
        error=ErrorInfo(error_type, f"failed {order}", ("line 1", "line 2")),
        attempts=3,
        first_failure=at - timedelta(seconds=30),
        last_failure=at,
        condition=condition,
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh database file name."""
    return tmp_path / "dead-letters.db"


@pytest.fixture
def sink(db_path: Path) -> Any:
    """An open SqliteDeadLetters, closed after the test."""
    with SqliteDeadLetters(db_path) as letters:
        yield letters


async def _always_fail(event: Charge) -> None:
    raise RuntimeError(f"card declined for {event.order_id}")


# -- storing and reading ---------------------------------------------------------------


async def test_letters_round_trip(sink: SqliteDeadLetters) -> None:
    """A stored letter reads back equal: event, subscription, error, attempts, times, condition, id."""
    letter = _letter("o-1", condition="Timeout")
    await sink.put(letter)
    [back] = list(sink)
    assert back == letter
    assert back.event == letter.event
    assert back.error.stack_trace == ("line 1", "line 2")
    assert back.first_failure.tzinfo is not None
    assert back.exception is None


async def test_iteration_is_oldest_first_and_len_counts(sink: SqliteDeadLetters) -> None:
    """Letters iterate in the order they were stored; len() counts them."""
    letters = [_letter(f"o-{n}", minutes=-n) for n in range(4)]
    for letter in letters:
        await sink.put(letter)
    assert [letter.id for letter in sink] == [letter.id for letter in letters]
    assert len(sink) == 4


async def test_putting_a_letter_twice_stores_it_once(sink: SqliteDeadLetters) -> None:
    """put() of a letter whose id is stored already is a no-op."""
    letter = _letter("o-1")
    await sink.put(letter)
    await sink.put(letter)
    assert len(sink) == 1


async def test_letters_survive_reopening(db_path: Path) -> None:
    """Closing and reopening the file keeps every letter."""
    letters = [_letter("o-1"), _letter("o-2")]
    with SqliteDeadLetters(db_path) as first:
        for letter in letters:
            await first.put(letter)
    with SqliteDeadLetters(db_path) as second:
        assert list(second) == letters


def test_sink_satisfies_the_protocol_and_is_truthy(sink: SqliteDeadLetters) -> None:
    """SqliteDeadLetters is a DeadLetterSink, and truthy even when empty."""
    assert isinstance(sink, DeadLetterSink)
    assert len(sink) == 0
    assert bool(sink) is True


async def test_bus_stores_its_letters_in_the_file(db_path: Path) -> None:
    """Bus(dead_letters=SqliteDeadLetters(path)) writes each letter before the event settles."""
    with SqliteDeadLetters(db_path) as sink:
        async with Bus(retry=NoRetry(), dead_letters=sink) as bus:
            bus.subscribe(Charge, _always_fail, name="billing")
            charges = [Charge(f"o-{n}") for n in range(20)]
            for charge in charges:
                await bus.publish(charge)
            await bus.drain()
            assert len(sink) == 20
        assert bus.metrics()["billing"].dead_lettered == 20
    with SqliteDeadLetters(db_path) as reopened:
        letters = list(reopened)
    assert sorted(letter.event.id for letter in letters) == sorted(c.id for c in charges)
    first = letters[0]
    assert first.subscription == "billing"
    assert first.condition == "RetriesExhausted"
    assert first.attempts == 1
    assert first.error.error_type == "RuntimeError"
    assert first.error.error_message.startswith("card declined for o-")
    assert any("_always_fail" in line for line in first.error.stack_trace)


async def test_an_event_that_cannot_be_stored_falls_back_to_memory(
    sink: SqliteDeadLetters, caplog: pytest.LogCaptureFixture
) -> None:
    """put() refuses an event JSON cannot carry; the bus keeps that letter in memory."""

    @attrs.frozen
    class Opaque(Event):
        thing: Any = None

    async def fail(event: Opaque) -> None:
        raise ValueError("nope")

    async with Bus(retry=NoRetry(), dead_letters=sink) as bus:
        bus.subscribe(Opaque, fail, name="opaque")
        with pytest.raises(SerializationError, match=r"cannot store event .* as CloudEvents JSON"):
            await sink.put(
                DeadLetter(Opaque(object()), "opaque", ErrorInfo("E", "m"), 1, WHEN, WHEN)
            )
        await bus.publish(Opaque(object()))
    assert len(sink) == 0
    assert bus.metrics()["opaque"].dead_lettered == 1
    assert any("failed to store letter" in r.getMessage() for r in caplog.records)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    """Opening a file that is not SQLite raises sqlite3.DatabaseError with a note naming it."""
    bogus = tmp_path / "notes.txt"
    bogus.write_bytes(b"this is not a database, just some text " * 100)
    with pytest.raises(sqlite3.DatabaseError) as info:
        SqliteDeadLetters(bogus)
    assert any("is not a usable SQLite database" in note for note in info.value.__notes__)


def test_path_must_be_a_path() -> None:
    """A non-path argument is a TypeError."""
    with pytest.raises(TypeError, match=r"SqliteDeadLetters\(path\) takes a file path"):
        SqliteDeadLetters(42)  # type: ignore[arg-type]


# -- queries ---------------------------------------------------------------------------


@pytest.fixture
async def filled(sink: SqliteDeadLetters) -> list[DeadLetter]:
    """Five letters over two subscriptions, three conditions, two error types and five minutes."""
    letters = [
        _letter("o-0", subscription="billing", condition="RetriesExhausted", minutes=0),
        _letter("o-1", subscription="billing", condition="Timeout", minutes=1),
        _letter("o-2", subscription="audit", error_type="KeyError", minutes=2),
        _letter("o-3", subscription="billing", condition="NotRetryable", minutes=3),
        _letter("o-4", subscription="audit", error_type="KeyError", minutes=4),
    ]
    for letter in letters:
        await sink.put(letter)
    return letters


def _orders(letters: list[DeadLetter]) -> list[str]:
    return [letter.event.order_id for letter in letters]  # type: ignore[attr-defined]


def test_query_by_subscription(sink: SqliteDeadLetters, filled: list[DeadLetter]) -> None:
    """query(subscription=...) returns that subscription's letters, oldest first."""
    assert _orders(sink.query(subscription="billing")) == ["o-0", "o-1", "o-3"]


def test_query_by_condition(sink: SqliteDeadLetters, filled: list[DeadLetter]) -> None:
    """query(condition=...) selects by why the bus gave up."""
    assert _orders(sink.query(condition="Timeout")) == ["o-1"]


def test_query_by_error_type(sink: SqliteDeadLetters, filled: list[DeadLetter]) -> None:
    """query(error_type=...) selects by the error's errorType."""
    assert _orders(sink.query(error_type="KeyError")) == ["o-2", "o-4"]


def test_query_by_time_range(sink: SqliteDeadLetters, filled: list[DeadLetter]) -> None:
    """since is inclusive and until exclusive, on last_failure."""
    since, until = WHEN + timedelta(minutes=1), WHEN + timedelta(minutes=3)
    assert _orders(sink.query(since=since, until=until)) == ["o-1", "o-2"]
    assert _orders(sink.query(since=WHEN + timedelta(minutes=4))) == ["o-4"]


def test_query_combines_filters_with_where_and_limit(
    sink: SqliteDeadLetters, filled: list[DeadLetter]
) -> None:
    """Filters combine; where= is a predicate on the letter; limit= caps the result."""
    assert _orders(
        sink.query(subscription="billing", where=lambda d: d.condition != "Timeout")
    ) == [
        "o-0",
        "o-3",
    ]
    assert _orders(sink.query(limit=2)) == ["o-0", "o-1"]
    assert _orders(sink.query(where=lambda d: d.subscription == "audit", limit=1)) == ["o-2"]


def test_query_with_no_filters_lists_everything(
    sink: SqliteDeadLetters, filled: list[DeadLetter]
) -> None:
    """query() with no filters equals list(sink)."""
    assert sink.query() == list(sink) == filled


def test_query_rejects_an_unknown_condition(sink: SqliteDeadLetters) -> None:
    """A misspelt condition is a ValueError listing the valid ones."""
    with pytest.raises(ValueError, match=r"'Timedout' is not a dead letter condition; use one of"):
        sink.query(condition="Timedout")  # type: ignore[arg-type]


def test_query_rejects_naive_datetimes(sink: SqliteDeadLetters) -> None:
    """since/until must be timezone-aware."""
    with pytest.raises(ValueError, match=r"query\(since=\.\.\.\) must be timezone-aware"):
        sink.query(since=datetime(2024, 1, 1))


def test_query_rejects_a_bad_limit(sink: SqliteDeadLetters) -> None:
    """limit must be a non-negative int."""
    with pytest.raises(ValueError, match=r"limit=\.\.\.\) must be an int >= 0"):
        sink.query(limit=-1)


# -- undecodable rows ------------------------------------------------------------------


def _forget_event_class(db_path: Path, order: str) -> None:
    """Rewrite one stored event's type to a class no process defines."""
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute("SELECT id, event FROM eventbus_dead_letters").fetchall()
        for letter_id, text in rows:
            document = json.loads(text)
            if document["data"]["order_id"] == order:
                document["type"] = "tests.dlq.Vanished"
                db.execute(
                    "UPDATE eventbus_dead_letters SET event = ?, event_type = ? WHERE id = ?",
                    (json.dumps(document), "tests.dlq.Vanished", letter_id),
                )
        db.commit()
    finally:
        db.close()


async def test_undecodable_event_is_listed_not_fatal(
    db_path: Path, sink: SqliteDeadLetters, caplog: pytest.LogCaptureFixture
) -> None:
    """A row whose event type is unknown is listed as an UndecodableEvent and logged once."""
    await sink.put(_letter("o-1"))
    await sink.put(_letter("o-2"))
    _forget_event_class(db_path, "o-1")
    caplog.set_level(logging.WARNING, logger="eventbus.deadletters")
    first, second = list(sink)
    list(sink)
    assert isinstance(first.event, UndecodableEvent)
    assert first.event.event_type_name == "tests.dlq.Vanished"
    assert "unknown event type 'tests.dlq.Vanished'" in first.event.reason
    assert json.loads(first.event.document)["data"]["order_id"] == "o-1"
    assert first.event.source == "shop"
    assert first.event.correlation_id == "c-1"
    assert first.subscription == "billing"
    assert isinstance(second.event, Charge)
    assert len(sink) == 2
    assert len(sink.query(subscription="billing")) == 2
    warnings = [r.getMessage() for r in caplog.records if "cannot decode" in r.getMessage()]
    assert len(warnings) == 1
    assert first.id in warnings[0]


async def test_undecodable_letters_are_not_redriven(db_path: Path, sink: SqliteDeadLetters) -> None:
    """redrive skips undecodable letters and keeps them; purge can remove them."""
    seen: list[Charge] = []

    async def billing(event: Charge) -> None:
        seen.append(event)

    await sink.put(_letter("o-1"))
    await sink.put(_letter("o-2"))
    _forget_event_class(db_path, "o-1")
    async with Bus() as bus:
        bus.subscribe(Charge, billing, name="billing")
        assert await sink.redrive(bus) == 1
    assert [event.order_id for event in seen] == ["o-2"]
    [left] = list(sink)
    assert isinstance(left.event, UndecodableEvent)
    assert await sink.purge(where=lambda d: isinstance(d.event, UndecodableEvent)) == 1
    assert len(sink) == 0


# -- purge -----------------------------------------------------------------------------


async def test_purge_with_filters(sink: SqliteDeadLetters, filled: list[DeadLetter]) -> None:
    """purge() deletes what matches its filters and says how many."""
    assert await sink.purge(subscription="audit") == 2
    assert await sink.purge(condition="Timeout") == 1
    assert _orders(list(sink)) == ["o-0", "o-3"]


async def test_purge_with_where(sink: SqliteDeadLetters, filled: list[DeadLetter]) -> None:
    """purge(where=...) deletes only the letters the predicate selects."""
    assert await sink.purge(where=lambda d: d.event.order_id in {"o-1", "o-4"}) == 2  # type: ignore[attr-defined]
    assert _orders(list(sink)) == ["o-0", "o-2", "o-3"]


async def test_purge_without_filters_empties_the_sink(
    sink: SqliteDeadLetters, filled: list[DeadLetter]
) -> None:
    """purge() with no filters deletes every letter."""
    assert await sink.purge() == 5
    assert len(sink) == 0


async def test_purge_with_a_failing_predicate_deletes_nothing(
    sink: SqliteDeadLetters, filled: list[DeadLetter]
) -> None:
    """A where= predicate that raises propagates and leaves every letter."""

    def broken(letter: DeadLetter) -> bool:
        raise LookupError("bad predicate")

    with pytest.raises(LookupError, match="bad predicate"):
        await sink.purge(where=broken)
    assert len(sink) == 5


# -- redrive ---------------------------------------------------------------------------


async def test_redrive_reaches_only_the_original_subscription(db_path: Path) -> None:
    """With two subscriptions on one event type, a redriven letter goes back only where it failed."""
    healed = False
    seen: dict[str, list[str]] = {"billing": [], "audit": []}

    async def billing(event: Charge) -> None:
        if not healed:
            raise RuntimeError("card service down")
        seen["billing"].append(event.order_id)

    async def audit(event: Charge) -> None:
        seen["audit"].append(event.order_id)

    with SqliteDeadLetters(db_path) as sink:
        async with Bus(retry=NoRetry(), dead_letters=sink) as bus:
            bus.subscribe(Charge, billing, name="billing")
            bus.subscribe(Charge, audit, name="audit")
            for order in ("o-1", "o-2"):
                await bus.publish(Charge(order))
            await bus.drain()
            assert [letter.subscription for letter in sink] == ["billing", "billing"]
            healed = True
            assert await sink.redrive(bus) == 2
            await bus.drain()
            assert len(sink) == 0
    assert seen == {"billing": ["o-1", "o-2"], "audit": ["o-1", "o-2"]}


async def test_redrive_filters_by_subscription_and_where(sink: SqliteDeadLetters) -> None:
    """redrive(subscription=..., where=...) moves only the selected letters."""
    seen: list[tuple[str, str]] = []

    def record(name: str) -> Any:
        async def handler(event: Charge) -> None:
            seen.append((name, event.order_id))

        return handler

    for order, subscription in (("o-1", "a"), ("o-2", "a"), ("o-3", "b")):
        await sink.put(_letter(order, subscription=subscription))
    async with Bus() as bus:
        bus.subscribe(Charge, record("a"), name="a")
        bus.subscribe(Charge, record("b"), name="b")
        moved = await sink.redrive(
            bus,
            subscription="a",
            where=lambda d: d.event.order_id == "o-2",  # type: ignore[attr-defined]
        )
        assert moved == 1
    assert seen == [("a", "o-2")]
    assert _orders(list(sink)) == ["o-1", "o-3"]


async def test_redrive_keeps_letters_of_missing_subscriptions(sink: SqliteDeadLetters) -> None:
    """Letters for a subscription the bus does not have stay in the file."""
    await sink.put(_letter("o-1", subscription="gone"))
    async with Bus() as bus:
        assert await sink.redrive(bus) == 0
    assert len(sink) == 1


async def test_redrive_keeps_letters_the_subscription_no_longer_takes(
    sink: SqliteDeadLetters,
) -> None:
    """A letter whose event type its subscription no longer takes stays."""

    async def refunds(event: Refund) -> None:
        raise AssertionError("must not be called")

    await sink.put(_letter("o-1", subscription="billing"))
    async with Bus() as bus:
        bus.subscribe(Refund, refunds, name="billing")
        assert await sink.redrive(bus) == 0
    assert len(sink) == 1


async def test_redrive_on_a_closed_bus_keeps_every_letter(sink: SqliteDeadLetters) -> None:
    """If the bus refuses the event, the letter is not deleted."""

    async def billing(event: Charge) -> None:
        return None

    await sink.put(_letter("o-1"))
    bus = Bus()
    bus.subscribe(Charge, billing, name="billing")
    with pytest.raises(BusClosed):
        await sink.redrive(bus)
    assert len(sink) == 1


async def test_cancelled_redrive_deletes_only_settled_letters(sink: SqliteDeadLetters) -> None:
    """A cancelled redrive keeps every letter whose event has not settled; settled ones go."""
    started, gate = anyio.Event(), anyio.Event()
    seen: list[str] = []

    async def billing(event: Charge) -> None:
        started.set()
        await gate.wait()
        seen.append(event.order_id)

    for order in ("o-1", "o-2", "o-3"):
        await sink.put(_letter(order))
    async with Bus() as bus:
        bus.subscribe(Charge, billing, name="billing", queue_size=1)
        async with anyio.create_task_group() as tg:
            scope = anyio.CancelScope()

            async def redrive() -> None:
                with scope:
                    await sink.redrive(bus)

            tg.start_soon(redrive)
            await started.wait()  # o-1 is being handled
            await settle()  # o-2 is queued, and o-3 waits for room
            assert bus.metrics()["billing"].accepted == 2  # o-3 waits for room
            scope.cancel()
        assert _orders(list(sink)) == ["o-1", "o-2", "o-3"]  # accepted is not settled
        gate.set()
        await bus.drain()
        assert _orders(list(sink)) == ["o-3"]
    assert seen == ["o-1", "o-2"]


async def test_redriven_event_that_fails_again_is_a_new_letter(sink: SqliteDeadLetters) -> None:
    """An event that fails after a redrive is stored again under a new letter id."""
    await sink.put(_letter("o-1"))
    [old] = list(sink)
    async with Bus(retry=NoRetry(), dead_letters=sink) as bus:
        bus.subscribe(Charge, _always_fail, name="billing")
        assert await sink.redrive(bus) == 1
    [new] = list(sink)
    assert new.id != old.id
    assert new.event == old.event
    assert new.attempts == 1


# -- closing ---------------------------------------------------------------------------


async def test_closed_sink_refuses_work(db_path: Path) -> None:
    """After close(), reading and writing raise a RuntimeError saying so; close() twice is fine."""
    sink = SqliteDeadLetters(db_path)
    sink.close()
    sink.close()
    assert "closed" in repr(sink)
    with pytest.raises(RuntimeError, match=r"is closed; open a new one"):
        len(sink)
    with pytest.raises(RuntimeError, match=r"is closed"):
        await sink.put(_letter("o-1"))


async def test_async_context_manager_closes(db_path: Path) -> None:
    """``async with SqliteDeadLetters(path)`` closes the file on exit."""
    async with SqliteDeadLetters(db_path) as sink:
        await sink.put(_letter("o-1"))
    with pytest.raises(RuntimeError, match="is closed"):
        list(sink)


# -- surviving a process kill ----------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys

    import anyio
    from _dlq_events import Charge

    from eventbus import Bus, NoRetry
    from eventbus._deadletter_sqlite import SqliteDeadLetters


    async def billing(event: Charge) -> None:
        raise ConnectionError(f"payment service unreachable for {event.order_id}")


    async def main() -> None:
        sink = SqliteDeadLetters(sys.argv[1])
        async with Bus(retry=NoRetry(), dead_letters=sink) as bus:
            bus.subscribe(Charge, billing, name="billing")
            for n in range(3):
                await bus.publish(Charge(f"o-{n}", amount=10 * n))
            await bus.drain()
            print(f"written {len(sink)}", flush=True)
            await anyio.sleep_forever()


    anyio.run(main)
    """
)


async def test_letters_survive_sigkill_and_redrive_into_a_new_bus(db_path: Path) -> None:
    """Letters a killed process wrote are all there after SIGKILL, and redrive to the healed subscription."""
    pythonpath = [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    async with await anyio.open_process(
        [sys.executable, "-c", CHILD, str(db_path)], env=env
    ) as proc:
        assert proc.stdout is not None
        output = b""
        try:
            with anyio.fail_after(60):  # a guard against a hung child, not a timing
                while not output.endswith(b"\n"):
                    output += await proc.stdout.receive()
        except anyio.EndOfStream:
            assert proc.stderr is not None
            errors = b"".join([chunk async for chunk in proc.stderr])
            pytest.fail(f"the child exited early: {errors.decode()}")
        finally:
            if output.endswith(b"\n"):
                os.kill(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            await proc.wait()
        assert output.decode().strip() == "written 3"
    assert proc.returncode == -signal.SIGKILL

    seen: list[Charge] = []

    async def billing(event: Charge) -> None:
        seen.append(event)

    with SqliteDeadLetters(db_path) as sink:
        letters = list(sink)
        assert sorted(letter.event.order_id for letter in letters) == ["o-0", "o-1", "o-2"]  # type: ignore[attr-defined]
        for letter in letters:
            assert isinstance(letter.event, Charge)
            assert letter.event.amount == 10 * int(letter.event.order_id[2:])
            assert letter.subscription == "billing"
            assert letter.condition == "RetriesExhausted"
            assert letter.attempts == 1
            assert letter.error.error_type == "ConnectionError"
            assert letter.error.error_message == (
                f"payment service unreachable for {letter.event.order_id}"
            )
            assert any("billing" in line for line in letter.error.stack_trace)
        async with Bus(retry=NoRetry(), dead_letters=sink) as bus:
            bus.subscribe(Charge, billing, name="billing")
            assert await sink.redrive(bus) == 3
            await bus.drain()
        assert len(sink) == 0
    assert sorted(event.id for event in seen) == sorted(letter.event.id for letter in letters)
    with SqliteDeadLetters(db_path) as reopened:
        assert len(reopened) == 0
