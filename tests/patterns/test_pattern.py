"""Pattern matching semantics, operator by operator (the cases EventBridge documents)."""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest

from eventbus import (
    LogRecord,
    ObjectCreated,
    PatternError,
    ScheduledEvent,
    TableChange,
    TopicMessage,
)
from eventbus.patterns import Pattern

# An instance state-change event in EventBridge's envelope, used across the module.
EC2_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "111122223333",
    "time": "2017-10-02T16:24:49Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0"],
    "detail": {
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
        "instance-id": "i-0123456789abcdef0",
        "state": "running",
    },
}


def matches(spec: Mapping[str, Any], document: object) -> bool:
    return Pattern(spec).matches(document)


# --------------------------------------------------------------------------- exact values


def test_exact_string_matches_the_same_string() -> None:
    """A field's array with one string matches that string."""
    assert matches({"source": ["aws.ec2"]}, EC2_EVENT)


def test_exact_string_is_case_sensitive() -> None:
    """Exact matching compares strings character by character, case included."""
    assert not matches({"source": ["AWS.EC2"]}, EC2_EVENT)


def test_array_of_values_means_any_of_them() -> None:
    """Several values in a field's array are alternatives."""
    assert matches({"source": ["aws.fargate", "aws.ec2"]}, EC2_EVENT)
    assert not matches({"source": ["aws.fargate", "aws.s3"]}, EC2_EVENT)


def test_every_field_named_must_match() -> None:
    """Fields of a pattern are combined with AND."""
    assert matches({"source": ["aws.ec2"], "region": ["us-east-1"]}, EC2_EVENT)
    assert not matches({"source": ["aws.ec2"], "region": ["eu-west-1"]}, EC2_EVENT)


def test_fields_the_pattern_does_not_name_are_ignored() -> None:
    """A pattern only looks at the fields it names."""
    assert matches({"detail": {"state": ["running"]}}, EC2_EVENT)


def test_nested_object_matches_nested_fields() -> None:
    """A nested object in the pattern follows the nesting of the event."""
    assert matches(
        {"detail-type": [EC2_EVENT["detail-type"]], "detail": {"state": ["running"]}}, EC2_EVENT
    )
    assert not matches({"detail": {"state": ["stopped"]}}, EC2_EVENT)


def test_dotted_names_join_nested_fields() -> None:
    """EventBridge joins field names with dots: ``"detail.state"`` is ``state`` in ``detail``.

    In the pattern and in the event alike.
    """
    assert matches({"detail.state": ["running"]}, EC2_EVENT)
    assert not matches({"detail.state": ["stopped"]}, EC2_EVENT)
    assert matches({"detail.state": ["running"]}, {"detail.state": "running"})
    assert matches({"detail": {"state": ["running"]}}, {"detail.state": "running"})
    assert matches(
        {"detail": {"state": ["running"]}}, {"detail": {"state.x": 1, "state": "running"}}
    )
    assert not matches({"detail.state": [{"exists": False}]}, EC2_EVENT)
    assert matches({"a.b": [{"exists": False}]}, {"a": {"c": 1}})
    # Both spellings in one pattern are merged; the later one counts for the same field.
    assert matches({"detail": {"state": ["x"]}, "detail.state": ["running"]}, EC2_EVENT)
    assert matches(
        {"detail.state": ["running"], "detail": {"instance-id": [{"exists": True}]}}, EC2_EVENT
    )


def test_array_in_document_matches_when_any_element_matches() -> None:
    """An array in the event matches when it shares a value with the pattern's array."""
    pattern = {
        "resources": [
            "arn:aws:ec2:us-east-1:999999999999:instance/i-1",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0",
        ]
    }
    assert matches(pattern, EC2_EVENT)


def test_array_in_document_without_common_value_does_not_match() -> None:
    """An event array with no value in common with the pattern does not match."""
    assert not matches({"resources": ["arn:other"]}, EC2_EVENT)


def test_nested_arrays_in_document_are_flattened() -> None:
    """Arrays of arrays behave like one flat array."""
    assert matches({"tags": ["b"]}, {"tags": [["a"], [["b"]]]})


def test_missing_field_never_matches() -> None:
    """A field the event lacks matches no value (only ``exists: false``)."""
    assert not matches({"zone": ["us-east-1a"]}, EC2_EVENT)


def test_empty_string_matches_empty_string() -> None:
    """``[""]`` matches a field whose value is the empty string."""
    assert matches({"last_name": [""]}, {"last_name": ""})
    assert not matches({"last_name": [""]}, {"last_name": "Doe"})


def test_null_matches_null() -> None:
    """``[null]`` (``[None]``) matches a field whose value is null."""
    assert matches({"user": [None]}, {"user": None})


def test_null_does_not_match_a_missing_field() -> None:
    """A missing field is not null."""
    assert not matches({"user": [None]}, {})


def test_null_does_not_match_empty_string() -> None:
    """Null and the empty string are different values."""
    assert not matches({"user": [None]}, {"user": ""})
    assert not matches({"user": [""]}, {"user": None})


def test_boolean_matches_boolean() -> None:
    """``[true]`` matches true and not false."""
    assert matches({"enabled": [True]}, {"enabled": True})
    assert not matches({"enabled": [True]}, {"enabled": False})


def test_boolean_never_equals_a_number() -> None:
    """True is not 1, even though Python says ``True == 1``."""
    assert not matches({"flag": [True]}, {"flag": 1})
    assert not matches({"flag": [1]}, {"flag": True})
    assert not matches({"flag": [0]}, {"flag": False})


def test_numbers_compare_numerically() -> None:
    """300 and 3.0e2 are the same number."""
    assert matches({"x": [300]}, {"x": 3.0e2})
    assert matches({"x": [3.0e2]}, {"x": 300})
    assert matches({"x": [300]}, {"x": Decimal("3.00E+2")})


def test_decimal_and_float_compare_by_their_decimal_value() -> None:
    """The float 0.1 means the decimal 0.1, not its binary approximation."""
    assert matches({"x": [Decimal("0.1")]}, {"x": 0.1})
    assert matches({"x": [0.1]}, {"x": Decimal("0.10")})


def test_string_never_equals_a_number() -> None:
    """The string "300" is not the number 300."""
    assert not matches({"x": [300]}, {"x": "300"})
    assert not matches({"x": ["300"]}, {"x": 300})


# --------------------------------------------------------------------------- prefix, suffix


def test_prefix_matches_start_of_string() -> None:
    """``prefix`` matches strings starting with the operand."""
    assert matches({"time": [{"prefix": "2017-10-02"}]}, EC2_EVENT)
    assert not matches({"time": [{"prefix": "2017-10-03"}]}, EC2_EVENT)


def test_prefix_only_applies_to_strings() -> None:
    """``prefix`` never matches a number, even one whose digits start with it."""
    assert not matches({"count": [{"prefix": "12"}]}, {"count": 123})


def test_prefix_equals_ignore_case() -> None:
    """``prefix`` with ``equals-ignore-case`` ignores the case of the start."""
    spec = {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}
    assert matches(spec, {"service": "eventbridge"})
    assert matches(spec, {"service": "EVENTBRIDGE"})
    assert not matches(spec, {"service": "bridge"})


def test_suffix_matches_end_of_string() -> None:
    """``suffix`` matches strings ending with the operand."""
    assert matches({"FileName": [{"suffix": ".png"}]}, {"FileName": "photo.png"})
    assert not matches({"FileName": [{"suffix": ".png"}]}, {"FileName": "photo.PNG"})


def test_suffix_equals_ignore_case() -> None:
    """``suffix`` with ``equals-ignore-case`` ignores the case of the end."""
    spec = {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}
    assert matches(spec, {"FileName": "photo.PNG"})
    assert not matches(spec, {"FileName": "photo.jpg"})


def test_equals_ignore_case() -> None:
    """``equals-ignore-case`` matches the whole string in any case."""
    assert matches({"name": [{"equals-ignore-case": "alice"}]}, {"name": "ALICE"})
    assert not matches({"name": [{"equals-ignore-case": "alice"}]}, {"name": "alicia"})


# --------------------------------------------------------------------------- anything-but


def test_anything_but_a_string() -> None:
    """``anything-but`` with a string matches every other value."""
    spec = {"detail": {"state": [{"anything-but": "initializing"}]}}
    assert matches(spec, EC2_EVENT)
    assert not matches(spec, {"detail": {"state": "initializing"}})


def test_anything_but_a_number() -> None:
    """``anything-but`` with a number compares numerically."""
    spec = {"detail": {"x-limit": [{"anything-but": 123}]}}
    assert matches(spec, EC2_EVENT)
    assert not matches(spec, {"detail": {"x-limit": 123.0}})


def test_anything_but_a_list_of_strings() -> None:
    """``anything-but`` with a list excludes each value in it."""
    spec = {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}
    assert matches(spec, EC2_EVENT)
    assert not matches(spec, {"detail": {"state": "overloaded"}})


def test_anything_but_a_list_of_numbers() -> None:
    """``anything-but`` with numbers excludes those numbers."""
    spec = {"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}
    assert matches(spec, EC2_EVENT)
    assert not matches(spec, {"detail": {"x-limit": 2e2}})


def test_anything_but_prefix() -> None:
    """``anything-but`` ``prefix`` matches strings without that prefix."""
    spec = {"Region": [{"anything-but": {"prefix": "us-"}}]}
    assert matches(spec, {"Region": "eu-west-1"})
    assert not matches(spec, {"Region": "us-east-1"})


def test_anything_but_suffix() -> None:
    """``anything-but`` ``suffix`` matches strings without that suffix."""
    spec = {"FileName": [{"anything-but": {"suffix": ".png"}}]}
    assert matches(spec, {"FileName": "a.jpg"})
    assert not matches(spec, {"FileName": "a.png"})


def test_anything_but_equals_ignore_case() -> None:
    """``anything-but`` ``equals-ignore-case`` excludes every casing of the values."""
    spec = {"state": [{"anything-but": {"equals-ignore-case": ["initializing", "stopped"]}}]}
    assert matches(spec, {"state": "running"})
    assert not matches(spec, {"state": "INITIALIZING"})
    assert not matches(spec, {"state": "Stopped"})


def test_anything_but_wildcard() -> None:
    """``anything-but`` ``wildcard`` matches strings the wildcard does not."""
    spec = {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}
    assert matches(spec, {"FilePath": "/usr/bin/tool"})
    assert not matches(spec, {"FilePath": "/usr/lib/libc.so"})


def test_anything_but_a_list_of_wildcards() -> None:
    """``anything-but`` ``wildcard`` may list several wildcards."""
    spec = {"FilePath": [{"anything-but": {"wildcard": ["*/lib/*", "*/bin/*"]}}]}
    assert matches(spec, {"FilePath": "/etc/hosts"})
    assert not matches(spec, {"FilePath": "/usr/bin/tool"})


def test_anything_but_does_not_match_a_missing_field() -> None:
    """``anything-but`` needs the field to be there."""
    assert not matches({"state": [{"anything-but": "stopped"}]}, {})


def test_anything_but_matches_values_of_other_types() -> None:
    """A number or null is "anything but" a string."""
    spec = {"state": [{"anything-but": "stopped"}]}
    assert matches(spec, {"state": 5})
    assert matches(spec, {"state": None})


def test_anything_but_on_an_array_needs_one_element_not_excluded() -> None:
    """An array matches ``anything-but`` when some element is not excluded."""
    spec = {"states": [{"anything-but": ["a", "b"]}]}
    assert matches(spec, {"states": ["a", "c"]})
    assert not matches(spec, {"states": ["a", "b"]})


# --------------------------------------------------------------------------- numeric


def test_numeric_range() -> None:
    """``numeric`` with two comparisons checks both bounds."""
    spec = {"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}
    assert matches(spec, EC2_EVENT)
    assert not matches(spec, {"detail": {"c-count": 6}})
    assert not matches(spec, {"detail": {"c-count": 0}})


def test_numeric_single_comparison() -> None:
    """``numeric`` with one comparison checks one bound."""
    assert matches({"detail": {"d-count": [{"numeric": ["<", 10]}]}}, EC2_EVENT)
    assert not matches({"detail": {"d-count": [{"numeric": ["<", 3]}]}}, EC2_EVENT)


@pytest.mark.parametrize(
    ("op", "bound", "value", "expected"),
    [
        (">", 5, 5, False),
        (">=", 5, 5, True),
        ("<", 5, 5, False),
        ("<=", 5, 5, True),
        ("=", 5, 5, True),
        ("=", 5, 5.000001, False),
        (">", -1.5, -1.4, True),
        ("<", 0, -0.000001, True),
    ],
)
def test_numeric_comparisons(op: str, bound: float, value: float, expected: bool) -> None:
    """Each comparison operator includes or excludes its bound as written."""
    assert matches({"n": [{"numeric": [op, bound]}]}, {"n": value}) is expected


def test_numeric_equals_compares_the_number_not_its_spelling() -> None:
    """``["=", 3.018e2]`` matches 301.8."""
    assert matches({"detail": {"x-limit": [{"numeric": ["=", 3.018e2]}]}}, EC2_EVENT)


def test_numeric_compares_decimals_exactly() -> None:
    """0.1 is not above 0.1: no binary floating-point surprise."""
    assert matches({"n": [{"numeric": ["<=", 0.1]}]}, {"n": 0.1})
    assert not matches({"n": [{"numeric": [">", 0.1]}]}, {"n": 0.1})
    assert matches({"n": [{"numeric": [">=", 0.3]}]}, {"n": Decimal("0.3")})


def test_numeric_accepts_ints_floats_and_decimals_alike() -> None:
    """Ints, floats and Decimals in the event are all numbers."""
    spec = {"n": [{"numeric": [">", 1, "<", 2]}]}
    assert matches(spec, {"n": 1.5})
    assert matches(spec, {"n": Decimal("1.000001")})
    assert not matches(spec, {"n": 2})


def test_numeric_matches_large_event_values() -> None:
    """Event values beyond the operand range still compare (a 6 GB object is > 0)."""
    assert matches({"size": [{"numeric": [">", 0]}]}, {"size": 6 * 10**9})


def test_numeric_never_matches_a_string() -> None:
    """A string of digits is not a number."""
    assert not matches({"n": [{"numeric": [">", 0]}]}, {"n": "5"})


def test_numeric_never_matches_a_boolean() -> None:
    """True is not the number 1."""
    assert not matches({"n": [{"numeric": ["=", 1]}]}, {"n": True})


def test_numeric_never_matches_nan() -> None:
    """NaN is no number to compare."""
    assert not matches({"n": [{"numeric": [">", 0]}]}, {"n": float("nan")})
    assert not matches({"n": [{"numeric": ["<", 0]}]}, {"n": Decimal("NaN")})


def test_numeric_on_an_array_needs_one_element_in_range() -> None:
    """An array matches ``numeric`` when some element is in range."""
    assert matches({"n": [{"numeric": [">", 10]}]}, {"n": [1, 20]})
    assert not matches({"n": [{"numeric": [">", 10]}]}, {"n": [1, 2]})


# --------------------------------------------------------------------------- exists


def test_exists_true_matches_a_present_field() -> None:
    """``exists: true`` matches any value, including null."""
    assert matches({"detail": {"c-count": [{"exists": True}]}}, EC2_EVENT)
    assert matches({"x": [{"exists": True}]}, {"x": None})


def test_exists_true_does_not_match_a_missing_field() -> None:
    """``exists: true`` needs the field."""
    assert not matches({"detail": {"e-count": [{"exists": True}]}}, EC2_EVENT)


def test_exists_false_matches_a_missing_field() -> None:
    """``exists: false`` matches when the field is absent."""
    assert matches({"detail": {"e-count": [{"exists": False}]}}, EC2_EVENT)
    assert not matches({"detail": {"c-count": [{"exists": False}]}}, EC2_EVENT)


def test_exists_false_matches_when_the_parent_is_missing() -> None:
    """``exists: false`` matches when the whole nested object is absent."""
    assert matches({"detail": {"c-count": [{"exists": False}]}}, {"source": "x"})


def test_exists_only_sees_leaf_values() -> None:
    """A field holding an object is not a leaf: ``exists: false`` matches it."""
    spec = {"detail": {"c-count": [{"exists": False}]}}
    assert matches(spec, {"detail": {"c-count": {"c1": 100}}})
    assert not matches(
        {"detail": {"c-count": [{"exists": True}]}}, {"detail": {"c-count": {"c1": 1}}}
    )


def test_exists_true_does_not_match_an_empty_array() -> None:
    """An empty array has no leaf values."""
    assert not matches({"tags": [{"exists": True}]}, {"tags": []})
    assert matches({"tags": [{"exists": False}]}, {"tags": []})


def test_exists_false_or_a_value() -> None:
    """``exists: false`` combines with other alternatives as OR."""
    spec = {"tier": [{"exists": False}, "gold"]}
    assert matches(spec, {})
    assert matches(spec, {"tier": "gold"})
    assert not matches(spec, {"tier": "silver"})


# --------------------------------------------------------------------------- wildcard


def test_wildcard_star_matches_any_run_of_characters() -> None:
    """``*`` matches zero or more characters."""
    spec = {"source": [{"wildcard": "Simple*Service"}]}
    assert matches(spec, {"source": "SimpleQueueService"})
    assert matches(spec, {"source": "SimpleService"})
    assert not matches(spec, {"source": "SimpleQueueServices"})


def test_wildcard_with_several_stars() -> None:
    """Several ``*`` match their segments in order."""
    spec = {"path": [{"wildcard": "*/lib/*.so"}]}
    assert matches(spec, {"path": "/usr/lib/libc.so"})
    assert not matches(spec, {"path": "/usr/bin/libc.so"})
    assert not matches(spec, {"path": "/lib.so"})


def test_wildcard_segments_do_not_overlap() -> None:
    """The text before and after a ``*`` cannot share characters."""
    assert not matches({"s": [{"wildcard": "ab*ba"}]}, {"s": "aba"})
    assert matches({"s": [{"wildcard": "ab*ba"}]}, {"s": "abba"})


def test_wildcard_escaped_star_is_literal() -> None:
    """``\\*`` matches an asterisk."""
    spec = {"s": [{"wildcard": "a\\*b"}]}
    assert matches(spec, {"s": "a*b"})
    assert not matches(spec, {"s": "axb"})


def test_wildcard_escaped_backslash_is_literal() -> None:
    """``\\\\`` matches one backslash."""
    assert matches({"s": [{"wildcard": "C:\\\\*"}]}, {"s": "C:\\Windows"})


def test_wildcard_without_star_is_exact() -> None:
    """A wildcard with no ``*`` matches only its own text."""
    assert matches({"s": [{"wildcard": "abc"}]}, {"s": "abc"})
    assert not matches({"s": [{"wildcard": "abc"}]}, {"s": "abcd"})


def test_wildcard_is_linear_on_adversarial_input() -> None:
    """Many stars against a long near-miss finishes at once (no backtracking)."""
    spec = {"s": [{"wildcard": "*a*a*a*a*b"}]}
    assert not matches(spec, {"s": "a" * 50_000})


def test_wildcards_too_complex_for_eventbridge_are_refused() -> None:
    """Patterns EventBridge refuses as "Rule is too complex" are refused here too."""
    with pytest.raises(PatternError, match=r"^where\.s: the wildcards are too complex"):
        Pattern({"s": [{"wildcard": "*a*a*a*a*a*b"}]})
    # Values of one field count together; other fields are measured apart.
    four = [{"wildcard": f"*/datasync/*.{ext}"} for ext in ("bif", "tif", "tiff", "svs")]
    with pytest.raises(PatternError, match="too complex"):
        Pattern({"key": four})
    Pattern({"key": four[:2], "other": four[2:]})
    with pytest.raises(PatternError, match="too complex"):
        Pattern({"key": [{"anything-but": {"wildcard": "*:*:*:*:*:event-bus/*"}}]})
    Pattern({"s": [{"wildcard": "/Users/*/dir/dir/dir/dir/dir/doc.txt"}]})


# --------------------------------------------------------------------------- cidr


def test_cidr_ipv4() -> None:
    """``cidr`` matches IPv4 addresses in the block."""
    spec = {"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}
    assert matches(spec, EC2_EVENT)
    assert not matches(spec, {"detail": {"source-ip": "10.0.1.33"}})


def test_cidr_ipv6() -> None:
    """``cidr`` matches IPv6 addresses in the block."""
    spec = {"ip": [{"cidr": "2001:db8::/32"}]}
    assert matches(spec, {"ip": "2001:db8:1::7"})
    assert not matches(spec, {"ip": "2001:db9::7"})


def test_cidr_does_not_mix_address_families() -> None:
    """An IPv4 address is never in an IPv6 block."""
    assert not matches({"ip": [{"cidr": "::/0"}]}, {"ip": "10.0.0.1"})


def test_cidr_ignores_strings_that_are_not_addresses() -> None:
    """A string that is not an IP address does not match."""
    assert not matches({"ip": [{"cidr": "10.0.0.0/8"}]}, {"ip": "ten.zero"})


# --------------------------------------------------------------------------- $or


def test_or_at_the_top_level() -> None:
    """``$or`` matches when one of its sub-patterns does, ANDed with the other fields."""
    spec = {
        "source": ["aws.cloudwatch"],
        "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]}, {"namespace": ["AWS/EC2"]}],
    }
    assert matches(spec, {"source": "aws.cloudwatch", "metricName": "ReadLatency"})
    assert matches(spec, {"source": "aws.cloudwatch", "namespace": "AWS/EC2"})
    assert not matches(spec, {"source": "aws.cloudwatch", "namespace": "AWS/ES"})
    assert not matches(spec, {"source": "aws.ec2", "namespace": "AWS/EC2"})


def test_or_inside_a_nested_object() -> None:
    """``$or`` may appear inside a nested object."""
    spec = {"detail": {"$or": [{"c-count": [{"numeric": [">", 10]}]}, {"state": ["running"]}]}}
    assert matches(spec, EC2_EVENT)
    assert not matches(spec, {"detail": {"c-count": 1, "state": "stopped"}})


def test_or_alternative_with_several_fields_needs_them_all() -> None:
    """Inside one ``$or`` alternative, fields are ANDed."""
    spec = {"$or": [{"a": ["1"], "b": ["2"]}, {"c": ["3"]}]}
    assert matches(spec, {"a": "1", "b": "2"})
    assert not matches(spec, {"a": "1", "b": "9"})


def test_or_nested_in_or() -> None:
    """``$or`` alternatives may hold ``$or`` themselves."""
    spec = {"$or": [{"a": ["1"], "$or": [{"b": ["2"]}, {"c": ["3"]}]}, {"d": ["4"]}]}
    assert matches(spec, {"a": "1", "c": "3"})
    assert not matches(spec, {"a": "1"})
    assert matches(spec, {"d": "4"})


def test_parallel_ors_must_each_match() -> None:
    """Two ``$or`` at different levels are ANDed."""
    spec = {
        "$or": [{"a": ["1"]}, {"b": ["2"]}],
        "detail": {"$or": [{"c": ["3"]}, {"d": ["4"]}]},
    }
    assert matches(spec, {"b": "2", "detail": {"d": "4"}})
    assert not matches(spec, {"b": "2", "detail": {"e": "5"}})


# --------------------------------------------------------------------------- arrays of objects


EMPLOYEES = {
    "employees": [
        {"firstName": "John", "lastName": "Doe"},
        {"firstName": "Anna", "lastName": "Smith"},
        {"firstName": "Peter", "lastName": "Jones"},
    ]
}


def test_nested_pattern_matches_an_object_in_an_array() -> None:
    """A nested pattern is tried against each object of an array."""
    assert matches({"employees": {"firstName": ["Anna"]}}, EMPLOYEES)


def test_fields_must_match_within_one_array_element() -> None:
    """Anna Jones is not in the array, although an Anna and a Jones are."""
    assert not matches({"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}, EMPLOYEES)
    assert matches({"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}, EMPLOYEES)


def test_nested_arrays_of_objects_are_flattened() -> None:
    """Objects in arrays of arrays are tried too."""
    document = {"employees": [[{"firstName": "John"}], [{"firstName": "Peter"}]]}
    assert matches({"employees": {"firstName": ["Peter"]}}, document)


def test_nested_pattern_does_not_match_a_plain_value() -> None:
    """A nested pattern needs an object (or objects) there."""
    assert not matches({"detail": {"state": ["running"]}}, {"detail": "running"})


def test_leaf_pattern_does_not_match_an_object() -> None:
    """A field's array matches values, never an object."""
    assert not matches({"detail": ["running"]}, {"detail": {"state": "running"}})


# --------------------------------------------------------------------------- Python documents


def test_matches_an_attrs_event_by_attribute_name() -> None:
    """Events are matched by their attrs fields."""
    event = ObjectCreated("photos", "cat.png", 1024, "etag")
    assert matches({"bucket": ["photos"], "key": [{"suffix": ".png"}]}, event)
    assert not matches({"bucket": ["docs"]}, event)


def test_matches_envelope_fields_of_an_event() -> None:
    """The envelope fields (``source``, ``id``...) are fields like any other."""
    event = ObjectCreated("photos", "cat.png", 1, "etag", source="uploader")
    assert matches({"source": ["uploader"]}, event)


def test_attribute_that_is_not_a_field_is_missing() -> None:
    """Methods and other attributes are not fields."""
    event = ObjectCreated("photos", "cat.png", 1, "etag")
    assert not matches({"event_type": [{"exists": True}]}, event)
    assert matches({"event_type": [{"exists": False}]}, event)


def test_follows_mapping_fields() -> None:
    """A mapping-valued field is followed by key, like a nested JSON object."""
    message = TopicMessage("orders", "{}", attributes={"kind": "refund", "amount": 30})
    assert matches(
        {"attributes": {"kind": ["refund"], "amount": [{"numeric": [">", 20]}]}}, message
    )


def test_follows_nested_mappings_of_a_table_change() -> None:
    """Images of a table change are nested mappings."""
    change = TableChange("orders", "MODIFY", {"id": "1"}, {"id": "1", "status": "paid"}, None, 7)
    assert matches({"op": ["MODIFY"], "new_image": {"status": ["paid"]}}, change)
    assert matches({"old_image": {"status": [{"exists": False}]}}, change)


@attrs.frozen
class Address:
    city: str
    zip: str


@attrs.frozen
class Customer:
    name: str
    address: Address
    previous: tuple[Address, ...] = ()


def test_follows_nested_attrs_objects() -> None:
    """A field holding an attrs object is followed like a nested JSON object."""
    customer = Customer("Ada", Address("London", "N1"))
    assert matches({"address": {"city": ["London"]}}, customer)
    assert not matches({"address": {"city": ["Paris"]}}, customer)


def test_tuples_of_attrs_objects_are_arrays() -> None:
    """A tuple of attrs objects is an array of objects."""
    customer = Customer(
        "Ada", Address("London", "N1"), (Address("Paris", "75"), Address("Rome", "00"))
    )
    assert matches({"previous": {"city": ["Rome"]}}, customer)


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_follows_dataclasses() -> None:
    """Dataclass instances are objects too."""
    assert matches({"x": [{"numeric": [">", 0]}]}, Point(1, 2))
    assert matches({"p": {"y": [2]}}, {"p": Point(1, 2)})


def test_datetime_compares_as_its_iso_string() -> None:
    """A datetime is matched as its ISO-8601 string."""
    event = ScheduledEvent("nightly", datetime(2024, 1, 31, 2, 0, tzinfo=UTC))
    assert matches({"scheduled_time": [{"prefix": "2024-01-31T02:00"}]}, event)
    assert matches({"scheduled_time": ["2024-01-31T02:00:00+00:00"]}, event)


def test_bytes_never_match_strings() -> None:
    """Bytes are not strings: only ``exists`` sees them."""
    record = LogRecord("clicks", "user-1", 1, b"hello")
    assert not matches({"data": ["hello"]}, record)
    assert not matches({"data": [{"prefix": "he"}]}, record)
    assert matches({"data": [{"exists": True}]}, record)


class Color(enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    LARGE = 3


def test_enums_match_by_value() -> None:
    """An enum member is matched as its value."""
    assert matches({"color": ["red"]}, {"color": Color.RED})
    assert matches({"size": [{"numeric": [">=", 3]}]}, {"size": Size.LARGE})


def test_str_subclasses_match_as_strings() -> None:
    """A str subclass is a string."""

    class Tag(str):
        __slots__ = ()

    assert matches({"tag": ["a"], "t2": ["x", "a"]}, {"tag": Tag("a"), "t2": Tag("a")})


def test_top_level_array_matches_when_an_object_in_it_does() -> None:
    """A list of documents matches when one of them does."""
    assert matches({"a": ["1"]}, [{"a": "0"}, {"a": "1"}])


def test_scalar_document_has_no_fields() -> None:
    """A document that is not an object only matches absent-field patterns."""
    assert not matches({"a": ["1"]}, "a")
    assert matches({"a": [{"exists": False}]}, 5)


def test_custom_mapping_is_an_object() -> None:
    """Any Mapping works as a document, not only dict."""

    class Frozen(Mapping[str, object]):
        def __init__(self, data: dict[str, object]) -> None:
            self._data = data

        def __getitem__(self, key: str) -> object:
            return self._data[key]

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(self._data)

        def __len__(self) -> int:
            return len(self._data)

    assert matches({"a": ["1"], "b": [{"exists": False}]}, Frozen({"a": "1"}))


# --------------------------------------------------------------------------- the object


def test_pattern_from_json_text() -> None:
    """A pattern may be given as JSON text."""
    pattern = Pattern('{"detail": {"x-limit": [{"numeric": ["=", 3.018e2]}]}}')
    assert pattern.matches(EC2_EVENT)


def test_pattern_from_pattern_shares_the_compiled_form() -> None:
    """``Pattern(pattern)`` gives an equivalent pattern."""
    original = Pattern({"a": ["1"]})
    copy = Pattern(original)
    assert copy.matches({"a": "1"})
    assert copy.spec == original.spec


def test_spec_is_a_plain_copy() -> None:
    """``spec`` returns dicts and lists, and mutating it changes nothing."""
    pattern = Pattern({"a": ("1", "2")})
    spec = pattern.spec
    assert spec == {"a": ["1", "2"]}
    spec["a"].append("3")
    assert pattern.spec == {"a": ["1", "2"]}


def test_repr_shows_the_spec() -> None:
    """The repr is the constructor call."""
    assert repr(Pattern({"a": ["1"]})) == "Pattern({'a': ['1']})"


def test_same_pattern_matches_documents_of_many_types() -> None:
    """One pattern serves dicts, events and mappings alike, in any order."""
    pattern = Pattern({"bucket": ["photos"]})
    event = ObjectCreated("photos", "k", 1, "e")
    for _ in range(2):
        assert pattern.matches(event)
        assert pattern.matches({"bucket": "photos"})
        assert not pattern.matches({"bucket": "docs"})
        assert not pattern.matches(ObjectCreated("docs", "k", 1, "e"))


def test_more_document_types_than_are_inlined() -> None:
    """Patterns keep working past the number of types they generate code for."""
    pattern = Pattern({"n": [1]})
    classes = [attrs.make_class(f"C{i}", ["n"]) for i in range(12)]
    for cls in classes * 2:
        assert pattern.matches(cls(n=1))
        assert not pattern.matches(cls(n=2))


def test_threads_racing_on_new_document_types_get_right_answers() -> None:
    """Code generation for new types is safe while other threads match."""
    pattern = Pattern({"n": [1]})
    classes = [attrs.make_class(f"Racer{i}", ["n"]) for i in range(12)]

    def work(cls: type) -> bool:
        return all(pattern.matches(cls(n=1)) and not pattern.matches(cls(n=2)) for _ in range(300))

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert all(pool.map(work, classes * 2))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("init-1", False), ("testing", False), ("prod", True), ("", True), (7, True), (None, True)],
)
def test_anything_but_prefix_list(value: object, expected: bool) -> None:
    """``anything-but`` with a list of prefixes excludes strings starting with any of them."""
    spec = {"state": [{"anything-but": {"prefix": ["init", "test"]}}]}
    assert Pattern(spec).matches({"state": value}) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a.png", False), ("b.JPG", True), ("c.jpg", False), ("d.gif", True), (3, True)],
)
def test_anything_but_suffix_list(value: object, expected: bool) -> None:
    """``anything-but`` with a list of suffixes excludes strings ending with any of them."""
    spec = {"file": [{"anything-but": {"suffix": [".png", ".jpg"]}}]}
    assert Pattern(spec).matches({"file": value}) is expected


def test_anything_but_prefix_list_never_matches_a_missing_field() -> None:
    """Like every ``anything-but``, the list form needs the field to be present."""
    assert not Pattern({"state": [{"anything-but": {"prefix": ["init"]}}]}).matches({})


@pytest.mark.parametrize(
    ("operand", "message"),
    [
        ([], "prefix takes a string or a non-empty array of strings"),
        ([""], "prefix takes a non-empty string"),
        (["ok", 1], "prefix takes strings, got 1"),
        ({"equals-ignore-case": "x"}, "prefix takes a string or a non-empty array"),
    ],
)
def test_anything_but_prefix_list_is_validated(operand: object, message: str) -> None:
    """Empty lists, empty strings, non-strings and nested operators are refused as AWS refuses them."""
    with pytest.raises(PatternError, match=re.escape(message)):
        Pattern({"state": [{"anything-but": {"prefix": operand}}]})
