"""Issue 16 as a newcomer calls it: BlockingBus from threads, names, metrics, explain, payloads."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import attrs
import pytest

import eventbus
from eventbus import (
    BlockingBus,
    Bus,
    BusFull,
    DuplicateSubscription,
    Event,
    NoRetry,
    ScheduledEvent,
    ScheduleError,
)
from eventbus.testing import FakeClock, capture, payload, same_payload


@attrs.frozen
class Receipt_(Event, type_name="acceptance.i16.Order"):
    order_id: str
    amount: int = 0


@attrs.frozen
class DailyReport(Event, type_name="acceptance.i16.DailyReport"):
    day: str
    count: int


def test_blocking_bus_schedule_from_plain_threads() -> None:
    """BlockingBus.schedule/unschedule work from plain threads; ticks arrive on a FakeClock."""
    clock = FakeClock()
    ticks: list[str] = []
    errors: list[BaseException] = []
    with BlockingBus(clock=clock) as bus:
        bus.subscribe(ScheduledEvent, lambda event: ticks.append(event.rule), name="ticks")

        def from_thread() -> None:
            try:
                bus.schedule("rate(1 minute)", name="autosave")
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=from_thread)
        t.start()
        t.join()
        assert not errors
        bus.call(clock.advance, 180)
        bus.drain()
        bus.unschedule("autosave")
        bus.call(clock.advance, 180)
        bus.drain()
    assert ticks == ["autosave"] * 3


def test_blocking_bus_schedule_errors_are_named() -> None:
    """A bad expression through BlockingBus.schedule raises ScheduleError in the caller's thread."""
    with BlockingBus() as bus, pytest.raises(ScheduleError):
        bus.schedule("rate(0 minutes)", name="bad")


def test_blocking_bus_takes_transport_and_grace_period() -> None:
    """BlockingBus accepts transport= and grace_period= as Bus does."""
    with BlockingBus(transport=eventbus.MemoryTransport(), grace_period=1.0) as bus:
        got: list[str] = []
        bus.subscribe(Receipt_, lambda e: got.append(e.order_id), name="r")
        bus.publish(Receipt_("o-1"))
        bus.drain()
    assert got == ["o-1"]


def test_bus_full_hint_from_a_blocking_bus_speaks_to_threads() -> None:
    """BusFull raised by BlockingBus.publish_nowait tells threaded code what to call, not await."""
    release = threading.Event()
    with BlockingBus() as bus:
        bus.subscribe(Receipt_, lambda e: release.wait(5), name="slow", queue_size=1)

        def flood() -> None:
            for i in range(5):
                bus.publish_nowait(Receipt_(str(i)))

        with pytest.raises(BusFull) as info:
            flood()
        release.set()
        bus.drain()
    assert "await bus.publish" not in str(info.value)


async def test_schedule_on_bus_from_a_foreign_thread_names_blocking_bus() -> None:
    """Bus.schedule from another thread raises RuntimeError naming BlockingBus.schedule."""
    async with Bus() as bus:
        errors: list[BaseException] = []

        def other() -> None:
            try:
                bus.schedule("rate(1 minute)", name="x")
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert len(errors) == 1
    assert "BlockingBus" in str(errors[0])


async def test_default_subscription_name_is_the_function_name() -> None:
    """An inner function's default subscription name is its plain name."""

    async def main() -> str:
        async def index(event: Receipt_) -> None:
            pass

        return Bus().subscribe(Receipt_, index).name

    assert await main() == "index"


async def test_name_clash_is_duplicate_subscription_saying_how() -> None:
    """Two handlers with one name clash as DuplicateSubscription that says to pass name=."""

    def make() -> Any:
        async def handle(event: Receipt_) -> None:
            pass

        return handle

    bus = Bus()
    bus.subscribe(Receipt_, make())
    with pytest.raises(DuplicateSubscription, match="name="):
        bus.subscribe(Receipt_, make())


async def test_decorated_handler_carries_its_subscription_and_keys_metrics() -> None:
    """@bus.on sets send_receipt.subscription; bus.metrics()[send_receipt] works."""
    async with Bus() as bus:

        @bus.on(Receipt_)
        async def send_receipt(event: Receipt_) -> None:
            pass

        assert send_receipt.subscription.name == "send_receipt"  # type: ignore[attr-defined]
        await bus.publish(Receipt_("o"))
        await bus.drain()
        assert bus.metrics()[send_receipt].succeeded == 1
        assert bus.metrics()["send_receipt"].succeeded == 1


async def test_redriven_shows_the_dead_letter_queue_emptied() -> None:
    """After a successful redrive, metrics show redriven and the sink is empty."""
    fail = {"on": True}

    async def flaky(event: Receipt_) -> None:
        if fail["on"]:
            raise RuntimeError("down")

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Receipt_, flaky, name="flaky")
        await bus.publish(Receipt_("o"))
        await bus.drain()
        assert bus.metrics()["flaky"].dead_lettered == 1
        fail["on"] = False
        await bus.dead_letters.redrive(bus)
        await bus.drain()
        m = bus.metrics()["flaky"]
        assert m.redriven == 1
        assert len(bus.dead_letters) == 0
        assert (
            m.accepted == m.succeeded + m.dead_lettered + m.in_flight + m.queued + m.waiting_retry
        )


async def test_explain_with_a_dict_names_explain_and_the_way_out() -> None:
    """bus.explain({...}) no longer blames publish(); it says how to explain a mapping."""

    async def big(event: Receipt_) -> None:
        pass

    async with Bus() as bus:
        sub = bus.subscribe(Receipt_, big, name="big", where={"amount": [{"numeric": [">", 100]}]})
        with pytest.raises(TypeError, match=r"explain\(\)") as info:
            bus.explain({"order_id": "o", "amount": 5})  # type: ignore[arg-type]
        assert "publish()" not in str(info.value)
        assert "Pattern" in str(info.value)
        assert "big" in bus.explain(Receipt_("o", 5))
        del sub


@pytest.mark.parametrize("bad", [None, 5, "text", [1]])
def test_explain_with_nonsense_is_a_type_error_naming_explain(bad: Any) -> None:
    """bus.explain with something that is neither an Event nor a mapping says explain()."""
    with pytest.raises(TypeError, match="explain"):
        Bus().explain(bad)


def test_payload_comparison_ignores_envelope() -> None:
    """same_payload/payload compare events without id and time."""
    a = DailyReport("2024-03-01", 1)
    b = DailyReport("2024-03-01", 1)
    assert a != b
    assert same_payload(a, b)
    assert not same_payload(a, DailyReport("2024-03-01", 2))
    assert payload(a) == payload(b)


async def test_capture_compares_payloads() -> None:
    """A capture recorder's contents compare by payload against freshly built events."""
    async with Bus() as bus:
        with capture(bus, DailyReport) as got:
            await bus.publish(DailyReport("2024-03-01", 1))
            await bus.drain()
        (event,) = got.events
        assert payload(event) == DailyReport("2024-03-01", 1)
        assert got.payloads() == [DailyReport("2024-03-01", 1)]


def test_event_subclass_without_attrs_frozen_says_the_fix() -> None:
    """Forgetting @attrs.frozen gives a message naming the fix."""

    def forget() -> None:
        class Oops(Event):
            day: str

        Oops("2024-03-01")  # type: ignore[call-arg]

    with pytest.raises(TypeError, match=r"attrs\.frozen"):
        forget()


def test_version_flag() -> None:
    """python -m eventbus --version prints the version."""
    proc = subprocess.run(
        [sys.executable, "-m", "eventbus", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert proc.stdout.strip()
    assert any(ch.isdigit() for ch in proc.stdout)


@pytest.mark.parametrize("name", [None, 5, b"x", ("a",)])
async def test_a_non_string_subscription_name_is_named(name: Any) -> None:
    """Looking up a subscription by a non-str name says names are str, never a difflib crash."""
    async with Bus() as bus:
        bus.subscribe(Receipt_, lambda e: None, name="real")
        with pytest.raises(eventbus.UnknownSubscription, match="names are str"):
            bus.subscription(name)
        with pytest.raises(eventbus.UnknownSubscription, match="names are str"):
            await bus.invoke(name, Receipt_("o"))
