"""A keyed counter shared by the state tests and the crash worker (not a test module)."""

from __future__ import annotations

import attrs

from eventbus import Bus, Context, Event, StateStore


@attrs.frozen
class Add(Event, type_name="tests.state.Add"):
    key: str
    amount: int


def events(n: int, keys: int, seed: int = 0) -> list[Add]:
    """*n* Add events over *keys* keys, with fixed ids (so they can be published again)."""
    import random

    rng = random.Random(seed)
    return [
        Add(f"k{rng.randrange(keys)}", rng.randint(1, 9), id=f"add-{seed}-{i}") for i in range(n)
    ]


def fold(adds: list[Add]) -> dict[str, int]:
    """What each key's counter must end at: every event applied once."""
    totals: dict[str, int] = {}
    for add in adds:
        totals[add.key] = totals.get(add.key, 0) + add.amount
    return totals


async def count(event: Add, ctx: Context) -> None:
    ctx.state["n"] = ctx.state.get("n", 0) + event.amount


def subscribe_counter(bus: Bus, store: StateStore, **options: object) -> None:
    bus.subscribe(Add, count, name="counter", ordered_by="key", state=store, **options)  # type: ignore[arg-type]
