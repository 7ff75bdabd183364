"""The lazy envelope: cheap to build, the same values on every read, unique ids."""

from __future__ import annotations

import multiprocessing
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest

from eventbus import Event
from eventbus._events import _new_id


@attrs.frozen
class Reading(Event):
    sensor: str
    value: float = 0.0
    tags: tuple[str, ...] = attrs.field(factory=tuple)


def test_id_is_a_uuid4_hex_and_stable_across_reads() -> None:
    """An event's id is made once: a version 4 UUID in hex, the same on every read."""
    event = Reading("s1")
    first = event.id
    assert uuid.UUID(hex=first).version == 4
    assert event.id == first


def test_time_is_the_moment_of_construction_in_utc() -> None:
    """The default time is taken when the event is built, aware and in UTC, stable across reads."""
    before = datetime.now(UTC)
    event = Reading("s1")
    after = datetime.now(UTC)
    assert before - timedelta(milliseconds=1) <= event.time <= after + timedelta(milliseconds=1)
    assert event.time.tzinfo is UTC
    assert event.time is event.time


def test_given_time_is_normalised_to_utc() -> None:
    """A time given at construction is converted to UTC."""
    plus_two = timezone(timedelta(hours=2))
    event = Reading("s1", time=datetime(2024, 3, 1, 12, tzinfo=plus_two))
    assert event.time == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert event.time.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "error"), [("2024-03-01", TypeError), (datetime(2024, 3, 1), ValueError)]
)
def test_bad_time_fails_at_construction(value: object, error: type[Exception]) -> None:
    """A time that is not an aware datetime is refused when the event is built, not when read."""
    with pytest.raises(error, match=r"Event\.time"):
        Reading("s1", time=value)  # type: ignore[arg-type]


def test_unknown_keyword_is_refused() -> None:
    """A keyword that is neither a field nor an envelope field raises TypeError."""
    with pytest.raises(TypeError, match="unexpected keyword argument 'sorce'"):
        Reading("s1", sorce="x")  # type: ignore[call-arg]


def test_envelope_defaults_and_given_values_read_back() -> None:
    """Envelope fields not given read as their defaults; given ones as given."""
    plain = Reading("s1")
    assert (plain.source, plain.correlation_id, plain.causation_id) == ("", None, None)
    given = Reading("s1", 2.5, id="abc", source="lab", correlation_id="c", causation_id="d")
    assert (given.id, given.source, given.correlation_id, given.causation_id) == (
        "abc",
        "lab",
        "c",
        "d",
    )
    assert given.value == 2.5


def test_factories_give_each_event_its_own_value() -> None:
    """A field with a factory default gets a fresh value per event."""
    assert Reading("a").tags == ()
    assert Reading("b", tags=("x",)).tags == ("x",)


def test_evolve_and_equality_see_the_materialised_envelope() -> None:
    """attrs.evolve keeps the id and time; events with the same envelope and fields are equal."""
    event = Reading("s1")
    copy = attrs.evolve(event, value=1.0)
    assert (copy.id, copy.time) == (event.id, event.time)
    assert attrs.evolve(copy, value=0.0) == event


def test_subclass_with_a_converter_keeps_attrs_init() -> None:
    """A subclass whose fields convert or validate still converts and validates."""

    @attrs.frozen
    class Scaled(Event):
        value: int = attrs.field(converter=int)

    assert Scaled("3").value == 3


def test_post_init_runs() -> None:
    """__attrs_post_init__ still runs after construction."""
    seen: list[str] = []

    @attrs.frozen
    class Checked(Event):
        name: str

        def __attrs_post_init__(self) -> None:
            seen.append(self.name)

    Checked("x")
    assert seen == ["x"]


def test_ids_are_unique_in_a_large_sample() -> None:
    """Many ids in a row are all different (and not sequential)."""
    ids = [_new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)


def _child_ids(queue: multiprocessing.Queue[list[str]]) -> None:
    queue.put([_new_id() for _ in range(300)])


@pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_makes_ids_of_its_own() -> None:
    """A forked child does not hand out the ids its parent has buffered."""
    _new_id()  # the parent has a batch of ids ready
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    child = context.Process(target=_child_ids, args=(queue,))
    child.start()
    theirs = set(queue.get(timeout=30))
    child.join(timeout=30)
    ours = {_new_id() for _ in range(300)}
    assert not ours & theirs
