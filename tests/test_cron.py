"""Tests for the schedule-expression evaluator (``cron``, ``rate``, ``at``).

Expected fire times were worked out by hand from the calendar; 1 January 2025
is a Wednesday.
"""

from __future__ import annotations

import time
import zoneinfo
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import ScheduleError
from eventbus._cron import AtSchedule, CronSchedule, RateSchedule, parse_schedule

if TYPE_CHECKING:
    from collections.abc import Sequence


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def chain(expression: str, start: datetime, count: int, tz: str = "UTC") -> list[datetime | None]:
    schedule = parse_schedule(expression, tz)
    fires: list[datetime | None] = []
    current: datetime | None = start
    for _ in range(count):
        current = schedule.next_after(current) if current is not None else None
        fires.append(current)
    return fires


def assert_chain(
    expression: str, start: datetime, expected: Sequence[datetime], tz: str = "UTC"
) -> None:
    assert chain(expression, start, len(expected), tz) == list(expected)


# --------------------------------------------------------------------------- AWS examples


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        (
            "cron(0 10 * * ? *)",
            utc(2025, 1, 1, 9, 59, 59),
            [utc(2025, 1, 1, 10), utc(2025, 1, 2, 10)],
        ),
        (
            "cron(15 12 * * ? *)",
            utc(2025, 1, 1, 12, 15),
            [utc(2025, 1, 2, 12, 15), utc(2025, 1, 3, 12, 15)],
        ),
        (
            "cron(0 18 ? * MON-FRI *)",
            utc(2025, 1, 3, 17),
            [utc(2025, 1, 3, 18), utc(2025, 1, 6, 18), utc(2025, 1, 7, 18)],
        ),
        ("cron(0 8 1 * ? *)", utc(2025, 1, 1, 8), [utc(2025, 2, 1, 8), utc(2025, 3, 1, 8)]),
        (
            "cron(0/15 * * * ? *)",
            utc(2025, 1, 1, 10, 7),
            [
                utc(2025, 1, 1, 10, 15),
                utc(2025, 1, 1, 10, 30),
                utc(2025, 1, 1, 10, 45),
                utc(2025, 1, 1, 11),
            ],
        ),
        (
            "cron(0/10 * ? * MON-FRI *)",
            utc(2025, 1, 3, 23, 45),
            [utc(2025, 1, 3, 23, 50), utc(2025, 1, 6, 0, 0), utc(2025, 1, 6, 0, 10)],
        ),
        (
            "cron(0/5 8-17 ? * MON-FRI *)",
            utc(2025, 1, 6, 17, 50),
            [utc(2025, 1, 6, 17, 55), utc(2025, 1, 7, 8, 0), utc(2025, 1, 7, 8, 5)],
        ),
        (
            "cron(0 9 ? * 2#1 *)",
            utc(2025, 1, 1),
            [utc(2025, 1, 6, 9), utc(2025, 2, 3, 9), utc(2025, 3, 3, 9)],
        ),
        (
            "cron(0 0 L * ? *)",
            utc(2025, 1, 15),
            [utc(2025, 1, 31), utc(2025, 2, 28), utc(2025, 3, 31)],
        ),
        (
            "cron(0 0 ? * 6L *)",
            utc(2025, 1, 1),
            [utc(2025, 1, 31), utc(2025, 2, 28), utc(2025, 3, 28)],
        ),
        (
            "cron(0 0 15W * ? *)",
            utc(2025, 1, 1),
            [utc(2025, 1, 15), utc(2025, 2, 14), utc(2025, 3, 14)],
        ),
    ],
)
def test_aws_documented_examples(
    expression: str, start: datetime, expected: list[datetime]
) -> None:
    """The examples from the EventBridge cron reference fire when the calendar says."""
    assert_chain(expression, start, expected)


# --------------------------------------------------------------------------- L, W, #


def test_last_day_of_month_in_leap_february() -> None:
    """L is 29 February in a leap year."""
    assert_chain("cron(0 0 L * ? *)", utc(2024, 2, 1), [utc(2024, 2, 29), utc(2024, 3, 31)])


def test_last_day_minus_offset() -> None:
    """L-3 is the third-to-last day of each month."""
    assert_chain("cron(0 0 L-3 * ? *)", utc(2025, 1, 1), [utc(2025, 1, 28), utc(2025, 2, 25)])


def test_last_weekday_of_month() -> None:
    """LW moves a weekend month end back to Friday."""
    assert_chain(
        "cron(0 0 LW * ? *)",
        utc(2025, 5, 1),
        [utc(2025, 5, 30), utc(2025, 6, 30), utc(2025, 7, 31), utc(2025, 8, 29)],
    )


def test_nearest_weekday_does_not_cross_into_previous_month() -> None:
    """1W on a Saturday 1st fires on Monday the 3rd, not the Friday before."""
    assert_chain("cron(0 0 1W * ? *)", utc(2025, 1, 2), [utc(2025, 2, 3)])


def test_nearest_weekday_sunday_moves_to_monday() -> None:
    """1W on a Sunday 1st fires on Monday the 2nd."""
    assert_chain("cron(0 0 1W * ? *)", utc(2025, 5, 2), [utc(2025, 6, 2)])


def test_nearest_weekday_skips_months_without_that_day() -> None:
    """31W does not fire in 30-day months and a Sunday 31st moves back to Friday."""
    assert_chain("cron(0 0 31W * ? *)", utc(2025, 6, 1), [utc(2025, 7, 31), utc(2025, 8, 29)])


def test_l_alone_in_day_of_week_is_saturday() -> None:
    """L by itself in day-of-week is the last day of the week, Saturday."""
    assert_chain("cron(0 0 ? * L *)", utc(2025, 1, 1), [utc(2025, 1, 4), utc(2025, 1, 11)])


def test_last_named_weekday_of_month() -> None:
    """SATL is the last Saturday of the month."""
    assert_chain("cron(0 0 ? * SATL *)", utc(2025, 1, 1), [utc(2025, 1, 25), utc(2025, 2, 22)])


def test_fifth_weekday_skips_months_without_one() -> None:
    """5#5 (fifth Thursday) skips months with only four Thursdays."""
    assert_chain("cron(0 0 ? * 5#5 *)", utc(2025, 1, 1), [utc(2025, 1, 30), utc(2025, 5, 29)])


def test_names_are_case_insensitive() -> None:
    """Day and month names may be written in any case, as EventBridge accepts."""
    assert parse_schedule("cron(0 12 ? jan mon-fri *)").next_after(utc(2025, 1, 1)) == utc(
        2025, 1, 1, 12
    )


# --------------------------------------------------------------------------- ranges and steps


def test_start_slash_step_runs_to_end_of_field() -> None:
    """5/15 in minutes is 5, 20, 35 and 50."""
    assert_chain(
        "cron(5/15 10 * * ? *)",
        utc(2025, 1, 1),
        [
            utc(2025, 1, 1, 10, 5),
            utc(2025, 1, 1, 10, 20),
            utc(2025, 1, 1, 10, 35),
            utc(2025, 1, 1, 10, 50),
            utc(2025, 1, 2, 10, 5),
        ],
    )


def test_range_with_step() -> None:
    """10-30/10 in minutes is 10, 20 and 30."""
    assert_chain(
        "cron(10-30/10 10 * * ? *)",
        utc(2025, 1, 1),
        [
            utc(2025, 1, 1, 10, 10),
            utc(2025, 1, 1, 10, 20),
            utc(2025, 1, 1, 10, 30),
            utc(2025, 1, 2, 10, 10),
        ],
    )


def test_step_as_large_as_the_field_keeps_only_the_start() -> None:
    """15/60 in minutes (an increment equal to the field's range) fires only at minute 15."""
    assert_chain(
        "cron(15/60 10 * * ? *)",
        utc(2025, 1, 1),
        [utc(2025, 1, 1, 10, 15), utc(2025, 1, 2, 10, 15)],
    )


def test_day_of_month_star_step_starts_at_one() -> None:
    """*/10 in day-of-month is the 1st, 11th, 21st and 31st."""
    assert_chain(
        "cron(0 0 */10 * ? *)",
        utc(2025, 1, 1),
        [utc(2025, 1, 11), utc(2025, 1, 21), utc(2025, 1, 31), utc(2025, 2, 1)],
    )


def test_day_of_week_step_counts_from_sunday() -> None:
    """*/2 in day-of-week is SUN, TUE, THU and SAT."""
    assert_chain(
        "cron(0 0 ? * */2 *)",
        utc(2025, 1, 1),
        [utc(2025, 1, 2), utc(2025, 1, 4), utc(2025, 1, 5), utc(2025, 1, 7)],
    )


def test_hour_range_wraps_past_midnight() -> None:
    """22-2 in hours is 22, 23, 0, 1 and 2."""
    assert_chain(
        "cron(0 22-2 * * ? *)",
        utc(2025, 1, 1, 21),
        [
            utc(2025, 1, 1, 22),
            utc(2025, 1, 1, 23),
            utc(2025, 1, 2, 0),
            utc(2025, 1, 2, 1),
            utc(2025, 1, 2, 2),
            utc(2025, 1, 2, 22),
        ],
    )


def test_day_of_week_range_wraps_past_saturday() -> None:
    """FRI-MON is Friday, Saturday, Sunday and Monday."""
    assert_chain(
        "cron(0 12 ? * FRI-MON *)",
        utc(2025, 1, 1),
        [
            utc(2025, 1, 3, 12),
            utc(2025, 1, 4, 12),
            utc(2025, 1, 5, 12),
            utc(2025, 1, 6, 12),
            utc(2025, 1, 10, 12),
        ],
    )


def test_month_range_wraps_past_december() -> None:
    """NOV-FEB is November, December, January and February."""
    assert_chain(
        "cron(0 0 1 NOV-FEB ? *)",
        utc(2025, 3, 1),
        [utc(2025, 11, 1), utc(2025, 12, 1), utc(2026, 1, 1), utc(2026, 2, 1), utc(2026, 11, 1)],
    )


def test_wrapping_range_with_step() -> None:
    """22-2/2 in hours is 22, 0 and 2."""
    assert_chain(
        "cron(0 22-2/2 * * ? *)",
        utc(2025, 1, 1, 21),
        [utc(2025, 1, 1, 22), utc(2025, 1, 2, 0), utc(2025, 1, 2, 2), utc(2025, 1, 2, 22)],
    )


def test_year_step() -> None:
    """2025/2 in the year field is every other year from 2025."""
    assert_chain("cron(0 0 1 1 ? 2025/2)", utc(2025, 1, 1), [utc(2027, 1, 1), utc(2029, 1, 1)])


# --------------------------------------------------------------------------- end of time


def test_years_all_in_the_past_never_fire() -> None:
    """A cron whose years are over returns None."""
    assert parse_schedule("cron(0 0 1 1 ? 2020,2021)").next_after(utc(2025, 1, 1)) is None


def test_last_fire_is_in_2199() -> None:
    """The year field ends in 2199; after its last minute there is no fire."""
    assert chain("cron(59 23 31 12 ? *)", utc(2199, 12, 31, 23, 58), 2) == [
        utc(2199, 12, 31, 23, 59),
        None,
    ]


def test_impossible_day_never_fires() -> None:
    """30 February never happens, so next_after returns None (quickly)."""
    started = time.perf_counter()
    assert parse_schedule("cron(0 0 30 2 ? *)").next_after(utc(2025, 1, 1)) is None
    assert time.perf_counter() - started < 1.0


def test_far_future_query_is_fast() -> None:
    """A fire 170 years away is found by jumping over years, not minutes."""
    started = time.perf_counter()
    assert parse_schedule("cron(0 0 29 2 ? 2196)").next_after(utc(2025, 1, 1)) == utc(2196, 2, 29)
    assert time.perf_counter() - started < 0.5


def test_query_near_the_end_of_datetime_returns_none() -> None:
    """A dt at the very end of datetime's range gives None, not OverflowError."""
    assert parse_schedule("cron(* * * * ? *)").next_after(datetime.max.replace(tzinfo=UTC)) is None


# --------------------------------------------------------------------------- next_after contract


def test_next_after_is_strictly_after() -> None:
    """A dt exactly on a fire time returns the following fire."""
    assert parse_schedule("cron(0 10 * * ? *)").next_after(utc(2025, 1, 1, 10)) == utc(
        2025, 1, 2, 10
    )


def test_next_after_returns_utc() -> None:
    """Fire times come back aware, in UTC, whatever the schedule's zone."""
    fire = parse_schedule("cron(0 9 * * ? *)", "Asia/Tokyo").next_after(utc(2024, 12, 31, 23))
    assert fire == utc(2025, 1, 1, 0)
    assert fire is not None
    assert fire.tzinfo is UTC


def test_next_after_accepts_any_aware_datetime() -> None:
    """A dt in another offset is compared as the instant it is."""
    tokyo = datetime(2025, 1, 1, 19, 0, tzinfo=timezone(timedelta(hours=9)))  # 10:00 UTC
    assert parse_schedule("cron(0 10 * * ? *)").next_after(tokyo) == utc(2025, 1, 2, 10)


def test_next_after_rejects_naive_datetime() -> None:
    """A naive dt raises ValueError saying how to fix it."""
    with pytest.raises(ValueError, match=r"dt must be timezone-aware.*tzinfo=UTC"):
        parse_schedule("cron(0 10 * * ? *)").next_after(datetime(2025, 1, 1))


def test_next_after_rejects_non_datetime() -> None:
    """A non-datetime dt raises TypeError."""
    with pytest.raises(TypeError, match="dt must be a datetime"):
        parse_schedule("rate(5 minutes)").next_after("2025-01-01")  # type: ignore[arg-type]


def test_fires_between_excludes_start_and_includes_end() -> None:
    """fires_between yields t with start < t <= end."""
    fires = list(
        parse_schedule("cron(0 * * * ? *)").fires_between(utc(2025, 1, 1, 10), utc(2025, 1, 1, 12))
    )
    assert fires == [utc(2025, 1, 1, 11), utc(2025, 1, 1, 12)]


def test_fires_between_empty_when_end_not_after_start() -> None:
    """An empty or reversed window yields nothing."""
    assert (
        list(parse_schedule("cron(* * * * ? *)").fires_between(utc(2025, 1, 2), utc(2025, 1, 1)))
        == []
    )


def test_fires_between_rejects_naive_bounds_immediately() -> None:
    """A naive bound raises on the call, before iteration starts."""
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        parse_schedule("cron(* * * * ? *)").fires_between(utc(2025, 1, 1), datetime(2025, 1, 2))


# --------------------------------------------------------------------------- objects


def test_parse_schedule_returns_the_matching_class() -> None:
    """Each expression form has its own schedule class."""
    assert isinstance(parse_schedule("cron(0 10 * * ? *)"), CronSchedule)
    assert isinstance(parse_schedule("rate(5 minutes)"), RateSchedule)
    assert isinstance(parse_schedule("at(2030-01-01T09:00:00)"), AtSchedule)


def test_schedule_keeps_expression_and_timezone() -> None:
    """The expression and time zone are attributes, and str() is the expression."""
    schedule = parse_schedule("cron(0 10 * * ? *)", "Europe/London")
    assert schedule.expression == "cron(0 10 * * ? *)"
    assert schedule.timezone == "Europe/London"
    assert str(schedule) == "cron(0 10 * * ? *)"


def test_default_timezone_is_utc() -> None:
    """Without a time zone the expression is read in UTC."""
    assert parse_schedule("cron(0 10 * * ? *)").timezone == "UTC"


def test_equal_schedules_compare_and_hash_equal() -> None:
    """Schedules with the same expression and zone are equal and hash alike."""
    first = CronSchedule("cron(0 10 * * ? *)", "Europe/London")
    second = parse_schedule("cron(0 10 * * ? *)", "Europe/London")
    assert first == second
    assert hash(first) == hash(second)
    assert first != CronSchedule("cron(0 10 * * ? *)", "UTC")


def test_repr_shows_expression_and_timezone() -> None:
    """The repr shows what the schedule was built from."""
    assert (
        repr(CronSchedule("cron(0 10 * * ? *)"))
        == "CronSchedule(expression='cron(0 10 * * ? *)', timezone='UTC')"
    )


def test_class_rejects_other_expression_kind() -> None:
    """CronSchedule given a rate expression says what it expects."""
    with pytest.raises(ScheduleError, match=r"is not a cron expression"):
        CronSchedule("rate(5 minutes)")


def test_schedules_are_immutable() -> None:
    """Schedules are frozen."""
    schedule = parse_schedule("cron(0 10 * * ? *)")
    with pytest.raises(AttributeError):
        schedule.expression = "cron(0 11 * * ? *)"  # type: ignore[misc]


# --------------------------------------------------------------------------- validity

VALID = [
    "cron(0 10 * * ? *)",
    "cron(0 18 ? * mon-fri *)",
    "cron(0 18 ? * L *)",
    "cron(0 18 ? * SATL *)",
    "cron(0 18 ? * 7L *)",
    "cron(0 18 L * ? *)",
    "cron(0 18 L-2 * ? *)",
    "cron(0 18 LW * ? *)",
    "cron(0 18 31W * ? *)",
    "cron(1/5 8-17 ? * Mon-Fri *)",
    "cron(0 07/12 ? * * *)",
    "cron(10,20,30,40 07/12 ? * * *)",
    "cron(10 10 15 JAN,JUL,DEC ? *)",
    "cron(0,5 07/12 ? * 1,5,7 2020-2021,2028-2199)",
    "cron(0 9-5 ? * MON-FRI *)",
    "cron(30 7 ? * MON#1 *)",
    "cron(0 1-7/2,11-23/2 * * ? *)",
    "cron(30 0 1 JAN-APR,JUL-OCT/2,DEC ? *)",
    "cron(15 10 ? * 6L 2019-2022)",
    "cron(*/10,*/3 * * * ? *)",
    "cron(0 0 1 FEB/2 ? *)",
    "cron(0 0 ? * */2 *)",
    "cron(0  10  *  *  ?  *)",
    "rate(1 minute)",
    "rate(5 minutes)",
    "rate(1 hour)",
    "rate(12 hours)",
    "rate(1 day)",
    "rate(7 days)",
    "at(2030-01-01T09:00:00)",
]


@pytest.mark.parametrize("expression", VALID)
def test_valid_expression_parses(expression: str) -> None:
    """Expressions EventBridge accepts parse without error."""
    assert parse_schedule(expression).expression == expression


INVALID = [
    (
        "cron(0 18 ? * MON-FRI)",
        r"cron\(0 18 \? \* MON-FRI\): expected 6 fields .* got 5; .*e\.g\. cron\(0 18 \? \* MON-FRI \*\)",
    ),
    ("cron(0 9 * * ? * *)", r"expected 6 fields .* got 7"),
    ("cron(0 9 * * ? *", r"missing the closing parenthesis"),
    (
        "cron(0 12 * * * *)",
        r"^cron\(0 12 \* \* \* \*\): day-of-month and day-of-week are both set; use \? in one of them, e\.g\. cron\(0 12 \* \* \? \*\)$",
    ),
    ("cron(0 12 ? * ? *)", r"both \?; set one of them, e\.g\. cron\(0 12 \* \* \? \*\)"),
    ("cron(0 9 1 * 2#1 *)", r"both set"),
    ("cron(0 9 * * MON *)", r"both set; .*e\.g\. cron\(0 9 \? \* MON \*\)"),
    ("cron(61 * * * ? *)", r"^cron\(61 \* \* \* \? \*\): minutes: 61 is out of range 0-59$"),
    ("cron(65/15 10 * * ? *)", r"minutes: 65 is out of range 0-59"),
    (
        "cron(0/0 10 * * ? *)",
        r"minutes: 0/0: the increment after / must be a positive whole number",
    ),
    ("cron(1,,2 10 * * ? *)", r"minutes: 1,,2: the list has an empty item"),
    ("cron(*,5 10 * * ? *)", r"minutes: \*,5: \* already means every value"),
    ("cron(-5 10 * * ? *)", r"minutes: -5: a value is missing"),
    ("cron(? 10 1 * ? *)", r"minutes: \?: only day-of-month and day-of-week accept \?"),
    ("cron(0 24 * * ? *)", r"hours: 24 is out of range 0-23"),
    ("cron(0 L * * ? *)", r"hours: L: only day-of-month and day-of-week accept L"),
    ("cron(0 x * * ? *)", r"hours: 'x' is not a number"),
    ("cron(0 9 0 * ? *)", r"day-of-month: 0 is out of range 1-31"),
    ("cron(0 9 32W * ? *)", r"day-of-month: 32 is out of range 1-31"),
    ("cron(0 9 W * ? *)", r"day-of-month: W: L and W take the forms"),
    ("cron(0 9 3L * ? *)", r"day-of-month: 3L: L and W take the forms"),
    ("cron(0 9 L,15 * ? *)", r"day-of-month: L,15: L and W take the forms"),
    ("cron(0 9 1-15W * ? *)", r"day-of-month: 1-15W: L and W take the forms"),
    ("cron(0 9 L-31 * ? *)", r"day-of-month: L-31: the offset in L-n must be 1-30"),
    ("cron(0 9 ?,5 * ? *)", r"day-of-month: \?,5: \? must be the whole field"),
    ("cron(0 9 1#2 * ? *)", r"day-of-month: 1#2: only day-of-week accepts #"),
    ("cron(0 9 1 13 ? *)", r"month: 13 is out of range 1-12"),
    ("cron(0 9 1 JANUARY ? *)", r"month: 'JANUARY' is not a number or a month name \(JAN-DEC\)"),
    (
        "cron(0 9 ? * 0 *)",
        r"day-of-week: 0 is out of range 1-7 \(1 = SUN, 2 = MON, \.\.\. 7 = SAT\)",
    ),
    ("cron(0 9 ? * 8 *)", r"day-of-week: 8 is out of range 1-7"),
    ("cron(0 9 ? * MONDAY *)", r"day-of-week: 'MONDAY' is not a number or a day name \(SUN-SAT\)"),
    (
        "cron(0 9 ? * 2#6 *)",
        r"day-of-week: 2#6: the number after # .* must be 1-5; use 2L for the last one",
    ),
    ("cron(0 9 ? * 2#0 *)", r"day-of-week: 2#0: .*must be 1-5"),
    ("cron(0 9 ? * 3#1,6#3 *)", r"day-of-week: 3#1,6#3: n#k must be the whole field"),
    ("cron(0 9 ? * MON,L *)", r"day-of-week: MON,L: L and nL .* must be the whole field"),
    ("cron(0 9 ? * 5W *)", r"day-of-week: 5W: only day-of-month accepts W"),
    ("cron(0 9 ? * 9L *)", r"day-of-week: 9 is out of range 1-7"),
    ("cron(0 9 * * ? 1969)", r"year: 1969 is out of range 1970-2199"),
    ("cron(0 9 * * ? 2200)", r"year: 2200 is out of range 1970-2199"),
    ("cron(0 9 * * ? 2030-2020)", r"year: 2030-2020: the range runs backwards; write 2020-2030"),
    ("rate(0 minutes)", r"^rate\(0 minutes\): value must be a positive integer"),
    ("rate(-5 minutes)", r"value must be a positive integer, got '-5'"),
    ("rate(1.5 hours)", r"value must be a positive integer, got '1\.5'"),
    (
        "rate(1 minutes)",
        r"^rate\(1 minutes\): a value of 1 takes the singular unit; write rate\(1 minute\)$",
    ),
    ("rate(5 minute)", r"a value other than 1 takes the plural unit; write rate\(5 minutes\)"),
    ("rate(2 day)", r"write rate\(2 days\)"),
    ("rate(5 weeks)", r"unknown unit 'weeks'; use minute\(s\), hour\(s\) or day\(s\)"),
    ("rate(30 seconds)", r"unknown unit 'seconds'.*one-minute precision"),
    ("rate(5 Minutes)", r"unknown unit 'Minutes'"),
    ("rate(5)", r"expected rate\(value unit\)"),
    ("rate(5 minutes", r"expected rate\(value unit\)"),
    ("rate(99999999999 days)", r"value is too large"),
    ("at(2030-01-01 09:00:00)", r"is not an at expression; write at\(yyyy-mm-ddThh:mm:ss\)"),
    ("at(2030-01-01T09:00)", r"is not an at expression"),
    ("at(2030-02-30T09:00:00)", r"not a valid date and time \(day is out of range for month\)"),
    ("at(2030-01-01T24:00:00)", r"not a valid date and time"),
    ("every 5 minutes", r"'every 5 minutes' is not a schedule expression; write cron\("),
    ("CRON(0 10 * * ? *)", r"is not a schedule expression"),
    ("", r"'' is not a schedule expression"),
]


@pytest.mark.parametrize(("expression", "message"), INVALID)
def test_invalid_expression_raises(expression: str, message: str) -> None:
    """Invalid expressions raise ScheduleError naming the field and the reason."""
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(expression)


def test_schedule_error_is_a_value_error() -> None:
    """ScheduleError can be caught as ValueError."""
    with pytest.raises(ValueError, match="both set"):
        parse_schedule("cron(0 12 * * * *)")


def test_non_string_expression_is_a_type_error() -> None:
    """A non-string expression raises TypeError."""
    with pytest.raises(TypeError, match="must be a str"):
        parse_schedule(5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- time zones


def test_unknown_timezone_raises() -> None:
    """An unknown zone raises ScheduleError naming it and suggesting valid names."""
    with pytest.raises(
        ScheduleError, match=r"unknown time zone 'Mars/Base'; use an IANA name such as"
    ):
        parse_schedule("cron(0 10 * * ? *)", "Mars/Base")


def test_malformed_timezone_raises() -> None:
    """A zone name that is not even a valid key raises ScheduleError too."""
    with pytest.raises(ScheduleError, match=r"unknown time zone '\.\./etc'"):
        parse_schedule("rate(5 minutes)", "../etc")


def test_non_string_timezone_is_a_type_error() -> None:
    """A tzinfo object instead of a name raises TypeError."""
    with pytest.raises(TypeError, match="IANA time zone name"):
        parse_schedule("cron(0 10 * * ? *)", UTC)  # type: ignore[arg-type]


def test_missing_timezone_database_suggests_tzdata(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a time zone database the error says to install tzdata."""

    def missing(key: str) -> zoneinfo.ZoneInfo:
        raise zoneinfo.ZoneInfoNotFoundError(key)

    monkeypatch.setattr(zoneinfo, "ZoneInfo", missing)
    monkeypatch.setattr(zoneinfo, "available_timezones", set)
    with pytest.raises(
        ScheduleError, match=r"'Europe/London' cannot be loaded .*pip install tzdata"
    ):
        parse_schedule("cron(0 10 * * ? *)", "Europe/London")


def test_utc_needs_no_timezone_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default UTC works even where no time zone database is installed."""

    def missing(key: str) -> zoneinfo.ZoneInfo:
        raise zoneinfo.ZoneInfoNotFoundError(key)

    monkeypatch.setattr(zoneinfo, "ZoneInfo", missing)
    assert parse_schedule("cron(0 10 * * ? *)").next_after(utc(2025, 1, 1)) == utc(2025, 1, 1, 10)


def test_cron_follows_local_wall_clock_across_dst() -> None:
    """09:00 New York is 14:00 UTC in winter and 13:00 UTC in summer."""
    assert_chain(
        "cron(0 9 * * ? *)",
        utc(2024, 3, 9, 0),
        [utc(2024, 3, 9, 14), utc(2024, 3, 10, 13)],
        tz="America/New_York",
    )


def test_new_york_spring_forward_skipped_time_fires_at_end_of_gap() -> None:
    """02:30 on 10 March 2024 does not exist in New York; it fires at 03:00 EDT."""
    assert_chain(
        "cron(30 2 * * ? *)",
        utc(2024, 3, 8, 12),
        [utc(2024, 3, 9, 7, 30), utc(2024, 3, 10, 7, 0), utc(2024, 3, 11, 6, 30)],
        tz="America/New_York",
    )


def test_new_york_spring_forward_skipped_times_fire_once() -> None:
    """Every skipped 02:xx time shares the 03:00 instant and fires once."""
    assert_chain(
        "cron(0/15 2 * * ? *)",
        utc(2024, 3, 10, 6),
        [utc(2024, 3, 10, 7), utc(2024, 3, 11, 6)],
        tz="America/New_York",
    )


def test_new_york_spring_forward_hourly() -> None:
    """An hourly cron fires at 01:00 EST, then 03:00 EDT once, then 04:00 EDT."""
    assert_chain(
        "cron(0 * * * ? *)",
        utc(2024, 3, 10, 5, 30),
        [utc(2024, 3, 10, 6), utc(2024, 3, 10, 7), utc(2024, 3, 10, 8)],
        tz="America/New_York",
    )


def test_new_york_fall_back_repeated_time_fires_once() -> None:
    """01:30 on 3 November 2024 happens twice in New York; it fires at the first (EDT)."""
    assert_chain(
        "cron(30 1 * * ? *)",
        utc(2024, 11, 2, 12),
        [utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)],
        tz="America/New_York",
    )


def test_new_york_fall_back_half_hourly() -> None:
    """During the repeated hour a half-hourly cron does not fire a second time."""
    fires = parse_schedule("cron(0/30 * * * ? *)", "America/New_York").fires_between(
        utc(2024, 11, 3, 4, 50), utc(2024, 11, 3, 7, 30)
    )
    assert list(fires) == [
        utc(2024, 11, 3, 5),
        utc(2024, 11, 3, 5, 30),
        utc(2024, 11, 3, 7),
        utc(2024, 11, 3, 7, 30),
    ]


def test_new_york_query_inside_repeated_hour() -> None:
    """Asking during the second 01:xx skips the 01:30 that already fired."""
    schedule = parse_schedule("cron(30 1 * * ? *)", "America/New_York")
    assert schedule.next_after(utc(2024, 11, 3, 6, 10)) == utc(2024, 11, 4, 6, 30)


def test_london_spring_forward_skipped_time_fires_at_end_of_gap() -> None:
    """01:30 on 31 March 2024 does not exist in London; it fires at 02:00 BST."""
    assert_chain(
        "cron(30 1 * * ? *)",
        utc(2024, 3, 30, 12),
        [utc(2024, 3, 31, 1, 0), utc(2024, 4, 1, 0, 30)],
        tz="Europe/London",
    )


def test_london_fall_back_repeated_time_fires_once() -> None:
    """01:30 on 27 October 2024 happens twice in London; it fires at the first (BST)."""
    assert_chain(
        "cron(30 1 * * ? *)",
        utc(2024, 10, 26, 12),
        [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)],
        tz="Europe/London",
    )


def test_london_weekday_cron_across_fall_back() -> None:
    """10:15 London on weekdays is 09:15 UTC before the change and 10:15 UTC after."""
    assert_chain(
        "cron(15 10 ? * MON-FRI *)",
        utc(2024, 10, 25),
        [utc(2024, 10, 25, 9, 15), utc(2024, 10, 28, 10, 15)],
        tz="Europe/London",
    )


ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"]
EXPRESSIONS = [
    "cron(* * * * ? *)",
    "cron(0/30 * * * ? *)",
    "cron(30 1,2 * * ? *)",
    "cron(0 2 ? * SUN *)",
    "cron(45 1 L * ? *)",
    "cron(15 2 ? * 1#1 *)",
    "cron(0 0 LW * ? *)",
]


@settings(max_examples=300, deadline=None)
@given(
    expression=st.sampled_from(EXPRESSIONS),
    tz=st.sampled_from(ZONES),
    start=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
    ),
)
def test_next_after_is_consistent(expression: str, tz: str, start: datetime) -> None:
    """The next fire is after dt, and asking again anywhere before it gives the same fire."""
    schedule = parse_schedule(expression, tz)
    fire = schedule.next_after(start)
    assert fire is not None
    assert fire > start
    assert schedule.next_after(fire - timedelta(microseconds=1)) == fire
    assert schedule.next_after(start + (fire - start) / 2) == fire
    following = schedule.next_after(fire)
    assert following is not None
    assert following > fire


# --------------------------------------------------------------------------- at()


def test_at_fires_once() -> None:
    """at() fires at its time and then never again."""
    schedule = parse_schedule("at(2030-01-01T09:00:00)")
    assert chain("at(2030-01-01T09:00:00)", utc(2029, 1, 1), 2) == [utc(2030, 1, 1, 9), None]
    assert schedule.next_after(utc(2030, 1, 1, 9)) is None


def test_at_in_the_past_never_fires() -> None:
    """An at() time already passed gives None."""
    assert parse_schedule("at(2020-01-01T09:00:00)").next_after(utc(2025, 1, 1)) is None


def test_at_reads_time_in_schedule_timezone() -> None:
    """at() is wall-clock time in the schedule's zone."""
    schedule = parse_schedule("at(2030-07-01T09:00:00)", "Europe/London")
    assert isinstance(schedule, AtSchedule)
    assert schedule.fire_time == utc(2030, 7, 1, 8)


@pytest.mark.parametrize(
    ("expression", "tz", "expected"),
    [
        ("at(2024-03-10T02:30:00)", "America/New_York", utc(2024, 3, 10, 7, 0)),
        ("at(2024-11-03T01:30:00)", "America/New_York", utc(2024, 11, 3, 5, 30)),
        ("at(2024-03-31T01:30:00)", "Europe/London", utc(2024, 3, 31, 1, 0)),
        ("at(2024-10-27T01:30:00)", "Europe/London", utc(2024, 10, 27, 0, 30)),
    ],
)
def test_at_across_dst(expression: str, tz: str, expected: datetime) -> None:
    """A skipped at() time fires at the end of the gap; a repeated one at its first occurrence."""
    assert parse_schedule(expression, tz).next_after(utc(2024, 1, 1)) == expected


def test_at_fires_between() -> None:
    """fires_between yields the at() time only when it is in the window."""
    schedule = parse_schedule("at(2030-01-01T09:00:00)")
    assert list(schedule.fires_between(utc(2030, 1, 1), utc(2030, 1, 2))) == [utc(2030, 1, 1, 9)]
    assert list(schedule.fires_between(utc(2030, 1, 1, 9), utc(2030, 1, 2))) == []


# --------------------------------------------------------------------------- rate()


def test_unanchored_rate_is_dt_plus_period() -> None:
    """Without an anchor, next_after(dt) is dt + period."""
    start = datetime(2025, 1, 1, 10, 7, 30, 123, tzinfo=UTC)
    assert parse_schedule("rate(5 minutes)").next_after(start) == start + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("expression", "period"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(15 minutes)", timedelta(minutes=15)),
        ("rate(1 hour)", timedelta(hours=1)),
        ("rate(2 hours)", timedelta(hours=2)),
        ("rate(1 day)", timedelta(days=1)),
        ("rate(7 days)", timedelta(days=7)),
    ],
)
def test_rate_period(expression: str, period: timedelta) -> None:
    """Each unit gives the matching period."""
    schedule = parse_schedule(expression)
    assert isinstance(schedule, RateSchedule)
    assert schedule.period == period


def test_anchored_rate_fires_on_grid() -> None:
    """With an anchor, fires are anchor + k * period."""
    schedule = RateSchedule("rate(10 minutes)").with_anchor(utc(2025, 1, 1))
    assert schedule.next_after(utc(2025, 1, 1, 0, 25)) == utc(2025, 1, 1, 0, 30)
    assert schedule.next_after(utc(2025, 1, 1, 0, 30)) == utc(2025, 1, 1, 0, 40)


def test_anchor_is_the_first_fire() -> None:
    """Before the anchor, the next fire is the anchor itself."""
    schedule = RateSchedule("rate(10 minutes)", anchor=utc(2025, 1, 1))
    assert schedule.next_after(utc(2024, 12, 31, 23)) == utc(2025, 1, 1)


def test_rate_day_is_24_hours_across_dst() -> None:
    """rate(1 day) is 24 hours even when the clocks change."""
    anchor = datetime(2024, 3, 9, 9, 0, tzinfo=zoneinfo.ZoneInfo("America/New_York"))
    schedule = RateSchedule("rate(1 day)", "America/New_York", anchor=anchor)
    assert schedule.next_after(anchor) == utc(2024, 3, 10, 14)


def test_with_anchor_returns_a_new_schedule() -> None:
    """with_anchor leaves the original unchanged and normalises the anchor to UTC."""
    original = RateSchedule("rate(1 hour)")
    anchored = original.with_anchor(datetime(2025, 1, 1, 9, tzinfo=timezone(timedelta(hours=9))))
    assert original.anchor is None
    assert anchored.anchor == utc(2025, 1, 1, 0)
    assert anchored.anchor is not None
    assert anchored.anchor.tzinfo is UTC


def test_naive_anchor_raises() -> None:
    """A naive anchor raises ValueError."""
    with pytest.raises(ValueError, match="anchor must be timezone-aware"):
        RateSchedule("rate(1 hour)").with_anchor(datetime(2025, 1, 1))


def test_rate_fires_between() -> None:
    """fires_between on a rate steps by the period from the window start."""
    fires = list(parse_schedule("rate(1 hour)").fires_between(utc(2025, 1, 1), utc(2025, 1, 1, 3)))
    assert fires == [utc(2025, 1, 1, 1), utc(2025, 1, 1, 2), utc(2025, 1, 1, 3)]


def test_rate_near_the_end_of_datetime_returns_none() -> None:
    """A rate that would run past datetime's range gives None."""
    assert parse_schedule("rate(1 day)").next_after(datetime.max.replace(tzinfo=UTC)) is None


def test_rate_validates_timezone() -> None:
    """A rate still rejects an unknown time zone."""
    with pytest.raises(ScheduleError, match="unknown time zone"):
        parse_schedule("rate(1 day)", "Nowhere/Special")


def test_first_invalid_field_from_the_left_is_reported() -> None:
    """With several mistakes, the message names the leftmost field."""
    with pytest.raises(ScheduleError, match=r"^cron\(61 \* L-31 13 \? \*\): minutes: 61"):
        parse_schedule("cron(61 * L-31 13 ? *)")


def test_query_before_1970_finds_the_first_fire() -> None:
    """A dt long before 1970 gives the first fire in 1970, in any zone."""
    schedule = parse_schedule("cron(0 0 1 1 ? *)", "Etc/GMT-14")  # UTC+14
    assert schedule.next_after(datetime.min.replace(tzinfo=UTC)) == datetime(
        1969, 12, 31, 10, tzinfo=UTC
    )
