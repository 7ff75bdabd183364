"""What observing a bus costs: no hook, metering, OpenTelemetry (no-op and SDK tracer).

Run it from the repository root::

    python benchmarks/bench_hooks.py            # about 20 seconds
    python benchmarks/bench_hooks.py --quick    # a smoke test

Each row publishes N events to one subscription whose async handler counts
its calls, then drains, timed in CPU time of the process (so that other
programs on the machine disturb the figures less). Rounds are interleaved (every row once per round) so
that load from elsewhere hits all rows alike; the table shows the median
events/s of the rounds, its ratio to the no-hook row, and the extra
microseconds per event.

Rows:

* ``no hook`` -- a default ``Bus()``;
* ``metering`` -- ``Bus(metering=Metering())``;
* ``otel no-op`` -- ``eventbus.otel.instrument`` with the API's no-op tracer
  and meter providers (what an app pays with OpenTelemetry installed but no SDK);
* ``otel sdk`` -- the SDK's tracer provider with a span processor that drops
  every span, and the SDK's meter provider (what tracing itself costs,
  without export).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

import anyio
import attrs

from eventbus import Bus, Event, Metering


@attrs.frozen
class Tick(Event, type_name="bench.hooks.Tick"):
    n: int


def _otel_noop(bus: Bus) -> None:
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.trace import NoOpTracerProvider

    from eventbus.otel import instrument

    instrument(bus, tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider())


def _otel_sdk(bus: Bus) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from eventbus.otel import instrument

    class Drop(SpanProcessor):
        """Receives every span and keeps none: tracing without the cost of export."""

    provider = TracerProvider()
    provider.add_span_processor(Drop())
    instrument(bus, tracer_provider=provider, meter_provider=MeterProvider())


ROWS: dict[str, tuple[Callable[[], Bus], Callable[[Bus], None] | None]] = {
    "no hook": (Bus, None),
    "metering": (lambda: Bus(metering=Metering()), None),
    "otel no-op": (Bus, _otel_noop),
    "otel sdk": (Bus, _otel_sdk),
}


async def _run(make: Callable[[], Bus], setup: Callable[[Bus], None] | None, n: int) -> float:
    count = 0

    async def handle(event: Tick) -> None:
        nonlocal count
        count += 1

    async with make() as bus:
        if setup is not None:
            setup(bus)
        bus.subscribe(Tick, handle, name="count", queue_size=n + 1)
        gc.collect()
        start = time.process_time()
        for i in range(n):
            await bus.publish(Tick(i))
        await bus.drain()
        elapsed = time.process_time() - start
    assert count == n
    return n / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="1,000 events, 2 rounds")
    args = parser.parse_args(argv)
    n, rounds = (1_000, 2) if args.quick else (args.events, args.rounds)
    results: dict[str, list[float]] = {name: [] for name in ROWS}
    for _ in range(rounds):
        for name, (make, setup) in ROWS.items():
            results[name].append(anyio.run(_run, make, setup, n))
    base = statistics.median(results["no hook"])
    print(f"{n} events per run, median of {rounds} interleaved rounds, 1 subscriber\n")
    print(f"{'row':<12}{'events/s':>12}{'ratio':>8}{'extra us/event':>16}")
    for name, rates in results.items():
        rate = statistics.median(rates)
        extra = (1 / rate - 1 / base) * 1e6
        print(f"{name:<12}{rate:>12,.0f}{rate / base:>8.2f}{extra:>16.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
