"""The first hour of a newcomer, as the docs promise it: readable names and messages that say the fix."""

from __future__ import annotations

import attrs
import pytest

from eventbus import (
    BlockingBus,
    Bus,
    DuplicateSubscription,
    Event,
    MemoryDeadLetters,
    NoRetry,
)


@attrs.frozen
class OrderPlaced(Event):
    order_id: str


# -- forgetting @attrs.frozen ----------------------------------------------------------


def test_an_event_class_without_attrs_frozen_says_the_fix() -> None:
    """Constructing an Event subclass whose fields were never processed names @attrs.frozen."""

    class Forgotten(Event):  # no @attrs.frozen
        order_id: str

    with pytest.raises(TypeError, match=r"Forgotten declares field\(s\) order_id .*@attrs\.frozen"):
        Forgotten("o-1")  # type: ignore[call-arg]


def test_a_decorated_event_class_is_not_affected() -> None:
    """With @attrs.frozen the fields work as usual."""
    assert OrderPlaced("o-1").order_id == "o-1"


def test_a_subclass_without_fields_of_its_own_needs_no_decorator() -> None:
    """A plain subclass that declares no fields inherits its parent's constructor."""

    class Urgent(OrderPlaced):
        pass

    assert Urgent("o-1").order_id == "o-1"


# -- default subscription names --------------------------------------------------------


async def test_the_default_name_is_the_function_name() -> None:
    """A nested handler is named after the function, not main.<locals>.handler."""
    async with Bus() as bus:

        @bus.on(OrderPlaced)
        async def send_receipt(event: OrderPlaced) -> None:
            pass

        receipt = await bus.publish(OrderPlaced("o-1"))
        assert receipt.subscriptions == ("send_receipt",)


async def test_the_decorated_handler_carries_its_subscription() -> None:
    """@bus.on leaves the handler callable and gives it .subscription."""
    async with Bus() as bus:

        @bus.on(OrderPlaced)
        async def send_receipt(event: OrderPlaced) -> None:
            pass

        assert send_receipt.subscription.name == "send_receipt"  # type: ignore[attr-defined]
        assert send_receipt.subscription is bus.subscription("send_receipt")  # type: ignore[attr-defined]


async def test_metrics_are_found_by_handler_too() -> None:
    """bus.metrics()[handler] is the same snapshot as bus.metrics()[name]."""
    async with Bus() as bus:

        @bus.on(OrderPlaced)
        async def send_receipt(event: OrderPlaced) -> None:
            pass

        await bus.publish(OrderPlaced("o-1"))
        await bus.drain()
        metrics = bus.metrics()
        assert metrics[send_receipt] == metrics["send_receipt"]
        assert metrics[send_receipt].succeeded == 1


async def test_a_name_clash_says_how_to_name_it() -> None:
    """Two handlers with one name: DuplicateSubscription suggests name=."""
    async with Bus() as bus:

        async def handle(event: OrderPlaced) -> None:
            pass

        bus.subscribe(OrderPlaced, handle)
        with pytest.raises(DuplicateSubscription, match=r"'handle' already exists.*name="):
            bus.subscribe(OrderPlaced, handle)


# -- redrive is visible in the metrics -------------------------------------------------


async def test_metrics_count_redriven_events() -> None:
    """After a successful redrive, redriven counts the events delivered again."""
    healthy = False

    async def flaky(event: OrderPlaced) -> None:
        if not healthy:
            raise ConnectionError("down")

    async with Bus(dead_letters=MemoryDeadLetters()) as bus:
        bus.subscribe(OrderPlaced, flaky, name="flaky", retry=NoRetry())
        await bus.publish(OrderPlaced("o-1"))
        await bus.drain()
        assert (bus.metrics()["flaky"].dead_lettered, bus.metrics()["flaky"].redriven) == (1, 0)
        healthy = True
        assert await bus.dead_letters.redrive(bus) == 1
        await bus.drain()
        metrics = bus.metrics()["flaky"]
        assert (metrics.redriven, metrics.succeeded, len(bus.dead_letters)) == (1, 1, 0)
        assert metrics.balanced


# -- explain with a dict ---------------------------------------------------------------


async def test_explain_with_a_dict_talks_about_explain() -> None:
    """bus.explain({...}) says explain() takes an event, not that publish() does."""
    async with Bus() as bus:
        with pytest.raises(
            TypeError, match=r"explain\(\) takes the eventbus\.Event you would publish, got dict"
        ):
            bus.explain({"order_id": "o-1"})  # type: ignore[arg-type]


# -- the async bus of a BlockingBus, misused from the main thread ------------------------


def test_scheduling_on_the_inner_bus_from_another_thread_names_the_fix() -> None:
    """blocking.bus.schedule(...) from a plain thread says to call blocking.schedule(...)."""
    with BlockingBus() as blocking:
        with pytest.raises(
            RuntimeError, match=r"blocking_bus\.schedule\(\.\.\.\), not blocking_bus\.bus\.schedule"
        ):
            blocking.bus.schedule("rate(1 minute)", name="tick")
        assert blocking.schedules() == []


async def test_metrics_of_a_function_that_is_no_handler_is_a_key_error() -> None:
    """A function that handles nothing is a KeyError listing the subscription names."""

    async def stray(event: OrderPlaced) -> None:
        pass

    async with Bus() as bus:
        bus.subscribe(OrderPlaced, lambda event: None, name="noop")
        with pytest.raises(KeyError, match=r"not the handler of any subscription.*'noop'"):
            bus.metrics()[stray]


async def test_a_method_handler_is_named_with_its_class() -> None:
    """A bound method's default name keeps its class, so two classes' handle() do not clash."""

    class Mailer:
        async def handle(self, event: OrderPlaced) -> None:
            pass

    class Auditor:
        async def handle(self, event: OrderPlaced) -> None:
            pass

    async with Bus() as bus:
        mailer, auditor = Mailer(), Auditor()
        bus.subscribe(OrderPlaced, mailer.handle)
        bus.subscribe(OrderPlaced, auditor.handle)
        assert [s.name for s in bus.subscriptions()] == ["Mailer.handle", "Auditor.handle"]
        assert bus.metrics()[mailer.handle].accepted == 0
