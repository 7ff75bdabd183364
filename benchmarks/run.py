"""Side-by-side benchmark: eventbus beside the bare asyncio.Queue a user would write instead.

Run it from the repository root::

    python benchmarks/run.py              # full run, a few minutes
    python benchmarks/run.py --quick      # small sizes, a smoke test for CI
    python benchmarks/run.py --only eventbus,blinker --json results.json

The package: ``peers/`` holds one adapter per contender (the bare queue,
eventbus with ``h(event, ctx)`` and with ``h(event)``, blinker, pyee,
aiopubsub, bubus, FastStream), ``harness.py`` the rounds, medians and
report, ``micro.py`` the event-construction and filtered-routing
micro-benchmarks. Each contender builds its own natural event inside the
timed loop; every figure is the median of interleaved rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # harness, micro, peers
sys.path.insert(1, str(HERE.parent))  # eventbus, from a checkout

import attrs  # noqa: E402
import harness  # noqa: E402
import micro  # noqa: E402
from peers import ADAPTERS, Adapter, BareQueue  # noqa: E402


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark eventbus beside a bare asyncio.Queue and peer libraries."
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds (CI smoke)")
    parser.add_argument(
        "--only",
        default=None,
        metavar="NAME[,NAME...]",
        help="run only these contenders (the bare asyncio.Queue always runs, for the ratios); "
        "'eventbus' selects both eventbus rows",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7)")
    parser.add_argument(
        "--events", type=int, default=None, help="events per throughput run, at most"
    )
    parser.add_argument(
        "--budget", type=float, default=None, help="seconds a run may take (default 0.5)"
    )
    parser.add_argument(
        "--no-micro", action="store_true", help="skip import time, construction and routing"
    )
    return parser.parse_args(argv)


def make_settings(args: argparse.Namespace) -> harness.Settings:
    if args.quick:
        settings = harness.Settings(
            events=2000, rounds=2, budget=0.2, latency_samples=200, memory_events=1000
        )
    else:
        settings = harness.Settings(
            events=100_000, rounds=7, budget=0.5, latency_samples=2000, memory_events=10_000
        )
    if args.events is not None:
        settings.events = max(1, args.events)
    if args.rounds is not None:
        settings.rounds = max(1, args.rounds)
    if args.budget is not None:
        settings.budget = args.budget
    return settings


def select(only: str | None) -> list[type[Adapter]]:
    if not only:
        return list(ADAPTERS)
    wanted = {name.strip().lower() for name in only.split(",") if name.strip()}
    chosen = [
        cls
        for cls in ADAPTERS
        if cls is BareQueue or cls.name.lower() in wanted or cls.name.split()[0] in wanted
    ]
    known = {cls.name.split()[0].lower() for cls in ADAPTERS} | {c.name.lower() for c in ADAPTERS}
    unknown = wanted - known
    if unknown:
        raise SystemExit(f"--only: unknown contender(s) {', '.join(sorted(unknown))}")
    return chosen


def _bus_default_queue_size() -> int:
    from eventbus import Bus

    default = inspect.signature(Bus.subscribe).parameters["queue_size"].default
    return default if isinstance(default, int) and default > 0 else 1024


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = make_settings(args)
    classes = select(args.only)
    BareQueue.bound = _bus_default_queue_size()

    started = time.perf_counter()
    rows = asyncio.run(harness.measure_all(classes, settings))
    construction = imports = routing = None
    if not args.no_micro:
        harness.progress("event construction")
        construction = micro.construction(
            rounds=5 if args.quick else 11, number=20_000 if args.quick else 200_000
        )
        harness.progress("import time")
        imports = harness.import_times(rounds=3 if args.quick else 11)
        harness.progress("filtered routing")
        routing = micro.routing(rounds=1 if args.quick else 3, events=200 if args.quick else 2000)
    elapsed = time.perf_counter() - started

    print()
    print(
        f"eventbus benchmark: Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.machine()}, "
        f"{os.cpu_count() or 1} CPUs"
    )
    print(
        f"median of {settings.rounds} interleaved round(s); up to {settings.events:,} events per "
        f"throughput run and {settings.latency_samples:,} latency samples "
        f"(about {settings.budget:g} s each); {settings.memory_events:,} queued events for memory"
    )
    print(
        f"baseline: one asyncio.Queue(maxsize={BareQueue.bound}) per subscriber (the Bus default "
        "queue_size) of slotted objects, a worker task each; ratios are row / baseline"
    )
    print()
    print(harness.format_rows(rows))
    print()
    print("run sizes and notes:")
    print(harness.format_notes(rows))
    if construction is not None:
        print()
        print("event construction (µs, no envelope field given):")
        base = construction["@attrs.frozen class"]
        print(
            harness.table(
                ("event", "µs", "vs @attrs.frozen"),
                [(k, f"{v:.3f}", harness.fmt_ratio(v / base)) for k, v in construction.items()],
            )
        )
    if imports is not None:
        print()
        print("import time (s, in a fresh interpreter, the import statement alone):")
        base = imports["anyio, attrs"]
        print(
            harness.table(
                ("import", "s", "vs anyio, attrs"),
                [(k, f"{v:.4f}", harness.fmt_ratio(v / base)) for k, v in imports.items()],
            )
        )
    if routing is not None:
        print()
        print("filtered routing (µs per publish of an event matching one subscription):")
        print(
            harness.table(
                ("filter", *[f"{n:,} subs" for n in micro.ROUTING_SIZES]),
                [
                    (kind, *[f"{by_n[n]:.2f}" for n in micro.ROUTING_SIZES])
                    for kind, by_n in routing.items()
                ],
            )
        )
    targets = harness.evaluate_targets(rows, construction, imports, routing)
    print()
    print(harness.format_targets(targets))
    print(f"\n(measured in {elapsed:.0f} s)")

    if args.json is not None:
        payload = {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count() or 1,
            "settings": attrs.asdict(settings),
            "baseline_queue_size": BareQueue.bound,
            "rows": [r.summary() for r in rows],
            "construction_us": construction,
            "import_s": imports,
            "routing_us": routing,
            "targets": [
                {"target": label, "passed": passed, "detail": detail}
                for label, passed, detail in targets
            ],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
