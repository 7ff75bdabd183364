"""Pattern.explain(): None on a match, else one sentence about the first failing clause."""

from __future__ import annotations

from typing import Any

from eventbus import LogRecord, ObjectCreated
from eventbus.patterns import Pattern


def explain(spec: dict[str, Any], document: object) -> str | None:
    return Pattern(spec).explain(document)


def test_none_when_the_document_matches() -> None:
    """A match has nothing to explain."""
    assert explain({"a": ["1"]}, {"a": "1"}) is None


def test_numeric_bound() -> None:
    """A failed comparison shows the value and the comparison."""
    event = ObjectCreated("photos", "a.png", 0, "etag")
    assert explain({"size": [{"numeric": [">", 0]}]}, event) == "where.size: 0 is not > 0"


def test_numeric_range() -> None:
    """A failed range shows both bounds."""
    assert (
        explain({"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 7})
        == "where.n: 7 is not > 0 and <= 5"
    )


def test_numeric_on_a_string() -> None:
    """A string is not a number."""
    assert (
        explain({"n": [{"numeric": [">", 0]}]}, {"n": "5"})
        == 'where.n: "5" is not a number, so it cannot be > 0'
    )


def test_exact_values() -> None:
    """Several exact values are listed."""
    assert (
        explain({"key": ["k1", "k2"]}, {"key": "a.png"})
        == 'where.key: "a.png" is not one of ["k1", "k2"]'
    )


def test_single_exact_value() -> None:
    """One exact value reads naturally."""
    assert (
        explain({"bucket": ["photos"]}, {"bucket": "docs"})
        == 'where.bucket: "docs" is not "photos"'
    )


def test_exact_value_of_another_type() -> None:
    """A type mismatch says why equal-looking values differ."""
    assert (
        explain({"n": [300]}, {"n": "300"})
        == 'where.n: "300" is not 300 (a string never equals a number)'
    )
    assert (
        explain({"flag": [True]}, {"flag": 1})
        == "where.flag: 1 is not true (a number never equals a boolean)"
    )


def test_bytes_are_not_strings() -> None:
    """Bytes are named as such."""
    record = LogRecord("log", "pk", 1, b"x")
    assert (
        explain({"data": ["x"]}, record)
        == "where.data: b'x' is not \"x\" (a bytes value never equals a string)"
    )


def test_missing_field() -> None:
    """A missing field says so."""
    assert explain({"region": ["us-east-1"]}, {}) == "where.region: field is missing"


def test_missing_nested_object() -> None:
    """A missing parent object is reported at the parent."""
    assert explain({"detail": {"state": ["running"]}}, {}) == "where.detail: field is missing"


def test_nested_path() -> None:
    """The path goes down to the failing field."""
    document = {"detail": {"state": "stopped"}}
    assert (
        explain({"detail": {"state": ["running"]}}, document)
        == 'where.detail.state: "stopped" is not "running"'
    )


def test_first_failing_clause_in_pattern_order() -> None:
    """Only the first failing field is reported."""
    spec = {"a": ["1"], "b": ["2"], "c": ["3"]}
    assert explain(spec, {"a": "1", "b": "x", "c": "y"}) == 'where.b: "x" is not "2"'


def test_exists_false() -> None:
    """A field that should be absent shows its value."""
    assert (
        explain({"x": [{"exists": False}]}, {"x": 5})
        == "where.x: field is present (5), but the pattern requires it to be absent"
    )


def test_exists_true_on_an_empty_array() -> None:
    """An empty array has no values."""
    assert (
        explain({"x": [{"exists": True}]}, {"x": []})
        == "where.x: the array [] holds no values to match exists: true"
    )


def test_prefix_and_suffix() -> None:
    """Prefix and suffix failures quote both strings."""
    assert (
        explain({"k": [{"prefix": "us-"}]}, {"k": "eu-1"})
        == 'where.k: "eu-1" does not start with "us-"'
    )
    assert (
        explain({"k": [{"suffix": ".png"}]}, {"k": "a.jpg"})
        == 'where.k: "a.jpg" does not end with ".png"'
    )
    assert (
        explain({"k": [{"prefix": {"equals-ignore-case": "US-"}}]}, {"k": "eu-1"})
        == 'where.k: "eu-1" does not start with "US-" (ignoring case)'
    )


def test_prefix_on_a_number() -> None:
    """Prefix needs a string."""
    assert (
        explain({"k": [{"prefix": "1"}]}, {"k": 12})
        == 'where.k: 12 is not a string, so it has no prefix "1"'
    )


def test_anything_but() -> None:
    """An excluded value names the exclusion."""
    assert (
        explain({"s": [{"anything-but": ["a", "b"]}]}, {"s": "b"})
        == 'where.s: "b" is excluded by anything-but ["a", "b"]'
    )
    assert (
        explain({"s": [{"anything-but": {"prefix": "init"}}]}, {"s": "init-1"})
        == 'where.s: "init-1" is excluded by anything-but prefix "init"'
    )


def test_wildcard_and_equals_ignore_case() -> None:
    """Wildcard and case-insensitive failures quote the operand."""
    assert (
        explain({"p": [{"wildcard": "*/lib/*"}]}, {"p": "/bin/x"})
        == 'where.p: "/bin/x" does not match the wildcard "*/lib/*"'
    )
    assert (
        explain({"n": [{"equals-ignore-case": "bob"}]}, {"n": "Al"})
        == 'where.n: "Al" is not "bob", even ignoring case'
    )


def test_cidr() -> None:
    """Addresses outside the block, and non-addresses, are told apart."""
    assert (
        explain({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.1.1"})
        == 'where.ip: "10.0.1.1" is not in 10.0.0.0/24'
    )
    assert (
        explain({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "nope"})
        == 'where.ip: "nope" is not an IP address, so it is not in 10.0.0.0/24'
    )


def test_mixed_alternatives() -> None:
    """Several kinds of alternatives are listed."""
    assert (
        explain({"k": ["a", {"prefix": "x"}]}, {"k": "b"})
        == 'where.k: "b" matches none of: "a", prefix "x"'
    )


def test_array_of_values() -> None:
    """An array in the document lists its values."""
    assert (
        explain({"tags": ["x", "y"]}, {"tags": ["a", "b"]})
        == 'where.tags: none of ["a", "b"] is one of ["x", "y"]'
    )
    assert (
        explain({"tags": [{"prefix": "x"}]}, {"tags": ["a"]})
        == 'where.tags: none of ["a"] matches any of: prefix "x"'
    )


def test_object_where_a_value_is_expected() -> None:
    """A leaf pattern on an object says to use a nested pattern."""
    assert explain({"detail": ["x"]}, {"detail": {"a": 1}}) == (
        'where.detail: found an object where the pattern expects a value ("x"); '
        "match the fields inside it with a nested pattern"
    )


def test_value_where_an_object_is_expected() -> None:
    """A nested pattern on a plain value says an object was expected."""
    assert (
        explain({"detail": {"a": ["1"]}}, {"detail": "x"})
        == 'where.detail: expected an object, found "x"'
    )


def test_array_of_objects() -> None:
    """With several objects in an array, the first one's failure is shown."""
    document = {"items": [{"name": "a"}, {"name": "b"}]}
    assert explain({"items": {"name": ["c"]}}, document) == (
        'where.items: none of its 2 objects matched; the first fails with where.items[0].name: "a" is not "c"'
    )


def test_array_with_one_object() -> None:
    """With one object in an array, its path is shown directly."""
    assert (
        explain({"items": {"name": ["c"]}}, {"items": [{"name": "a"}]})
        == 'where.items[0].name: "a" is not "c"'
    )


def test_or() -> None:
    """A failed ``$or`` reports each alternative."""
    spec = {"$or": [{"a": ["1"]}, {"b": ["2"]}]}
    assert explain(spec, {"b": "3"}) == (
        'where: none of the 2 $or alternatives matched: (1) where.a: field is missing; (2) where.b: "3" is not "2"'
    )


def test_top_level_value_that_is_not_an_object() -> None:
    """A document that is not an object is named."""
    assert explain({"a": ["1"]}, 5) == "where: expected an object, found 5"


def test_long_strings_are_shortened() -> None:
    """Long values are cut in messages."""
    message = explain({"k": ["a"]}, {"k": "x" * 500})
    assert message is not None
    assert len(message) < 120
    assert message.endswith('…" is not "a"')
