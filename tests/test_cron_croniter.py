"""Differential tests: our cron evaluator against croniter on the shared subset.

Only numbers, ``*``, ``,``, ``-`` and ``/`` are generated, with ``?`` in one day
field and ``*`` for the year, so both libraries must agree exactly. EventBridge
numbers the days of the week 1-7 from Sunday; croniter uses 0-6 from Sunday.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from eventbus._cron import parse_schedule

croniter = pytest.importorskip("croniter").croniter

# (EventBridge text, croniter text, values it selects in EventBridge numbering)
Part = tuple[str, str, frozenset[int]]


@st.composite
def items(draw: st.DrawFn, low: int, high: int, shift: int) -> Part:
    """One list item over [low, high]; croniter's numbers are ours minus *shift*."""
    kind = draw(st.sampled_from(["number", "range", "star_step", "start_step", "range_step"]))
    span = high - low + 1
    if kind == "number":
        value = draw(st.integers(low, high))
        return str(value), str(value - shift), frozenset({value})
    if kind == "star_step":
        step = draw(st.integers(1, span))
        return f"*/{step}", f"*/{step}", frozenset(range(low, high + 1, step))
    start = draw(st.integers(low, high))
    if kind == "start_step":
        step = draw(st.integers(1, span))
        return f"{start}/{step}", f"{start - shift}/{step}", frozenset(range(start, high + 1, step))
    end = draw(st.integers(start, high))
    # croniter misreads a one-value range such as 1-1, so it gets the plain number.
    theirs = f"{start - shift}-{end - shift}" if end > start else f"{start - shift}"
    if kind == "range":
        return f"{start}-{end}", theirs, frozenset(range(start, end + 1))
    step = draw(st.integers(1, span))
    if end > start:
        theirs = f"{theirs}/{step}"
    return f"{start}-{end}/{step}", theirs, frozenset(range(start, end + 1, step))


@st.composite
def fields(draw: st.DrawFn, low: int, high: int, shift: int = 0) -> Part:
    """A whole field: * or a list of one to three items."""
    if draw(st.booleans()) and draw(st.booleans()):
        return "*", "*", frozenset(range(low, high + 1))
    parts = draw(st.lists(items(low, high, shift), min_size=1, max_size=3))
    return (
        ",".join(part[0] for part in parts),
        ",".join(part[1] for part in parts),
        frozenset().union(*(part[2] for part in parts)),
    )


starts = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC)
)


def can_happen(days: frozenset[int], months: frozenset[int]) -> bool:
    """Whether some month in *months* has one of *days* (29 February counts)."""
    longest = {month: calendar.monthrange(2024, month)[1] for month in range(1, 13)}
    return any(day <= longest[month] for day in days for month in months)


def assert_same_fires(aws: str, cron: str, start: datetime) -> None:
    schedule = parse_schedule(f"cron({aws})")
    reference = croniter(cron, start)
    current = start
    for _ in range(3):
        expected = reference.get_next(datetime)
        actual = schedule.next_after(current)
        assert actual == expected, f"cron({aws}) vs croniter {cron!r} after {current}"
        assert actual is not None
        current = actual


@settings(max_examples=400, deadline=None)
@given(
    minutes=fields(0, 59),
    hours=fields(0, 23),
    days=fields(1, 31),
    months=fields(1, 12),
    start=starts,
)
def test_day_of_month_schedules_match_croniter(
    minutes: Part, hours: Part, days: Part, months: Part, start: datetime
) -> None:
    """With ? as day-of-week, next_after agrees with croniter's get_next."""
    assume(can_happen(days[2], months[2]))
    aws = f"{minutes[0]} {hours[0]} {days[0]} {months[0]} ? *"
    cron = f"{minutes[1]} {hours[1]} {days[1]} {months[1]} *"
    assert_same_fires(aws, cron, start)


@settings(max_examples=400, deadline=None)
@given(
    minutes=fields(0, 59),
    hours=fields(0, 23),
    months=fields(1, 12),
    weekdays=fields(1, 7, shift=1),
    start=starts,
)
def test_day_of_week_schedules_match_croniter(
    minutes: Part, hours: Part, months: Part, weekdays: Part, start: datetime
) -> None:
    """With ? as day-of-month, next_after agrees with croniter (days of week shifted by one)."""
    aws = f"{minutes[0]} {hours[0]} ? {months[0]} {weekdays[0]} *"
    cron = f"{minutes[1]} {hours[1]} * {months[1]} {weekdays[1]}"
    assert_same_fires(aws, cron, start)
