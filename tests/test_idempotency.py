"""@idempotent: repeats return the stored result, failures store nothing, stores expire and persist."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from eventbus import (
    Bus,
    Context,
    Event,
    ExponentialBackoff,
    InvocationRecord,
    NoRetry,
    SerializationError,
)
from eventbus._idempotency import (
    IdempotencyInProgress,
    MemoryIdempotencyStore,
    SqliteIdempotencyStore,
    idempotent,
)
from eventbus.testing import FakeClock


@attrs.frozen
class Payment(Event):
    order_id: str
    amount: int = 0
    details: dict[str, Any] = attrs.field(factory=dict)


class Now:
    """A settable time source (epoch seconds) for stores."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value


class Counter:
    """Counts calls per order and returns a receipt."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, event: Payment) -> dict[str, Any]:
        self.calls.append(event.order_id)
        return {"receipt": f"r-{event.order_id}", "n": len(self.calls)}


# -- repeats ---------------------------------------------------------------------------


async def test_repeat_returns_the_stored_result_without_running() -> None:
    """A second call with the same event returns the first result; the handler ran once."""
    calls = Counter()
    charge = idempotent(calls)
    payment = Payment("o-1")
    first = await charge(payment)
    second = await charge(payment)
    assert first == {"receipt": "r-o-1", "n": 1}
    assert second is first
    assert calls.calls == ["o-1"]


async def test_different_keys_run_separately() -> None:
    """Events with different ids each run the handler."""
    calls = Counter()
    charge = idempotent(calls)
    await charge(Payment("o-1"))
    await charge(Payment("o-1"))
    assert calls.calls == ["o-1", "o-1"]


async def test_failure_stores_nothing() -> None:
    """A call that raises stores nothing, so the next call runs the handler again."""
    attempts: list[int] = []

    @idempotent
    async def charge(event: Payment) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("gateway down")
        return "charged"

    payment = Payment("o-1")
    with pytest.raises(ConnectionError, match="gateway down"):
        await charge(payment)
    assert await charge(payment) == "charged"
    assert await charge(payment) == "charged"
    assert len(attempts) == 2


async def test_cancelled_call_stores_nothing() -> None:
    """A call cancelled mid-way releases its key: the next call runs."""
    started = anyio.Event()
    runs: list[int] = []

    @idempotent
    async def charge(event: Payment) -> int:
        runs.append(1)
        if len(runs) == 1:
            started.set()
            await anyio.sleep_forever()
        return len(runs)

    payment = Payment("o-1")
    async with anyio.create_task_group() as tg:
        tg.start_soon(charge, payment)
        await started.wait()
        tg.cancel_scope.cancel()
    assert await charge(payment) == 2


# -- keys ------------------------------------------------------------------------------


async def test_key_by_field_name() -> None:
    """key="order_id" treats events with the same order as repeats, whatever their ids."""
    calls = Counter()
    charge = idempotent(key="order_id")(calls)
    await charge(Payment("o-1"))
    await charge(Payment("o-1"))
    await charge(Payment("o-2"))
    assert calls.calls == ["o-1", "o-2"]


async def test_key_by_dotted_path_and_function() -> None:
    """A dotted key reaches into nested fields and mappings; a function may build any key."""
    calls = Counter()
    nested = idempotent(key="details.invoice", scope="nested")(calls)
    await nested(Payment("o-1", details={"invoice": 7}))
    await nested(Payment("o-2", details={"invoice": 7}))
    by_function = idempotent(key=lambda e: (e.order_id, e.amount), scope="fn")(calls)
    await by_function(Payment("o-3", amount=1))
    await by_function(Payment("o-3", amount=1))
    await by_function(Payment("o-3", amount=2))
    assert calls.calls == ["o-1", "o-3", "o-3"]


async def test_missing_field_is_a_clear_error() -> None:
    """A key naming a field the event lacks raises TypeError naming the field."""
    charge = idempotent(key="customer")(Counter())
    with pytest.raises(TypeError, match=r"Payment has no field 'customer'"):
        await charge(Payment("o-1"))


async def test_none_key_is_refused() -> None:
    """A key that evaluates to None raises ValueError instead of guessing."""
    charge = idempotent(key=lambda e: None)(Counter())
    with pytest.raises(ValueError, match=r"idempotency key of event .* is None"):
        await charge(Payment("o-1"))


async def test_unusable_key_value_is_refused() -> None:
    """A key value that cannot be written as text raises TypeError."""
    charge = idempotent(key=lambda e: object())(Counter())
    with pytest.raises(TypeError, match=r"cannot use object as an idempotency key"):
        await charge(Payment("o-1"))


async def test_batches_are_refused() -> None:
    """A list of events (a batch) is refused with a hint."""
    charge = idempotent(Counter())
    with pytest.raises(TypeError, match=r"batch handlers .* are not supported"):
        await charge([Payment("o-1")])  # type: ignore[arg-type]


async def test_scope_separates_handlers_sharing_a_store() -> None:
    """Two handlers on one store keep separate results; the same scope shares them."""
    store = MemoryIdempotencyStore()
    first, second = Counter(), Counter()
    payment = Payment("o-1")

    async def a(event: Payment) -> dict[str, Any]:
        return await first(event)

    async def b(event: Payment) -> dict[str, Any]:
        return await second(event)

    await idempotent(store=store)(a)(payment)
    await idempotent(store=store)(b)(payment)
    assert (first.calls, second.calls) == (["o-1"], ["o-1"])
    shared = idempotent(store=store, scope="charges")
    await shared(a)(payment)
    await shared(b)(payment)
    assert (first.calls, second.calls) == (["o-1", "o-1"], ["o-1"])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ttl": 0}, ValueError, r"idempotent\(ttl=\.\.\.\) must be seconds > 0"),
        ({"lease": -1}, ValueError, r"idempotent\(lease=\.\.\.\) must be seconds > 0"),
        ({"key": 3}, TypeError, r"idempotent\(key=\.\.\.\) takes a field name or a function"),
        ({"store": {}}, TypeError, r"idempotent\(store=\.\.\.\) takes MemoryIdempotencyStore"),
        ({"scope": ""}, TypeError, r"idempotent\(scope=\.\.\.\) must be a non-empty string"),
    ],
)
def test_invalid_options_fail_at_decoration(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Bad options raise when decorating, with a message naming the option."""
    with pytest.raises(error, match=message):
        idempotent(**kwargs)


def test_invalid_clock_is_refused() -> None:
    """A store clock must be an eventbus Clock or a function."""
    with pytest.raises(TypeError, match=r"clock=\.\.\.\) takes an eventbus Clock"):
        MemoryIdempotencyStore(clock=3.0)  # type: ignore[arg-type]


# -- concurrent repeats ----------------------------------------------------------------


async def test_concurrent_repeats_wait_and_run_once() -> None:
    """Repeats that arrive while the first call runs wait for it and get its result."""
    gate = anyio.Event()
    started = anyio.Event()
    runs: list[str] = []

    @idempotent
    async def charge(event: Payment) -> str:
        runs.append(event.order_id)
        started.set()
        await gate.wait()
        return f"r-{event.order_id}"

    payment = Payment("o-1")
    results: list[str] = []

    async def call() -> None:
        results.append(await charge(payment))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(call)
        await started.wait()
        gate.set()
    assert runs == ["o-1"]
    assert results == ["r-o-1"] * 3


async def test_waiting_repeat_runs_when_the_first_fails() -> None:
    """If the running call fails, a waiting repeat runs the handler itself."""
    gate = anyio.Event()
    started = anyio.Event()
    runs: list[int] = []

    @idempotent
    async def charge(event: Payment) -> str:
        runs.append(1)
        if len(runs) == 1:
            started.set()
            await gate.wait()
            raise ConnectionError("first try fails")
        return "second try"

    payment = Payment("o-1")
    outcomes: list[object] = []

    async def call() -> None:
        try:
            outcomes.append(await charge(payment))
        except ConnectionError as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await started.wait()
        tg.start_soon(call)
        await anyio.lowlevel.checkpoint()
        gate.set()
    assert len(runs) == 2
    assert isinstance(outcomes[0], ConnectionError)
    assert outcomes[1] == "second try"


# -- time to live ----------------------------------------------------------------------


async def test_result_expires_after_ttl() -> None:
    """After ttl seconds the stored result is forgotten and the handler runs again."""
    now = Now()
    calls = Counter()
    charge = idempotent(ttl=60, store=MemoryIdempotencyStore(clock=now))(calls)
    payment = Payment("o-1")
    await charge(payment)
    now.value += 59.9
    await charge(payment)
    assert len(calls.calls) == 1
    now.value += 0.1
    assert (await charge(payment))["n"] == 2


async def test_ttl_follows_a_fake_clock() -> None:
    """A store given a FakeClock expires results in virtual time."""
    clock = FakeClock()
    store = MemoryIdempotencyStore(clock=clock)
    calls = Counter()
    charge = idempotent(ttl=3600, store=store)(calls)
    payment = Payment("o-1")
    await charge(payment)
    assert len(store) == 1
    await clock.advance(3599)
    await charge(payment)
    await clock.advance(1)
    assert len(store) == 0
    await charge(payment)
    assert len(calls.calls) == 2


# -- on the bus ------------------------------------------------------------------------


async def test_bus_keeps_the_context_and_skips_redelivered_events() -> None:
    """An (event, ctx) handler still gets ctx; a redelivered event is handled once."""
    seen: list[tuple[str, int]] = []
    records: list[InvocationRecord] = []

    @idempotent
    async def charge(event: Payment, ctx: Context) -> str:
        seen.append((ctx.subscription, ctx.attempt))
        return f"r-{event.order_id}"

    async with Bus() as bus:
        bus.subscribe(Payment, charge, name="charge", on_success=records.append)
        payment = Payment("o-1")
        await bus.publish(payment)
        await bus.publish(payment)
    assert seen == [("charge", 1)]
    assert [r.result for r in records] == ["r-o-1", "r-o-1"]


async def test_retry_after_a_later_step_fails_does_not_repeat_the_effect(
    fake_clock: FakeClock,
) -> None:
    """When a handler fails after its idempotent step, the retry skips that step."""
    charges: list[str] = []
    emails = 0

    @idempotent(key="order_id")
    async def charge(event: Payment) -> str:
        charges.append(event.order_id)
        return "charged"

    async def checkout(event: Payment) -> None:
        nonlocal emails
        await charge(event)
        emails += 1
        if emails == 1:
            raise ConnectionError("mail server down")

    async with Bus(clock=fake_clock, retry=ExponentialBackoff(initial=5, jitter=False)) as bus:
        bus.subscribe(Payment, checkout, name="checkout")
        await bus.publish(Payment("o-1"))
        await fake_clock.advance(5)
        await bus.drain()
    assert charges == ["o-1"]
    assert emails == 2
    assert bus.metrics()["checkout"].succeeded == 1


async def test_plain_def_handler_runs_in_a_thread_once() -> None:
    """A plain def handler works: it runs off the loop, once per key."""
    threads: list[int] = []

    @idempotent
    def record(event: Payment) -> int:
        threads.append(threading.get_ident())
        return len(threads)

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Payment, record, name="record")
        payment = Payment("o-1")
        await bus.publish(payment)
        await bus.publish(payment)
        assert await bus.invoke("record", payment) == 1
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()


async def test_wrapper_keeps_name_and_signature() -> None:
    """The wrapper keeps the handler's name (the default subscription name) and parameters."""

    @idempotent
    async def charge(event: Payment, ctx: Context) -> None:
        return None

    async with Bus() as bus:
        sub = bus.subscribe(Payment, charge)
    assert sub.name.endswith("charge")
    assert charge.__name__ == "charge"


# -- SQLite store ----------------------------------------------------------------------


async def test_sqlite_store_persists_across_reopen(tmp_path: Path) -> None:
    """A result stored in the file is honoured by a new store on the same file."""
    path = tmp_path / "idempotency.db"
    calls = Counter()
    payment = Payment("o-1")
    with SqliteIdempotencyStore(path) as store:
        first = await idempotent(store=store, scope="charge")(calls)(payment)
    with SqliteIdempotencyStore(path) as store:
        assert len(store) == 1
        second = await idempotent(store=store, scope="charge")(calls)(payment)
    assert first == second == {"receipt": "r-o-1", "n": 1}
    assert calls.calls == ["o-1"]


async def test_sqlite_results_are_json(tmp_path: Path) -> None:
    """Results come back as JSON values: tuples as lists."""
    with SqliteIdempotencyStore(tmp_path / "i.db") as store:

        @idempotent(store=store)
        async def pair(event: Payment) -> tuple[str, int]:
            return (event.order_id, 1)

        payment = Payment("o-1")
        assert await pair(payment) == ("o-1", 1)
        assert await pair(payment) == ["o-1", 1]


async def test_sqlite_refuses_a_non_json_result_and_stores_nothing(tmp_path: Path) -> None:
    """A result JSON cannot carry fails the call with SerializationError; the next call runs again."""
    runs: list[int] = []
    with SqliteIdempotencyStore(tmp_path / "i.db") as store:

        @idempotent(store=store)
        async def opaque(event: Payment) -> object:
            runs.append(1)
            return object()

        payment = Payment("o-1")
        for _ in range(2):
            with pytest.raises(SerializationError, match=r"cannot be stored as JSON.*did run"):
                await opaque(payment)
        assert len(runs) == 2
        assert len(store) == 0


async def test_sqlite_failure_stores_nothing(tmp_path: Path) -> None:
    """A failed call leaves no claim: the next call runs."""
    runs: list[int] = []
    with SqliteIdempotencyStore(tmp_path / "i.db") as store:

        @idempotent(store=store)
        async def flaky(event: Payment) -> int:
            runs.append(1)
            if len(runs) == 1:
                raise ConnectionError("down")
            return len(runs)

        payment = Payment("o-1")
        with pytest.raises(ConnectionError):
            await flaky(payment)
        assert await flaky(payment) == 2
        assert await flaky(payment) == 2


async def test_sqlite_concurrent_repeats_in_one_process_run_once(tmp_path: Path) -> None:
    """Repeats in the same process wait for the running call instead of failing."""
    gate, started = anyio.Event(), anyio.Event()
    runs: list[int] = []
    results: list[int] = []
    with SqliteIdempotencyStore(tmp_path / "i.db") as store:

        @idempotent(store=store)
        async def charge(event: Payment) -> int:
            runs.append(1)
            started.set()
            await gate.wait()
            return 42

        payment = Payment("o-1")

        async def call() -> None:
            results.append(await charge(payment))

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(call)
            await started.wait()
            gate.set()
    assert runs == [1]
    assert results == [42, 42, 42]


async def test_sqlite_claim_of_another_process_raises_until_it_expires(tmp_path: Path) -> None:
    """A key claimed by another process raises IdempotencyInProgress; after the lease, it runs."""
    path = tmp_path / "i.db"
    now = Now()
    gate, started = anyio.Event(), anyio.Event()
    runs: list[str] = []

    async def slow(event: Payment) -> str:
        runs.append("slow")
        started.set()
        await gate.wait()
        return "slow"

    async def fast(event: Payment) -> str:
        runs.append("fast")
        return "fast"

    payment = Payment("o-1")
    # Two stores on one file stand for two processes.
    with (
        SqliteIdempotencyStore(path, clock=now) as one,
        SqliteIdempotencyStore(path, clock=now) as two,
    ):
        slow_one = idempotent(store=one, scope="charge", lease=30)(slow)
        fast_two = idempotent(store=two, scope="charge", lease=30)(fast)
        async with anyio.create_task_group() as tg:
            tg.start_soon(slow_one, payment)
            await started.wait()
            with pytest.raises(IdempotencyInProgress, match=r"being handled by another process"):
                await fast_two(payment)
            now.value += 30  # the first process's claim has expired (as if it had crashed)
            assert await fast_two(payment) == "fast"
            gate.set()
        assert await fast_two(payment) == "fast"
    assert runs == ["slow", "fast"]


async def test_sqlite_result_expires_after_ttl(tmp_path: Path) -> None:
    """Stored results expire after ttl, and purge_expired() deletes them."""
    now = Now()
    calls = Counter()
    with SqliteIdempotencyStore(tmp_path / "i.db", clock=now) as store:
        charge = idempotent(store=store, ttl=10)(calls)
        payment = Payment("o-1")
        await charge(payment)
        now.value += 9
        await charge(payment)
        assert len(calls.calls) == 1
        now.value += 1
        assert len(store) == 0
        assert await store.purge_expired() == 1
        await charge(payment)
    assert len(calls.calls) == 2


async def test_sqlite_store_closed_refuses_work(tmp_path: Path) -> None:
    """A closed store raises RuntimeError saying so."""
    store = SqliteIdempotencyStore(tmp_path / "i.db")
    store.close()
    charge = idempotent(store=store)(Counter())
    with pytest.raises(RuntimeError, match=r"SqliteIdempotencyStore\(.*\) is closed"):
        await charge(Payment("o-1"))
    assert "closed" in repr(store)
