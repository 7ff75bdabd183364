"""Schedule validity matched to AWS: white space, increments, L-n, and the sub-minute option."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import Bus, ScheduledEvent, ScheduleError, parse_schedule
from eventbus._cron import RateSchedule
from eventbus.testing import FakeClock


@pytest.mark.parametrize(
    "expression",
    [
        " cron(0 10 * * ? *)",
        "\tcron(0 10 * * ? *)",
        " rate(5 minutes)",
        "\nat(2030-01-01T09:00:00)",
    ],
)
def test_white_space_before_the_expression_is_refused(expression: str) -> None:
    """AWS refuses white space before the expression, and so does parse_schedule."""
    with pytest.raises(ScheduleError, match="white space before the expression"):
        parse_schedule(expression)


def test_white_space_after_the_expression_is_refused() -> None:
    """Trailing white space is refused too, naming the fix."""
    with pytest.raises(
        ScheduleError, match=r"white space after the expression.*'rate\(5 minutes\)'"
    ):
        parse_schedule("rate(5 minutes) ")


@pytest.mark.parametrize("expression", ["rate( 5 minutes)", "rate(5 minutes )", "rate( 1 hour )"])
def test_white_space_inside_rate_is_refused(expression: str) -> None:
    """AWS refuses white space just inside rate( ... )."""
    with pytest.raises(ScheduleError, match=r"white space inside the parentheses; .*write rate\("):
        parse_schedule(expression)


@pytest.mark.parametrize(
    ("expression", "field"),
    [
        ("cron(5/155 * * * ? *)", "minutes"),
        ("cron(0 1/25 * * ? *)", "hours"),
        ("cron(0 0 1/32 * ? *)", "day-of-month"),
        ("cron(0 0 1 1/13 ? *)", "month"),
    ],
)
def test_increment_larger_than_the_field_is_refused(expression: str, field: str) -> None:
    """An increment past the field's range could never repeat: refused, naming the field."""
    with pytest.raises(
        ScheduleError, match=rf"{field}: .*increment .* larger than the field's range"
    ):
        parse_schedule(expression)


def test_increment_equal_to_the_range_is_accepted() -> None:
    """An increment as large as the field's range is still an increment."""
    assert parse_schedule("cron(5/60 * * * ? *)")


def test_l_minus_n_in_day_of_week_is_refused() -> None:
    """L-n is a day-of-month form; in day-of-week it is refused with the documented forms."""
    with pytest.raises(ScheduleError, match=r"day-of-week: L-2: L-n is a day-of-month form.*6L"):
        parse_schedule("cron(15 10 ? * L-2 2019-2022)")


def test_l_minus_n_in_day_of_month_still_reads() -> None:
    """cron(... L-2 ...) in day-of-month is two days before the last day of the month."""
    schedule = parse_schedule("cron(15 10 L-2 * ? 2019-2022)")
    assert schedule.next_after(datetime(2019, 1, 1, tzinfo=UTC)) == datetime(
        2019, 1, 29, 10, 15, tzinfo=UTC
    )


def test_seconds_are_refused_by_default_naming_the_option() -> None:
    """rate(10 seconds) is refused unless allowed, and the error says how to allow it."""
    with pytest.raises(ScheduleError, match=r"one-minute precision.*allow_seconds=True"):
        parse_schedule("rate(10 seconds)")


@pytest.mark.parametrize(
    ("expression", "period"),
    [("rate(1 second)", 1), ("rate(10 seconds)", 10), ("rate(90 seconds)", 90)],
)
def test_seconds_when_allowed(expression: str, period: int) -> None:
    """With allow_seconds=True a sub-minute rate has a period in seconds."""
    schedule = parse_schedule(expression, allow_seconds=True)
    assert isinstance(schedule, RateSchedule)
    assert schedule.period == timedelta(seconds=period)


def test_allowed_seconds_survive_anchoring() -> None:
    """An anchored sub-minute rate keeps its period and fires on the grid."""
    anchor = datetime(2030, 1, 1, tzinfo=UTC)
    schedule = parse_schedule("rate(10 seconds)", allow_seconds=True)
    assert isinstance(schedule, RateSchedule)
    anchored = schedule.with_anchor(anchor)
    assert anchored.next_after(anchor) == anchor + timedelta(seconds=10)


def test_seconds_keep_the_unit_grammar() -> None:
    """rate(1 seconds) takes the singular unit, as the other units do."""
    with pytest.raises(ScheduleError, match=r"write rate\(1 second\)"):
        parse_schedule("rate(1 seconds)", allow_seconds=True)


@pytest.mark.parametrize(
    "expression",
    [
        "cron(" + "1" * 5000 + " * * * ? *)",
        "cron(0 0 L-" + "9" * 5000 + " * ? *)",
        "cron(0 0 ? * 2#" + "9" * 5000 + " *)",
        "cron(0/" + "9" * 5000 + " * * * ? *)",
        "rate(" + "9" * 5000 + " minutes)",
    ],
)
def test_huge_numbers_raise_schedule_error(expression: str) -> None:
    """5,000-digit numbers are refused as ScheduleError, not a ValueError of int()."""
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


@settings(deadline=1000, max_examples=300)
@given(st.text(alphabet=" \t()cronateL-W#?*/,0123456789SUNMOHDYsecdhiu", max_size=40))
def test_arbitrary_text_raises_only_schedule_error(text: str) -> None:
    """parse_schedule parses or raises ScheduleError, for any text."""
    with contextlib.suppress(ScheduleError):
        parse_schedule(text, allow_seconds=True)


async def test_bus_schedule_forwards_allow_seconds() -> None:
    """bus.schedule(..., allow_seconds=True) fires a sub-minute rate on the bus clock."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = FakeClock(start)
    seen: list[ScheduledEvent] = []

    async def record(event: ScheduledEvent) -> None:
        seen.append(event)

    async with Bus(clock=clock) as bus:
        bus.subscribe(ScheduledEvent, record)
        bus.schedule("rate(10 seconds)", name="autosave", allow_seconds=True)
        await clock.advance(60)
        await bus.drain()
    assert [event.scheduled_time for event in seen] == [
        start + timedelta(seconds=10 * n) for n in range(1, 7)
    ]


async def test_bus_schedule_refuses_seconds_by_default() -> None:
    """bus.schedule refuses a sub-minute rate unless allowed, naming the option."""
    async with Bus(clock=FakeClock()) as bus:
        with pytest.raises(ScheduleError, match="allow_seconds=True"):
            bus.schedule("rate(10 seconds)", name="autosave")
