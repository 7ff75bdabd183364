"""Concurrency and per-key ordering: equal keys one at a time in publish order, others in parallel."""

from __future__ import annotations

import random
from collections import defaultdict

import anyio
import anyio.lowlevel
import attrs

from eventbus import Bus, Context, Event, ExponentialBackoff
from eventbus.testing import FakeClock
from eventbus.testing._clock import _wait_all_tasks_blocked as settle


@attrs.frozen
class Job(Event):
    key: str
    seq: int = 0


class Tracker:
    """Records per-key order and how many handlers ran at once, overall and per key."""

    def __init__(self) -> None:
        self.order: dict[str, list[int]] = defaultdict(list)
        self.running = 0
        self.max_running = 0
        self.running_per_key: dict[str, int] = defaultdict(int)
        self.max_per_key = 0

    def enter(self, job: Job) -> None:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.running_per_key[job.key] += 1
        self.max_per_key = max(self.max_per_key, self.running_per_key[job.key])

    def leave(self, job: Job) -> None:
        self.running -= 1
        self.running_per_key[job.key] -= 1
        self.order[job.key].append(job.seq)


async def test_per_key_order_is_publish_order_under_concurrency() -> None:
    """With concurrency 8 and random awaits, each key's events are handled in publish order."""
    rng = random.Random(1234)
    tracker = Tracker()
    keys = [f"k{i}" for i in range(6)]

    async def handle(job: Job) -> None:
        tracker.enter(job)
        for _ in range(rng.randrange(6)):
            await anyio.lowlevel.checkpoint()
        tracker.leave(job)

    published: dict[str, list[int]] = defaultdict(list)
    async with Bus() as bus:
        bus.subscribe(Job, handle, name="jobs", concurrency=8, ordered_by="key")
        for seq in range(300):
            key = rng.choice(keys)
            published[key].append(seq)
            await bus.publish(Job(key, seq))
            if rng.random() < 0.3:
                await anyio.lowlevel.checkpoint()
    assert dict(tracker.order) == dict(published)
    assert tracker.max_per_key == 1
    assert tracker.max_running > 1


async def test_different_keys_run_in_parallel() -> None:
    """Events with different keys are in flight at the same time."""
    started = {"a": anyio.Event(), "b": anyio.Event()}
    release = anyio.Event()

    async def handle(job: Job) -> None:
        started[job.key].set()
        await release.wait()

    async with Bus() as bus:
        bus.subscribe(Job, handle, name="jobs", concurrency=2, ordered_by="key")
        await bus.publish(Job("a"))
        await bus.publish(Job("b"))
        await settle()
        assert started["a"].is_set()
        assert started["b"].is_set()
        assert bus.metrics()["jobs"].in_flight == 2
        release.set()


async def test_rendezvous_between_keys_completes() -> None:
    """Two keys whose handlers each wait for the other finish: they truly overlap."""
    arrived = {"a": anyio.Event(), "b": anyio.Event()}
    other = {"a": "b", "b": "a"}
    finished: list[str] = []

    async def handle(job: Job) -> None:
        arrived[job.key].set()
        await arrived[other[job.key]].wait()
        finished.append(job.key)

    async with Bus() as bus:
        bus.subscribe(Job, handle, name="jobs", concurrency=8, ordered_by="key")
        await bus.publish(Job("a"))
        await bus.publish(Job("b"))
    assert sorted(finished) == ["a", "b"]


async def test_equal_keys_wait_for_each_other() -> None:
    """A second event with the same key waits, counted as queued, until the first finishes."""
    release = anyio.Event()
    started: list[int] = []

    async def handle(job: Job) -> None:
        started.append(job.seq)
        await release.wait()

    async with Bus() as bus:
        bus.subscribe(Job, handle, name="jobs", concurrency=8, ordered_by="key")
        await bus.publish(Job("same", 1))
        await bus.publish(Job("same", 2))
        await settle()
        assert started == [1]
        metrics = bus.metrics()["jobs"]
        assert (metrics.in_flight, metrics.queued) == (1, 1)
        release.set()
    assert started == [1, 2]


async def test_a_blocked_key_does_not_hold_up_other_keys() -> None:
    """While one key is stuck, events of other keys keep flowing."""
    release = anyio.Event()
    done: list[str] = []

    async def handle(job: Job) -> None:
        if job.key == "stuck":
            await release.wait()
        done.append(f"{job.key}{job.seq}")

    async with Bus() as bus:
        bus.subscribe(Job, handle, name="jobs", concurrency=2, ordered_by="key")
        await bus.publish(Job("stuck", 0))
        await bus.publish(Job("stuck", 1))
        for seq in range(5):
            await bus.publish(Job("free", seq))
        await settle()
        assert done == [f"free{i}" for i in range(5)]
        release.set()
    assert done[5:] == ["stuck0", "stuck1"]


async def test_key_function_orders_events() -> None:
    """ordered_by may be a key function."""
    tracker = Tracker()
    rng = random.Random(7)

    async def handle(job: Job) -> None:
        tracker.enter(job)
        for _ in range(rng.randrange(4)):
            await anyio.lowlevel.checkpoint()
        tracker.leave(job)

    async with Bus() as bus:
        bus.subscribe(Job, handle, concurrency=4, ordered_by=lambda job: job.key[0])
        for seq in range(60):
            await bus.publish(Job(rng.choice(["a1", "a2", "b1"]), seq))
    assert tracker.max_per_key == 1
    merged_a = sorted(tracker.order["a1"] + tracker.order["a2"])
    handled_a = [seq for key in ("a1", "a2") for seq in tracker.order[key]]
    assert sorted(handled_a) == merged_a


async def test_failing_key_function_dead_letters_the_event() -> None:
    """A key function that raises dead-letters that event (NotRetryable); the rest go on."""

    def key(job: Job) -> str:
        if job.seq == 1:
            raise LookupError("no key")
        return job.key

    handled: list[int] = []

    async def handle(job: Job) -> None:
        handled.append(job.seq)

    async with Bus() as bus:
        bus.subscribe(Job, handle, name="jobs", ordered_by=key)
        for seq in range(3):
            await bus.publish(Job("k", seq))
    assert handled == [0, 2]
    [letter] = bus.dead_letters
    assert (letter.event.seq, letter.condition, letter.attempts) == (1, "NotRetryable", 0)  # type: ignore[attr-defined]
    assert letter.error.error_type == "LookupError"
    metrics = bus.metrics()["jobs"]
    assert (metrics.succeeded, metrics.dead_lettered, metrics.accepted) == (2, 1, 3)


async def test_failed_event_holds_its_key_until_retried(fake_clock: FakeClock) -> None:
    """An ordered event waiting for a retry keeps later same-key events behind it."""
    log: list[str] = []

    async def handle(job: Job, ctx: Context) -> None:
        log.append(f"{job.key}{job.seq}@{ctx.attempt}")
        if (job.key, job.seq, ctx.attempt) == ("a", 0, 1):
            raise RuntimeError("try again")

    retry = ExponentialBackoff(initial=10, jitter=False)
    async with Bus(clock=fake_clock, retry=retry) as bus:
        bus.subscribe(Job, handle, name="jobs", concurrency=4, ordered_by="key")
        await bus.publish(Job("a", 0))
        await bus.publish(Job("a", 1))
        await bus.publish(Job("b", 0))
        await settle()
        assert log == ["a0@1", "b0@1"]
        metrics = bus.metrics()["jobs"]
        assert (metrics.waiting_retry, metrics.queued) == (1, 1)
        await fake_clock.advance(10)
    assert log == ["a0@1", "b0@1", "a0@2", "a1@1"]


async def test_unordered_concurrency_limit_is_respected() -> None:
    """Without ordered_by, at most `concurrency` events are in flight."""
    release = anyio.Event()
    tracker = Tracker()

    async def handle(job: Job) -> None:
        tracker.enter(job)
        await release.wait()
        tracker.leave(job)

    async with Bus() as bus:
        bus.subscribe(Job, handle, name="jobs", concurrency=3)
        for seq in range(10):
            await bus.publish(Job(str(seq), seq))
        await settle()
        metrics = bus.metrics()["jobs"]
        assert (metrics.in_flight, metrics.queued) == (3, 7)
        release.set()
    assert tracker.max_running == 3


async def test_concurrency_one_handles_in_publish_order() -> None:
    """A single worker handles events first in, first out."""
    rng = random.Random(3)
    order: list[int] = []

    async def handle(job: Job) -> None:
        for _ in range(rng.randrange(3)):
            await anyio.lowlevel.checkpoint()
        order.append(job.seq)

    async with Bus() as bus:
        bus.subscribe(Job, handle)
        for seq in range(50):
            await bus.publish(Job(rng.choice("xyz"), seq))
    assert order == list(range(50))


async def test_busy_subscription_does_not_starve_others() -> None:
    """A subscription with a long backlog of instant handlers lets other subscriptions run."""
    progress: list[str] = []

    async def instant(job: Job) -> None:
        progress.append("busy")

    async def other(job: Job) -> None:
        progress.append("other")

    async with Bus() as bus:
        bus.subscribe(Job, instant, name="busy", where=lambda job: job.key == "busy")
        bus.subscribe(Job, other, name="other", where=lambda job: job.key == "other")
        # More events than a worker handles before yielding (a few hundred).
        for seq in range(1000):
            bus.publish_nowait(Job("busy", seq))
        bus.publish_nowait(Job("other"))
    assert progress.index("other") < len(progress) - 1
