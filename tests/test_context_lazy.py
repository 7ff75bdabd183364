"""Context costs nothing until read: ids and loggers are made on first use."""

from __future__ import annotations

import anyio
import attrs

from eventbus import Bus, Context, Event


@attrs.frozen
class Ping(Event):
    n: int = 0


async def test_each_delivery_has_its_own_invocation_id() -> None:
    """Every delivery sees a Context of its own event and a new invocation id."""
    seen: list[tuple[int, str]] = []

    async def handler(event: Ping, ctx: Context) -> None:
        seen.append((ctx.event.n, ctx.invocation_id))

    async with Bus() as bus:
        bus.subscribe(Ping, handler)
        for n in range(5):
            await bus.publish(Ping(n))
    assert [n for n, _ in seen] == [0, 1, 2, 3, 4]
    assert len({invocation for _, invocation in seen}) == 5


async def test_a_kept_context_keeps_its_values() -> None:
    """A Context the handler keeps is never changed by later deliveries."""
    kept: list[tuple[Context, str]] = []

    async def handler(event: Ping, ctx: Context) -> None:
        if event.n == 1:
            kept.append((ctx, ctx.invocation_id))

    async with Bus() as bus:
        bus.subscribe(Ping, handler)
        for n in range(4):
            await bus.publish(Ping(n))
    ctx, invocation = kept[0]
    assert ctx.event.n == 1
    assert ctx.invocation_id == invocation


async def test_logger_carries_the_current_invocation() -> None:
    """ctx.logger of each delivery names that delivery's event and invocation id."""
    extras: list[tuple[str, str]] = []

    async def handler(event: Ping, ctx: Context) -> None:
        extra = ctx.logger.extra
        assert extra is not None
        extras.append((str(extra["event_id"]), str(extra["invocation_id"])))
        assert extra["invocation_id"] == ctx.invocation_id

    async with Bus() as bus:
        bus.subscribe(Ping, handler)
        events = [Ping(n) for n in range(3)]
        for event in events:
            await bus.publish(event)
    assert [event_id for event_id, _ in extras] == [e.id for e in events]
    assert len({invocation for _, invocation in extras}) == 3


async def test_context_handed_to_a_task_is_not_reused() -> None:
    """A Context still referenced by a task the handler started stays that delivery's."""
    later: list[int] = []

    async with Bus() as bus, anyio.create_task_group() as tg:
        gate = anyio.Event()

        async def use_later(ctx: Context) -> None:
            await gate.wait()
            later.append(ctx.event.n)

        async def handler(event: Ping, ctx: Context) -> None:
            if event.n == 0:
                tg.start_soon(use_later, ctx)

        bus.subscribe(Ping, handler)
        for n in range(3):
            await bus.publish(Ping(n))
        await bus.drain()
        gate.set()
    assert later == [0]
