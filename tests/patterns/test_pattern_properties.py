"""Properties of patterns over generated documents (hypothesis)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import ObjectCreated
from eventbus.patterns import Pattern

KEYS = ["a", "b", "detail", "state", "size", "key", "ip", "tags", "n"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(
        ["running", "photos", "a.png", "10.0.0.7", "2001:db8::1", "init-1", "/usr/lib/x"]
    ),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)
documents = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), json_values, max_size=6)

VALID_PATTERNS: list[dict[str, Any]] = [
    {"a": ["x", 1, True, None, 2.5]},
    {"state": [{"anything-but": ["stopped", "overloaded"]}]},
    {"state": [{"anything-but": [1, 2.5]}]},
    {"state": [{"anything-but": {"prefix": "init"}}, {"anything-but": {"suffix": ".png"}}]},
    {"state": [{"anything-but": {"equals-ignore-case": ["A", "b"]}}]},
    {"state": [{"anything-but": {"wildcard": ["*/lib/*", "a*"]}}]},
    {"size": [{"numeric": [">", 0, "<=", 5]}, {"numeric": ["=", 301.8]}]},
    {"size": [{"numeric": ["<", -1.5]}], "n": [{"numeric": [">=", 0]}]},
    {"key": [{"prefix": "a"}, {"suffix": ".png"}, {"prefix": {"equals-ignore-case": "A"}}]},
    {"key": [{"suffix": {"equals-ignore-case": ".PNG"}}, {"equals-ignore-case": "photos"}]},
    {"key": [{"wildcard": "*.p*g"}, {"wildcard": "a\\*b"}]},
    {"ip": [{"cidr": "10.0.0.0/24"}, {"cidr": "2001:db8::/32"}]},
    {"tags": [{"exists": True}], "b": [{"exists": False}]},
    {"detail": {"state": ["running"], "n": [{"exists": False}]}},
    {"detail": {"detail": {"a": [{"numeric": [">", 0]}]}}},
    {"$or": [{"a": ["x"]}, {"detail": {"$or": [{"b": [1]}, {"state": [{"prefix": "r"}]}]}}]},
    {"a": [""], "b": [None], "state": [False]},
]
COMPILED = [Pattern(spec) for spec in VALID_PATTERNS]


@given(documents)
def test_matching_never_raises_on_json_documents(document: dict[str, Any]) -> None:
    """Every pattern gives True or False for any JSON-like document, never an exception."""
    for pattern in COMPILED:
        assert pattern.matches(document) in (True, False)


@given(json_values)
def test_matching_never_raises_on_any_json_value(document: object) -> None:
    """Top-level arrays and scalars are fine too."""
    for pattern in COMPILED:
        assert pattern.matches(document) in (True, False)


@given(documents)
def test_explain_is_none_exactly_when_matching(document: dict[str, Any]) -> None:
    """``explain`` returns None for matches and a message for the rest, without raising."""
    for pattern in COMPILED:
        explanation = pattern.explain(document)
        assert (explanation is None) == pattern.matches(document)
        assert explanation is None or explanation.startswith("where")


@given(documents)
def test_generated_code_agrees_with_the_general_matcher(document: dict[str, Any]) -> None:
    """The per-type generated matcher decides exactly as the closure tree does."""
    for pattern in COMPILED:
        assert pattern.matches(document) == pattern._generic(document)


events = st.builds(
    ObjectCreated,
    bucket=st.sampled_from(["photos", "docs", ""]),
    key=st.sampled_from(["a.png", "b.PNG", "init-1", "x"]) | st.text(max_size=5),
    size=st.integers(min_value=-3, max_value=10**10),
    etag=st.just("etag"),
    metadata=st.dictionaries(st.sampled_from(KEYS), json_values, max_size=3),
    content_type=st.none() | st.sampled_from(["image/png", "text/plain"]),
)
EVENT_PATTERNS = [
    Pattern({"bucket": ["photos"], "size": [{"numeric": [">", 0]}], "key": [{"suffix": ".png"}]}),
    Pattern({"bucket": ["photos", "docs"], "content_type": [None]}),
    Pattern({"key": [{"anything-but": {"prefix": "init"}}], "zone": [{"exists": False}]}),
    Pattern({"metadata": {"a": [{"exists": True}]}, "size": [{"numeric": ["<", 100]}]}),
    Pattern({"$or": [{"bucket": [""]}, {"metadata": {"state": ["running"]}}]}),
    Pattern({"missing": ["x"]}),
]


@given(events)
def test_generated_code_agrees_on_attrs_events(event: ObjectCreated) -> None:
    """Events read by attribute decide exactly as the general matcher does."""
    for pattern in EVENT_PATTERNS:
        assert pattern.matches(event) == pattern._generic(event)
        assert (pattern.explain(event) is None) == pattern.matches(event)


# --------------------------------------------------------------------------- anything-but


def _wildcard_text() -> st.SearchStrategy[str]:
    return st.text(alphabet="ab*", max_size=5).filter(lambda t: "**" not in t)


texts = st.text(alphabet="abAB.-ßİ", max_size=4)
operands = st.one_of(
    texts,
    st.integers(min_value=-3, max_value=3),
    st.decimals(min_value=-3, max_value=3, places=2, allow_nan=False, allow_infinity=False),
    st.lists(texts, min_size=1, max_size=3),
    st.lists(st.integers(min_value=-3, max_value=3), min_size=1, max_size=3),
    st.builds(lambda t: {"prefix": t}, texts.filter(bool)),
    st.builds(lambda t: {"suffix": t}, texts.filter(bool)),
    st.builds(lambda t: {"equals-ignore-case": t}, texts | st.lists(texts, min_size=1, max_size=3)),
    st.builds(
        lambda t: {"wildcard": t},
        _wildcard_text() | st.lists(_wildcard_text(), min_size=1, max_size=2),
    ),
)
present_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.floats(min_value=-3, max_value=3),
    st.decimals(min_value=-3, max_value=3, places=2, allow_nan=False, allow_infinity=False),
    texts,
    st.text(alphabet="ab*", max_size=5),
)


def positive(operand: object) -> list[object]:
    """The field's array that matches what ``{"anything-but": operand}`` excludes."""
    if isinstance(operand, dict):
        ((name, value),) = operand.items()
        values = value if isinstance(value, list) else [value]
        return [{name: v} for v in values]
    if isinstance(operand, list):
        return list(operand)
    return [operand]


@given(operands, present_scalars)
def test_anything_but_is_the_complement(operand: object, value: object) -> None:
    """On a present scalar field, ``anything-but: X`` matches exactly when X does not."""
    excluded = Pattern({"f": [{"anything-but": operand}]})
    included = Pattern({"f": positive(operand)})
    document = {"f": value}
    assert excluded.matches(document) is not included.matches(document)


@settings(max_examples=50)
@given(st.decimals(min_value=-5, max_value=5, places=6, allow_nan=False, allow_infinity=False))
def test_floats_and_decimals_compare_alike(number: Decimal) -> None:
    """A float and the Decimal of its repr fall on the same side of every bound."""
    as_float = float(number)
    same = Decimal(repr(as_float))
    for op in (">", ">=", "<", "<=", "="):
        pattern = Pattern({"n": [{"numeric": [op, number]}]})
        assert pattern.matches({"n": as_float}) == pattern.matches({"n": same})
