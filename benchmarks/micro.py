"""Micro-benchmarks for run.py: event construction and filtered routing."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import attrs
from harness import interleaved
from peers import BenchEvent, Plain

from eventbus import Bus, Event

perf_counter = time.perf_counter

ROUTING_SIZES = (0, 1, 10, 100, 1000)


@attrs.frozen
class PlainAttrs:
    """A plain ``@attrs.frozen`` class with BenchEvent's user fields."""

    seq: int
    t0: float


def construction(rounds: int, number: int) -> dict[str, float]:
    """Median µs to build each kind of event with no envelope field given."""
    return interleaved(
        {
            "slotted class": lambda: Plain(1, 2.0),
            "@attrs.frozen class": lambda: PlainAttrs(1, 2.0),
            "eventbus Event": lambda: BenchEvent(1, 2.0),
            "eventbus Event + .id": lambda: BenchEvent(1, 2.0).id,
            "eventbus Event + .id + .time": lambda: _id_and_time(BenchEvent(1, 2.0)),
        },
        number=number,
        rounds=rounds,
    )


def _id_and_time(event: Event) -> Any:
    return event.id, event.time


@attrs.frozen
class Upload(Event):
    """The routed event: a key, as an object store's event has."""

    key: str


def _where(kind: str, i: int) -> Any:
    if kind == "exact":
        return {"key": [f"k{i}"]}
    if kind == "prefix":
        return {"key": [{"prefix": f"p{i}/"}]}
    return lambda event, key=f"k{i}": event.key == key


def _matching_key(kind: str) -> str:
    return "p0/x" if kind == "prefix" else "k0"


async def _publish_cost(kind: str, n: int, events: int) -> float:
    """µs per publish of an event that matches one of *n* subscriptions of *kind*."""

    async def handler(event: Upload) -> None:
        pass

    batch = [Upload(_matching_key(kind)) for _ in range(events)]
    async with Bus() as bus:
        for i in range(n):
            bus.subscribe(
                Upload, handler, name=f"s{i}", where=_where(kind, i), queue_size=events + 1
            )
        publish = bus.publish
        await publish(Upload(_matching_key(kind)))  # routes the class once
        await bus.drain()
        start = perf_counter()
        for event in batch:
            await publish(event)
        elapsed = perf_counter() - start
        await bus.drain()
    return elapsed / events * 1e6


def routing(rounds: int, events: int) -> dict[str, dict[int, float]]:
    """Median µs per publish by filter kind and subscription count (interleaved rounds)."""
    kinds = ("exact", "prefix", "callable")
    samples: dict[str, dict[int, list[float]]] = {k: {n: [] for n in ROUTING_SIZES} for k in kinds}
    for _ in range(rounds):
        for kind in kinds:
            for n in ROUTING_SIZES:
                count = events if n < 1000 or kind != "callable" else max(50, events // 10)
                samples[kind][n].append(asyncio.run(_publish_cost(kind, n, count)))
    return {
        kind: {n: statistics.median(values) for n, values in by_n.items()}
        for kind, by_n in samples.items()
    }
