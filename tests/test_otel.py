"""eventbus.otel: spans per publish and attempt, trace propagation, metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

from eventbus import (
    Bus,
    Context,
    Event,
    ExponentialBackoff,
    NoRetry,
    from_cloudevent,
    to_cloudevent,
)
from eventbus.otel import Instrumentation, instrument
from eventbus.testing import FakeClock


@attrs.frozen
class Order(Event, type_name="tests.otel.Order"):
    order_id: str = "o-1"


@attrs.frozen
class Shipped(Event, type_name="tests.otel.Shipped"):
    order_id: str = "o-1"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def spans(exporter: InMemorySpanExporter, kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is kind]


async def ok(event: Event) -> None:
    pass


async def test_a_publish_makes_a_producer_span(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """One PRODUCER span "publish <type>" with the messaging attributes."""
    async with Bus() as bus:
        instrument(bus, tracer_provider=tracer_provider)
        bus.subscribe(Order, ok, name="ok")
        receipt = await bus.publish(Order())
        await bus.drain()
    (span,) = spans(exporter, SpanKind.PRODUCER)
    assert span.name == "publish tests.otel.Order"
    assert span.attributes is not None
    assert dict(span.attributes) == {
        "messaging.system": "eventbus",
        "messaging.operation.type": "publish",
        "messaging.operation.name": "publish",
        "messaging.destination.name": "tests.otel.Order",
        "messaging.message.id": receipt.event_id,
    }


async def test_each_attempt_makes_a_consumer_span(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A delivery retried once makes two CONSUMER spans, attempts 1 and 2."""
    clock = FakeClock()
    calls = 0

    async def flaky(event: Order) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first time")

    retry = ExponentialBackoff(max_attempts=3, initial=1.0, jitter=False)
    async with Bus(clock=clock, retry=retry) as bus:
        instrument(bus, tracer_provider=tracer_provider)
        bus.subscribe(Order, flaky, name="flaky")
        receipt = await bus.publish(Order())
        await clock.advance(1.0)
        await bus.drain()
    consumers = spans(exporter, SpanKind.CONSUMER)
    assert [s.name for s in consumers] == ["process tests.otel.Order"] * 2
    attrs_ = [dict(s.attributes or {}) for s in consumers]
    assert [a["eventbus.attempt"] for a in attrs_] == [1, 2]
    for a in attrs_:
        assert a["messaging.system"] == "eventbus"
        assert a["messaging.operation.type"] == "process"
        assert a["messaging.destination.name"] == "tests.otel.Order"
        assert a["messaging.destination.subscription.name"] == "flaky"
        assert a["messaging.message.id"] == receipt.event_id


async def test_consumer_spans_are_children_of_the_producer_span(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """The CONSUMER span's parent is the PRODUCER span, in the same trace."""
    async with Bus() as bus:
        instrument(bus, tracer_provider=tracer_provider)
        bus.subscribe(Order, ok, name="ok")
        await bus.publish(Order())
        await bus.drain()
    (producer,) = spans(exporter, SpanKind.PRODUCER)
    (consumer,) = spans(exporter, SpanKind.CONSUMER)
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.context.trace_id == producer.context.trace_id


async def test_a_failed_attempt_sets_error_and_records_the_exception(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Status ERROR, the exception recorded as a span event, error.type set."""

    async def boom(event: Order) -> None:
        raise ValueError("no stock")

    async with Bus(retry=NoRetry()) as bus:
        instrument(bus, tracer_provider=tracer_provider)
        bus.subscribe(Order, boom, name="boom")
        await bus.publish(Order())
        await bus.drain()
    (consumer,) = spans(exporter, SpanKind.CONSUMER)
    assert consumer.status.status_code is StatusCode.ERROR
    (exc_event,) = [e for e in consumer.events if e.name == "exception"]
    assert exc_event.attributes is not None
    assert exc_event.attributes["exception.type"] == "ValueError"
    assert exc_event.attributes["exception.message"] == "no stock"
    assert (consumer.attributes or {})["error.type"] == "ValueError"


async def test_follow_ups_continue_the_trace(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """ctx.publish in a handler: its PRODUCER span is a child of the handler's CONSUMER span."""

    async def place(event: Order, ctx: Context) -> None:
        await ctx.publish(Shipped(event.order_id))

    async with Bus() as bus:
        instrument(bus, tracer_provider=tracer_provider)
        bus.subscribe(Order, place, name="place")
        bus.subscribe(Shipped, ok, name="ship")
        await bus.publish(Order())
        await bus.drain()
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    process_order = by_name["process tests.otel.Order"]
    publish_shipped = by_name["publish tests.otel.Shipped"]
    process_shipped = by_name["process tests.otel.Shipped"]
    assert publish_shipped.parent is not None
    assert publish_shipped.parent.span_id == process_order.context.span_id
    assert process_shipped.parent is not None
    assert process_shipped.parent.span_id == publish_shipped.context.span_id
    assert len({s.context.trace_id for s in by_name.values()}) == 1


async def test_the_event_carries_the_producer_span_as_traceparent(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """The delivered event's traceparent names the PRODUCER span (W3C format)."""
    seen: list[Event] = []

    async def keep(event: Order) -> None:
        seen.append(event)

    async with Bus() as bus:
        instrument(bus, tracer_provider=tracer_provider)
        bus.subscribe(Order, keep, name="keep")
        await bus.publish(Order())
        await bus.drain()
    (producer,) = spans(exporter, SpanKind.PRODUCER)
    ctx = producer.context
    assert seen[0].traceparent is not None
    assert seen[0].traceparent.startswith(f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-")


async def test_the_trace_survives_cloudevents(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """to_cloudevent/from_cloudevent carry traceparent; the next bus continues the trace."""
    captured: list[Event] = []

    async def keep(event: Order) -> None:
        captured.append(event)

    async with Bus() as first:
        instrument(first, tracer_provider=tracer_provider)
        first.subscribe(Order, keep, name="keep")
        await first.publish(Order())
        await first.drain()
    document = to_cloudevent(captured[0])
    assert document["traceparent"] == captured[0].traceparent
    decoded = from_cloudevent(document)
    assert decoded.traceparent == captured[0].traceparent
    async with Bus() as second:
        instrument(second, tracer_provider=tracer_provider)
        second.subscribe(Order, ok, name="again")
        await second.publish(decoded)
        await second.drain()
    trace_ids = {s.context.trace_id for s in exporter.get_finished_spans()}
    assert len(trace_ids) == 1
    assert len(spans(exporter, SpanKind.CONSUMER)) == 2


async def test_the_no_op_tracer_stamps_nothing() -> None:
    """Without an SDK, events are not stamped (no valid trace context)."""
    seen: list[Event] = []

    async def keep(event: Order) -> None:
        seen.append(event)

    async with Bus() as bus:
        instrument(bus, tracer_provider=NoOpTracerProvider())
        bus.subscribe(Order, keep, name="keep")
        await bus.publish(Order())
        await bus.drain()
    assert seen[0].traceparent is None


async def test_uninstrument_stops_tracing(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """After uninstrument() no span is made."""
    async with Bus() as bus:
        instrumentation = instrument(bus, tracer_provider=tracer_provider)
        assert isinstance(instrumentation, Instrumentation)
        instrumentation.uninstrument()
        bus.subscribe(Order, ok, name="ok")
        await bus.publish(Order())
        await bus.drain()
        assert bus.hooks == ()
    assert exporter.get_finished_spans() == ()


def _points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    out: list[tuple[dict[str, Any], Any]] = []
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:
                            value = point.count  # type: ignore[union-attr]
                        out.append((dict(point.attributes or {}), value))
    return out


async def test_metrics_count_invocations_by_outcome_and_record_durations() -> None:
    """eventbus.invocations counts per outcome; messaging.process.duration has one point per outcome."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])

    async def maybe(event: Order) -> None:
        if event.order_id == "bad":
            raise RuntimeError("bad")

    async with Bus(retry=NoRetry()) as bus:
        instrument(bus, tracer_provider=NoOpTracerProvider(), meter_provider=meter_provider)
        bus.subscribe(Order, maybe, name="maybe")
        await bus.publish(Order("a"))
        await bus.publish(Order("b"))
        await bus.publish(Order("bad"))
        await bus.drain()
    counts = {a["eventbus.outcome"]: v for a, v in _points(reader, "eventbus.invocations")}
    assert counts == {"success": 2, "error": 1}
    durations = {a["eventbus.outcome"]: v for a, v in _points(reader, "messaging.process.duration")}
    assert durations == {"success": 2, "error": 1}
    meter_provider.shutdown()


async def test_queue_depth_is_observed_per_subscription() -> None:
    """eventbus.queue.depth reports each subscription's queued events."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    async with Bus() as bus:
        instrument(bus, tracer_provider=NoOpTracerProvider(), meter_provider=meter_provider)
        bus.subscribe(Order, ok, name="ok")
        bus.publish_nowait(Order())
        bus.publish_nowait(Order())
        depth = {
            a["messaging.destination.subscription.name"]: v
            for a, v in _points(reader, "eventbus.queue.depth")
        }
        assert depth == {"ok": 2}
        await bus.drain()
    meter_provider.shutdown()


def test_instrument_refuses_what_is_not_a_bus() -> None:
    """instrument() takes a Bus."""
    with pytest.raises(TypeError, match=r"eventbus.Bus"):
        instrument(object())  # type: ignore[arg-type]


@pytest.mark.integration
async def test_the_trace_crosses_a_nats_transport(
    tracer_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Over NATS JetStream on loopback, the consumer span continues the producer's trace."""
    from bridges.conftest import live_nats_url
    from bridges.test_nats import transport as nats_transport

    async with nats_transport(live_nats_url()) as transport, Bus(transport=transport) as bus:
        instrument(bus, tracer_provider=tracer_provider)
        bus.subscribe(Order, ok, name="over-nats")
        await bus.publish(Order())
        await bus.drain()
    (producer,) = spans(exporter, SpanKind.PRODUCER)
    (consumer,) = spans(exporter, SpanKind.CONSUMER)
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.context.trace_id == producer.context.trace_id


TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


@given(
    st.one_of(
        st.text(max_size=80),
        st.from_regex(TRACEPARENT, fullmatch=True),
        st.integers(),
        st.none(),
        st.lists(st.text(max_size=5), max_size=3),
    ),
    st.one_of(st.text(max_size=600), st.integers(), st.none()),
)
def test_any_trace_context_decodes_or_is_dropped(traceparent: object, tracestate: object) -> None:
    """Untrusted traceparent/tracestate never fail decoding: valid ones are kept, others dropped."""
    document = to_cloudevent(Order())
    document["traceparent"] = traceparent
    document["tracestate"] = tracestate
    event = from_cloudevent(document)
    if event.traceparent is None:
        assert event.tracestate is None
    else:
        assert event.traceparent == traceparent
        assert TRACEPARENT.fullmatch(event.traceparent)
        assert event.tracestate in (None, tracestate)


@pytest.mark.parametrize(
    "bad",
    [
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero span id
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version ff
        "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",  # upper case
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  # 00 has no more
    ],
)
def test_an_invalid_traceparent_restarts_the_trace(bad: str) -> None:
    """As W3C Trace Context says, an invalid traceparent is ignored, not refused."""
    document = to_cloudevent(Order())
    document["traceparent"] = bad
    assert from_cloudevent(document).traceparent is None


def test_a_valid_trace_context_round_trips() -> None:
    """traceparent and tracestate survive to_cloudevent/from_cloudevent unchanged."""
    event = Order(
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        tracestate="congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
    )
    document = to_cloudevent(event)
    assert document["traceparent"] == event.traceparent
    assert document["tracestate"] == event.tracestate
    assert from_cloudevent(document) == event
