"""eventbus.prometheus: the collector's exposition, parsed with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import anyio
import attrs
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from eventbus import Bus, Event, ExponentialBackoff, Metering, NoRetry, SubscriptionMetrics
from eventbus.prometheus import DEFAULT_BUCKETS, EventbusCollector
from eventbus.testing import FakeClock


@attrs.frozen
class Ping(Event):
    """A test event; ``fail`` makes the handler raise."""

    fail: bool = False


async def handle(event: Ping) -> None:
    """Raise when asked to."""
    if event.fail:
        raise RuntimeError("asked to fail")


def scrape(bus: Any, **options: Any) -> dict[str, Any]:
    """Scrape *bus* through a registry; return the families parsed from the text, by name."""
    registry = CollectorRegistry()
    registry.register(EventbusCollector(bus, **options))
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(family: Any, suffix: str = "", **labels: str) -> float:
    """The value of the sample of *family* with these labels."""
    for sample in family.samples:
        if sample.name == family.name + suffix and all(
            sample.labels.get(k) == v for k, v in labels.items()
        ):
            return float(sample.value)
    raise AssertionError(f"no sample {family.name}{suffix} {labels}")


async def test_exposition_parses_and_names_follow_conventions() -> None:
    """Every family parses; counters end in _total, durations are in seconds."""
    async with Bus() as bus:
        bus.subscribe(Ping, handle, name="pings")
        await bus.publish(Ping())
        await bus.drain()
        families = scrape(bus)
    types = {name: family.type for name, family in families.items()}
    assert (
        types.items()
        >= {
            "eventbus_invocations": "counter",
            "eventbus_dead_letters": "counter",
            "eventbus_retries": "counter",
            "eventbus_queue_depth": "gauge",
            "eventbus_in_flight": "gauge",
        }.items()
    )
    assert families["eventbus_handler_duration_seconds"].type in ("histogram", "summary")
    assert families["eventbus_invocations"].samples[0].name == "eventbus_invocations_total"


async def test_outcomes_retries_and_dead_letters_are_counted() -> None:
    """Successes, errors, retries and dead letters match bus.metrics()."""
    clock = FakeClock()
    async with Bus(clock=clock) as bus:
        retry = ExponentialBackoff(max_attempts=2, initial=1.0, jitter=False)
        bus.subscribe(Ping, handle, name="pings", retry=retry)
        await bus.publish(Ping())
        await bus.publish(Ping())
        await bus.publish(Ping(fail=True))
        await clock.advance(5)
        await bus.drain()
        families = scrape(bus)
    invocations = families["eventbus_invocations"]
    assert value(invocations, "_total", subscription="pings", outcome="success") == 2
    assert value(invocations, "_total", subscription="pings", outcome="error") == 2
    assert value(invocations, "_total", subscription="pings", outcome="timeout") == 0
    assert value(families["eventbus_retries"], "_total", subscription="pings") == 1
    assert value(families["eventbus_dead_letters"], "_total", subscription="pings") == 1


async def test_timeouts_have_their_own_outcome() -> None:
    """An attempt past its timeout counts as outcome="timeout", not "error"."""
    clock = FakeClock()
    started = anyio.Event()

    async def slow(event: Ping) -> None:
        started.set()
        await anyio.Event().wait()

    async with Bus(clock=clock) as bus:
        bus.subscribe(Ping, slow, name="slow", timeout=1.0, retry=NoRetry())
        await bus.publish(Ping())
        await started.wait()
        await clock.advance(2)
        await bus.drain()
        families = scrape(bus)
    invocations = families["eventbus_invocations"]
    assert value(invocations, "_total", subscription="slow", outcome="timeout") == 1
    assert value(invocations, "_total", subscription="slow", outcome="error") == 0


async def test_queue_depth_and_in_flight_are_gauges_of_now() -> None:
    """While one event runs and one waits, in_flight is 1 and queue_depth is 1."""
    started = anyio.Event()
    release = anyio.Event()

    async def hold(event: Ping) -> None:
        started.set()
        await release.wait()

    async with Bus() as bus:
        bus.subscribe(Ping, hold, name="hold", concurrency=1)
        await bus.publish(Ping())
        await started.wait()
        await bus.publish(Ping())
        families = scrape(bus)
        release.set()
    assert value(families["eventbus_in_flight"], subscription="hold") == 1
    assert value(families["eventbus_queue_depth"], subscription="hold") == 1


async def test_real_bus_feeds_the_histogram_on_its_clock() -> None:
    """On a bus with hooks, attempts of 0.25 s of virtual time land in the le=0.25 bucket."""
    clock = FakeClock()

    async def quarter(event: Ping) -> None:
        await clock.sleep_until(clock.now() + 0.25)

    async with Bus(clock=clock) as bus:
        registry = CollectorRegistry()
        registry.register(EventbusCollector(bus, buckets=(0.1, 0.25, 1.0)))
        bus.subscribe(Ping, quarter, name="q")
        await bus.publish(Ping())
        await bus.publish(Ping())
        await clock.advance(1.0)
        await bus.drain()
        text = generate_latest(registry).decode()
    histogram = {f.name: f for f in text_string_to_metric_families(text)}[
        "eventbus_handler_duration_seconds"
    ]
    assert histogram.type == "histogram"
    assert value(histogram, "_bucket", subscription="q", le="0.1") == 0
    assert value(histogram, "_bucket", subscription="q", le="0.25") == 2
    assert value(histogram, "_sum", subscription="q") == pytest.approx(0.5)


async def test_metered_bus_exposes_billed_gb_seconds() -> None:
    """512 MB, 0.25 s attempts billed in 100 ms steps: 0.3 s x 0.5 GB = 0.15 GB-s each."""
    clock = FakeClock()

    async def quarter(event: Ping) -> None:
        await clock.sleep_until(clock.now() + 0.25)

    async with Bus(clock=clock, metering=Metering(granularity_ms=100)) as bus:
        bus.subscribe(Ping, quarter, name="q", memory_mb=512)
        await bus.publish(Ping())
        await clock.advance(1.0)
        await bus.drain()
        families = scrape(bus)
    assert value(
        families["eventbus_billed_gb_seconds"], "_total", subscription="q"
    ) == pytest.approx(0.15)


async def test_close_removes_the_hook() -> None:
    """close() takes the collector's hook off the bus."""
    bus = Bus()
    collector = EventbusCollector(bus)
    assert len(bus.hooks) == 1
    collector.close()
    collector.close()
    assert len(bus.hooks) == 0


@attrs.define
class StubBus:
    """A bus stand-in with hooks and usage, for the parts a real bus may not have."""

    snapshot: dict[str, SubscriptionMetrics]
    hooks: list[Any] = attrs.field(factory=list)
    report: Mapping[str, Any] | None = None

    def metrics(self) -> dict[str, SubscriptionMetrics]:
        return self.snapshot

    def add_hook(self, hook: Any) -> None:
        self.hooks.append(hook)

    def remove_hook(self, hook: Any) -> None:
        self.hooks.remove(hook)

    def usage(self) -> Mapping[str, Any]:
        if self.report is None:
            raise RuntimeError("no metering")
        return self.report


@attrs.frozen
class Delivery:
    """What the delivery-end hook is given."""

    subscription: str


def test_durations_are_a_histogram_when_the_bus_has_hooks() -> None:
    """With hooks, each attempt's duration lands in cumulative buckets with a sum."""
    bus = StubBus({"s": SubscriptionMetrics()})
    registry = CollectorRegistry()
    registry.register(EventbusCollector(cast("Bus", bus), buckets=(0.1, 1.0)))
    (hook,) = bus.hooks
    for seconds in (0.05, 0.5, 0.5, 5.0):
        hook.on_delivery_end(Delivery("s"), None, "success", seconds, None)
    text = generate_latest(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    histogram = families["eventbus_handler_duration_seconds"]
    assert histogram.type == "histogram"
    assert value(histogram, "_bucket", subscription="s", le="0.1") == 1
    assert value(histogram, "_bucket", subscription="s", le="1.0") == 3
    assert value(histogram, "_bucket", subscription="s", le="+Inf") == 4
    assert value(histogram, "_count", subscription="s") == 4
    assert value(histogram, "_sum", subscription="s") == pytest.approx(6.05)


def test_durations_are_a_summary_without_hooks() -> None:
    """Without hooks, the p50 and p99 of bus.metrics() are a summary's quantiles."""

    @attrs.define
    class NoHooks:
        def metrics(self) -> dict[str, SubscriptionMetrics]:
            return {"s": SubscriptionMetrics(duration_p50=0.2, duration_p99=0.9)}

    summary = scrape(NoHooks())["eventbus_handler_duration_seconds"]
    assert summary.type == "summary"
    assert value(summary, subscription="s", quantile="0.5") == 0.2
    assert value(summary, subscription="s", quantile="0.99") == 0.9


def test_billed_gb_seconds_come_from_usage() -> None:
    """A metered bus's usage() becomes eventbus_billed_gb_seconds_total."""

    @attrs.frozen
    class Usage:
        gb_seconds: float

    bus = StubBus({"s": SubscriptionMetrics()}, report={"s": Usage(1.5)})
    billed = scrape(bus)["eventbus_billed_gb_seconds"]
    assert billed.type == "counter"
    assert value(billed, "_total", subscription="s") == 1.5


def test_unmetered_bus_has_no_billing_family() -> None:
    """A bus whose usage() fails exposes no billing family."""
    assert "eventbus_billed_gb_seconds" not in scrape(StubBus({}))


async def test_real_unmetered_bus_has_no_billing_family() -> None:
    """A Bus made without metering= exposes no billing family."""
    async with Bus() as bus:
        bus.subscribe(Ping, handle, name="pings")
        assert "eventbus_billed_gb_seconds" not in scrape(bus)


def test_label_values_are_escaped() -> None:
    """Subscription names with quotes, backslashes and newlines survive the round trip."""
    name = 'we"ird\\name\nx'
    families = scrape(StubBus({name: SubscriptionMetrics(queued=3)}))
    assert value(families["eventbus_queue_depth"], subscription=name) == 3


@pytest.mark.parametrize("buckets", [(), (1.0, 0.5), (0.0,), (float("inf"),), (True,)])
def test_buckets_are_checked(buckets: tuple[Any, ...]) -> None:
    """Buckets must be positive, finite and strictly increasing."""
    with pytest.raises(ValueError, match="buckets"):
        EventbusCollector(cast("Bus", StubBus({})), buckets=buckets)


def test_default_buckets_reach_lambdas_longest_timeout() -> None:
    """The default buckets go up to 900 s, Lambda's longest timeout."""
    assert DEFAULT_BUCKETS[-1] == 900.0
