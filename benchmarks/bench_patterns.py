"""Content-pattern matching: a compiled Pattern beside a hand-written lambda, and PatternIndex scaling.

Run it from the repository root::

    python benchmarks/bench_patterns.py            # a few seconds
    python benchmarks/bench_patterns.py --quick    # fewer repeats, a smoke test
    python benchmarks/bench_patterns.py --json out.json

or import it and call ``run()``, which returns one dict per row (what
``benchmarks/run.py`` does).

What is measured, in nanoseconds per call (best of several repeats, each a
tight loop; the candidates of one comparison are measured interleaved, so
that a noisy machine slows them alike):

* ``Pattern.matches`` against the equivalent hand-written lambda, on an attrs
  event and on a dict, for an event that matches (every clause runs) and one
  that fails on the first clause; target: within 2x of the lambda;
* ``PatternIndex.match`` with 10 and with 1,000 patterns
  ``{"key": ["k<i>"]}``; target: 1,000 within 3x of 10. For scale, the row
  "1,000 patterns, one by one" evaluates every pattern in a loop.

``--routing`` (or ``routing()``) measures what filtered subscriptions cost
a publish, the way a user pays it: ``await bus.publish(event)`` on a bus with
one unfiltered subscription plus 0, 1, 10, 100 or 1,000 filtered ones that
the event does not match, for each kind of filter (exact value, prefix,
suffix, equals-ignore-case, wildcard with a literal start, and a plain
callable). It reports the median microseconds per publish over rounds that
interleave every configuration (garbage collection off inside each timed
loop, as ``timeit`` does). Targets: one filtered subscription adds at
most 0.5 us; 1,000 cost at most 3x 10 (callables are evaluated one by one,
so they are shown for scale, without a target).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, "") and str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from eventbus import ObjectCreated
from eventbus.patterns import Pattern, PatternIndex

perf_counter = time.perf_counter

SPEC: dict[str, Any] = {
    "bucket": ["photos"],
    "size": [{"numeric": [">", 0]}],
    "key": [{"suffix": ".png"}],
}


def hand_written(e: ObjectCreated) -> bool:
    return e.bucket == "photos" and e.size > 0 and e.key.endswith(".png")


def hand_written_dict(d: dict[str, Any]) -> bool:
    return (
        d.get("bucket") == "photos" and d.get("size", 0) > 0 and d.get("key", "").endswith(".png")
    )


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeError(f"benchmark set-up is wrong: expected {what}")


def best_ns(
    candidates: dict[str, Callable[[], object]], *, loops: int, repeats: int
) -> dict[str, float]:
    """Nanoseconds per call of each candidate: the best of *repeats* loops, measured interleaved."""
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(repeats):
        for name, call in candidates.items():
            start = perf_counter()
            for _ in range(loops):
                call()
            elapsed = (perf_counter() - start) / loops * 1e9
            best[name] = min(best[name], elapsed)
    return best


def _loop_overhead(loops: int, repeats: int) -> float:
    def nothing() -> None:
        return None

    return best_ns({"empty": nothing}, loops=loops, repeats=repeats)["empty"]


def _row(
    case: str, ns: float, baseline: str | None, baseline_ns: float | None, target: float | None
) -> dict[str, Any]:
    ratio = ns / baseline_ns if baseline_ns else None
    return {
        "case": case,
        "ns_per_op": round(ns, 1),
        "baseline": baseline or "",
        "baseline_ns": round(baseline_ns, 1) if baseline_ns else None,
        "ratio": round(ratio, 2) if ratio is not None else None,
        "target": f"<= {target:g}x" if target is not None else "",
        "ok": (ratio <= target) if (ratio is not None and target is not None) else None,
    }


def bench_pattern_vs_lambda(loops: int, repeats: int) -> list[dict[str, Any]]:
    pattern = Pattern(SPEC)
    pattern.bind((ObjectCreated,))
    hit = ObjectCreated("photos", "cats/tabby.png", 52_113, "9b2cf535f27731c974343645a3985328")
    miss = ObjectCreated("documents", "cats/tabby.png", 52_113, "9b2cf535f27731c974343645a3985328")
    hit_dict = {"bucket": "photos", "key": "cats/tabby.png", "size": 52_113}
    _check(pattern.matches(hit) and hand_written(hit), "both match the photo")
    _check(not pattern.matches(miss) and not hand_written(miss), "neither matches the document")
    _check(pattern.matches(hit_dict) and hand_written_dict(hit_dict), "both match the dict")
    rows = []
    cases: list[tuple[str, object, Callable[[Any], bool]]] = [
        ("attrs event, matches", hit, hand_written),
        ("attrs event, first clause fails", miss, hand_written),
        ("dict, matches", hit_dict, hand_written_dict),
    ]
    matches = pattern.matches
    for label, document, baseline in cases:
        times = best_ns(
            {"pattern": partial(matches, document), "lambda": partial(baseline, document)},
            loops=loops,
            repeats=repeats,
        )
        rows.append(
            _row(
                f"Pattern.matches, {label}",
                times["pattern"],
                "hand-written lambda",
                times["lambda"],
                2.0,
            )
        )
    return rows


def _index(n: int) -> PatternIndex[int]:
    index: PatternIndex[int] = PatternIndex()
    for i in range(n):
        index.add(i, {"key": [f"k{i}"]})
    return index


def bench_index(loops: int, repeats: int) -> list[dict[str, Any]]:
    small, large = _index(10), _index(1000)
    event = ObjectCreated("photos", "k7", 1, "etag")
    _check(small.match(event) == [7] and large.match(event) == [7], "both indexes find k7")
    patterns = [Pattern({"key": [f"k{i}"]}) for i in range(1000)]

    def one_by_one() -> list[int]:
        return [i for i, p in enumerate(patterns) if p.matches(event)]

    _check(one_by_one() == [7], "the loop finds k7")
    times = best_ns(
        {"10": lambda: small.match(event), "1000": lambda: large.match(event)},
        loops=loops,
        repeats=repeats,
    )
    naive = best_ns({"naive": one_by_one}, loops=max(1, loops // 200), repeats=max(3, repeats // 3))
    return [
        _row("PatternIndex.match, 10 exact-value patterns", times["10"], None, None, None),
        _row(
            "PatternIndex.match, 1,000 exact-value patterns",
            times["1000"],
            "the same with 10",
            times["10"],
            3.0,
        ),
        _row(
            "1,000 patterns, one by one (no index)",
            naive["naive"],
            "PatternIndex, 1,000",
            times["1000"],
            None,
        ),
    ]


# --------------------------------------------------------------------------- routing

ROUTING_COUNTS = (0, 1, 10, 100, 1000)


def _filter(kind: str, i: int) -> Any:
    """The where= of filtered subscription *i* of *kind*; none matches the published event."""
    if kind == "exact":
        return {"key": [f"k{i}"]}
    if kind == "prefix":
        return {"key": [{"prefix": f"k{i}/"}]}
    if kind == "suffix":
        return {"key": [{"suffix": f".{i}.png"}]}
    if kind == "equals-ignore-case":
        return {"key": [{"equals-ignore-case": f"K{i}"}]}
    if kind == "wildcard":
        return {"key": [{"wildcard": f"k{i}/*.png"}]}
    key = f"k{i}"
    return lambda event: event.key == key


ROUTING_KINDS = ("exact", "prefix", "suffix", "equals-ignore-case", "wildcard", "callable")


async def _routing_rounds(loops: int, rounds: int) -> dict[tuple[str, int], list[float]]:
    import contextlib

    from eventbus import Bus

    async def handle(event: ObjectCreated) -> None:
        return None

    event = ObjectCreated("photos", "other/a.jpg", 1, "etag")
    samples: dict[tuple[str, int], list[float]] = {}
    async with contextlib.AsyncExitStack() as stack:
        buses = {}
        for kind in ROUTING_KINDS:
            for n in ROUTING_COUNTS:
                if kind != ROUTING_KINDS[0] and n == 0:
                    continue  # one baseline for all kinds
                bus = await stack.enter_async_context(Bus())
                bus.subscribe(ObjectCreated, handle, name="all", queue_size=loops + 1)
                for i in range(n):
                    bus.subscribe(ObjectCreated, handle, where=_filter(kind, i), name=f"f{i}")
                receipt = await bus.publish(event)
                _check(receipt.subscriptions == ("all",), f"{kind} x {n} routes to 'all' only")
                await bus.drain()
                buses[kind, n] = bus
                samples[kind, n] = []
        for _ in range(rounds):
            for config, bus in buses.items():
                publish = bus.publish
                # As timeit does: no garbage collection inside the timed loop (the other
                # buses' thousands of subscriptions would make it cost them all alike).
                gc.collect()
                gc.disable()
                try:
                    start = perf_counter()
                    for _ in range(loops):
                        await publish(event)
                    samples[config].append((perf_counter() - start) / loops * 1e6)
                finally:
                    gc.enable()
                await bus.drain()
    return samples


def routing(*, quick: bool = False) -> list[dict[str, Any]]:
    """Microseconds per publish by kind and number of filtered subscriptions (medians)."""
    import statistics

    import anyio

    loops, rounds = (200, 5) if quick else (2_000, 21)
    samples = anyio.run(_routing_rounds, loops, rounds)
    baseline = statistics.median(samples[ROUTING_KINDS[0], 0])
    rows = []
    for kind in ROUTING_KINDS:
        medians = {n: statistics.median(samples[kind, n]) for n in ROUTING_COUNTS if n}
        medians[0] = baseline
        one_added = medians[1] - baseline
        scaling = medians[1000] / medians[10]
        row: dict[str, Any] = {"kind": kind}
        row.update({str(n): round(medians[n], 2) for n in ROUTING_COUNTS})
        row["one_adds_us"] = round(one_added, 2)
        row["1000_over_10"] = round(scaling, 2)
        row["ok"] = None if kind == "callable" else (one_added <= 0.5 and scaling <= 3.0)
        rows.append(row)
    return rows


def format_routing(rows: list[dict[str, Any]]) -> str:
    """The routing rows as a Markdown table."""
    head = ["filter", *(f"{n:,}" for n in ROUTING_COUNTS), "one adds", "1,000 / 10", "ok"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        ok = "" if row["ok"] is None else ("yes" if row["ok"] else "NO")
        cells = [row["kind"], *(f"{row[str(n)]:.2f}" for n in ROUTING_COUNTS)]
        cells += [f"{row['one_adds_us']:+.2f}", f"{row['1000_over_10']:.2f}x", ok]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(*, quick: bool = False) -> list[dict[str, Any]]:
    """Measure everything; return one dict per row (case, ns_per_op, baseline, ratio, target, ok)."""
    loops, repeats = (2_000, 5) if quick else (4_000, 100)
    rows = bench_pattern_vs_lambda(loops, repeats)
    rows += bench_index(loops // 4, repeats)
    overhead = _loop_overhead(loops, repeats)
    for row in rows:
        row["loop_overhead_ns"] = round(overhead, 1)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    headers = ["case", "ns_per_op", "baseline", "baseline_ns", "ratio", "target", "ok"]

    def cell(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "NO"
        if isinstance(value, float):
            return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
        return str(value)

    table = [headers] + [[cell(r.get(h)) for h in headers] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke test)")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument(
        "--routing",
        action="store_true",
        help="measure publish cost by number and kind of filtered subscriptions instead",
    )
    args = parser.parse_args(argv)
    if args.routing:
        routing_rows = routing(quick=args.quick)
        print(
            f"Python {platform.python_version()} ({platform.python_implementation()}); "
            "microseconds per 'await bus.publish(event)', median of interleaved rounds; "
            "columns: filtered subscriptions the event does not match (plus one unfiltered)\n"
        )
        print(format_routing(routing_rows))
        if args.json:
            args.json.write_text(json.dumps(routing_rows, indent=2) + "\n")
        return 0 if all(r["ok"] is not False for r in routing_rows) else 1
    rows = run(quick=args.quick)
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}) on {platform.machine()}"
    )
    print(
        f"ns per call, best of repeats; an empty function call costs "
        f"{rows[0]['loop_overhead_ns']} ns in the same loop\n"
    )
    print(format_rows(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["ok"] is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
