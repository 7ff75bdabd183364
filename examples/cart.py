"""A shopping cart kept as keyed state beside its events.

One subscription, ordered by ``cart_id``, holds each cart in ``ctx.state``.
Adding an item arms a reminder: a cart left alone for 30 minutes is
abandoned. What a handler writes is committed only if it succeeds, and a
redelivered event is applied once -- so the totals stay right through
retries and duplicates.

Run it: ``python examples/cart.py`` (virtual time: the half hour passes at once).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
import attrs

from eventbus import Bus, Context, Event, MemoryState, SqliteState, StateStore
from eventbus.testing import FakeClock

ABANDON_AFTER = 30 * 60.0  # seconds without activity before a cart is abandoned


@attrs.frozen
class ItemAdded(Event):
    cart_id: str
    sku: str
    quantity: int
    price_cents: int


@attrs.frozen
class CheckedOut(Event):
    cart_id: str


@attrs.frozen
class CartIdle(Event):
    """A reminder: nothing happened to the cart for a while."""

    cart_id: str
    items_seen: int


async def carts(event: ItemAdded | CheckedOut | CartIdle, ctx: Context) -> None:
    """Keep each cart: its items, total and status."""
    cart = ctx.state
    if isinstance(event, ItemAdded):
        if cart.get("status", "open") != "open":
            return
        items = cart.setdefault("items", {})
        items[event.sku] = items.get(event.sku, 0) + event.quantity
        cart["total_cents"] = cart.get("total_cents", 0) + event.quantity * event.price_cents
        cart["status"] = "open"
        cart["seen"] = cart.get("seen", 0) + 1
        ctx.remind(after=ABANDON_AFTER, event=CartIdle(event.cart_id, cart["seen"]))
    elif isinstance(event, CheckedOut):
        if cart.get("status") == "open":
            cart["status"] = "ordered"
    elif cart.get("status") == "open" and cart.get("seen") == event.items_seen:
        cart["status"] = "abandoned"  # nothing was added since the reminder was set


def subscribe_carts(bus: Bus, store: StateStore) -> None:
    bus.subscribe((ItemAdded, CheckedOut, CartIdle), carts, ordered_by="cart_id", state=store)


async def main(store: StateStore | None = None) -> dict[str, Any]:
    """Fill three carts, check one out, let another idle; return every cart."""
    store = store if store is not None else MemoryState()
    clock = FakeClock()
    async with Bus(clock=clock) as bus:
        subscribe_carts(bus, store)
        first = ItemAdded("alice", "tea", 2, 450)
        await bus.publish(first)
        await bus.publish(first)  # delivered twice: applied once
        await bus.publish(ItemAdded("alice", "mug", 1, 1200))
        await bus.publish(ItemAdded("bob", "tea", 1, 450))
        await bus.publish(CheckedOut("alice"))
        await bus.drain()
        await clock.advance(10 * 60)
        await bus.publish(ItemAdded("carol", "cup", 3, 300))
        await bus.drain()
        await clock.advance(25 * 60)  # bob's cart has been idle for 35 minutes
        await bus.drain()
        result = {
            key: dict(await bus.state_of("carts", key)) async for key in bus.state_keys("carts")
        }
    for key in sorted(result):
        cart = result[key]
        print(f"{key}: {cart['status']}, {cart['items']}, {cart['total_cents'] / 100:.2f}")
    return result


if __name__ == "__main__":
    if len(sys.argv) > 1:
        with SqliteState(Path(sys.argv[1])) as sqlite:
            anyio.run(main, sqlite)
    else:
        with tempfile.TemporaryDirectory() as tmp, SqliteState(os.path.join(tmp, "carts.db")) as db:
            anyio.run(main, db)
