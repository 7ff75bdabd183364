"""Adversarial property tests: random mixes of delivery features must keep the contract.

Each example builds one subscription (or two) from a random mix of concurrency,
ordering, batching, timeouts, retries, a circuit breaker and a rate limit,
publishes events whose handlers fail, time out or succeed per a random plan,
and moves a ``FakeClock`` from a side task. Whatever the mix:

- ``accepted == succeeded + dead_lettered + in_flight + queued + waiting_retry``
  whenever it is sampled (in handlers, between publishes, between clock steps);
- after a drain, every accepted event was handled exactly once or
  dead-lettered exactly once;
- an ordered subscription handles each key one event at a time, in publish order,
  retries included;
- leaving the bus with an exception, or unsubscribing, loses nothing.

Each example runs with ``anyio.run`` from a sync test; the real-time
``fail_after`` only turns a hang into a failure, it never asserts timing.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import attrs
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from eventbus import (
    Batching,
    BatchResult,
    Bus,
    BusFull,
    CircuitBreaker,
    DeadLetter,
    Event,
    ExponentialBackoff,
    InvocationRecord,
    NoRetry,
    RateLimit,
    RetryPolicy,
)
from eventbus.testing import FakeClock

SAFETY = 5.0  # real seconds: a hang fails the example instead of the whole run
ALWAYS = 99
# No shrinking: a failing example is often a hang, and each shrink step would
# wait out SAFETY; the unshrunk example is printed in full.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate)  # "fail this many times": never succeeds


@attrs.frozen
class Job(Event):
    seq: int
    key: int
    fails: int  # attempts that fail before one succeeds
    hang: bool  # a failing attempt hangs (until its timeout) instead of raising
    work: float  # virtual seconds a handler spends on the event


class Letters:
    """A dead-letter sink that keeps every letter it is given, duplicates included."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def put(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(self.letters)

    def __len__(self) -> int:
        return len(self.letters)

    async def redrive(self, bus: Bus, *, subscription: str | None = None) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class Config:
    concurrency: int
    mode: str  # "plain", "ordered" or "batch"
    batch_size: int
    batch_window: float
    timeout: float | None
    retry: RetryPolicy
    breaker: CircuitBreaker | None
    rate: RateLimit | None
    sync: bool
    queue_size: int
    on_success: bool
    step: float  # virtual seconds per clock step


@dataclass
class Record:
    """What the handlers saw."""

    attempts: Counter[str] = field(default_factory=Counter)
    handled: Counter[str] = field(default_factory=Counter)
    reported: Counter[str] = field(default_factory=Counter)
    starts: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    active: Counter[int] = field(default_factory=Counter)
    overlaps: list[int] = field(default_factory=list)


def check_identity(bus: Bus) -> None:
    for name, m in bus.metrics().items():
        total = m.succeeded + m.dead_lettered + m.in_flight + m.queued + m.waiting_retry
        assert m.accepted == total, (name, m)
        assert min(m.in_flight, m.queued, m.waiting_retry) >= 0, (name, m)


def _config(**fields: Any) -> Config:
    # A thread cannot be interrupted: a timed-out plain-def handler may still be
    # running (and finish) after the bus gave up on it, so no timeouts for those.
    if fields["sync"]:
        fields["timeout"] = None
    return Config(**fields)


configs = st.builds(
    _config,
    concurrency=st.integers(1, 8),
    mode=st.sampled_from(["plain", "ordered", "batch"]),
    batch_size=st.integers(1, 4),
    batch_window=st.sampled_from([0.0, 0.3]),
    timeout=st.sampled_from([None, 1.0]),
    retry=st.one_of(
        st.just(NoRetry()),
        st.builds(
            ExponentialBackoff,
            max_attempts=st.integers(1, 4),
            initial=st.sampled_from([0.1, 0.5]),
            jitter=st.just(False),
        ),
    ),
    breaker=st.one_of(
        st.none(),
        st.builds(
            CircuitBreaker,
            failure_threshold=st.integers(1, 3),
            reset_timeout=st.sampled_from([0.2, 1.0]),
        ),
    ),
    rate=st.one_of(st.none(), st.builds(RateLimit, rate=st.integers(1, 5), per=st.just(1.0))),
    sync=st.booleans(),
    queue_size=st.integers(1, 6),
    on_success=st.booleans(),
    step=st.sampled_from([0.05, 0.25]),
)

jobs = st.lists(
    st.tuples(
        st.integers(0, 2),  # key
        st.sampled_from([0, 0, 0, 1, 2, ALWAYS]),  # fails
        st.booleans(),  # hang
        st.sampled_from([0.0, 0.0, 0.1, 0.4]),  # work
        st.booleans(),  # publish_nowait
    ),
    min_size=1,
    max_size=24,
)


def make_handler(config: Config, clock: FakeClock, bus_box: list[Bus], rec: Record) -> Any:
    """A handler that fails, hangs or succeeds per each event's plan."""
    hangs = config.timeout is not None and not config.sync

    def fails_now(event: Job) -> bool:
        rec.attempts[event.id] += 1
        return rec.attempts[event.id] <= event.fails

    def start(event: Job) -> None:
        rec.starts[event.key].append(event.seq)
        rec.active[event.key] += 1
        if rec.active[event.key] > 1:
            rec.overlaps.append(event.key)

    if config.mode == "batch":
        if config.sync:

            def sync_batch(events: list[Job]) -> BatchResult | None:
                failing = [e.id for e in events if fails_now(e)]
                for e in events:
                    if e.id not in failing:
                        rec.handled[e.id] += 1
                return BatchResult(failed=failing) if failing else None

            return sync_batch

        async def batch(events: list[Job]) -> BatchResult | None:
            check_identity(bus_box[0])
            failing = [e for e in events if fails_now(e)]
            work = max(e.work for e in events)
            if work:
                await clock.sleep_until(clock.now() + work)
            if hangs and any(e.hang for e in failing):
                await anyio.sleep_forever()
            if len(failing) == len(events) and events[0].seq % 2:
                raise RuntimeError("the whole batch failed")
            for e in events:
                if e not in failing:
                    rec.handled[e.id] += 1
            check_identity(bus_box[0])
            return BatchResult(failed=[e.id for e in failing]) if failing else None

        return batch

    if config.sync:

        def sync_one(event: Job) -> None:
            start(event)
            try:
                if fails_now(event):
                    raise RuntimeError(f"planned failure of {event.seq}")
                rec.handled[event.id] += 1
            finally:
                rec.active[event.key] -= 1

        return sync_one

    async def one(event: Job) -> None:
        start(event)
        try:
            check_identity(bus_box[0])
            failing = fails_now(event)
            if event.work:
                await clock.sleep_until(clock.now() + event.work)
            if failing:
                if hangs and event.hang:
                    await anyio.sleep_forever()
                raise RuntimeError(f"planned failure of {event.seq}")
            rec.handled[event.id] += 1
            check_identity(bus_box[0])
        finally:
            rec.active[event.key] -= 1

    return one


def subscribe(bus: Bus, config: Config, handler: Any, rec: Record, name: str = "s") -> Any:
    async def reported(record: InvocationRecord) -> None:
        await anyio.lowlevel.checkpoint()  # a destination that yields
        rec.reported[record.event.id] += 1

    return bus.subscribe(
        Job,
        handler,
        name=name,
        concurrency=config.concurrency,
        ordered_by=(lambda e: e.key) if config.mode == "ordered" else None,
        batch=Batching(config.batch_size, config.batch_window) if config.mode == "batch" else None,
        timeout=config.timeout,
        retry=config.retry,
        circuit_breaker=config.breaker,
        rate_limit=config.rate,
        queue_size=config.queue_size,
        on_success=reported if config.on_success else None,
    )


async def ticker(bus: Bus, clock: FakeClock, step: float) -> None:
    """Move virtual time forward, step by step, checking the identity in between."""
    while True:
        await clock.advance(step)
        check_identity(bus)
        await anyio.lowlevel.checkpoint()


async def publish_all(
    bus: Bus,
    specs: list[tuple[int, int, bool, float, bool]],
    accepted: list[Job],
    stop_after: int | None = None,
) -> list[Job]:
    """Publish the jobs (waiting or not for room); append those accepted to *accepted*."""
    for seq, (key, fails, hang, work, nowait) in enumerate(specs):
        if stop_after is not None and seq == stop_after:
            raise KeyboardInterrupt  # leaves the bus block with an exception
        job = Job(seq, key, fails, hang, work)
        if nowait:
            try:
                bus.publish_nowait(job)
            except BusFull:
                check_identity(bus)
                continue
        else:
            await bus.publish(job)
        accepted.append(job)
        check_identity(bus)
    return accepted


def check_outcomes(
    config: Config,
    rec: Record,
    sink: Letters,
    accepted: list[Job],
    name: str = "s",
    abandoned: int = 0,
    shutdown: bool = False,
) -> None:
    """Every accepted event was handled exactly once or dead-lettered exactly once.

    A plain-def handler's thread abandoned at shutdown may still finish its
    event after the bus dead-lettered it (``abandoned`` counts those threads).
    A shutdown may also cut an ``on_success`` record short: the event still
    counts as handled, but its record is not delivered (``shutdown``).
    """
    if config.mode == "batch":
        abandoned *= config.batch_size  # one thread per batch
    letters = Counter(letter.event.id for letter in sink if letter.subscription == name)
    both = 0
    for job in accepted:
        outcomes = (rec.handled[job.id], letters[job.id])
        both += outcomes == (1, 1)
        assert outcomes in ((1, 0), (0, 1), (1, 1)), (job, outcomes)
    assert both <= abandoned
    ids = {job.id for job in accepted}
    assert set(letters) <= ids
    assert set(rec.handled) <= ids
    if config.on_success:
        assert set(rec.reported) <= set(rec.handled)
        if not shutdown:
            assert len(rec.handled) - len(rec.reported) <= abandoned


def check_order(config: Config, rec: Record, accepted: list[Job]) -> None:
    """Ordered: one event per key at a time, first attempts (and retries) in publish order."""
    if config.mode != "ordered":
        return
    assert not rec.overlaps or config.sync
    published: dict[int, list[int]] = defaultdict(list)
    for job in accepted:
        published[job.key].append(job.seq)
    for key, starts in rec.starts.items():
        # Retries repeat an event in place; nothing of a later event comes in between.
        collapsed = [s for i, s in enumerate(starts) if i == 0 or starts[i - 1] != s]
        assert collapsed == published[key], (key, starts, published[key])


def run(scenario: Callable[[], Any]) -> None:
    anyio.run(scenario)


# -- the properties ----------------------------------------------------------------------


@settings(
    max_examples=300,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(config=configs, specs=jobs)
def test_everything_accepted_settles_once(
    config: Config, specs: list[tuple[int, int, bool, float, bool]]
) -> None:
    """Publish, drain: every accepted event handled or dead-lettered exactly once, in key order."""
    rec = Record()
    sink = Letters()
    accepted: list[Job] = []

    async def scenario() -> None:
        clock = FakeClock()
        with anyio.fail_after(SAFETY):
            async with Bus(clock=clock, dead_letters=sink) as bus:
                handler = make_handler(config, clock, [bus], rec)
                subscribe(bus, config, handler, rec)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(ticker, bus, clock, config.step)
                    await publish_all(bus, specs, accepted)
                    await bus.drain()
                    check_identity(bus)
                    tg.cancel_scope.cancel()
            m = bus.metrics()["s"]
            assert (m.in_flight, m.queued, m.waiting_retry) == (0, 0, 0)
            assert m.accepted == len(accepted)
            assert m.succeeded == sum(rec.handled.values())
            assert m.dead_lettered == len(sink)

    run(scenario)
    check_outcomes(config, rec, sink, accepted)
    check_order(config, rec, accepted)


@settings(
    max_examples=200,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(config=configs, specs=jobs, data=st.data())
def test_leaving_with_an_exception_loses_nothing(
    config: Config, specs: list[tuple[int, int, bool, float, bool]], data: st.DataObject
) -> None:
    """An exception at a random point: handled + dead-lettered (Shutdown) == accepted."""
    stop_after = data.draw(st.integers(0, len(specs)), label="stop_after")
    settle_first = data.draw(st.integers(0, 3), label="clock steps before the exception")
    rec = Record()
    sink = Letters()
    accepted: list[Job] = []
    box: list[Bus] = []

    async def scenario() -> None:
        clock = FakeClock()
        with anyio.fail_after(SAFETY):
            try:
                async with Bus(clock=clock, dead_letters=sink) as bus:
                    box.append(bus)
                    handler = make_handler(config, clock, [bus], rec)
                    subscribe(bus, config, handler, rec)

                    async def publish_counting() -> None:
                        with contextlib.suppress(KeyboardInterrupt):
                            await publish_all(bus, specs, accepted, stop_after)

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(ticker, bus, clock, config.step)
                        await publish_counting()
                        for _ in range(settle_first):
                            await anyio.lowlevel.checkpoint()
                        tg.cancel_scope.cancel()
                    for _ in range(settle_first):
                        await clock.advance(config.step)
                    raise KeyboardInterrupt
            except KeyboardInterrupt:
                pass

    run(scenario)
    bus = box[0]
    m = bus.metrics()["s"]
    assert (m.in_flight, m.queued, m.waiting_retry) == (0, 0, 0), m
    assert m.accepted == len(accepted)
    assert m.succeeded + m.dead_lettered == m.accepted
    check_outcomes(config, rec, sink, accepted, abandoned=m.abandoned_threads, shutdown=True)


@settings(
    max_examples=120,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(config=configs, specs=jobs, data=st.data())
def test_unsubscribe_mid_stream_finishes_what_was_accepted(
    config: Config, specs: list[tuple[int, int, bool, float, bool]], data: st.DataObject
) -> None:
    """Unsubscribing while events flow: what it accepted is handled or dead-lettered first."""
    cut = data.draw(st.integers(0, len(specs)), label="unsubscribe after")
    rec = Record()
    other = Record()
    sink = Letters()
    accepted: list[Job] = []

    async def scenario() -> None:
        clock = FakeClock()
        with anyio.fail_after(SAFETY):
            async with Bus(clock=clock, dead_letters=sink) as bus:
                sub = subscribe(bus, config, make_handler(config, clock, [bus], rec), rec)

                async def bystander(event: Job) -> None:
                    other.handled[event.id] += 1

                bus.subscribe(Job, bystander, name="bystander", queue_size=len(specs) + 1)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(ticker, bus, clock, config.step)
                    await publish_all(bus, specs[:cut], accepted)
                    await bus.unsubscribe("s")
                    m = sub.metrics()
                    assert (m.in_flight, m.queued, m.waiting_retry) == (0, 0, 0), m
                    assert m.accepted == len(accepted)
                    assert m.succeeded + m.dead_lettered == m.accepted
                    rest = [(k, 0, False, 0.0, False) for (k, *_) in specs[cut:]]
                    later = await publish_all(bus, rest, [])
                    await bus.drain()
                    tg.cancel_scope.cancel()
            assert "s" not in bus.metrics()
            assert sum(other.handled.values()) == len(accepted) + len(later)

    run(scenario)
    check_outcomes(config, rec, sink, accepted)


# -- regressions found by the properties above ---------------------------------------------


async def drain_ticking(bus: Bus, clock: FakeClock, step: float) -> None:
    with anyio.fail_after(SAFETY):
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker, bus, clock, step)
            await bus.drain()
            tg.cancel_scope.cancel()


async def test_breaker_probe_survives_a_worker_yield() -> None:
    """A worker that yields after many events must not carry the half-open probe back to the gate.

    It did: the yield came after admission, so the worker asked the breaker
    again while holding the one probe slot, and waited for itself forever.
    """
    clock = FakeClock()

    async def fail(event: Job) -> None:
        raise RuntimeError("down")

    async with Bus(clock=clock, dead_letters=Letters()) as bus:
        bus.subscribe(
            Job,
            fail,
            name="s",
            retry=NoRetry(),
            circuit_breaker=CircuitBreaker(failure_threshold=1, reset_timeout=1.0),
            queue_size=100,
        )
        for n in range(40):
            await bus.publish(Job(n, 0, ALWAYS, False, 0.0))
        await drain_ticking(bus, clock, 0.5)
        assert bus.metrics()["s"].dead_lettered == 40


async def test_rate_limit_does_not_spin_on_a_rounding_error() -> None:
    """A token bucket a hair short of one token must not wait for a zero-length sleep forever.

    With rate=3 per second the refill lands on 0.9999999999999998 tokens; the
    wait for the sliver left did not move the clock, so a FakeClock never advanced.
    """
    clock = FakeClock()
    handled: list[int] = []

    async def work(event: Job) -> None:
        handled.append(event.seq)

    async with Bus(clock=clock) as bus:
        bus.subscribe(Job, work, name="s", rate_limit=RateLimit(rate=3, per=1.0), queue_size=20)
        for n in range(12):
            await bus.publish(Job(n, 0, 0, False, 0.0))
        await drain_ticking(bus, clock, 0.05)
    assert handled == list(range(12))


async def test_shutdown_while_reporting_success_settles_the_event() -> None:
    """Cancelled while its on_success record is being delivered, a handled event still settles.

    It did not: the cancellation left the event in flight forever, so
    ``accepted`` no longer added up to handled + dead-lettered.
    """
    reporting = anyio.Event()

    async def report(record: InvocationRecord) -> None:
        reporting.set()
        await anyio.sleep_forever()  # a destination that is slow to take the record

    async def work(event: Job) -> None:
        pass

    with anyio.fail_after(SAFETY), contextlib.suppress(KeyboardInterrupt):
        async with Bus() as bus:
            bus.subscribe(Job, work, name="s", on_success=report)
            await bus.publish(Job(0, 0, 0, False, 0.0))
            await reporting.wait()
            raise KeyboardInterrupt
    m = bus.metrics()["s"]
    assert (m.accepted, m.succeeded, m.dead_lettered, m.in_flight) == (1, 1, 0, 0)
