"""The application under test: a daily report of the orders placed."""

from __future__ import annotations

import attrs

from eventbus import Bus, Event, ScheduledEvent


@attrs.frozen
class OrderPlaced(Event):
    order_id: str


@attrs.frozen
class DailyReport(Event):
    day: str
    orders: int


def wire(bus: Bus) -> None:
    """Count orders; at each midnight schedule, publish the day's report."""
    placed: list[str] = []

    def count(event: OrderPlaced) -> None:
        placed.append(event.order_id)

    async def report(event: ScheduledEvent) -> None:
        day = event.scheduled_time.date().isoformat()
        orders = len(placed)
        placed.clear()
        await bus.publish(DailyReport(day, orders))

    bus.subscribe(OrderPlaced, count, name="count")
    bus.subscribe(ScheduledEvent, report, name="report", where={"rule": ["daily-report"]})
    bus.schedule("cron(0 0 * * ? *)", name="daily-report")
