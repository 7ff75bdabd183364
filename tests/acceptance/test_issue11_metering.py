"""Issue 11 as a new user calls it: metering, pricing, OpenTelemetry, Prometheus, logs, topology."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

import eventbus
from eventbus import (
    Bus,
    Context,
    CostEstimate,
    Event,
    EventBusError,
    ExponentialBackoff,
    LambdaPricing,
    Metering,
    MeteringError,
    NoRetry,
    Usage,
    UsageReport,
)
from eventbus.testing import FakeClock


@attrs.frozen
class Resize(Event, type_name="acceptance.i11.Resize"):
    key: str = "k"
    fail: bool = False


async def _quarter_second(event: Resize, ctx: Context) -> None:
    await ctx.clock.sleep_until(ctx.clock.now() + 0.25)
    if event.fail:
        raise RuntimeError("asked to fail")


# -- metering ---------------------------------------------------------------------------


async def test_quarter_second_512mb_granularity_100_bills_300ms() -> None:
    """The issue's own example: 0.25 s, 512 MB, granularity 100 -> 300 ms billed per attempt."""
    clock = FakeClock()
    async with Bus(clock=clock, metering=Metering(granularity_ms=100)) as bus:
        bus.subscribe(Resize, _quarter_second, name="resize", memory_mb=512)
        await bus.publish(Resize())
        await clock.advance(0.25)
        await bus.drain()
        report = bus.usage()
    assert isinstance(report, UsageReport)
    usage = report["resize"]
    assert isinstance(usage, Usage)
    assert usage.requests == 1
    assert usage.duration_ms == pytest.approx(250.0)
    assert usage.billed_duration_ms == 300
    assert usage.memory_mb == 512
    assert usage.gb_seconds == pytest.approx(0.3 * 512 / 1024)


async def test_retries_are_billed_requests_and_total_sums_subscriptions() -> None:
    """Every attempt is a request (retries included) and report.total sums all subscriptions."""
    clock = FakeClock()
    retry = ExponentialBackoff(max_attempts=3, initial=1.0, jitter=False)
    async with Bus(clock=clock, retry=retry, metering=Metering(granularity_ms=100)) as bus:
        bus.subscribe(Resize, _quarter_second, name="a", memory_mb=512)
        bus.subscribe(Resize, _quarter_second, name="b", memory_mb=1024, retry=NoRetry())
        await bus.publish(Resize(fail=True))
        for _ in range(10):
            await clock.advance(1.0)
        await bus.drain()
        report = bus.usage()
    assert report["a"].requests == 3
    assert report["b"].requests == 1
    total = report.total
    assert total.requests == 4
    assert total.billed_duration_ms == 4 * 300
    assert total.gb_seconds == pytest.approx(3 * 0.3 * 0.5 + 0.3 * 1.0)


async def test_default_memory_is_128() -> None:
    """subscribe() without memory_mb meters at 128 MB, Lambda's default."""
    async with Bus(metering=Metering()) as bus:
        bus.subscribe(Resize, _quarter_second, name="resize")
        assert bus.usage()["resize"].memory_mb == 128


async def test_usage_by_handler_and_unknown_name() -> None:
    """usage() indexes by the handler too; an unknown name is a KeyError naming it."""
    async with Bus(metering=Metering()) as bus:
        sub = bus.subscribe(Resize, _quarter_second)
        report = bus.usage()
        assert report[sub.name] == report[_quarter_second]
        with pytest.raises(KeyError, match="nope"):
            report["nope"]


@pytest.mark.parametrize("bad", [0, 127, 10_241, -512, 1.5, "512", None, True, math.nan])
def test_memory_mb_outside_lambdas_range_is_a_named_error(bad: Any) -> None:
    """memory_mb outside 128..10,240 (or not an int) raises a named eventbus error."""
    with pytest.raises(EventBusError, match="memory_mb"):
        Bus().subscribe(Resize, _quarter_second, memory_mb=bad)


@pytest.mark.parametrize("good", [128, 10_240, 1769])
def test_memory_mb_at_lambdas_bounds_is_accepted(good: int) -> None:
    """memory_mb at 128, 10,240 and odd sizes in between is accepted."""
    assert Bus().subscribe(Resize, _quarter_second, memory_mb=good) is not None


@pytest.mark.parametrize("bad", [0, -1, 1.5, "100", None, math.nan, True])
def test_bad_granularity_is_a_named_error(bad: Any) -> None:
    """Metering(granularity_ms=...) refuses non-positive or non-integer values by name."""
    with pytest.raises(EventBusError, match="granularity_ms"):
        Metering(granularity_ms=bad)


def test_usage_without_metering_is_metering_error() -> None:
    """bus.usage() on a bus without metering raises MeteringError naming Bus(metering=...)."""
    with pytest.raises(MeteringError, match="metering"):
        Bus().usage()


# -- pricing ---------------------------------------------------------------------------------


def test_pricing_page_worked_example() -> None:
    """512 MB, 3M one-second requests at $0.00001667/GB-s: compute $18.34, requests $0.40."""
    pricing = LambdaPricing(
        price_per_million_requests=0.20,
        price_per_gb_second=0.00001667,
        free_requests=1_000_000,
        free_gb_seconds=400_000,
    )
    estimate = pricing.cost(requests=3_000_000, gb_seconds=3_000_000 * 1 * 512 / 1024)
    assert isinstance(estimate, CostEstimate)
    for amount in (estimate.request_cost, estimate.compute_cost, estimate.total):
        assert isinstance(amount, Decimal)
    assert estimate.compute_cost.quantize(Decimal("0.01")) == Decimal("18.34")
    assert estimate.request_cost.quantize(Decimal("0.01")) == Decimal("0.40")
    assert estimate.total.quantize(Decimal("0.01")) == Decimal("18.74")


def test_pricing_defaults_are_the_issues() -> None:
    """LambdaPricing() defaults to $0.20/M, $0.0000166667/GB-s, 1M requests, 400,000 GB-s free."""
    p = LambdaPricing()
    assert p.cost(requests=1_000_000, gb_seconds=400_000).total == 0
    over = p.cost(requests=2_000_000, gb_seconds=400_000)
    assert over.request_cost == Decimal("0.20")
    assert over.compute_cost == 0


async def test_report_estimate_prices_the_usage() -> None:
    """report.estimate(pricing) returns a CostEstimate of the metered usage."""
    pricing = LambdaPricing(free_requests=0, free_gb_seconds=0)
    clock = FakeClock()
    async with Bus(clock=clock, metering=Metering(granularity_ms=100)) as bus:
        bus.subscribe(Resize, _quarter_second, name="resize", memory_mb=1024)
        await bus.publish(Resize())
        await clock.advance(0.25)
        await bus.drain()
        estimate = bus.usage().estimate(pricing)
    assert isinstance(estimate, CostEstimate)
    assert estimate.request_cost == Decimal("0.20") / 1_000_000
    assert estimate.compute_cost == Decimal("0.3") * Decimal("0.0000166667")
    assert estimate.total == estimate.request_cost + estimate.compute_cost


@pytest.mark.parametrize(
    "kwargs",
    [
        {"requests": -1, "gb_seconds": 0},
        {"requests": 0, "gb_seconds": -1},
        {"requests": 0, "gb_seconds": math.nan},
        {"requests": 0, "gb_seconds": math.inf},
        {"requests": "many", "gb_seconds": 0},
        {"requests": 0, "gb_seconds": "1e999999999"},
    ],
)
def test_cost_refuses_hostile_amounts(kwargs: dict[str, Any]) -> None:
    """cost() refuses negative, NaN, infinite or non-numeric amounts with a named error."""
    with pytest.raises((EventBusError, TypeError)):
        LambdaPricing().cost(**kwargs)


@pytest.mark.parametrize("bad", [-0.2, math.nan, math.inf, "free", None])
def test_pricing_refuses_hostile_prices(bad: Any) -> None:
    """LambdaPricing refuses a negative, NaN, infinite or non-numeric price."""
    with pytest.raises((EventBusError, TypeError)):
        LambdaPricing(price_per_gb_second=bad)


# -- OpenTelemetry -----------------------------------------------------------------------------


@attrs.frozen
class Shipped(Event, type_name="acceptance.i11.Shipped"):
    key: str = "k"


async def test_otel_producer_and_consumer_spans_with_parent_child() -> None:
    """instrument(bus, tracer_provider=...) makes PRODUCER/CONSUMER spans, ctx.publish continues."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode

    import eventbus.otel

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def first(event: Resize, ctx: Context) -> None:
        await ctx.publish(Shipped())
        if event.fail:
            raise RuntimeError("boom")

    async def second(event: Shipped) -> None:
        pass

    try:
        async with Bus(retry=NoRetry()) as bus:
            eventbus.otel.instrument(bus, tracer_provider=provider, meter_provider=None)
            bus.subscribe(Resize, first, name="first")
            bus.subscribe(Shipped, second, name="second")
            receipt = await bus.publish(Resize(fail=True))
            await bus.drain()
    finally:
        provider.shutdown()
    finished = exporter.get_finished_spans()
    producers = [s for s in finished if s.kind is SpanKind.PRODUCER]
    consumers = [s for s in finished if s.kind is SpanKind.CONSUMER]
    assert len(producers) == 2
    assert len(consumers) == 2
    assert len({s.context.trace_id for s in finished}) == 1
    root = next(s for s in producers if s.parent is None)
    attrs_ = dict(root.attributes or {})
    assert attrs_["messaging.system"] == "eventbus"
    assert attrs_["messaging.destination.name"] == Resize.event_type()
    assert attrs_["messaging.message.id"] == receipt.event_id
    assert "messaging.operation.type" in attrs_
    failed = next(
        s
        for s in consumers
        if (s.attributes or {}).get("messaging.destination.name") == Resize.event_type()
    )
    assert failed.status.status_code is StatusCode.ERROR
    assert any(e.name == "exception" for e in failed.events)


async def test_traceparent_rides_in_cloudevents() -> None:
    """An event's traceparent/tracestate survive to_cloudevent/from_cloudevent."""
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    event = Shipped(traceparent=tp, tracestate="congo=t61rcWkgMzE")
    doc = eventbus.to_cloudevent(event)
    assert doc["traceparent"] == tp
    back = eventbus.from_cloudevent(doc)
    assert back.traceparent == tp
    assert back.tracestate == "congo=t61rcWkgMzE"


# -- Prometheus -----------------------------------------------------------------------------------


async def test_prometheus_exposition_parses_with_the_official_parser() -> None:
    """EventbusCollector(bus) exposes the issue's families, parseable by prometheus_client."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from eventbus.prometheus import EventbusCollector

    async def handle(event: Resize) -> None:
        if event.fail:
            raise RuntimeError("x")

    async with Bus(retry=NoRetry(), metering=Metering()) as bus:
        bus.subscribe(Resize, handle, name='we"ird\\name\nü')
        await bus.publish(Resize())
        await bus.publish(Resize(fail=True))
        await bus.drain()
        registry = CollectorRegistry()
        registry.register(EventbusCollector(bus))
        text = generate_latest(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "eventbus_invocations",
        "eventbus_dead_letters",
        "eventbus_retries",
        "eventbus_queue_depth",
        "eventbus_in_flight",
        "eventbus_handler_duration_seconds",
        "eventbus_billed_gb_seconds",
    ):
        assert name in families, (name, sorted(families))
    samples = [s for s in families["eventbus_invocations"].samples if s.name.endswith("_total")]
    assert {s.labels["subscription"] for s in samples} == {'we"ird\\name\nü'}
    assert {s.labels["outcome"] for s in samples if s.value} >= {"success"}
    assert sum(s.value for s in samples) == 2


# -- logs ----------------------------------------------------------------------------------------------


async def test_ctx_logger_records_carry_the_invocation(caplog: pytest.LogCaptureFixture) -> None:
    """Records from ctx.logger carry subscription, event id and type, attempt and invocation id."""
    seen: dict[str, str] = {}

    async def handle(event: Resize, ctx: Context) -> None:
        seen["invocation_id"] = ctx.invocation_id
        ctx.logger.info("hello")

    caplog.set_level(logging.INFO, logger="eventbus")
    async with Bus() as bus:
        bus.subscribe(Resize, handle, name="logged")
        receipt = await bus.publish(Resize())
        await bus.drain()
    record = next(r for r in caplog.records if r.getMessage() == "hello")
    assert record.name.startswith("eventbus")
    fields = vars(record)
    blob = repr(fields)
    assert "logged" in blob
    assert receipt.event_id in blob
    assert seen["invocation_id"] in blob
    assert Resize.event_type() in blob


async def test_report_line_is_opt_in(caplog: pytest.LogCaptureFixture) -> None:
    """Metering(report_log=True) logs a Lambda-style REPORT line per invocation."""
    caplog.set_level(logging.INFO, logger="eventbus")
    clock = FakeClock()
    async with Bus(clock=clock, metering=Metering(granularity_ms=100, report_log=True)) as bus:
        bus.subscribe(Resize, _quarter_second, name="resize", memory_mb=512)
        await bus.publish(Resize())
        await clock.advance(0.25)
        await bus.drain()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("REPORT")]
    assert len(lines) == 1
    line = lines[0]
    assert "RequestId:" in line
    assert "Duration: 250" in line
    assert "Billed Duration: 300 ms" in line
    assert "Memory Size: 512 MB" in line


# -- topology ------------------------------------------------------------------------------------------


async def test_topology_is_a_mermaid_flowchart_with_filters() -> None:
    """bus.topology() returns a Mermaid flowchart naming subscriptions, types and filters."""

    async def handle(event: Resize) -> None:
        pass

    async with Bus() as bus:
        bus.subscribe(
            Resize, handle, name="big-ones", where={"key": [{"prefix": "big"}]}, concurrency=4
        )
        bus.subscribe(Resize, handle, name='odd "name" [x] <b>', ordered_by="key")
        chart = bus.topology()
    assert isinstance(chart, str)
    assert chart.lstrip().startswith("flowchart")
    assert "big-ones" in chart
    assert "prefix" in chart
    # a hostile name must not break the Mermaid syntax: no raw quote inside a label
    for line in chart.splitlines():
        if "odd" in line:
            assert '"name"' not in line


def test_topology_cli_prints_the_chart(tmp_path: Path) -> None:
    """python -m eventbus topology module:bus prints the flowchart."""
    (tmp_path / "acc_topo_app.py").write_text(
        textwrap.dedent(
            """
            import attrs
            from eventbus import Bus, Event

            @attrs.frozen
            class Ping(Event):
                n: int = 0

            bus = Bus()

            @bus.on(Ping)
            async def pong(event):
                pass
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "eventbus", "topology", "acc_topo_app:bus"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.lstrip().startswith("flowchart")
    assert "pong" in proc.stdout


def test_topology_cli_bad_target_is_a_clear_error(tmp_path: Path) -> None:
    """A target that is not module:bus exits non-zero with a message and no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "eventbus", "topology", "no_such_module_xyz:bus"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "no_such_module_xyz" in proc.stderr


async def test_a_batch_is_one_billed_request() -> None:
    """25 events in batches of 10 bill 3 requests, each rounded up to the granularity."""
    clock = FakeClock()

    async def handle(events: list[Resize]) -> None:
        pass

    async with Bus(clock=clock, metering=Metering(granularity_ms=100)) as bus:
        bus.subscribe(Resize, handle, name="b", batch=eventbus.Batching(size=10, window=1.0))
        for _ in range(25):
            await bus.publish(Resize())
        await clock.advance(2)
        await bus.drain()
        usage = bus.usage()["b"]
    assert usage.requests == 3
    assert usage.billed_duration_ms == 300
    assert usage.gb_seconds == pytest.approx(0.3 * 128 / 1024)
