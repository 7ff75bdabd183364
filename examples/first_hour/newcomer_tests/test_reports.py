"""A newcomer's pytest suite, written from docs/testing.md alone.

Needs ``asyncio_mode = "auto"`` (see pyproject.toml beside it).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from reports import DailyReport, OrderPlaced, wire

from eventbus import Bus
from eventbus.testing import FakeClock, assert_published, capture, expect, payload


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock(start=datetime(2024, 2, 29, 23, 0, tzinfo=UTC))


async def test_the_daily_report_counts_the_orders(bus: Bus, fake_clock: FakeClock) -> None:
    wire(bus)
    await bus.publish(OrderPlaced("o-1"))
    await bus.drain()  # the plain def handler ran (advance does not wait for threads)
    report = expect(bus, DailyReport, timeout=7200)
    await fake_clock.advance(3600)
    got = await report
    assert payload(got) == DailyReport("2024-03-01", 1)


async def test_each_day_has_its_report(bus: Bus, fake_clock: FakeClock) -> None:
    wire(bus)
    reports = capture(bus, DailyReport)
    await bus.publish(OrderPlaced("o-1"))
    await bus.publish(OrderPlaced("o-2"))
    await bus.drain()
    await fake_clock.advance(3600 + 86400)
    await bus.drain()
    assert reports.payloads() == [DailyReport("2024-03-01", 2), DailyReport("2024-03-02", 0)]
    assert_published(bus, DailyReport, where=DailyReport("2024-03-01", 2), count=1)
