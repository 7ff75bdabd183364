"""eventbus.testing.payload and same_payload: comparing events without their envelope."""

from __future__ import annotations

import attrs
import pytest

from eventbus import Bus, Event
from eventbus.testing import (
    ENVELOPE_FIELDS,
    FakeClock,
    Payload,
    assert_published,
    capture,
    expect,
    payload,
    same_payload,
)


@attrs.frozen
class DailyReport(Event):
    day: str
    count: int


@attrs.frozen
class WeeklyReport(Event):
    day: str
    count: int


def test_two_events_built_alike_are_not_equal_but_have_the_same_payload() -> None:
    """Equal fields, different envelopes: == is False, same_payload is True."""
    first, second = DailyReport("2024-03-01", 1), DailyReport("2024-03-01", 1)
    assert first != second
    assert same_payload(first, second)


def test_a_payload_equals_an_event_either_way_round() -> None:
    """payload(event) == event and event == payload(event), whatever the envelope."""
    got = DailyReport("2024-03-01", 1, source="reports", correlation_id="c-1")
    assert payload(got) == DailyReport("2024-03-01", 1)
    assert DailyReport("2024-03-01", 1) == payload(got)


def test_a_different_field_or_class_is_a_different_payload() -> None:
    """A changed field or another class with the same fields does not match."""
    report = DailyReport("2024-03-01", 1)
    assert payload(report) != DailyReport("2024-03-01", 2)
    assert not same_payload(report, WeeklyReport("2024-03-01", 1))


def test_differences_lists_each_field_that_differs() -> None:
    """differences() names each differing field with both values."""
    expected = payload(DailyReport("2024-03-01", 1))
    assert expected.differences(DailyReport("2024-03-02", 1)) == [
        "day: '2024-03-01' != '2024-03-02'"
    ]
    assert expected.differences(WeeklyReport("2024-03-01", 1)) == [
        "class: DailyReport != WeeklyReport"
    ]


def test_the_repr_shows_the_class_and_own_fields() -> None:
    """repr(payload) reads like the constructor call, without envelope fields."""
    assert repr(payload(DailyReport("2024-03-01", 1))) == (
        "payload(DailyReport(day='2024-03-01', count=1))"
    )


def test_envelope_fields_are_the_base_event_fields() -> None:
    """ENVELOPE_FIELDS holds id and time and no field of a user event."""
    assert {"id", "time", "source"} <= ENVELOPE_FIELDS
    assert not {"day", "count"} & ENVELOPE_FIELDS


def test_payload_of_something_else_is_a_type_error() -> None:
    """payload() of a non-event says what it takes."""
    with pytest.raises(TypeError, match=r"payload\(\) takes an eventbus.Event, got dict"):
        payload({"day": "2024-03-01"})  # type: ignore[arg-type]


def test_payloads_are_not_hashable() -> None:
    """A payload may hold lists and dicts, so it is not hashable."""
    with pytest.raises(TypeError):
        hash(payload(DailyReport("2024-03-01", 1)))


async def test_a_recorder_compares_with_events_you_build() -> None:
    """capture(...).payloads() compares equal to a list of freshly built events."""
    async with Bus() as bus:
        reports = capture(bus, DailyReport)
        await bus.publish(DailyReport("2024-03-01", 1))
        await bus.publish(DailyReport("2024-03-02", 3))
    assert reports.payloads() == [DailyReport("2024-03-01", 1), DailyReport("2024-03-02", 3)]
    assert all(isinstance(p, Payload) for p in reports.payloads())


async def test_expect_with_an_example_event_matches_by_payload() -> None:
    """expect(where=example) returns the published event with that payload."""
    async with Bus() as bus:
        waiting = expect(bus, DailyReport, where=DailyReport("2024-03-02", 3))
        await bus.publish(DailyReport("2024-03-01", 1))
        published = DailyReport("2024-03-02", 3)
        await bus.publish(published)
        assert await waiting is published


async def test_a_failed_expectation_says_which_field_differs() -> None:
    """When no event has the payload, the message lists the differing fields of the misses."""
    clock = FakeClock()
    async with Bus(clock=clock) as bus:
        waiting = expect(bus, DailyReport, where=DailyReport("2024-03-01", 1), timeout=1)
        await bus.publish(DailyReport("2024-03-01", 2))
        await clock.advance(2)
        with pytest.raises(AssertionError, match=r"count: 1 != 2"):
            await waiting


async def test_assert_published_takes_an_example_event() -> None:
    """assert_published(where=example) finds the event with that payload."""
    async with Bus() as bus:
        reports = capture(bus, DailyReport)
        await bus.publish(DailyReport("2024-03-01", 1))
        assert_published(reports, DailyReport, where=DailyReport("2024-03-01", 1), count=1)


def test_an_example_of_another_class_is_refused() -> None:
    """An example event of a class not asked about is a TypeError naming both."""
    with pytest.raises(
        TypeError, match="example WeeklyReport, but the events asked about are DailyReport"
    ):
        capture(Bus(), DailyReport, where=WeeklyReport("2024-03-01", 1))


def test_a_failed_payload_assertion_lists_the_differing_fields() -> None:
    """The plugin explains ``payload(got) == Event(...)`` by the fields that differ."""
    from eventbus.testing._plugin import pytest_assertrepr_compare

    lines = pytest_assertrepr_compare(
        "==", payload(DailyReport("2024-03-01", 1)), DailyReport("2024-03-01", 7)
    )
    assert lines is not None
    assert lines[1:] == ["payloads differ (left != right):", "count: 1 != 7"]
    assert pytest_assertrepr_compare("==", 1, 2) is None
