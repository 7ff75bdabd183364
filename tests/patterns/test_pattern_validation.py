"""Invalid patterns raise PatternError naming the JSON path, what is wrong and the fix."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from eventbus import EventBusError, PatternError
from eventbus.patterns import Pattern


def rejects(spec: Any, message: str) -> PatternError:
    """Assert that *spec* is rejected with an error that starts with *message*."""
    with pytest.raises(PatternError, match="^" + re.escape(message)) as info:
        Pattern(spec)
    return info.value


def test_pattern_error_is_a_value_error() -> None:
    """Callers that catch ValueError or EventBusError see pattern errors."""
    error = rejects({"key": "k"}, "where.key:")
    assert isinstance(error, ValueError)
    assert isinstance(error, EventBusError)


def test_error_carries_path_and_reason() -> None:
    """The error has the path and the bare reason as attributes."""
    error = rejects({"detail": {"key": "k"}}, "where.detail.key:")
    assert error.path == "where.detail.key"
    assert error.reason == 'expected an array of values, e.g. ["k"]'


# --------------------------------------------------------------------------- structure


def test_pattern_must_be_an_object() -> None:
    """A list, string or number is not a pattern."""
    rejects(["a"], "where: a pattern must be a JSON object")
    rejects(5, "where: a pattern must be a JSON object")


def test_empty_pattern_is_rejected() -> None:
    """EventBridge rejects empty objects; the message says how to receive everything."""
    rejects({}, "where: the pattern is empty; name at least one field")


def test_empty_nested_object_is_rejected() -> None:
    """A nested object must name a field too."""
    rejects({"detail": {}}, "where.detail: empty object")


def test_bare_scalar_leaf_says_to_use_an_array() -> None:
    """A bare value is rejected as EventBridge does, with the array to write instead."""
    rejects({"key": "k"}, 'where.key: expected an array of values, e.g. ["k"]')
    rejects({"size": 5}, "where.size: expected an array of values, e.g. [5]")
    rejects({"user": None}, "where.user: expected an array of values, e.g. [null]")


def test_set_leaf_says_to_use_a_list() -> None:
    """A Python set is not a JSON array."""
    rejects(
        {"key": {"a"}},
        'where.key: expected an array of values, got a set; write the values as a list, e.g. ["a"]',
    )


def test_empty_array_is_rejected() -> None:
    """An empty array would match nothing."""
    rejects({"key": []}, "where.key: empty array; it would match nothing")


def test_nested_arrays_are_rejected() -> None:
    """Alternatives cannot be arrays."""
    rejects({"key": ["a", ["b"]]}, "where.key[1]: arrays cannot be nested")


def test_field_names_must_be_strings() -> None:
    """Keys of a pattern are JSON strings."""
    rejects({1: ["a"]}, "where: field names must be strings, got 1")


def test_odd_field_names_are_quoted_in_paths() -> None:
    """Paths quote field names that are not simple identifiers."""
    rejects({"detail": {"a/b c": "x"}}, 'where.detail["a/b c"]: expected an array')
    # A dotted name is a path to a nested field, and the message says which.
    rejects({"detail": {"a.b c": "x"}}, 'where.detail.a["b c"]: expected an array')


def test_dashed_field_names_stay_readable_in_paths() -> None:
    """Dashes are common in EventBridge field names and need no quoting."""
    rejects({"detail-type": "x"}, "where.detail-type: expected an array")


def test_nan_is_not_a_json_number() -> None:
    """NaN and infinities are rejected."""
    rejects({"n": [float("nan")]}, "where.n[0]: nan is not a JSON number")
    rejects({"n": [1, float("inf")]}, "where.n[1]: inf is not a JSON number")


def test_datetime_value_suggests_its_iso_string() -> None:
    """A datetime in a pattern points at the string form that would match."""
    rejects(
        {"time": [datetime(2024, 1, 1)]},
        'where.time[0]: a datetime is not a JSON value; write its ISO-8601 string, e.g. ["2024-01-01T00:00:00"]',
    )


def test_other_python_values_are_rejected() -> None:
    """Values that are not JSON cannot appear in a pattern."""
    rejects({"data": [b"x"]}, "where.data[0]: bytes values are not JSON")


def test_invalid_json_text() -> None:
    """JSON text that does not parse is a PatternError."""
    rejects('{"a": [1', "where: the pattern is not valid JSON")


def test_json_text_must_hold_an_object() -> None:
    """JSON text of an array is not a pattern."""
    rejects("[1]", "where: a pattern must be a JSON object")


# --------------------------------------------------------------------------- operators


def test_unknown_operator_lists_operators_and_suggests_one() -> None:
    """A misspelt operator is named, with the list of operators and a guess."""
    rejects(
        {"key": [{"prefixx": "a"}]},
        'where.key[0]: unknown operator "prefixx"; expected one of prefix, suffix, anything-but, '
        'numeric, exists, equals-ignore-case, wildcard, cidr; did you mean "prefix"?',
    )


def test_unknown_operator_path_counts_alternatives() -> None:
    """The path points at the offending alternative."""
    rejects({"key": ["a", {"sufix": "b"}]}, 'where.key[1]: unknown operator "sufix"')


def test_operator_object_with_two_keys() -> None:
    """An operator object holds one operator."""
    rejects(
        {"key": [{"prefix": "a", "suffix": "z"}]},
        "where.key[0]: an operator object has exactly one key, got 2 (prefix, suffix)",
    )


def test_empty_operator_object() -> None:
    """``{}`` in a field's array is not an operator."""
    rejects({"key": [{}]}, "where.key[0]: empty operator object")


def test_operator_outside_an_array_is_explained() -> None:
    """``"key": {"prefix": "x"}`` shows where the operator goes."""
    rejects(
        {"key": {"prefix": "x"}},
        'where.key.prefix: "prefix" is an operator, and operators go inside the field\'s array: '
        '"key": [{"prefix": "x"}]',
    )


def test_prefix_takes_a_string() -> None:
    """``prefix`` rejects numbers and other values."""
    rejects({"key": [{"prefix": 5}]}, "where.key[0].prefix: prefix takes a string")


def test_prefix_equals_ignore_case_takes_a_string() -> None:
    """The case-insensitive prefix form takes a string."""
    rejects(
        {"key": [{"prefix": {"equals-ignore-case": 5}}]},
        "where.key[0].prefix.equals-ignore-case: equals-ignore-case takes a string, got 5",
    )


def test_prefix_object_must_be_equals_ignore_case() -> None:
    """``prefix`` only accepts the ``equals-ignore-case`` object form."""
    rejects(
        {"key": [{"prefix": {"wildcard": "a"}}]}, "where.key[0].prefix: prefix takes a string or"
    )


def test_suffix_takes_a_string() -> None:
    """``suffix`` rejects null."""
    rejects({"key": [{"suffix": None}]}, "where.key[0].suffix: suffix takes a string")


def test_equals_ignore_case_takes_a_string() -> None:
    """``equals-ignore-case`` rejects arrays outside anything-but."""
    rejects(
        {"key": [{"equals-ignore-case": ["a"]}]},
        "where.key[0].equals-ignore-case: equals-ignore-case takes a string",
    )


def test_exists_takes_a_boolean() -> None:
    """``exists`` is true or false."""
    rejects({"e": [{"exists": "yes"}]}, 'where.e[0].exists: exists takes true or false, got "yes"')


def test_cidr_must_be_a_block() -> None:
    """An invalid CIDR block is rejected with an example."""
    rejects(
        {"ip": [{"cidr": "10.0.0.0/33"}]}, 'where.ip[0].cidr: "10.0.0.0/33" is not a CIDR block'
    )


def test_cidr_takes_a_string() -> None:
    """``cidr`` takes a string."""
    rejects({"ip": [{"cidr": 10}]}, "where.ip[0].cidr: cidr takes a string, got 10")


# --------------------------------------------------------------------------- wildcard


def test_wildcard_rejects_consecutive_stars() -> None:
    """``**`` is not allowed."""
    rejects(
        {"k": [{"wildcard": "a**b"}]},
        'where.k[0].wildcard: consecutive "*" at position 1 are not allowed',
    )


def test_wildcard_rejects_unknown_escapes() -> None:
    """Only ``\\*`` and ``\\\\`` are escapes."""
    rejects({"k": [{"wildcard": "a\\b"}]}, "where.k[0].wildcard: invalid escape at position 1")


def test_wildcard_rejects_a_trailing_backslash() -> None:
    """A backslash must escape something."""
    rejects({"k": [{"wildcard": "ab\\"}]}, "where.k[0].wildcard: invalid escape at position 2")


def test_wildcard_takes_a_string() -> None:
    """``wildcard`` takes a string."""
    rejects({"k": [{"wildcard": 3}]}, "where.k[0].wildcard: wildcard takes a string, got 3")


# --------------------------------------------------------------------------- anything-but


def test_anything_but_rejects_booleans_and_null() -> None:
    """anything-but takes strings or numbers only."""
    rejects({"s": [{"anything-but": True}]}, "where.s[0].anything-but: true is not supported")
    rejects({"s": [{"anything-but": None}]}, "where.s[0].anything-but: null is not supported")
    rejects(
        {"s": [{"anything-but": ["a", False]}]},
        "where.s[0].anything-but[1]: false is not supported",
    )


def test_anything_but_rejects_mixed_types() -> None:
    """A list of strings and numbers is rejected."""
    rejects(
        {"s": [{"anything-but": ["a", 1]}]}, "where.s[0].anything-but: mixes strings and numbers"
    )


def test_anything_but_rejects_an_empty_list() -> None:
    """An empty exclusion list is rejected."""
    rejects({"s": [{"anything-but": []}]}, "where.s[0].anything-but: empty array")


def test_anything_but_rejects_unsupported_inner_operators() -> None:
    """Only prefix, suffix, equals-ignore-case and wildcard nest in anything-but."""
    rejects(
        {"s": [{"anything-but": {"numeric": [">", 1]}}]},
        'where.s[0].anything-but: anything-but cannot hold "numeric"; inside an object it takes '
        "one of prefix, suffix, equals-ignore-case, wildcard",
    )


def test_anything_but_rejects_an_empty_prefix() -> None:
    """An empty anything-but prefix would exclude every string."""
    rejects(
        {"s": [{"anything-but": {"prefix": ""}}]},
        "where.s[0].anything-but.prefix: prefix takes a non-empty string",
    )


def test_anything_but_checks_inner_wildcards() -> None:
    """Wildcards inside anything-but follow the wildcard rules."""
    rejects(
        {"s": [{"anything-but": {"wildcard": ["ok", "a**"]}}]},
        "where.s[0].anything-but.wildcard: consecutive",
    )


def test_anything_but_equals_ignore_case_takes_strings() -> None:
    """The case-insensitive exclusion list holds strings."""
    rejects(
        {"s": [{"anything-but": {"equals-ignore-case": [1]}}]},
        "where.s[0].anything-but.equals-ignore-case[0]: equals-ignore-case takes strings, got 1",
    )


# --------------------------------------------------------------------------- numeric


def test_numeric_takes_an_array() -> None:
    """``numeric`` takes an array of comparisons."""
    rejects({"n": [{"numeric": 5}]}, 'where.n[0].numeric: numeric takes an array such as [">", 0]')


def test_numeric_takes_one_or_two_comparisons() -> None:
    """Arrays of other lengths are rejected."""
    rejects({"n": [{"numeric": [">"]}]}, "where.n[0].numeric: numeric takes an array")
    rejects(
        {"n": [{"numeric": [">", 1, "<", 2, "<", 3]}]}, "where.n[0].numeric: numeric takes an array"
    )


def test_numeric_rejects_unknown_comparisons() -> None:
    """Comparisons are <, <=, =, >, >=."""
    rejects(
        {"n": [{"numeric": ["=>", 5]}]},
        'where.n[0].numeric: unknown comparison "=>" at position 0; expected one of <, <=, =, >, >=',
    )


def test_numeric_operands_are_numbers() -> None:
    """Strings and booleans are not numeric operands."""
    rejects(
        {"n": [{"numeric": [">", "5"]}]},
        'where.n[0].numeric: ">" must be followed by a number, got "5"',
    )
    rejects(
        {"n": [{"numeric": [">", True]}]},
        'where.n[0].numeric: ">" must be followed by a number, got true',
    )


def test_numeric_operands_are_limited_to_five_billion() -> None:
    """EventBridge matches numbers from -5e9 to 5e9."""
    rejects(
        {"n": [{"numeric": [">", 5_000_000_001]}]}, "where.n[0].numeric: 5000000001 is out of range"
    )
    Pattern({"n": [{"numeric": [">=", -5e9, "<=", 5e9]}]})


def test_numeric_operands_have_six_decimal_places_at_most() -> None:
    """EventBridge is precise to six digits after the decimal point."""
    rejects(
        {"n": [{"numeric": [">", 0.0000001]}]}, "where.n[0].numeric: 1e-07 has more than 6 digits"
    )
    Pattern({"n": [{"numeric": [">", 0.000001]}]})


def test_numeric_range_puts_the_lower_bound_first() -> None:
    """``["<", 5, ">", 0]`` is rejected with the right order."""
    rejects(
        {"n": [{"numeric": ["<", 5, ">", 0]}]},
        'where.n[0].numeric: put the lower bound first: [">", 0, "<", 5]',
    )


def test_numeric_range_must_not_be_empty() -> None:
    """A range whose bounds are the wrong way round is rejected, with the fix."""
    rejects(
        {"n": [{"numeric": [">", 5, "<=", 0]}]},
        'where.n[0].numeric: the range is empty: no number is > 5 and <= 0; did you mean [">", 0, "<", 5]?',
    )


def test_numeric_range_of_one_number_suggests_equals() -> None:
    """``[">=", 5, "<=", 5]`` is ``["=", 5]``."""
    rejects(
        {"n": [{"numeric": [">=", 5, "<=", 5]}]},
        'where.n[0].numeric: the range holds only 5; write it as ["=", 5]',
    )


def test_numeric_equals_takes_one_number() -> None:
    """``=`` cannot start a range."""
    rejects({"n": [{"numeric": ["=", 5, "<", 6]}]}, 'where.n[0].numeric: "=" takes a single number')


def test_numeric_second_comparison_is_an_upper_bound() -> None:
    """The second comparison of a range is < or <=."""
    rejects(
        {"n": [{"numeric": [">", 5, ">", 6]}]},
        'where.n[0].numeric: the second comparison must be an upper bound, "<" or "<=", got ">"',
    )


# --------------------------------------------------------------------------- $or


def test_or_takes_an_array() -> None:
    """``$or`` holds an array of sub-patterns."""
    rejects({"$or": {"a": ["x"]}}, "where.$or: expected an array of at least 2 sub-patterns")


def test_or_needs_two_alternatives() -> None:
    """``$or`` with one alternative is rejected."""
    rejects({"$or": [{"a": ["x"]}]}, "where.$or: expected an array of at least 2 sub-patterns")


def test_or_alternatives_are_objects() -> None:
    """Each ``$or`` alternative is an object."""
    rejects(
        {"$or": [{"a": ["x"]}, "b"]}, 'where.$or[1]: expected an object (a sub-pattern), got "b"'
    )


def test_or_alternatives_are_not_empty() -> None:
    """An empty ``$or`` alternative is rejected."""
    rejects({"$or": [{"a": ["x"]}, {}]}, "where.$or[1]: empty object")


def test_or_alternatives_do_not_use_operators_as_fields() -> None:
    """Operator names cannot be fields inside ``$or``."""
    rejects(
        {"$or": [{"prefix": ["x"]}, {"b": ["y"]}]},
        'where.$or[0].prefix: "prefix" is an operator, not a field',
    )


def test_errors_inside_or_name_the_alternative() -> None:
    """Paths go through ``$or[i]``."""
    rejects({"$or": [{"a": ["x"]}, {"b": [{"numeric": [">"]}]}]}, "where.$or[1].b[0].numeric:")


def test_or_combinations_are_limited() -> None:
    """Nested ``$or`` multiply out; more than 1,000 combinations is rejected."""
    spec = {
        "$or": [{"a": [str(i)]} for i in range(11)],
        "b": {
            "$or": [{"c": [str(i)]} for i in range(10)],
            "d": {"$or": [{"e": [str(i)]} for i in range(10)]},
        },
    }
    rejects(
        spec,
        "where: the $or alternatives multiply out to 1,100 combinations, more than the limit of 1,000",
    )


def test_or_combinations_up_to_the_limit_are_accepted() -> None:
    """Exactly 1,000 combinations is fine."""
    Pattern(
        {
            "$or": [{"a": [str(i)]} for i in range(10)],
            "b": {
                "$or": [{"c": [str(i)]} for i in range(10)],
                "d": {"$or": [{"e": [str(i)]} for i in range(10)]},
            },
        }
    )
