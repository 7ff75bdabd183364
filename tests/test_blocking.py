"""BlockingBus: the same bus on a background loop thread, driven from plain threads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import anyio
import attrs
import pytest

from eventbus import (
    BlockingBus,
    Bus,
    BusClosed,
    BusFull,
    Context,
    Event,
    InvocationError,
    MemoryTransport,
    NoRetry,
    Receipt,
    ScheduledEvent,
    ScheduleError,
)
from eventbus.testing import FakeClock

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@attrs.frozen
class Click(Event):
    button: str = "ok"
    n: int = 0


def test_publish_from_several_threads_to_sync_and_async_handlers() -> None:
    """Events published from plain threads reach async handlers (loop thread) and sync ones (workers)."""
    lock = threading.Lock()
    async_seen: list[tuple[int, int]] = []
    sync_seen: list[tuple[int, int]] = []

    async def on_loop(event: Click) -> None:
        async_seen.append((event.n, threading.get_ident()))

    def in_worker(event: Click) -> None:
        with lock:
            sync_seen.append((event.n, threading.get_ident()))

    main_thread = threading.get_ident()
    publisher_threads: list[int] = []
    with BlockingBus() as bus:
        bus.subscribe(Click, on_loop, name="async")
        bus.subscribe(Click, in_worker, name="sync", concurrency=4)

        def publish_range(start: int) -> None:
            with lock:
                publisher_threads.append(threading.get_ident())
            for n in range(start, start + 25):
                bus.publish(Click(n=n))

        threads = [threading.Thread(target=publish_range, args=(i * 25,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        bus.drain()
        metrics = bus.metrics()
    assert sorted(n for n, _ in async_seen) == list(range(100))
    assert sorted(n for n, _ in sync_seen) == list(range(100))
    loop_threads = {t for _, t in async_seen}
    assert len(loop_threads) == 1
    [loop_thread] = loop_threads
    assert loop_thread not in {main_thread, *publisher_threads}
    assert loop_thread not in {t for _, t in sync_seen}
    assert (metrics["async"].accepted, metrics["async"].succeeded) == (100, 100)
    assert (metrics["sync"].accepted, metrics["sync"].succeeded) == (100, 100)


def test_publish_returns_the_receipt() -> None:
    """publish blocks until accepted and returns the Receipt."""
    with BlockingBus() as bus:
        bus.subscribe(Click, lambda event: None, name="noop")
        click = Click()
        assert bus.publish(click) == Receipt(click.id, ("noop",))


def test_invoke_returns_the_value_and_raises_invocation_error() -> None:
    """invoke returns the handler's value, or raises InvocationError in Lambda's shape."""

    async def double(event: Click) -> int:
        return event.n * 2

    def refuse(event: Click) -> None:
        raise PermissionError("not allowed")

    with BlockingBus() as bus:
        bus.subscribe(Click, double, name="double")
        bus.subscribe(Click, refuse, name="refuse")
        assert bus.invoke("double", Click(n=21)) == 42
        with pytest.raises(InvocationError) as info:
            bus.invoke("refuse", Click())
    assert info.value.to_dict()["errorType"] == "PermissionError"
    assert info.value.error_message == "not allowed"


def test_closing_drains() -> None:
    """Leaving the with block handles every accepted event first."""
    done: list[int] = []

    def slow(event: Click) -> None:
        done.append(event.n)

    with BlockingBus() as bus:
        bus.subscribe(Click, slow, name="slow")
        for n in range(20):
            bus.publish(Click(n=n))
    assert done == list(range(20))
    assert bus.bus.outstanding == 0


def test_start_and_close_without_with() -> None:
    """start() and close() work without a with block, and close() is idempotent."""
    seen: list[int] = []
    bus = BlockingBus()
    bus.subscribe(Click, lambda event: seen.append(event.n), name="rec")
    assert bus.start() is bus
    bus.publish(Click(n=1))
    bus.close()
    bus.close()
    assert seen == [1]


def test_start_twice_is_refused() -> None:
    """A started BlockingBus cannot be started again."""
    with BlockingBus() as bus, pytest.raises(RuntimeError, match="already started"):
        bus.start()


def test_methods_need_a_running_bus() -> None:
    """Before start and after close, publishing raises BusClosed."""
    bus = BlockingBus()
    with pytest.raises(BusClosed, match=r"use 'with BlockingBus\(\) as bus:' or call start\(\)"):
        bus.publish(Click())
    with bus:
        pass
    with pytest.raises(BusClosed):
        bus.publish(Click())
    with pytest.raises(BusClosed):
        bus.drain()


def test_publish_nowait_raises_bus_full() -> None:
    """publish_nowait on a full queue raises BusFull in the calling thread."""
    release = threading.Event()
    started = threading.Event()

    def stuck(event: Click) -> None:
        started.set()
        release.wait()

    try:
        with BlockingBus() as bus:
            bus.subscribe(Click, stuck, name="stuck", queue_size=1)
            bus.publish(Click(n=0))
            started.wait()
            bus.publish(Click(n=1))
            with pytest.raises(BusFull) as raised:
                bus.publish_nowait(Click(n=2))
            assert "await" not in str(raised.value)
            assert "'bus.publish(event)' (it blocks until there is room)" in str(raised.value)
            assert bus.metrics()["stuck"].throttled == 1
            release.set()
    finally:
        release.set()


def test_calling_it_from_its_own_loop_raises() -> None:
    """Blocking methods called on the bus's own loop thread (an async handler) raise RuntimeError."""
    blocking = BlockingBus(retry=NoRetry())

    async def misuse(event: Click) -> None:
        blocking.publish(Click(n=event.n + 1))

    blocking.subscribe(Click, misuse, name="misuse")
    with blocking:
        with pytest.raises(InvocationError) as info:
            blocking.invoke("misuse", Click())
        blocking.publish(Click())
        blocking.drain()
    assert info.value.error_type == "RuntimeError"
    assert "use the async bus there" in info.value.error_message
    [letter] = blocking.dead_letters
    assert letter.error.error_type == "RuntimeError"


def test_async_handlers_use_the_async_bus() -> None:
    """Inside async handlers, the underlying Bus (``.bus``) publishes follow-ups."""
    seen: list[Click] = []

    with BlockingBus() as blocking:

        async def forward(event: Click, ctx: Context) -> None:
            if event.n == 0:
                await ctx.publish(Click(n=1))
            else:
                seen.append(event)

        blocking.subscribe(Click, forward)
        assert isinstance(blocking.bus, Bus)
        blocking.publish(Click(n=0))
        blocking.drain()
    [follow_up] = seen
    assert follow_up.n == 1
    assert follow_up.causation_id is not None


def test_sync_handlers_may_publish_through_it() -> None:
    """A plain ``def`` handler (in a worker thread) may publish through the BlockingBus."""
    seen: list[int] = []

    with BlockingBus() as blocking:

        def relay(event: Click) -> None:
            if event.n < 3:
                blocking.publish(Click(n=event.n + 1))
            seen.append(event.n)

        blocking.subscribe(Click, relay, name="relay")
        blocking.publish(Click(n=0))
        blocking.drain()
    assert sorted(seen) == [0, 1, 2, 3]


def test_on_decorator_subscribes() -> None:
    """The decorator form subscribes with options and returns the handler."""
    seen: list[int] = []
    with BlockingBus() as bus:

        @bus.on(Click, name="deco", concurrency=2)
        def handler(event: Click) -> None:
            seen.append(event.n)

        assert bus.bus.subscription("deco").concurrency == 2
        bus.publish(Click(n=5))
    assert seen == [5]


def test_exception_in_the_block_dead_letters_pending_events() -> None:
    """An exception leaving the with block shuts down without waiting: pending events get 'Shutdown'."""
    bus = BlockingBus()

    async def never(event: Click) -> None:
        await anyio.sleep_forever()

    bus.subscribe(Click, never, name="never")

    def run() -> None:
        with bus:
            for n in range(3):
                bus.publish(Click(n=n))
            raise LookupError("stop")

    with pytest.raises(LookupError):
        run()
    conditions = [letter.condition for letter in bus.dead_letters]
    assert conditions == ["Shutdown"] * 3


def test_bus_options_are_passed_through() -> None:
    """Keyword arguments reach the underlying Bus."""
    blocking = BlockingBus(retry=NoRetry(), max_chain_depth=4)
    assert blocking.bus.retry == NoRetry()
    assert blocking.dead_letters is blocking.bus.dead_letters


def test_repr_shows_state() -> None:
    """The repr says whether the loop thread runs."""
    blocking = BlockingBus()
    assert repr(blocking).startswith("<BlockingBus stopped")
    with blocking:
        assert repr(blocking).startswith("<BlockingBus running")


# -- a whole bus from plain threads --------------------------------------------------


def test_a_schedule_fires_for_a_plain_def_handler_on_a_fake_clock() -> None:
    """A schedule made from the main thread fires for a plain def handler as the clock advances."""
    clock = FakeClock(start=EPOCH)
    fired: list[tuple[datetime, bool]] = []
    main_thread = threading.get_ident()

    def tick(event: ScheduledEvent) -> None:
        fired.append((event.scheduled_time, threading.get_ident() != main_thread))

    with BlockingBus(clock=clock) as bus:
        bus.subscribe(ScheduledEvent, tick, name="tick")
        info = bus.schedule("rate(1 minute)", name="every-minute")
        assert info.next_fire == EPOCH + timedelta(minutes=1)
        bus.call(clock.advance, 180)
        bus.drain()
    assert fired == [(EPOCH + timedelta(minutes=n), True) for n in (1, 2, 3)]


def test_a_schedule_made_before_start_runs_once_started() -> None:
    """schedule() before start() is kept and fires once the bus runs."""
    clock = FakeClock(start=EPOCH)
    fired: list[str] = []
    bus = BlockingBus(clock=clock)
    bus.subscribe(ScheduledEvent, lambda event: fired.append(event.rule), name="tick")
    bus.schedule("cron(30 0 * * ? *)", name="half-past")
    with bus:
        bus.call(clock.advance, 3600)
        bus.drain()
    assert fired == ["half-past"]


def test_schedules_lists_and_unschedule_removes() -> None:
    """schedules() lists each schedule; unschedule() removes it; an unknown name is a ScheduleError."""
    with BlockingBus(clock=FakeClock(start=EPOCH)) as bus:
        bus.schedule("rate(5 minutes)", name="a")
        bus.schedule("rate(1 hour)", name="b")
        assert [s.name for s in bus.schedules()] == ["a", "b"]
        bus.unschedule("a")
        assert [s.name for s in bus.schedules()] == ["b"]
        with pytest.raises(ScheduleError):
            bus.unschedule("a")


def test_a_schedule_from_another_thread_fires() -> None:
    """schedule() from a plain thread other than the one that started the bus works too."""
    clock = FakeClock(start=EPOCH)
    fired: list[str] = []
    with BlockingBus(clock=clock) as bus:
        bus.subscribe(ScheduledEvent, lambda event: fired.append(event.rule), name="tick")
        worker = threading.Thread(
            target=bus.schedule, args=("rate(1 minute)",), kwargs={"name": "t"}
        )
        worker.start()
        worker.join()
        bus.call(clock.advance, 60)
        bus.drain()
    assert fired == ["t"]


def test_every_bus_keyword_is_accepted() -> None:
    """transport= and grace_period= reach the Bus, as its other keywords do."""
    with BlockingBus(transport=MemoryTransport(), grace_period=5) as bus:
        bus.subscribe(Click, lambda event: None, name="noop")
        assert bus.publish(Click()).subscriptions == ("noop",)


def test_an_unknown_keyword_names_blocking_bus() -> None:
    """A keyword Bus does not take is refused with a message naming BlockingBus."""
    with pytest.raises(TypeError, match=r"BlockingBus\(\) got keyword argument\(s\) colour"):
        BlockingBus(colour="red")


def test_call_runs_a_coroutine_function_on_the_loop() -> None:
    """call() awaits an async function on the bus's loop thread and returns its result."""

    async def where_am_i(offset: int) -> int:
        return threading.get_ident() + offset

    with BlockingBus() as bus:
        assert bus.call(where_am_i, 0) != threading.get_ident()
        assert bus.call(where_am_i, 1) == bus.call(where_am_i, 0) + 1
