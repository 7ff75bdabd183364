"""Prometheus exposition of a bus's metrics (``eventbus[prometheus]``).

:class:`EventbusCollector` is a custom collector for a
``prometheus_client.CollectorRegistry``: at each scrape it reads
:meth:`Bus.metrics() <eventbus.Bus.metrics>` (and :meth:`Bus.usage()`, where
the bus meters usage), so nothing is counted twice and nothing is kept
between scrapes except the duration histogram. Metrics, all labelled by
``subscription``:

==========================================  =========  ==========================================
``eventbus_invocations_total``              counter    attempts by ``outcome``: ``success``,
                                                       ``error``, ``timeout``
``eventbus_accepted_total``                 counter    events the subscription accepted
``eventbus_retries_total``                  counter    retries scheduled
``eventbus_dead_letters_total``             counter    events dead-lettered
``eventbus_throttled_total``                counter    publishers made to wait or refused
``eventbus_queue_depth``                    gauge      events queued for a worker
``eventbus_in_flight``                      gauge      events whose handler is running
``eventbus_waiting_retry``                  gauge      failed events waiting for a retry
``eventbus_handler_duration_seconds``       histogram  handler duration per attempt
``eventbus_billed_gb_seconds_total``        counter    billed GB-seconds (metered buses only)
==========================================  =========  ==========================================

With a broker transport (``bus.metrics().transport``), three more, labelled
by ``transport`` (``nats``, ``redis``, ``mqtt``):

==========================================  =========  ==========================================
``eventbus_transport_connected``            gauge      1 while the broker connection works, else 0
``eventbus_transport_buffered``             gauge      events waiting in the publish buffer
``eventbus_transport_reconnects_total``     counter    connections lost and made again
==========================================  =========  ==========================================

The histogram counts attempts from the moment the collector is made,
through the bus's hooks; on a bus without hooks it is a summary with the
``0.5`` and ``0.99`` quantiles of the recent attempts instead.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, final

try:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector
except ImportError as _exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "eventbus.prometheus needs prometheus-client: pip install 'eventbus[prometheus]'"
    ) from _exc

from ._bus import Bus

if TYPE_CHECKING:
    from ._transport import TransportStatus

__all__ = ["DEFAULT_BUCKETS", "EventbusCollector"]

#: Upper bounds, in seconds, of the duration histogram's buckets (``+Inf`` is added).
DEFAULT_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
)


@final
class _Durations:
    """Per-subscription bucket counts, fed by the bus's delivery-end hook (internal)."""

    __slots__ = ("bounds", "series")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        # subscription -> [count per bucket (the last is +Inf)..., sum]
        self.series: dict[str, list[float]] = {}

    def on_delivery_end(
        self,
        delivery: Any,
        token: Any,
        outcome: str,
        duration: float,
        error: BaseException | None,
    ) -> None:
        row = self.series.get(delivery.subscription)
        if row is None:
            row = self.series[delivery.subscription] = [0.0] * (len(self.bounds) + 2)
        row[bisect.bisect_left(self.bounds, duration)] += 1
        row[-1] += duration


@final
class EventbusCollector(Collector):
    """A ``prometheus_client`` collector reading a bus's metrics at scrape time.

    Register it once::

        registry = CollectorRegistry()
        registry.register(EventbusCollector(bus))

    Args:
        bus: the bus to expose.
        buckets: the duration histogram's upper bounds in seconds, increasing
            (``+Inf`` is added).
        namespace: the metric name prefix.

    Raises:
        ValueError: *buckets* is empty, not increasing, or holds a value that
            is not a positive finite number.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        bus: Bus,
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        namespace: str = "eventbus",
    ) -> None:
        bounds = tuple(buckets)
        if not bounds or any(
            isinstance(b, bool) or not isinstance(b, int | float) or not math.isfinite(b) or b <= 0
            for b in bounds
        ):
            raise ValueError(
                f"EventbusCollector(buckets=...) needs positive finite seconds, got {bounds!r:.80}"
            )
        if any(a >= b for a, b in itertools.pairwise(bounds)):
            raise ValueError(
                f"EventbusCollector(buckets=...) must be strictly increasing, got {bounds!r:.80}"
            )
        if not namespace.replace("_", "a").isalnum() or namespace[0].isdigit():
            raise ValueError(
                f"EventbusCollector(namespace=...) must be a metric name prefix, got {namespace!r}"
            )
        self.bus = bus
        self._ns = namespace
        self._durations: _Durations | None = None
        add_hook = getattr(bus, "add_hook", None)
        if callable(add_hook):
            self._durations = _Durations(tuple(float(b) for b in bounds))
            add_hook(self._durations)

    def close(self) -> None:
        """Stop feeding the duration histogram: remove the collector's hook from the bus.

        Unregister the collector from its registry as well. Calling it twice is harmless.
        """
        durations, self._durations = self._durations, None
        remove_hook = getattr(self.bus, "remove_hook", None)
        if durations is not None and callable(remove_hook):
            remove_hook(durations)

    def describe(self) -> Iterator[Metric]:
        """Nothing: the metrics are described by :meth:`collect` at each scrape."""
        return iter(())

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families, read from the bus now."""
        ns = self._ns
        snapshot = self.bus.metrics()
        label = ["subscription"]
        invocations = CounterMetricFamily(
            f"{ns}_invocations",
            "Handler attempts by outcome (success, error, timeout).",
            labels=["subscription", "outcome"],
        )
        accepted = CounterMetricFamily(
            f"{ns}_accepted", "Events accepted by the subscription.", labels=label
        )
        retries = CounterMetricFamily(f"{ns}_retries", "Retries scheduled.", labels=label)
        dead = CounterMetricFamily(f"{ns}_dead_letters", "Events dead-lettered.", labels=label)
        throttled = CounterMetricFamily(
            f"{ns}_throttled",
            "Times a publisher had to wait for room or was refused.",
            labels=label,
        )
        depth = GaugeMetricFamily(f"{ns}_queue_depth", "Events queued for a worker.", labels=label)
        in_flight = GaugeMetricFamily(
            f"{ns}_in_flight", "Events whose handler is running.", labels=label
        )
        waiting = GaugeMetricFamily(
            f"{ns}_waiting_retry", "Failed events waiting for their next attempt.", labels=label
        )
        for name, m in snapshot.items():
            invocations.add_metric([name, "success"], m.succeeded)
            invocations.add_metric([name, "error"], max(0, m.errors - m.timeouts))
            invocations.add_metric([name, "timeout"], m.timeouts)
            accepted.add_metric([name], m.accepted)
            retries.add_metric([name], m.retries)
            dead.add_metric([name], m.dead_lettered)
            throttled.add_metric([name], m.throttled)
            depth.add_metric([name], m.queued)
            in_flight.add_metric([name], m.in_flight)
            waiting.add_metric([name], m.waiting_retry)
        yield from (invocations, accepted, retries, dead, throttled, depth, in_flight, waiting)
        yield self._duration_family(snapshot)
        yield from self._transport_families(getattr(snapshot, "transport", None))
        billed = self._billed()
        if billed is not None:
            yield billed

    def _duration_family(self, snapshot: Any) -> Metric:
        name = f"{self._ns}_handler_duration_seconds"
        doc = "Handler duration per attempt, in seconds."
        durations = self._durations
        if durations is None:
            summary = Metric(name, doc + " Quantiles of the recent attempts.", "summary")
            for sub, m in snapshot.items():
                summary.add_sample(name, {"subscription": sub, "quantile": "0.5"}, m.duration_p50)
                summary.add_sample(name, {"subscription": sub, "quantile": "0.99"}, m.duration_p99)
            return summary
        family = HistogramMetricFamily(name, doc, labels=["subscription"])
        labels = [_le(b) for b in durations.bounds] + ["+Inf"]
        for sub in snapshot:
            row = durations.series.get(sub) or [0.0] * (len(durations.bounds) + 2)
            cumulative = 0.0
            buckets = []
            for le, count in zip(labels, row[:-1], strict=True):
                cumulative += count
                buckets.append((le, cumulative))
            family.add_metric([sub], buckets, sum_value=row[-1])
        return family

    def _transport_families(self, status: TransportStatus | None) -> Iterator[Metric]:
        """The broker connection's families; none in memory (*status* is ``None``)."""
        if status is None:
            return
        ns = self._ns
        label = ["transport"]
        connected = GaugeMetricFamily(
            f"{ns}_transport_connected",
            "1 while the broker transport holds a working connection, else 0.",
            labels=label,
        )
        connected.add_metric([status.transport], 1.0 if status.connected else 0.0)
        buffered = GaugeMetricFamily(
            f"{ns}_transport_buffered",
            "Events waiting in the publish buffer for the broker.",
            labels=label,
        )
        buffered.add_metric([status.transport], status.buffered)
        reconnects = CounterMetricFamily(
            f"{ns}_transport_reconnects",
            "Times the broker connection was lost and made again.",
            labels=label,
        )
        reconnects.add_metric([status.transport], status.reconnects)
        yield from (connected, buffered, reconnects)

    def _billed(self) -> Metric | None:
        usage = getattr(self.bus, "usage", None)
        if not callable(usage) or getattr(self.bus, "metering", True) is None:
            return None
        try:
            report = usage()
        except Exception:  # an unmetered bus: nothing to bill
            return None
        family = CounterMetricFamily(
            f"{self._ns}_billed_gb_seconds",
            "Billed compute in GB-seconds (billed duration x memory), as Lambda bills it.",
            labels=["subscription"],
        )
        for name in report:
            family.add_metric([name], float(report[name].gb_seconds))
        return family


def _le(bound: float) -> str:
    return repr(float(bound))
