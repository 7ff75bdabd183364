"""The broker connection in bus.metrics(), the Prometheus exposition and OpenTelemetry metrics."""

from __future__ import annotations

from typing import Any, cast

import attrs
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.trace import NoOpTracerProvider
from test_prometheus import scrape, value
from test_publish_buffer import FlakyBroker, Ping

from eventbus import (
    BlockingBus,
    Bus,
    MetricsSnapshot,
    SubscriptionMetrics,
    TransportStatus,
)
from eventbus.otel import instrument

TRANSPORT_FAMILIES = (
    "eventbus_transport_connected",
    "eventbus_transport_buffered",
    "eventbus_transport_reconnects",
)


async def handle(event: Ping) -> None:
    """Accept every ping."""


class BrokenStatusBroker(FlakyBroker):
    """A fake broker whose ``status()`` raises."""

    def status(self) -> TransportStatus:
        raise RuntimeError("status lookup failed")


@attrs.define
class SnapshotBus:
    """An in-memory stand-in for a bus over a broker: metrics() gives a fixed snapshot."""

    snapshot: MetricsSnapshot

    def metrics(self) -> MetricsSnapshot:
        return self.snapshot


# -- bus.metrics().transport ---------------------------------------------------------


async def test_memory_bus_snapshot_has_no_transport() -> None:
    """On the in-memory bus, metrics().transport is None."""
    async with Bus() as bus:
        bus.subscribe(Ping, handle, name="pings")
        assert bus.metrics().transport is None


async def test_snapshot_carries_the_transport_status() -> None:
    """Over a broker, metrics().transport is what transport_status() reports."""
    async with Bus(transport=FlakyBroker()) as bus:
        bus.subscribe(Ping, handle, name="pings")
        snapshot = bus.metrics()
        assert snapshot.transport == bus.transport_status()
        assert snapshot.transport == TransportStatus("fake", "fake://", True, 0, None, 0)


async def test_snapshot_is_still_a_dict_of_subscriptions() -> None:
    """The transport is an attribute, not an item: the snapshot equals a plain dict."""
    async with Bus(transport=FlakyBroker()) as bus:
        bus.subscribe(Ping, handle, name="pings")
        snapshot = bus.metrics()
        assert list(snapshot) == ["pings"]
        (subscription,) = bus.subscriptions()
        assert snapshot == {"pings": subscription.metrics()}


async def test_snapshot_shows_an_outage_and_the_buffer() -> None:
    """While the broker is down, the snapshot says disconnected and counts buffered events."""
    broker = FlakyBroker()
    async with Bus(transport=broker, publish_buffer=10) as bus:
        broker.down = True
        await bus.publish(Ping(1))
        status = bus.metrics().transport
        broker.down = False
        await bus.drain()
        after = bus.metrics().transport
    assert status is not None
    assert (status.connected, status.buffered) == (False, 1)
    assert after is not None
    assert (after.connected, after.buffered) == (True, 0)


async def test_a_failing_status_still_gives_metrics() -> None:
    """When the transport's status() raises, metrics() answers: disconnected, with the error."""
    async with Bus(transport=BrokenStatusBroker()) as bus:
        bus.subscribe(Ping, handle, name="pings")
        snapshot = bus.metrics()
    assert list(snapshot) == ["pings"]
    assert snapshot.transport == TransportStatus(
        "BrokenStatusBroker", "", False, 0, "RuntimeError: status lookup failed", 0
    )


def test_blocking_bus_metrics_carry_the_transport() -> None:
    """BlockingBus.metrics() forwards the snapshot, transport included."""
    with BlockingBus(transport=FlakyBroker()) as bus:
        assert bus.metrics().transport == TransportStatus("fake", "fake://", True, 0, None, 0)
    with BlockingBus() as bus:
        assert bus.metrics().transport is None


# -- Prometheus ------------------------------------------------------------------------


async def test_prometheus_memory_bus_has_no_transport_families() -> None:
    """The in-memory bus exposes no transport family."""
    async with Bus() as bus:
        bus.subscribe(Ping, handle, name="pings")
        families = scrape(bus)
    assert not set(TRANSPORT_FAMILIES) & set(families)


def test_prometheus_transport_families_are_typed_and_labelled() -> None:
    """connected and buffered are gauges, reconnects a counter, each labelled by transport."""
    status = TransportStatus("redis", "redis://127.0.0.1:6379", True, 3, None, 2)
    bus = SnapshotBus(MetricsSnapshot({"s": SubscriptionMetrics()}, transport=status))
    families = scrape(cast("Bus", bus))
    assert {name: families[name].type for name in TRANSPORT_FAMILIES} == {
        "eventbus_transport_connected": "gauge",
        "eventbus_transport_buffered": "gauge",
        "eventbus_transport_reconnects": "counter",
    }
    assert value(families["eventbus_transport_connected"], transport="redis") == 1
    assert value(families["eventbus_transport_buffered"], transport="redis") == 2
    assert value(families["eventbus_transport_reconnects"], "_total", transport="redis") == 3


def test_prometheus_transport_families_follow_the_namespace() -> None:
    """namespace= prefixes the transport families too."""
    status = TransportStatus("mqtt", "mqtt://127.0.0.1:1883", False, 0, None)
    bus = SnapshotBus(MetricsSnapshot({}, transport=status))
    families = scrape(cast("Bus", bus), namespace="app")
    assert value(families["app_transport_connected"], transport="mqtt") == 0


async def test_prometheus_follows_a_broker_outage() -> None:
    """Over a fake broker: connected goes 1, 0, 1 while buffered goes 0, 1, 0."""
    broker = FlakyBroker()
    async with Bus(transport=broker, publish_buffer=10) as bus:
        before = scrape(bus)
        broker.down = True
        await bus.publish(Ping(1))
        during = scrape(bus)
        broker.down = False
        await bus.drain()
        after = scrape(bus)
    seen = [
        (
            value(f["eventbus_transport_connected"], transport="fake"),
            value(f["eventbus_transport_buffered"], transport="fake"),
            value(f["eventbus_transport_reconnects"], "_total", transport="fake"),
        )
        for f in (before, during, after)
    ]
    assert seen == [(1, 0, 0), (0, 1, 0), (1, 0, 0)]


async def test_prometheus_failing_status_reports_disconnected() -> None:
    """A transport whose status() raises scrapes as connected 0, and the scrape succeeds."""
    async with Bus(transport=BrokenStatusBroker()) as bus:
        bus.subscribe(Ping, handle, name="pings")
        families = scrape(bus)
    assert value(families["eventbus_transport_connected"], transport="BrokenStatusBroker") == 0
    assert value(families["eventbus_queue_depth"], subscription="pings") == 0


@pytest.mark.integration
async def test_prometheus_over_nats_reports_connected() -> None:
    """Over NATS JetStream on loopback, eventbus_transport_connected{transport="nats"} is 1."""
    from bridges.conftest import live_nats_url
    from bridges.test_nats import transport as nats_transport

    async with nats_transport(live_nats_url()) as transport, Bus(transport=transport) as bus:
        bus.subscribe(Ping, handle, name="over-nats")
        await bus.publish(Ping(1))
        await bus.drain()
        families = scrape(bus)
    assert value(families["eventbus_transport_connected"], transport="nats") == 1
    assert value(families["eventbus_transport_buffered"], transport="nats") == 0
    assert value(families["eventbus_transport_reconnects"], "_total", transport="nats") == 0


# -- OpenTelemetry ---------------------------------------------------------------------


def _transport_points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """The (attributes, value) points of each eventbus.transport.* instrument, collected once."""
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {
        "connected": [],
        "buffered": [],
        "reconnects": [],
    }
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                name = metric.name.removeprefix("eventbus.transport.")
                if name in found:
                    found[name] += [
                        (dict(point.attributes or {}), getattr(point, "value", None))
                        for point in metric.data.data_points
                    ]
    return found


async def test_otel_observes_the_broker_connection() -> None:
    """With a broker, the transport gauges and counter report it, by eventbus.transport."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    broker = FlakyBroker()
    async with Bus(transport=broker, publish_buffer=10) as bus:
        instrument(bus, tracer_provider=NoOpTracerProvider(), meter_provider=meter_provider)
        broker.down = True
        await bus.publish(Ping(1))
        during = _transport_points(reader)
        broker.down = False
        await bus.drain()
    meter_provider.shutdown()
    attributes = {"messaging.system": "eventbus", "eventbus.transport": "fake"}
    assert during == {
        "connected": [(attributes, 0)],
        "buffered": [(attributes, 1)],
        "reconnects": [(attributes, 0)],
    }


async def test_otel_memory_bus_observes_no_transport() -> None:
    """The in-memory bus reports no transport points."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    async with Bus() as bus:
        instrument(bus, tracer_provider=NoOpTracerProvider(), meter_provider=meter_provider)
        assert _transport_points(reader) == {"connected": [], "buffered": [], "reconnects": []}
    meter_provider.shutdown()


async def test_otel_failing_status_reports_disconnected() -> None:
    """A transport whose status() raises is observed as disconnected, not as an error."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    async with Bus(transport=BrokenStatusBroker()) as bus:
        instrument(bus, tracer_provider=NoOpTracerProvider(), meter_provider=meter_provider)
        points = _transport_points(reader)
    meter_provider.shutdown()
    attributes = {"messaging.system": "eventbus", "eventbus.transport": "BrokenStatusBroker"}
    assert points == {
        "connected": [(attributes, 0)],
        "buffered": [(attributes, 0)],
        "reconnects": [(attributes, 0)],
    }
