"""Pattern.bind(): field names are checked against the event classes a subscription sees."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import attrs
import pytest

from eventbus import (
    Event,
    ObjectCreated,
    ObjectRemoved,
    PatternError,
    TableChange,
    TopicMessage,
)
from eventbus.patterns import Pattern


@attrs.frozen
class Address:
    city: str
    zip: str = ""


@attrs.frozen
class CustomerSignedUp(Event):
    name: str
    address: Address
    previous: tuple[Address, ...] = ()
    billing: Address | None = None
    extra: Any = None
    labels: dict[str, str] = attrs.field(factory=dict)
    notes: Mapping[str, Any] = attrs.field(factory=dict)


@dataclasses.dataclass
class Reading:
    sensor: str
    value: float


def rejects(spec: Mapping[str, Any], types: type | tuple[type, ...], message: str) -> None:
    with pytest.raises(PatternError, match="^" + re.escape(message)):
        Pattern(spec).bind(types)


def test_known_fields_pass() -> None:
    """A pattern naming real fields binds without error."""
    Pattern({"bucket": ["photos"], "size": [{"numeric": [">", 0]}]}).bind((ObjectCreated,))


def test_unknown_field_suggests_the_closest_one() -> None:
    """A typo gets a did-you-mean hint."""
    rejects(
        {"kye": ["x"]},
        (ObjectCreated,),
        'where.kye: ObjectCreated has no field "kye"; did you mean "key"?',
    )


def test_unknown_field_without_a_close_match_lists_the_fields() -> None:
    """When nothing is close, the message lists the class's fields."""
    rejects(
        {"colour": ["red"]},
        (ObjectRemoved,),
        'where.colour: ObjectRemoved has no field "colour"; its fields are bucket, causation_id, '
        "correlation_id, id, key, reason, sequencer, source, time, traceparent, tracestate, "
        "version_id",
    )


def test_bind_accepts_a_single_class() -> None:
    """``bind(cls)`` is ``bind((cls,))``."""
    rejects({"kye": ["x"]}, ObjectCreated, 'where.kye: ObjectCreated has no field "kye"')


def test_envelope_fields_exist_on_every_event() -> None:
    """``source``, ``id``, ``time``... are fields of every event, Event itself included."""
    Pattern({"source": ["shop"], "correlation_id": [{"exists": True}]}).bind((Event, ObjectCreated))


def test_field_must_exist_on_every_bound_class() -> None:
    """A subscription to (A, B) receives both, so each must have the field."""
    rejects(
        {"size": [{"numeric": [">", 0]}]},
        (ObjectCreated, ObjectRemoved),
        'where.size: ObjectRemoved has no field "size"',
    )


def test_field_on_base_class_only_is_checked_against_the_base() -> None:
    """Binding to a base class checks the base's own fields."""
    rejects({"bucket": ["photos"]}, (Event,), 'where.bucket: Event has no field "bucket"')


def test_or_needs_one_fitting_alternative_per_class() -> None:
    """Inside ``$or`` each class needs one alternative whose fields it has."""
    Pattern({"$or": [{"size": [0]}, {"topic": ["t"]}]}).bind((ObjectCreated, TopicMessage))


def test_or_reports_the_first_alternative_when_none_fits() -> None:
    """When no ``$or`` alternative fits a class, the first one's error is reported."""
    rejects(
        {"$or": [{"sise": [0]}, {"topik": ["t"]}]},
        (ObjectCreated,),
        'where.$or[0].sise: ObjectCreated has no field "sise"; did you mean "size"?',
    )


def test_nested_attrs_fields_are_checked() -> None:
    """Nested patterns are checked against nested attrs classes."""
    rejects(
        {"address": {"ctiy": ["Paris"]}},
        (CustomerSignedUp,),
        'where.address.ctiy: Address has no field "ctiy"; did you mean "city"?',
    )


def test_optional_and_tuple_fields_of_attrs_are_checked() -> None:
    """``Address | None`` and ``tuple[Address, ...]`` are followed to Address."""
    rejects(
        {"billing": {"town": ["x"]}},
        (CustomerSignedUp,),
        'where.billing.town: Address has no field "town"',
    )
    rejects(
        {"previous": {"cty": ["x"]}},
        (CustomerSignedUp,),
        'where.previous.cty: Address has no field "cty"',
    )
    Pattern({"billing": {"city": ["x"]}, "previous": {"zip": ["1"]}}).bind((CustomerSignedUp,))


def test_mapping_fields_accept_any_key() -> None:
    """Below a mapping-typed field any key is accepted."""
    Pattern({"attributes": {"anything": ["x"]}}).bind((TopicMessage,))
    Pattern({"labels": {"a": ["x"]}, "notes": {"b": {"c": ["y"]}}}).bind((CustomerSignedUp,))
    Pattern({"new_image": {"status": ["paid"]}}).bind((TableChange,))


def test_any_fields_accept_any_key() -> None:
    """Below an ``Any`` field any key is accepted."""
    Pattern({"extra": {"whatever": ["x"]}}).bind((CustomerSignedUp,))


def test_nested_pattern_on_a_plain_value_is_rejected() -> None:
    """A nested pattern under a str field could never match."""
    rejects(
        {"key": {"x": ["a"]}},
        (ObjectCreated,),
        "where.key: ObjectCreated.key holds a plain value (str), not an object, so a nested "
        'pattern can never match it; match the value with an array, e.g. "key": ["..."]',
    )


def test_dataclasses_are_checked_too() -> None:
    """Dataclass events get the same check."""
    rejects(
        {"sensr": ["a"]},
        (Reading,),
        'where.sensr: Reading has no field "sensr"; did you mean "sensor"?',
    )


def test_other_classes_are_not_checked() -> None:
    """Plain classes and dict have no declared fields to check against."""
    Pattern({"anything": ["x"]}).bind((dict, object))


def test_bind_keeps_matching_unchanged() -> None:
    """Binding only checks; the pattern matches the same documents afterwards."""
    pattern = Pattern({"bucket": ["photos"]})
    pattern.bind((ObjectCreated,))
    assert pattern.matches(ObjectCreated("photos", "k", 1, "e"))
    assert pattern.matches({"bucket": "photos"})
    assert not pattern.matches(ObjectCreated("docs", "k", 1, "e"))
