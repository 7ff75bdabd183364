"""Rounds, medians and reports for benchmarks/run.py.

Every figure is the median of interleaved rounds: a round measures every
contender once, so load from elsewhere on the machine hits all rows of a
round alike, and the median (not the best) is what a user can expect.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import math
import statistics
import subprocess
import sys
import time
import timeit
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from peers import Adapter, BareQueue, Probe

perf_counter = time.perf_counter

FANOUT = 10
MIN_LATENCY_SAMPLES = 200


@attrs.define
class Settings:
    events: int
    rounds: int
    budget: float  # seconds one throughput run may take; slow peers publish fewer events
    latency_samples: int
    memory_events: int


@attrs.define
class Row:
    name: str
    status: str = "ok"
    note: str = ""
    builds: str = ""
    version: str | None = None
    single: list[float] = attrs.Factory(list)  # events/s per round
    fanout: list[float] = attrs.Factory(list)
    p50: list[float] = attrs.Factory(list)  # µs per round
    p99: list[float] = attrs.Factory(list)
    single_events: int | None = None
    fanout_events: int | None = None
    latency_samples: int | None = None
    bytes_per_event: float | None = None
    memory_events: int | None = None

    @property
    def single_eps(self) -> float | None:
        return statistics.median(self.single) if self.single else None

    @property
    def fanout_eps(self) -> float | None:
        return statistics.median(self.fanout) if self.fanout else None

    @property
    def p50_us(self) -> float | None:
        return statistics.median(self.p50) if self.p50 else None

    @property
    def p99_us(self) -> float | None:
        return statistics.median(self.p99) if self.p99 else None

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "version": self.version,
            "single_eps": self.single_eps,
            "fanout_eps": self.fanout_eps,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "bytes_per_event": self.bytes_per_event,
            "rounds": {"single": self.single, "fanout": self.fanout, "p99": self.p99},
        }


# -- one measurement ---------------------------------------------------------------------


async def run_throughput(cls: type[Adapter], n_subs: int, n_events: int) -> float:
    """One run: events/s from the first publish until every handler call is done."""
    probe = Probe()
    adapter = cls(probe)
    await adapter.start(n_subs, "count")
    try:
        probe.arm(n_events * n_subs)
        gc.collect()
        start = perf_counter()
        await adapter.publish_many(0, n_events)
        await probe.done.wait()
        await adapter.settle()
        elapsed = perf_counter() - start
    finally:
        await adapter.stop()
    return n_events / elapsed


async def calibrate(cls: type[Adapter], n_subs: int, settings: Settings) -> int:
    """Warm-up runs; returns how many events fit in the time budget (within bounds)."""
    floor = min(settings.events, 100)

    def fit(rate: float, seconds: float) -> int:
        return max(floor, min(settings.events, int(rate * seconds)))

    rate = await run_throughput(cls, n_subs, max(1, min(settings.events, 200)))
    rate = await run_throughput(cls, n_subs, fit(rate, settings.budget / 4))
    return fit(rate, settings.budget)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    index = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[index]


async def run_latency(cls: type[Adapter], settings: Settings) -> tuple[float, float, int]:
    """p50/p99 publish-to-handler-start in µs, one event in flight, and the sample count.

    The clock is read after the event is built, right before the publish call,
    and again as the handler starts.
    """
    warmup = max(10, settings.latency_samples // 10)
    probe = Probe()
    adapter = cls(probe)
    await adapter.start(1, "latency")
    try:
        gc.collect()
        for seq in range(warmup):
            event = adapter.make_event(seq)
            probe.arm(1)
            probe.t_pub = perf_counter()
            await adapter.publish(event)
            await probe.done.wait()
        probe.latencies.clear()
        deadline = perf_counter() + settings.budget
        for seq in range(warmup, warmup + settings.latency_samples):
            event = adapter.make_event(seq)
            probe.arm(1)
            probe.t_pub = perf_counter()
            await adapter.publish(event)
            await probe.done.wait()
            if probe.t_pub > deadline and len(probe.latencies) >= MIN_LATENCY_SAMPLES:
                break
        await adapter.settle()
    finally:
        await adapter.stop()
    values = sorted(probe.latencies)
    return percentile(values, 0.50) * 1e6, percentile(values, 0.99) * 1e6, len(values)


async def run_memory(cls: type[Adapter], settings: Settings) -> tuple[float, int] | None:
    """Bytes per queued event, the event included: handler blocked, one worker, room for all.

    tracemalloc counts what is allocated between the first and the last
    publish (building the events included), once the worker holds the first.
    """
    if cls.memory_capacity is None:
        return None
    k = settings.memory_events
    if cls.memory_capacity:
        k = min(k, cls.memory_capacity)
    figures = []
    for _ in range(3):
        probe = Probe()
        adapter = cls(probe)
        await adapter.start(1, "blocked", queue_size=k + 16)
        try:
            probe.arm(k)
            for _ in range(3):
                await asyncio.sleep(0)
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                await adapter.publish_many(0, k)
                for _ in range(3):  # let workers pick up their first event and block
                    await asyncio.sleep(0)
                after = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
            probe.gate.set()
            await probe.done.wait()
            await adapter.settle()
        finally:
            await adapter.stop()
        figures.append((after - before) / k)
    return statistics.median(figures), k


# -- the rounds ----------------------------------------------------------------------------


def _version(cls: type[Adapter]) -> str | None:
    if cls.distribution is None:
        return None
    try:
        return importlib.metadata.version(cls.distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def progress(message: str) -> None:
    print(f"  {message} ...", file=sys.stderr, flush=True)


async def measure_all(classes: Sequence[type[Adapter]], settings: Settings) -> list[Row]:
    """Measure every contender: calibrate, then interleaved rounds, then memory."""
    rows = {
        cls: Row(name=cls.name, note=cls.note, builds=cls.builds, version=_version(cls))
        for cls in classes
    }
    live: list[type[Adapter]] = []
    for cls in classes:
        reason = cls.unavailable()
        if reason is None:
            live.append(cls)
        else:
            rows[cls].status = reason

    sizes: dict[type[Adapter], tuple[int, int]] = {}
    for cls in list(live):
        progress(f"calibrating {cls.name}")
        try:
            sizes[cls] = (await calibrate(cls, 1, settings), await calibrate(cls, FANOUT, settings))
        except Exception as exc:
            rows[cls].status = f"error: {type(exc).__name__}: {exc}"
            live.remove(cls)
            continue
        rows[cls].single_events, rows[cls].fanout_events = sizes[cls]

    for round_no in range(1, settings.rounds + 1):
        progress(f"round {round_no}/{settings.rounds}")
        for cls in list(live):
            row = rows[cls]
            single, fanout = sizes[cls]
            try:
                row.single.append(await run_throughput(cls, 1, single))
                row.fanout.append(await run_throughput(cls, FANOUT, fanout))
                p50, p99, samples = await run_latency(cls, settings)
                row.p50.append(p50)
                row.p99.append(p99)
                row.latency_samples = samples
            except Exception as exc:
                row.status = f"error: {type(exc).__name__}: {exc}"
                live.remove(cls)

    for cls in list(live):
        progress(f"memory {cls.name}")
        try:
            memory = await run_memory(cls, settings)
        except Exception as exc:
            rows[cls].status = f"error: {type(exc).__name__}: {exc}"
            continue
        if memory is not None:
            rows[cls].bytes_per_event, rows[cls].memory_events = memory
    return [rows[cls] for cls in classes]


# -- micro-benchmarks ----------------------------------------------------------------------


def interleaved(
    stmts: dict[str, Callable[[], object]], number: int, rounds: int
) -> dict[str, float]:
    """Median µs per call of each callable, over rounds that run every one in turn."""
    samples: dict[str, list[float]] = {name: [] for name in stmts}
    for _ in range(rounds):
        for name, fn in stmts.items():
            samples[name].append(timeit.timeit(fn, number=number) / number * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def import_times(rounds: int) -> dict[str, float]:
    """Median seconds of ``import X`` in a fresh interpreter (the import alone, timed inside)."""
    snippets = {
        "anyio, attrs": "import anyio, attrs",
        "eventbus": "import eventbus",
        "eventbus + Bus, Event": "import eventbus; eventbus.Bus; eventbus.Event",
    }
    samples: dict[str, list[float]] = {name: [] for name in snippets}
    for _ in range(rounds):
        for name, code in snippets.items():
            script = f"import time; t = time.perf_counter()\n{code}\nprint(time.perf_counter() - t)"
            out = subprocess.run(
                [sys.executable, "-c", script], capture_output=True, text=True, check=True
            ).stdout
            samples[name].append(float(out))
    return {name: statistics.median(values) for name, values in samples.items()}


# -- report --------------------------------------------------------------------------------


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return ""
    return f"({fmt_ratio(value / base)})"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(headers: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(line[i])) for line in [headers, *lines]) for i in range(len(headers))]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out.append("  ".join("-" * w for w in widths))
    for line in lines:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return "\n".join(out)


def format_rows(rows: Sequence[Row]) -> str:
    base = next((r for r in rows if r.name == BareQueue.name and r.status == "ok"), None)
    headers = (
        "contender",
        "1-sub events/s",
        f"{FANOUT}-sub fan-out events/s",
        "p50 µs",
        "p99 µs",
        "bytes/queued event",
    )
    lines = []
    for r in rows:
        if r.status != "ok":
            lines.append((r.name, r.status, "", "", "", ""))
            continue
        memory = (
            "n/a"
            if r.bytes_per_event is None
            else f"{r.bytes_per_event:,.0f} "
            f"{_ratio(r.bytes_per_event, base.bytes_per_event if base else None)}"
        )
        lines.append(
            (
                r.name,
                f"{_num(r.single_eps, ',.0f')} {_ratio(r.single_eps, base.single_eps if base else None)}",
                f"{_num(r.fanout_eps, ',.0f')} {_ratio(r.fanout_eps, base.fanout_eps if base else None)}",
                f"{_num(r.p50_us, ',.1f')} {_ratio(r.p50_us, base.p50_us if base else None)}",
                f"{_num(r.p99_us, ',.1f')} {_ratio(r.p99_us, base.p99_us if base else None)}",
                memory,
            )
        )
    return table(headers, lines)


def format_notes(rows: Sequence[Row]) -> str:
    out = []
    for r in rows:
        if r.status != "ok":
            continue
        parts = [
            f"{r.single_events:,} / {r.fanout_events:,} events per 1-sub / fan-out run",
            f"{r.latency_samples:,} latency samples",
        ]
        if r.memory_events is not None:
            parts.append(f"{r.memory_events:,} queued for memory")
        if r.note:
            parts.append(r.note)
        version = f" {r.version}" if r.version else ""
        out.append(f"  {r.name}{version}: " + "; ".join(parts))
    return "\n".join(out)


Target = tuple[str, bool | None, str]


def evaluate_targets(
    rows: Sequence[Row],
    construction: dict[str, float] | None,
    imports: dict[str, float] | None,
    routing: dict[str, dict[int, float]] | None,
) -> list[Target]:
    """(target, passed or None when not measured, detail) for issue 10's floor."""
    by_name = {r.name: r for r in rows if r.status == "ok"}
    base = by_name.get(BareQueue.name)
    ctx = by_name.get("eventbus (event, ctx)")
    plain = by_name.get("eventbus (event)")
    blinker = by_name.get("blinker")
    results: list[Target] = []

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else a / b

    def check(label: str, value: float | None, ok: Callable[[float], bool], fmt: str) -> None:
        if value is None:
            results.append((label, None, "not measured"))
        else:
            results.append((label, ok(value), format(value, fmt)))

    if ctx is not None and base is not None:
        check(
            "1-sub throughput >= 0.7x bare queue",
            ratio(ctx.single_eps, base.single_eps),
            lambda v: v >= 0.7,
            ".2f",
        )
        check(
            f"{FANOUT}-sub fan-out >= 0.8x bare queue",
            ratio(ctx.fanout_eps, base.fanout_eps),
            lambda v: v >= 0.8,
            ".2f",
        )
        check(
            "p99 latency <= 1.5x bare queue",
            ratio(ctx.p99_us, base.p99_us),
            lambda v: v <= 1.5,
            ".2f",
        )
        check(
            "<= 200 bytes per queued event (event included)",
            ctx.bytes_per_event,
            lambda v: v <= 200,
            ".0f",
        )
    if ctx is not None and blinker is not None:
        check(
            "1-sub throughput at or ahead of blinker",
            ratio(ctx.single_eps, blinker.single_eps),
            lambda v: v >= 1.0,
            ".2f",
        )
    if ctx is not None and plain is not None and ctx.single_eps and plain.single_eps:
        extra = (1 / ctx.single_eps - 1 / plain.single_eps) * 1e6
        check("Context costs <= 0.2 µs per delivery", extra, lambda v: v <= 0.2, ".2f")
    if construction:
        check(
            "event built <= 2x a plain attrs class",
            ratio(construction.get("eventbus Event"), construction.get("@attrs.frozen class")),
            lambda v: v <= 2.0,
            ".2f",
        )
    if imports:
        check(
            "import eventbus <= 1.5x import anyio, attrs",
            ratio(imports.get("eventbus"), imports.get("anyio, attrs")),
            lambda v: v <= 1.5,
            ".2f",
        )
    if routing and "prefix" in routing:
        scale = routing["prefix"]
        check(
            "1,000 prefix subscriptions <= 3x 10 per publish",
            ratio(scale.get(1000), scale.get(10)),
            lambda v: v <= 3.0,
            ".2f",
        )
    return results


def format_targets(targets: Sequence[Target]) -> str:
    out = ["targets (issue 10's floor; eventbus with h(event, ctx), ratios to the bare queue):"]
    for label, passed, detail in targets:
        verdict = "n/a " if passed is None else ("PASS" if passed else "FAIL")
        out.append(f"  [{verdict}] {label}: {detail}")
    return "\n".join(out)
