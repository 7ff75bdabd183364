"""Subscriptions: subscribe-time validation, handler shapes, names and attributes."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from eventbus import (
    Bus,
    BusClosed,
    Context,
    Event,
    ExponentialBackoff,
    MemoryDeadLetters,
    NoRetry,
    Subscription,
)


@attrs.frozen
class OrderPlaced(Event):
    order_id: str = "o-1"
    total: int = 0


@attrs.frozen
class OrderCancelled(Event):
    order_id: str = "o-1"
    reason: str = ""


async def handler(event: OrderPlaced) -> None:
    pass


class Handlers:
    async def method(self, event: OrderPlaced, ctx: Context) -> None:
        pass


# -- event types -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [int, "OrderPlaced", OrderPlaced(), None, (OrderPlaced, dict)])
def test_event_types_must_be_event_subclasses(bad: Any) -> None:
    """Anything but Event subclasses (or a tuple of them) is refused, showing how to define one."""
    with pytest.raises(
        TypeError,
        match=r"event_types must be Event subclasses .*'@attrs\.frozen class MyEvent\(eventbus\.Event\)",
    ):
        Bus().subscribe(bad, handler)


def test_event_types_tuple_must_not_be_empty() -> None:
    """An empty tuple of event types is refused."""
    with pytest.raises(TypeError, match="needs at least one event type, got an empty tuple"):
        Bus().subscribe((), handler)


# -- handlers --------------------------------------------------------------------------


def test_handler_must_be_callable() -> None:
    """A handler that is not callable is refused with the expected shapes."""
    with pytest.raises(
        TypeError, match=r"handler must be a callable such as 'async def handler\(event\)'"
    ):
        Bus().subscribe(OrderPlaced, "handler")  # type: ignore[arg-type]


def test_handler_without_parameters_is_refused() -> None:
    """A handler taking no argument is refused, naming it and the accepted shapes."""

    async def nothing() -> None:
        pass

    with pytest.raises(
        TypeError,
        match=r"handler .*nothing takes 0 required positional argument\(s\); a handler takes \(event\) or \(event, ctx\)",
    ):
        Bus().subscribe(OrderPlaced, nothing)


def test_handler_with_three_required_parameters_is_refused() -> None:
    """A handler requiring three arguments is refused."""

    async def too_many(event: Any, ctx: Any, extra: Any) -> None:
        pass

    with pytest.raises(TypeError, match=r"too_many takes 3 required positional argument\(s\)"):
        Bus().subscribe(OrderPlaced, too_many)


def test_async_generator_handler_is_refused() -> None:
    """An async generator function is not a handler."""

    async def stream(event: Any) -> AsyncIterator[None]:
        yield None

    with pytest.raises(
        TypeError, match="is an async generator function; handlers must be 'async def'"
    ):
        Bus().subscribe(OrderPlaced, stream)


async def test_optional_extra_parameters_are_allowed() -> None:
    """A handler with defaulted extra parameters gets (event, ctx)."""
    got: list[Any] = []

    async def flexible(event: Any, ctx: Any = None, flag: bool = False) -> None:
        got.append(ctx)

    async with Bus() as bus:
        bus.subscribe(OrderPlaced, flexible)
        await bus.publish(OrderPlaced())
    assert isinstance(got[0], Context)


async def test_varargs_handler_gets_event_and_context() -> None:
    """A ``*args`` handler is given the event and the context."""
    got: list[tuple[Any, ...]] = []

    async def varargs(*args: Any) -> None:
        got.append(args)

    async with Bus() as bus:
        bus.subscribe(OrderPlaced, varargs)
        event = OrderPlaced()
        await bus.publish(event)
    [(first, second)] = got
    assert first is event
    assert isinstance(second, Context)


async def test_bound_method_and_partial_handlers() -> None:
    """Bound methods and functools.partial objects work as handlers."""
    seen: list[str] = []

    async def tagged(tag: str, event: OrderPlaced) -> None:
        seen.append(tag)

    async with Bus() as bus:
        bus.subscribe(OrderPlaced, Handlers().method, name="method")
        bus.subscribe(OrderPlaced, functools.partial(tagged, "p"), name="partial")
        await bus.publish(OrderPlaced())
    assert seen == ["p"]
    assert bus.metrics()["method"].succeeded == 1


def test_default_name_is_the_qualified_name() -> None:
    """Without name=, a subscription is named after the handler's (or wrapped function's) __qualname__."""
    bus = Bus()
    assert bus.subscribe(OrderPlaced, handler).name == "handler"
    assert bus.subscribe(OrderPlaced, Handlers().method).name == "Handlers.method"
    assert Bus().subscribe(OrderPlaced, functools.partial(handler)).name == "handler"


@pytest.mark.parametrize("bad", ["", 3])
def test_name_must_be_a_non_empty_string(bad: Any) -> None:
    """An empty or non-string name is refused."""
    with pytest.raises(TypeError, match=r"subscribe\(name=\.\.\.\) must be a non-empty string"):
        Bus().subscribe(OrderPlaced, handler, name=bad)


# -- numeric options -------------------------------------------------------------------


@pytest.mark.parametrize("option", ["concurrency", "queue_size"])
@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "4"])
def test_counts_must_be_positive_ints(option: str, bad: Any) -> None:
    """concurrency and queue_size must be ints >= 1 (bools and floats are refused)."""
    with pytest.raises(
        ValueError, match=rf"subscribe\({option}=\.\.\.\) must be an int >= 1, got {bad!r}"
    ):
        Bus().subscribe(OrderPlaced, handler, **{option: bad})


@pytest.mark.parametrize("bad", [0, -0.5, True, "1", float("nan")])
def test_timeout_must_be_positive_seconds(bad: Any) -> None:
    """timeout must be a positive number of seconds, or None."""
    with pytest.raises(
        ValueError, match=r"subscribe\(timeout=\.\.\.\) must be a number of seconds > 0 or None"
    ):
        Bus().subscribe(OrderPlaced, handler, timeout=bad)


def test_integer_timeout_is_stored_as_float() -> None:
    """An int timeout is accepted and kept as float seconds."""
    sub = Bus().subscribe(OrderPlaced, handler, timeout=2)
    assert sub.timeout == 2.0
    assert isinstance(sub.timeout, float)


# -- policies, filters and ordering ------------------------------------------------------


def test_retry_must_be_a_retry_policy() -> None:
    """retry= must be a RetryPolicy."""
    with pytest.raises(TypeError, match=r"subscribe\(retry=\.\.\.\) needs a RetryPolicy .*got int"):
        Bus().subscribe(OrderPlaced, handler, retry=3)  # type: ignore[arg-type]


def test_dead_letter_must_be_a_sink() -> None:
    """dead_letter= must be a DeadLetterSink."""
    with pytest.raises(TypeError, match=r"subscribe\(dead_letter=\.\.\.\) needs a DeadLetterSink"):
        Bus().subscribe(OrderPlaced, handler, dead_letter=[])  # type: ignore[arg-type]


def test_where_must_be_a_pattern_or_predicate() -> None:
    """where= of another kind is refused."""
    with pytest.raises(TypeError, match="where= must be an EventBridge-style pattern"):
        Bus().subscribe(OrderPlaced, handler, where=42)  # type: ignore[arg-type]


def test_ordered_by_unknown_field_suggests_the_closest() -> None:
    """ordered_by naming a missing field says which class lacks it and suggests a close name."""
    with pytest.raises(
        ValueError,
        match=r'ordered_by: OrderPlaced has no field "ordr_id"; did you mean "order_id"\?',
    ):
        Bus().subscribe(OrderPlaced, handler, ordered_by="ordr_id")


def test_ordered_by_unknown_field_lists_fields_when_nothing_is_close() -> None:
    """Without a close field name, the error lists the fields."""
    with pytest.raises(ValueError, match=r'has no field "zzzz"; fields are .*order_id, total'):
        Bus().subscribe(OrderPlaced, handler, ordered_by="zzzz")


def test_ordered_by_field_must_exist_on_every_type() -> None:
    """With several event types, the field must exist on each."""
    with pytest.raises(ValueError, match='ordered_by: OrderCancelled has no field "total"'):
        Bus().subscribe((OrderPlaced, OrderCancelled), handler, ordered_by="total")
    sub = Bus().subscribe((OrderPlaced, OrderCancelled), handler, ordered_by="order_id")
    assert sub.ordered_by == "order_id"


def test_ordered_by_must_be_a_name_or_function() -> None:
    """ordered_by must be a field name or a key function."""
    with pytest.raises(TypeError, match="ordered_by must be a field name or a key function, got 3"):
        Bus().subscribe(OrderPlaced, handler, ordered_by=3)  # type: ignore[arg-type]


def test_envelope_fields_can_order() -> None:
    """An envelope field such as source is a valid ordered_by field."""
    assert Bus().subscribe(OrderPlaced, handler, ordered_by="source").ordered_by == "source"


def test_failed_subscribe_leaves_no_subscription() -> None:
    """A subscribe call that fails validation registers nothing."""
    bus = Bus()
    with pytest.raises(ValueError, match="concurrency"):
        bus.subscribe(OrderPlaced, handler, name="x", concurrency=0)
    assert not bus.has_subscription("x")
    bus.subscribe(OrderPlaced, handler, name="x")
    assert bus.has_subscription("x")


# -- the Subscription object -----------------------------------------------------------


def test_subscription_attributes_reflect_options() -> None:
    """The returned Subscription exposes the options it was made with."""
    bus = Bus(retry=NoRetry())
    sink = MemoryDeadLetters()
    policy = ExponentialBackoff(max_attempts=5)
    sub = bus.subscribe(
        (OrderPlaced, OrderCancelled),
        handler,
        name="orders",
        concurrency=4,
        ordered_by="order_id",
        queue_size=10,
        timeout=1.5,
        retry=policy,
        dead_letter=sink,
    )
    assert isinstance(sub, Subscription)
    assert sub.name == "orders"
    assert sub.event_types == (OrderPlaced, OrderCancelled)
    assert sub.handler is handler
    assert (sub.concurrency, sub.queue_size, sub.timeout) == (4, 10, 1.5)
    assert sub.ordered_by == "order_id"
    assert sub.retry is policy
    assert sub.dead_letter is sink
    assert bus.subscription("orders") is sub
    assert repr(sub) == "<Subscription 'orders' (OrderPlaced, OrderCancelled) concurrency=4>"


def test_subscription_defaults_come_from_the_bus() -> None:
    """Without retry= or dead_letter=, a subscription uses the bus's policy and sink."""
    bus = Bus(retry=NoRetry())
    sub = bus.subscribe(OrderPlaced, handler)
    assert sub.retry is bus.retry
    assert sub.dead_letter is bus.dead_letters
    assert (sub.concurrency, sub.timeout, sub.ordered_by) == (1, None, None)
    assert sub.queue_size >= 1


def test_subscriptions_are_listed_in_order() -> None:
    """bus.subscriptions() lists subscriptions in the order they were made."""
    bus = Bus()
    names = ["c", "a", "b"]
    for name in names:
        bus.subscribe(OrderPlaced, handler, name=name)
    assert [s.name for s in bus.subscriptions()] == names
    assert list(bus.metrics()) == names


async def test_subscribing_while_closing_is_refused() -> None:
    """subscribe during the closing drain raises BusClosed."""
    errors: list[BaseException] = []
    bus = Bus()

    async def subscribe_more(event: OrderPlaced) -> None:
        try:
            bus.subscribe(OrderPlaced, handler, name="late")
        except BusClosed as exc:
            errors.append(exc)

    bus.subscribe(OrderPlaced, subscribe_more)
    async with bus:
        bus.publish_nowait(OrderPlaced())
    assert len(errors) == 1
    assert "cannot subscribe" in str(errors[0])
