"""Schedule expressions: EventBridge ``cron(...)``, ``rate(...)`` and ``at(...)``.

:func:`parse_schedule` turns an expression into a schedule object;
``schedule.next_after(dt)`` gives the first fire time strictly after the aware
datetime *dt*, always as an aware UTC datetime, or ``None`` when the schedule
never fires again.

How it works: a ``cron`` expression is compiled once into sorted tuples of the
allowed minutes, hours, months and years, plus a rule that lists the matching
days of a given month (``L``, ``W``, ``#`` and friends live there). Finding the
next fire walks those tuples field by field -- year, month, day, hour, minute --
so a query jumps straight over months and years that cannot match instead of
stepping minute by minute.

Cron fields are matched against the wall clock of the schedule's time zone.
Each matching wall-clock minute is then turned into an instant:

* a wall time that happens twice (clocks going back) fires once, at its first
  occurrence;
* a wall time that never happens (clocks going forward) fires at the first
  instant after the gap, e.g. 02:30 on the spring-forward day in
  ``America/New_York`` fires at 03:00 local time. Several skipped times share
  that instant and fire once.
"""

from __future__ import annotations

import bisect
import calendar
import re
import zoneinfo
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Final, Protocol, TypeVar, final

import attrs

from ._exceptions import ScheduleError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

__all__ = ["AtSchedule", "CronSchedule", "RateSchedule", "Schedule", "parse_schedule"]

_MINUTE: Final = timedelta(minutes=1)
# Midnight, 1 January 1970 on the earliest clock anywhere is after this instant.
_BEFORE_1970: Final = datetime(1969, 12, 30, tzinfo=UTC)
_T = TypeVar("_T")


class Schedule(Protocol):
    """**Protocol:** when something fires, as returned by :func:`parse_schedule`.

    :class:`CronSchedule`, :class:`RateSchedule` and :class:`AtSchedule`
    implement it; any object with these members can stand in for them.
    """

    @property
    def expression(self) -> str:
        """The schedule expression, e.g. ``"cron(0 10 * * ? *)"``."""
        ...

    @property
    def timezone(self) -> str:
        """The IANA time zone the expression is evaluated in, e.g. ``"UTC"``."""
        ...

    def next_after(self, dt: datetime) -> datetime | None:
        """Return the first fire time strictly after *dt* (aware, UTC), or ``None``."""
        ...

    def fires_between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Yield every fire time *t* with ``start < t <= end``, in order (aware, UTC)."""
        ...


_MAX_EXPRESSION_LENGTH = 256
"""EventBridge's limit on a rule's ScheduleExpression (PutRule), in characters."""


def parse_schedule(
    expression: str, timezone: str = "UTC", *, allow_seconds: bool = False
) -> Schedule:
    """Parse an EventBridge schedule expression.

    Three forms are understood, with EventBridge's syntax and rules:

    * ``cron(Minutes Hours Day-of-month Month Day-of-week Year)``, e.g.
      ``cron(0 18 ? * MON-FRI *)`` -- returns a :class:`CronSchedule`;
    * ``rate(value unit)``, e.g. ``rate(5 minutes)`` -- returns a
      :class:`RateSchedule` (anchor it with :meth:`RateSchedule.with_anchor`);
    * ``at(yyyy-mm-ddThh:mm:ss)``, e.g. ``at(2030-01-01T09:00:00)`` -- returns
      an :class:`AtSchedule`.

    Validity matches EventBridge's: white space before or after the
    expression, or just inside the parentheses of ``rate( ... )``, is
    refused, as AWS refuses it.

    Args:
        expression: the schedule expression.
        timezone: the IANA time zone whose wall clock ``cron`` fields and the
            ``at`` time are read in (default ``"UTC"``). Rates are plain
            durations and ignore it, but it is still validated.
        allow_seconds: accept sub-minute rates, ``rate(10 seconds)`` (unit
            ``second``/``seconds``), which EventBridge does not offer; off by
            default, so that an expression that parses here is one AWS accepts.
            Cron expressions keep one-minute precision either way.

    Returns:
        A schedule whose ``next_after(dt)`` gives the next fire time in UTC.

    Raises:
        ScheduleError: the expression is invalid (the message names the field
            and the reason) or the time zone is unknown.
        TypeError: *expression* or *timezone* is not a string.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2
       White space around the expression is refused, as by AWS; *allow_seconds*.
    """
    if not isinstance(expression, str):
        raise TypeError(
            f"a schedule expression must be a str such as 'rate(5 minutes)', "
            f"got {type(expression).__name__}"
        )
    if len(expression) > _MAX_EXPRESSION_LENGTH:
        raise ScheduleError(
            f"{expression[:40]!r}... is {len(expression):,} characters long; EventBridge "
            f"accepts schedule expressions of at most {_MAX_EXPRESSION_LENGTH} characters"
        )
    text = expression.strip()
    if text != expression:
        where = "before" if not expression.startswith(text) else "after"
        raise ScheduleError(
            f"{expression!r}: white space {where} the expression; EventBridge refuses it, "
            f"write {text!r}"
        )
    if text.startswith("cron("):
        return CronSchedule(text, timezone)
    if text.startswith("rate("):
        return RateSchedule(text, timezone, allow_seconds=allow_seconds)
    if text.startswith("at("):
        return AtSchedule(text, timezone)
    raise ScheduleError(
        f"{text!r} is not a schedule expression; write cron(Minutes Hours Day-of-month "
        "Month Day-of-week Year), rate(value unit) or at(yyyy-mm-ddThh:mm:ss), "
        "e.g. cron(0 10 * * ? *), rate(5 minutes) or at(2030-01-01T09:00:00)"
    )


# --------------------------------------------------------------------------- helpers


def _load_zone(expression: str, name: object) -> tzinfo:
    if not isinstance(name, str):
        raise TypeError(
            f"timezone must be an IANA time zone name (str) such as 'Europe/London', "
            f"got {type(name).__name__}"
        )
    if name == "UTC":
        # Needs no time zone database, so the default works everywhere.
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    if not zoneinfo.available_timezones():
        raise ScheduleError(
            f"{expression}: time zone {name!r} cannot be loaded because this system has no "
            "IANA time zone database; install one with: pip install tzdata"
        )
    raise ScheduleError(
        f"{expression}: unknown time zone {name!r}; use an IANA name such as "
        "'America/New_York' or 'Europe/London' (names are case-sensitive); if the name is "
        "right, the time zone database is out of date: pip install -U tzdata"
    )


def _aware_utc(value: object, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{what} must be timezone-aware, got the naive datetime {value.isoformat()}; "
            "pass e.g. datetime.now(UTC) or value.replace(tzinfo=UTC)"
        )
    return value.astimezone(UTC)


def _optional_aware_utc(value: datetime | None) -> datetime | None:
    return None if value is None else _aware_utc(value, "anchor")


def _wall_to_utc(wall: datetime, zone: tzinfo) -> datetime:
    """Map a naive wall-clock time in *zone* to the instant it fires at (aware, UTC).

    A repeated wall time maps to its first occurrence; a skipped one to the
    first instant after the gap.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap: fold=1 reads the wall time with the offset after the jump and
    # lands before the transition; fold=0 (above) lands after it. Bisect the
    # seconds in between for the first instant whose wall clock reaches *wall*.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = 0, int((first - before).total_seconds())
    while high - low > 1:
        middle = (low + high) // 2
        probe = before + timedelta(seconds=middle)
        if probe.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return before + timedelta(seconds=high)


def _fires_between(schedule: Schedule, start: datetime, end: datetime) -> Iterator[datetime]:
    current = start
    while True:
        fire = schedule.next_after(current)
        if fire is None or fire > end:
            return
        yield fire
        current = fire


def _check_window(start: object, end: object) -> tuple[datetime, datetime]:
    return _aware_utc(start, "start"), _aware_utc(end, "end")


# --------------------------------------------------------------------------- cron


class _Invalid(Exception):
    """A cron field is invalid; carries the reason, without the field name."""


@attrs.frozen
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int] = attrs.field(factory=dict)
    wraps: bool = True


_MONTH_NAMES: Final = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
# EventBridge numbers the days of the week 1-7 starting on Sunday.
_DAY_NAMES: Final = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}

_MINUTES: Final = _Field("minutes", 0, 59)
_HOURS: Final = _Field("hours", 0, 23)
_DAY_OF_MONTH: Final = _Field("day-of-month", 1, 31)
_MONTH: Final = _Field("month", 1, 12, _MONTH_NAMES)
_DAY_OF_WEEK: Final = _Field("day-of-week", 1, 7, _DAY_NAMES)
_YEAR: Final = _Field("year", 1970, 2199, wraps=False)

_NUMBER: Final = re.compile(r"[0-9]+")
#: Numbers longer than this are out of every field's range; they are not converted.
_MAX_DIGITS: Final = 9


def _int(digits: str) -> int:
    """*digits* as an int; absurdly long digit strings read as a number out of every range."""
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


_SPECIALS: Final = {
    "?": "only day-of-month and day-of-week accept ?",
    "L": "only day-of-month and day-of-week accept L",
    "W": "only day-of-month accepts W",
    "#": "only day-of-week accepts #",
}


def _aws_weekday(year: int, month: int, day: int) -> int:
    """EventBridge's day of the week: 1 = Sunday ... 7 = Saturday."""
    return (calendar.weekday(year, month, day) + 1) % 7 + 1


class _DayRule(Protocol):
    def days(self, year: int, month: int) -> list[int]: ...


@final
@attrs.frozen
class _DaysOfMonth:
    values: tuple[int, ...]

    def days(self, year: int, month: int) -> list[int]:
        length = calendar.monthrange(year, month)[1]
        return [day for day in self.values if day <= length]


@final
@attrs.frozen
class _LastDay:
    offset: int

    def days(self, year: int, month: int) -> list[int]:
        day = calendar.monthrange(year, month)[1] - self.offset
        return [day] if day >= 1 else []


@final
@attrs.frozen
class _LastWeekday:
    def days(self, year: int, month: int) -> list[int]:
        day = calendar.monthrange(year, month)[1]
        while calendar.weekday(year, month, day) >= calendar.SATURDAY:
            day -= 1
        return [day]


@final
@attrs.frozen
class _NearestWeekday:
    day: int

    def days(self, year: int, month: int) -> list[int]:
        length = calendar.monthrange(year, month)[1]
        if self.day > length:
            return []
        weekday = calendar.weekday(year, month, self.day)
        # Never leave the month: a Saturday 1st moves on to Monday the 3rd,
        # a Sunday last day moves back to Friday.
        if weekday == calendar.SATURDAY:
            return [self.day - 1 if self.day > 1 else self.day + 2]
        if weekday == calendar.SUNDAY:
            return [self.day + 1 if self.day < length else self.day - 2]
        return [self.day]


@final
@attrs.frozen
class _DaysOfWeek:
    values: frozenset[int]

    def days(self, year: int, month: int) -> list[int]:
        length = calendar.monthrange(year, month)[1]
        return [
            day for day in range(1, length + 1) if _aws_weekday(year, month, day) in self.values
        ]


@final
@attrs.frozen
class _LastOfWeekday:
    weekday: int

    def days(self, year: int, month: int) -> list[int]:
        day = calendar.monthrange(year, month)[1]
        while _aws_weekday(year, month, day) != self.weekday:
            day -= 1
        return [day]


@final
@attrs.frozen
class _NthWeekday:
    weekday: int
    nth: int

    def days(self, year: int, month: int) -> list[int]:
        first = 1 + (self.weekday - _aws_weekday(year, month, 1)) % 7
        day = first + 7 * (self.nth - 1)
        return [day] if day <= calendar.monthrange(year, month)[1] else []


@final
@attrs.frozen
class _CronSpec:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_rule: _DayRule
    months: tuple[int, ...]
    years: tuple[int, ...]


def _value(token: str, field: _Field, item: str) -> int:
    if _NUMBER.fullmatch(token):
        number = _int(token)
    elif token.upper() in field.names:
        number = field.names[token.upper()]
    elif not token:
        raise _Invalid(f"{item}: a value is missing")
    else:
        names = ""
        if field is _MONTH:
            names = " or a month name (JAN-DEC)"
        elif field is _DAY_OF_WEEK:
            names = " or a day name (SUN-SAT)"
        raise _Invalid(f"{token!r} is not a number{names}")
    if not field.low <= number <= field.high:
        hint = ""
        if field is _DAY_OF_WEEK:
            hint = " (1 = SUN, 2 = MON, ... 7 = SAT)"
        raise _Invalid(f"{number} is out of range {field.low}-{field.high}{hint}")
    return number


def _expand(item: str, field: _Field) -> list[int]:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _NUMBER.fullmatch(step_text) or _int(step_text) == 0:
            raise _Invalid(
                f"{item}: the increment after / must be a positive whole number, "
                f"e.g. {base or '0'}/5"
            )
        step = _int(step_text)
        span = field.high - field.low + 1
        if step > span:
            raise _Invalid(
                f"{item}: the increment {step} is larger than the field's range "
                f"({field.low}-{field.high}, {span} values), so it could never repeat; "
                f"use at most {span}"
            )
    if base == "*":
        start, end = field.low, field.high
    elif "-" in base:
        first, _, last = base.partition("-")
        start, end = _value(first, field, item), _value(last, field, item)
    else:
        start = _value(base, field, item)
        # "5/15" means from 5 to the end of the field, every 15.
        end = field.high if slash else start
    if start <= end:
        values = list(range(start, end + 1))
    elif field.wraps:
        # A range may wrap around the end of the field: 22-2 hours, FRI-MON.
        values = list(range(start, field.high + 1)) + list(range(field.low, end + 1))
    else:
        raise _Invalid(f"{base}: the range runs backwards; write {end}-{start}")
    return values[::step]


def _parse_list(text: str, field: _Field) -> tuple[int, ...]:
    items = text.split(",")
    if "" in items:
        raise _Invalid(f"{text}: the list has an empty item (a stray comma?)")
    if len(items) > 1 and "*" in items:
        raise _Invalid(f"{text}: * already means every value; use * alone or list the values")
    values: set[int] = set()
    for item in items:
        values.update(_expand(item, field))
    return tuple(sorted(values))


def _parse_plain(text: str, field: _Field) -> tuple[int, ...]:
    for char, reason in _SPECIALS.items():
        # Month names (JUL) contain an L; they are checked as values instead.
        if char in text.upper() and not (field is _MONTH and char in "LW"):
            raise _Invalid(f"{text}: {reason}")
    return _parse_list(text, field)


def _parse_day_of_month(text: str) -> _DayRule:
    upper = text.upper()
    if upper == "L":
        return _LastDay(0)
    if upper == "LW":
        return _LastWeekday()
    if match := re.fullmatch(r"L-([0-9]+)", upper):
        offset = _int(match[1])
        if not 1 <= offset <= 30:
            raise _Invalid(f"{text}: the offset in L-n must be 1-30")
        return _LastDay(offset)
    if match := re.fullmatch(r"([0-9]+)W", upper):
        return _NearestWeekday(_value(match[1], _DAY_OF_MONTH, text))
    if "?" in text:
        raise _Invalid(f"{text}: ? must be the whole field")
    if "#" in text:
        raise _Invalid(f"{text}: only day-of-week accepts #, e.g. cron(0 9 ? * 2#1 *)")
    if "L" in upper or "W" in upper:
        raise _Invalid(
            f"{text}: L and W take the forms L (last day), L-n (n days before the last), "
            "LW (last weekday) and nW (weekday nearest day n), each as the whole field"
        )
    return _DaysOfMonth(_parse_list(text, _DAY_OF_MONTH))


def _parse_day_of_week(text: str) -> _DayRule:
    upper = text.upper()
    if upper == "L":
        # L alone in day-of-week is the last day of the week: Saturday.
        return _DaysOfWeek(frozenset({7}))
    if match := re.fullmatch(r"([0-9]+|[A-Z]+)L", upper):
        return _LastOfWeekday(_value(match[1], _DAY_OF_WEEK, text))
    if match := re.fullmatch(r"([0-9]+|[A-Z]+)#([0-9]+)", upper):
        weekday = _value(match[1], _DAY_OF_WEEK, text)
        nth = _int(match[2])
        if not 1 <= nth <= 5:
            raise _Invalid(
                f"{text}: the number after # is which occurrence in the month and must be 1-5; "
                f"use {match[1]}L for the last one"
            )
        return _NthWeekday(weekday, nth)
    if "?" in text:
        raise _Invalid(f"{text}: ? must be the whole field")
    if "#" in text:
        raise _Invalid(
            f"{text}: n#k must be the whole field; EventBridge allows a single n#k "
            "expression, not a list of them"
        )
    if re.fullmatch(r"L-[0-9]+", upper):
        raise _Invalid(
            f"{text}: L-n is a day-of-month form (n days before the last day of the month); "
            "in day-of-week EventBridge defines only L (Saturday) and nL (the last weekday n "
            "of the month), e.g. 6L for the last Friday"
        )
    if "L" in upper:
        raise _Invalid(f"{text}: L and nL (last weekday n of the month) must be the whole field")
    if re.search(r"(^|[0-9L])W($|[,/-])", upper):
        # W on its own, nW or LW; the W of WED is a day name.
        raise _Invalid(f"{text}: only day-of-month accepts W")
    return _DaysOfWeek(frozenset(_parse_list(text, _DAY_OF_WEEK)))


def _compile_cron(expression: str) -> _CronSpec:
    if not expression.endswith(")"):
        raise ScheduleError(
            f"{expression}: missing the closing parenthesis; write cron(Minutes Hours "
            "Day-of-month Month Day-of-week Year)"
        )
    fields = expression[len("cron(") : -1].split()
    if len(fields) != 6:
        hint = ""
        if len(fields) == 5:
            hint = (
                "; EventBridge cron has a sixth field, the year: add * for every year, "
                f"e.g. cron({' '.join(fields)} *)"
            )
        raise ScheduleError(
            f"{expression}: expected 6 fields (Minutes Hours Day-of-month Month Day-of-week "
            f"Year), got {len(fields)}{hint}"
        )
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if day_of_month == "?" and day_of_week == "?":
        example = " ".join([minutes, hours, "*", month, "?", year])
        raise ScheduleError(
            f"{expression}: day-of-month and day-of-week are both ?; set one of them, "
            f"e.g. cron({example})"
        )
    if day_of_month != "?" and day_of_week != "?":
        if day_of_week == "*" or day_of_month != "*":
            example = " ".join([minutes, hours, day_of_month, month, "?", year])
        else:
            example = " ".join([minutes, hours, "?", month, day_of_week, year])
        raise ScheduleError(
            f"{expression}: day-of-month and day-of-week are both set; use ? in one of them, "
            f"e.g. cron({example})"
        )

    def parse(field: _Field, text: str, parser: Callable[[str], _T]) -> _T:
        try:
            return parser(text)
        except _Invalid as exc:
            raise ScheduleError(f"{expression}: {field.name}: {exc}") from None

    # Fields are checked left to right, so the first mistake is the one reported.
    minute_values = parse(_MINUTES, minutes, lambda text: _parse_plain(text, _MINUTES))
    hour_values = parse(_HOURS, hours, lambda text: _parse_plain(text, _HOURS))
    # Exactly one of the two day fields is "?"; the other one picks the days.
    day_rule = None
    if day_of_month != "?":
        day_rule = parse(_DAY_OF_MONTH, day_of_month, _parse_day_of_month)
    month_values = parse(_MONTH, month, lambda text: _parse_plain(text, _MONTH))
    if day_rule is None:
        day_rule = parse(_DAY_OF_WEEK, day_of_week, _parse_day_of_week)
    return _CronSpec(
        minutes=minute_values,
        hours=hour_values,
        day_rule=day_rule,
        months=month_values,
        years=parse(_YEAR, year, lambda text: _parse_plain(text, _YEAR)),
    )


@final
@attrs.frozen
class CronSchedule:
    """An EventBridge ``cron(Minutes Hours Day-of-month Month Day-of-week Year)`` schedule.

    Fields are matched against the wall clock of :attr:`timezone`. A wall
    time repeated when clocks go back fires once, at its first occurrence; a
    wall time skipped when clocks go forward fires at the first instant after
    the gap. The year field ends in 2199, so every schedule eventually stops.

    Build one with :func:`parse_schedule` or directly,
    ``CronSchedule("cron(0 18 ? * MON-FRI *)", "Europe/London")``.

    Attributes:
        expression: the expression, e.g. ``"cron(0 18 ? * MON-FRI *)"``.
        timezone: the IANA time zone name the fields are read in.

    Raises:
        ScheduleError: on construction, if the expression or time zone is invalid.

    .. versionadded:: 0.1.0
    """

    expression: str = attrs.field(validator=attrs.validators.instance_of(str))
    timezone: str = "UTC"
    _zone: tzinfo = attrs.field(init=False, repr=False, eq=False)
    _spec: _CronSpec = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if not self.expression.startswith("cron("):
            raise ScheduleError(
                f"{self.expression!r} is not a cron expression; write "
                "cron(Minutes Hours Day-of-month Month Day-of-week Year), e.g. cron(0 10 * * ? *)"
            )
        object.__setattr__(self, "_spec", _compile_cron(self.expression))
        object.__setattr__(self, "_zone", _load_zone(self.expression, self.timezone))

    def __str__(self) -> str:
        return self.expression

    def next_after(self, dt: datetime) -> datetime | None:
        """Return the first fire time strictly after *dt*.

        Args:
            dt: an aware datetime, in any time zone.

        Returns:
            The fire time as an aware UTC datetime, or ``None`` if the schedule
            never fires after *dt* (its years are over, or its day never occurs).

        Raises:
            ValueError: *dt* is naive.
            TypeError: *dt* is not a datetime.
        """
        instant = _aware_utc(dt, "dt")
        # Nothing fires before 1970 in any zone; starting the search there keeps
        # very early datetimes from overflowing in the local conversion.
        search_from = max(instant, _BEFORE_1970)
        try:
            wall = search_from.astimezone(self._zone).replace(tzinfo=None, second=0, microsecond=0)
            while True:
                wall += _MINUTE
                candidate = self._next_wall(wall)
                if candidate is None:
                    return None
                fire = _wall_to_utc(candidate, self._zone)
                # Usually true at once; false only for a repeated (or skipped)
                # wall time whose instant is not after dt.
                if fire > instant:
                    return fire
                wall = candidate
        except OverflowError:
            return None

    def fires_between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Iterate over the fire times *t* with ``start < t <= end``, in order.

        Args:
            start: an aware datetime; a fire exactly at *start* is not included.
            end: an aware datetime; a fire exactly at *end* is included.

        Returns:
            An iterator of aware UTC datetimes (empty if *end* <= *start*).

        Raises:
            ValueError: *start* or *end* is naive.
        """
        return _fires_between(self, *_check_window(start, end))

    def _next_wall(self, wall: datetime) -> datetime | None:
        """The first matching naive wall-clock minute at or after *wall*."""
        spec = self._spec
        first_year = bisect.bisect_left(spec.years, wall.year)
        for year in spec.years[first_year:]:
            same_year = year == wall.year
            first_month = bisect.bisect_left(spec.months, wall.month if same_year else 1)
            for month in spec.months[first_month:]:
                same_month = same_year and month == wall.month
                for day in spec.day_rule.days(year, month):
                    if same_month and day < wall.day:
                        continue
                    same_day = same_month and day == wall.day
                    first_hour = bisect.bisect_left(spec.hours, wall.hour if same_day else 0)
                    for hour in spec.hours[first_hour:]:
                        same_hour = same_day and hour == wall.hour
                        first_minute = bisect.bisect_left(
                            spec.minutes, wall.minute if same_hour else 0
                        )
                        if first_minute < len(spec.minutes):
                            return datetime(year, month, day, hour, spec.minutes[first_minute])
        return None


# --------------------------------------------------------------------------- rate

_RATE_UNITS: Final = {"minute": "minutes", "hour": "hours", "day": "days"}
_SECOND_UNITS: Final = {"second": "seconds"}


def _compile_rate(expression: str, *, allow_seconds: bool = False) -> timedelta:
    inner = expression[len("rate(") : -1] if expression.endswith(")") else None
    if inner is not None and inner != inner.strip():
        raise ScheduleError(
            f"{expression}: white space inside the parentheses; EventBridge refuses it, "
            f"write rate({inner.strip()})"
        )
    parts = inner.split() if inner is not None else []
    if len(parts) != 2:
        raise ScheduleError(
            f"{expression}: expected rate(value unit) with a whole number and a unit of "
            "minute(s), hour(s) or day(s), e.g. rate(5 minutes) or rate(1 hour)"
        )
    value_text, unit = parts
    if not _NUMBER.fullmatch(value_text) or _int(value_text) == 0:
        raise ScheduleError(
            f"{expression}: value must be a positive integer, got {value_text!r}; "
            "e.g. rate(5 minutes)"
        )
    if len(value_text) > 12:
        raise ScheduleError(f"{expression}: value is too large")
    value = int(value_text)
    units = {**_RATE_UNITS, **_SECOND_UNITS} if allow_seconds else _RATE_UNITS
    singular = unit[:-1] if unit in units.values() else unit
    if singular not in units:
        if singular in _SECOND_UNITS or unit in _SECOND_UNITS.values():
            raise ScheduleError(
                f"{expression}: unknown unit {unit!r}; EventBridge schedules have one-minute "
                "precision, use minute(s), hour(s) or day(s); for a sub-minute rate pass "
                "allow_seconds=True (parse_schedule(..., allow_seconds=True) or "
                "bus.schedule(..., allow_seconds=True))"
            )
        raise ScheduleError(
            f"{expression}: unknown unit {unit!r}; use minute(s), hour(s) or day(s)"
        )
    if value == 1 and unit != singular:
        raise ScheduleError(
            f"{expression}: a value of 1 takes the singular unit; write rate(1 {singular})"
        )
    if value != 1 and unit == singular:
        raise ScheduleError(
            f"{expression}: a value other than 1 takes the plural unit; "
            f"write rate({value} {units[singular]})"
        )
    try:
        return timedelta(**{units[singular]: value})
    except OverflowError:
        raise ScheduleError(f"{expression}: value is too large") from None


@final
@attrs.frozen
class RateSchedule:
    """An EventBridge ``rate(value unit)`` schedule: a fixed period.

    The period is an exact duration -- ``rate(1 day)`` is 24 hours even across
    a daylight-saving change, as in EventBridge Scheduler -- so :attr:`timezone`
    does not affect the fire times.

    Without an :attr:`anchor`, ``next_after(dt)`` is ``dt + period``: the
    schedule runs every period from whenever you ask. With an anchor it fires
    on a fixed grid, ``anchor + k * period`` for ``k >= 0``, like EventBridge
    Scheduler's ``StartDate``; the anchor itself is the first fire.

    Attributes:
        expression: the expression, e.g. ``"rate(5 minutes)"``.
        timezone: the IANA time zone name (validated, unused for the arithmetic).
        anchor: the first fire time of the grid (aware, normalised to UTC), or
            ``None`` for an unanchored rate.
        allow_seconds: whether sub-minute units (``rate(10 seconds)``) are
            accepted (keyword-only; default ``False``, as EventBridge).
        period: the interval between fires.

    Raises:
        ScheduleError: on construction, if the expression or time zone is invalid.
        ValueError: on construction, if *anchor* is naive.

    .. versionadded:: 0.1.0
    """

    expression: str = attrs.field(validator=attrs.validators.instance_of(str))
    timezone: str = "UTC"
    anchor: datetime | None = attrs.field(default=None, converter=_optional_aware_utc)
    allow_seconds: bool = attrs.field(default=False, kw_only=True)
    period: timedelta = attrs.field(init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if not self.expression.startswith("rate("):
            raise ScheduleError(
                f"{self.expression!r} is not a rate expression; write rate(value unit), "
                "e.g. rate(5 minutes)"
            )
        object.__setattr__(
            self, "period", _compile_rate(self.expression, allow_seconds=self.allow_seconds)
        )
        _load_zone(self.expression, self.timezone)

    def __str__(self) -> str:
        return self.expression

    def with_anchor(self, anchor: datetime | None) -> RateSchedule:
        """Return a copy of this schedule that fires at ``anchor + k * period``.

        Args:
            anchor: an aware datetime, the first fire time; ``None`` removes
                the anchor.

        Returns:
            A new :class:`RateSchedule`; this one is unchanged.

        Raises:
            ValueError: *anchor* is naive.
        """
        return attrs.evolve(self, anchor=anchor)

    def next_after(self, dt: datetime) -> datetime | None:
        """Return the first fire time strictly after *dt*.

        Args:
            dt: an aware datetime, in any time zone.

        Returns:
            ``dt + period`` without an anchor; with one, the smallest
            ``anchor + k * period`` (``k >= 0``) after *dt*. Aware, UTC.
            ``None`` only past the end of what ``datetime`` can represent.

        Raises:
            ValueError: *dt* is naive.
            TypeError: *dt* is not a datetime.
        """
        instant = _aware_utc(dt, "dt")
        try:
            if self.anchor is None:
                return instant + self.period
            if instant < self.anchor:
                return self.anchor
            periods = (instant - self.anchor) // self.period + 1
            return self.anchor + periods * self.period
        except OverflowError:
            return None

    def fires_between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Iterate over the fire times *t* with ``start < t <= end``, in order.

        Without an anchor the grid starts at *start*: ``start + period``,
        ``start + 2 * period`` and so on.

        Args:
            start: an aware datetime; a fire exactly at *start* is not included.
            end: an aware datetime; a fire exactly at *end* is included.

        Returns:
            An iterator of aware UTC datetimes (empty if *end* <= *start*).

        Raises:
            ValueError: *start* or *end* is naive.
        """
        return _fires_between(self, *_check_window(start, end))


# --------------------------------------------------------------------------- at

_AT: Final = re.compile(r"at\(([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\)")


@final
@attrs.frozen
class AtSchedule:
    """An EventBridge Scheduler ``at(yyyy-mm-ddThh:mm:ss)`` one-time schedule.

    The time is read on the wall clock of :attr:`timezone`. If it is repeated
    (clocks going back) it fires at the first occurrence; if it is skipped
    (clocks going forward) it fires at the first instant after the gap.

    Attributes:
        expression: the expression, e.g. ``"at(2030-01-01T09:00:00)"``.
        timezone: the IANA time zone name the time is read in.
        fire_time: the single fire time (aware, UTC).

    Raises:
        ScheduleError: on construction, if the expression or time zone is invalid.

    .. versionadded:: 0.1.0
    """

    expression: str = attrs.field(validator=attrs.validators.instance_of(str))
    timezone: str = "UTC"
    fire_time: datetime = attrs.field(init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        match = _AT.fullmatch(self.expression)
        if match is None:
            raise ScheduleError(
                f"{self.expression!r} is not an at expression; write at(yyyy-mm-ddThh:mm:ss), "
                "e.g. at(2030-01-01T09:00:00)"
            )
        try:
            year, month, day, hour, minute, second = (int(part) for part in match.groups())
            wall = datetime(year, month, day, hour, minute, second)
        except ValueError as exc:
            raise ScheduleError(
                f"{self.expression}: not a valid date and time ({exc}); "
                "write at(yyyy-mm-ddThh:mm:ss), e.g. at(2030-01-01T09:00:00)"
            ) from None
        zone = _load_zone(self.expression, self.timezone)
        try:
            fire = _wall_to_utc(wall, zone)
        except OverflowError:
            raise ScheduleError(f"{self.expression}: the time is out of range") from None
        object.__setattr__(self, "fire_time", fire)

    def __str__(self) -> str:
        return self.expression

    def next_after(self, dt: datetime) -> datetime | None:
        """Return :attr:`fire_time` if it is strictly after *dt*, else ``None``.

        Args:
            dt: an aware datetime, in any time zone.

        Returns:
            The fire time (aware, UTC), or ``None`` once it has passed.

        Raises:
            ValueError: *dt* is naive.
            TypeError: *dt* is not a datetime.
        """
        return self.fire_time if self.fire_time > _aware_utc(dt, "dt") else None

    def fires_between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Iterate over the fire time if ``start < fire_time <= end``.

        Args:
            start: an aware datetime.
            end: an aware datetime.

        Returns:
            An iterator of zero or one aware UTC datetime.

        Raises:
            ValueError: *start* or *end* is naive.
        """
        return _fires_between(self, *_check_window(start, end))
