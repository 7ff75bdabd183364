"""AWS cron vectors from another implementation's test tables.

The data file names its public source; each case is an expression, a start
instant and the fire times that follow it, in order.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from eventbus import ScheduleError, parse_schedule

_DATA = json.loads((Path(__file__).parent / "data" / "vectors" / "cron_next.json").read_text())


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [pytest.param(e, s, x, id=e) for e, s, x in _DATA["cases"]],
)
def test_next_fire_times(expression: str, start: str, expected: list[str]) -> None:
    """Successive next_after calls give the recorded fire times."""
    schedule = parse_schedule(f"cron({expression})")
    moment = _instant(start)
    got: list[Any] = []
    for _ in expected:
        nxt = schedule.next_after(moment)
        assert nxt is not None
        got.append(nxt)
        moment = nxt
    assert got == [_instant(t) for t in expected]


@pytest.mark.parametrize(("expression", "start"), _DATA["none_after"])
def test_no_fire_after_the_last_year(expression: str, start: str) -> None:
    """A schedule whose years are all past has no next fire time."""
    assert parse_schedule(f"cron({expression})").next_after(_instant(start)) is None


def test_time_zone_keeps_wall_clock_minutes() -> None:
    """Every five minutes in Asia/Tokyo fires on the local five-minute marks (cronplan's table)."""
    schedule = parse_schedule("cron(*/5 * * * ? *)", "Asia/Tokyo")
    start = datetime.fromisoformat("2022-10-09T23:59:59+09:00")
    first = schedule.next_after(start)
    assert first == datetime.fromisoformat("2022-10-10T00:00:00+09:00")


# Valid and invalid expressions, following the schedule-expression rules in
# Amazon EventBridge's user guide ("Schedule expressions for rules").
VALID = [
    "cron(0 10 * * ? *)",
    "cron(15 12 * * ? *)",
    "cron(0 18 ? * MON-FRI *)",
    "cron(0 8 1 * ? *)",
    "cron(0/15 * * * ? *)",
    "cron(0/10 * ? * MON-FRI *)",
    "cron(0/5 8-17 ? * MON-FRI *)",
    "cron(0 9 ? * 2#1 *)",
    "cron(0 0 L * ? *)",
    "cron(0 0 LW * ? *)",
    "cron(0 0 15W * ? *)",
    "cron(0 0 ? * 6L *)",
    "cron(0 0 1 JAN ? 2030)",
    "cron(0 0 ? JAN-MAR,OCT * *)",
    "cron(0 0 * * ? 2025/2)",
    "cron(0 0 ? * mon *)",
    # Forms from cronplan's parser tables (github.com/winebarrel/cronplan, test/cronplan).
    "cron(* * ? * 01 *)",
    "cron(* * ? * 1-7 *)",
    "cron(* * ? * 1/5 *)",
    "cron(* * ? * */5 *)",
    "cron(* * ? * 1-5/3 *)",
    "cron(* * ? * SUN/3 *)",
    "cron(* * ? * SUN-SAT/3 *)",
    "cron(10,44 14 ? 3 WED *)",
    "cron(0 12 1/5 * ? *)",
    "cron(15 10 ? * 6#3 *)",
    "cron(0-5 14 * * ? *)",
    "cron(15 10 * * ? 2005)",
    "cron(34 12-8 * * ? *)",
    "rate(1 minute)",
    "rate(5 minutes)",
    "rate(1 hour)",
    "rate(7 days)",
    "at(2030-01-01T00:00:00)",
]
INVALID = [
    "cron(0 10 * * * *)",
    "cron(0 10 ? * ? *)",
    "cron(0 10 * *)",
    "cron(60 10 * * ? *)",
    "cron(0 24 * * ? *)",
    "cron(0 0 32 * ? *)",
    "cron(0 0 ? 13 * *)",
    "cron(0 0 ? * 8 *)",
    "cron(0 0 * * ? 1969)",
    "cron(0 0 * * ? 2200)",
    "cron(0 0 ? * MON#6 *)",
    "rate(1 minutes)",
    "rate(5 minute)",
    "rate(0 minutes)",
    "rate(1 week)",
    "rate(1.5 hours)",
    "at(2030-01-01)",
    "at(2030-13-01T00:00:00)",
]


@pytest.mark.parametrize("expression", VALID)
def test_valid(expression: str) -> None:
    """Documented forms parse."""
    parse_schedule(expression)


@pytest.mark.parametrize("expression", INVALID)
def test_invalid(expression: str) -> None:
    """Forms EventBridge refuses raise ScheduleError."""
    with pytest.raises(ScheduleError):
        parse_schedule(expression)
