"""Tests for DynamoDB AttributeValue <-> plain Python conversion in eventbus.aws."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventbus import SerializationError
from eventbus.aws import (
    from_attribute_value,
    from_dynamodb_item,
    to_attribute_value,
    to_dynamodb_item,
)

numbers = st.one_of(
    st.integers(),
    st.decimals(allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(st.none(), st.booleans(), st.text(), numbers, st.binary())
sets = st.one_of(
    st.sets(st.text(), min_size=1),
    st.sets(numbers, min_size=1),
    st.sets(st.binary(), min_size=1),
)
values = st.recursive(
    scalars | sets,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=25,
)
items = st.dictionaries(st.text(min_size=1), values, max_size=6)


@given(values)
def test_plain_to_attribute_value_and_back(value: Any) -> None:
    """plain -> AttributeValue -> plain gives an equal value."""
    assert from_attribute_value(to_attribute_value(value)) == value


@given(values)
def test_attribute_value_is_json_and_a_fixed_point(value: Any) -> None:
    """An AttributeValue survives JSON and converting it back and forth again."""
    av = to_attribute_value(value)
    reread = json.loads(json.dumps(av, allow_nan=False))
    assert reread == av
    assert to_attribute_value(from_attribute_value(reread)) == av


@given(items)
def test_items_round_trip(item: dict[str, Any]) -> None:
    """A whole item converts to DynamoDB JSON and back."""
    assert from_dynamodb_item(to_dynamodb_item(item)) == item


@pytest.mark.parametrize(
    ("av", "plain"),
    [
        ({"S": "text"}, "text"),
        ({"N": "-12.50"}, Decimal("-12.50")),
        ({"B": "AAEC"}, b"\x00\x01\x02"),
        ({"BOOL": False}, False),
        ({"NULL": True}, None),
        ({"L": [{"S": "a"}, {"N": "1"}]}, ["a", Decimal(1)]),
        ({"M": {"k": {"BOOL": True}}}, {"k": True}),
        ({"SS": ["a", "b"]}, {"a", "b"}),
        ({"NS": ["1", "2.5"]}, {Decimal(1), Decimal("2.5")}),
        ({"BS": ["AQ==", "Ag=="]}, {b"\x01", b"\x02"}),
    ],
)
def test_each_type(av: dict[str, Any], plain: Any) -> None:
    """Each AttributeValue type maps to its plain Python type."""
    value = from_attribute_value(av)
    assert value == plain
    assert type(value) is type(plain)


def test_numbers_keep_their_digits() -> None:
    """N text becomes a Decimal with the same digits, and renders back unchanged."""
    assert to_attribute_value(from_attribute_value({"N": "1.500"})) == {"N": "1.500"}


def test_booleans_are_not_numbers() -> None:
    """True renders as BOOL, not N."""
    assert to_attribute_value(True) == {"BOOL": True}


def test_floats_render_by_shortest_repr() -> None:
    """Floats render as N by their shortest repr and read back as Decimal."""
    assert to_attribute_value(0.1) == {"N": "0.1"}
    assert from_attribute_value({"N": "0.1"}) == Decimal("0.1")


def test_sets_render_sorted() -> None:
    """Set members are written in sorted order, so output is deterministic."""
    assert to_attribute_value({3, Decimal("1.5"), -2}) == {"NS": ["-2", "1.5", "3"]}
    assert to_attribute_value(frozenset({"b", "a"})) == {"SS": ["a", "b"]}


def test_tuples_and_bytearrays() -> None:
    """Tuples render as L and bytearrays as B."""
    assert to_attribute_value((1, bytearray(b"\x01"))) == {"L": [{"N": "1"}, {"B": "AQ=="}]}


@pytest.mark.parametrize(
    ("av", "message"),
    [
        (
            {"S": "a", "N": "1"},
            r"^value: an AttributeValue has exactly one type key .* found N, S$",
        ),
        ({}, r"^value: an AttributeValue has exactly one type key .* found none$"),
        ({"X": 1}, r"^value: unknown AttributeValue type 'X'"),
        ({"N": "Infinity"}, r"^value\.N: 'Infinity' is not a finite number$"),
        ({"N": 5}, r"^value\.N: expected a string, got a number$"),
        ({"B": "***"}, r"^value\.B: '\*\*\*' is not valid base64$"),
        ({"BOOL": "true"}, r"^value\.BOOL: expected true or false, got a string$"),
        ({"NULL": False}, r"^value\.NULL: expected true, got False$"),
        ({"NS": ["1", "x"]}, r"^value\.NS\[1\]: 'x' is not a number$"),
        ({"L": {}}, r"^value\.L: expected an array, got an object$"),
    ],
)
def test_malformed_attribute_values(av: dict[str, Any], message: str) -> None:
    """Malformed AttributeValues raise SerializationError naming the path."""
    with pytest.raises(SerializationError, match=message):
        from_attribute_value(av)


def test_nested_error_path() -> None:
    """Errors deep inside an item name the full path."""
    with pytest.raises(
        SerializationError, match=r"^item\.a\.L\[0\]\.M\.b\.N: 'x' is not a number$"
    ):
        from_dynamodb_item({"a": {"L": [{"M": {"b": {"N": "x"}}}]}})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {1, "a"},
            r"^value: a set must hold only strings, only numbers or only bytes; found int, str$",
        ),
        ({True}, r"^value: a set must hold only"),
        (Decimal("NaN"), r"^value: Decimal\('NaN'\) is not a finite number"),
        (float("inf"), r"^value: inf is not a finite number"),
        (object(), r"^value: object cannot be stored in DynamoDB$"),
        ({1: "a"}, r"^value: attribute names must be strings"),
        ([1, [{1, "a"}]], r"^value\[1\]\[0\]: a set must hold only"),
    ],
)
def test_unrenderable_values(value: Any, message: str) -> None:
    """Values DynamoDB cannot store raise SerializationError naming the path."""
    with pytest.raises(SerializationError, match=message):
        to_attribute_value(value)
