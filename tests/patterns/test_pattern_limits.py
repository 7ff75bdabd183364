"""Patterns are bounded like EventBridge bounds them; matching stays linear; deep events are refused."""

from __future__ import annotations

import contextlib
import json
import tracemalloc
from datetime import timedelta
from typing import Any

import anyio
import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import Bus, Event, PatternError, PatternLimits, SerializationError
from eventbus.patterns import DEFAULT_LIMITS, MAX_ARRAY_DEPTH, Pattern, PatternIndex
from eventbus.patterns._tree import _fold_test

BIG = PatternLimits(max_size=10_000_000, max_alternatives=1_000_000)


def nested_list(depth: int, leaf: object = "x") -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def peak_bytes(build: Any) -> int:
    tracemalloc.start()
    with contextlib.suppress(PatternError):
        build()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


# --------------------------------------------------------------------------- size


def test_default_limits_are_eventbridges_quotas() -> None:
    """2,048 characters and 1,000 combinations, as EventBridge's defaults."""
    assert PatternLimits() == DEFAULT_LIMITS
    assert (DEFAULT_LIMITS.max_size, DEFAULT_LIMITS.max_combinations) == (2048, 1000)


def test_a_pattern_over_the_size_limit_is_refused_naming_the_limit() -> None:
    """A pattern longer than 2,048 characters as JSON raises PatternError naming max_size."""
    spec = {"key": [f"value-{i}" for i in range(300)]}
    with pytest.raises(
        PatternError, match=r"^where\.key\[\d+\]: .*2,048 .*PatternLimits\.max_size"
    ):
        Pattern(spec)


def test_a_pattern_at_the_size_limit_is_accepted() -> None:
    """A pattern of 2,048 characters of compact JSON is accepted."""
    text = '{"key":["' + "x" * (2048 - 12) + '"]}'
    assert len(text) == 2048
    assert Pattern(json.loads(text)).matches({"key": "x" * (2048 - 12)})
    assert Pattern(text).matches({"key": "x" * (2048 - 12)})


def test_one_character_more_is_refused() -> None:
    """A pattern of 2,049 characters of compact JSON is refused."""
    spec = {"key": ["x" * (2048 - 11)]}
    assert len(json.dumps(spec, separators=(",", ":"))) == 2049
    with pytest.raises(PatternError, match=r"PatternLimits\.max_size"):
        Pattern(spec)


def test_the_path_is_where_the_limit_was_first_crossed() -> None:
    """The pattern is read in order: the error names the first value past the limit."""
    with pytest.raises(PatternError, match=r"^where\.a\[1\]: .*max_size"):
        Pattern({"a": ["x", "y" * 3000, "z" * 3000], "b": ["w" * 3000]})


def test_pattern_text_is_measured_as_written() -> None:
    """JSON text longer than the limit is refused before it is parsed."""
    with pytest.raises(PatternError, match=r"^where: the pattern is 5,000 characters long"):
        Pattern("{" * 5000)


def test_raised_limits_accept_a_larger_pattern() -> None:
    """Pattern(spec, limits=PatternLimits(max_size=...)) accepts what the default refuses."""
    spec = {"key": [f"value-{i}" for i in range(300)]}
    pattern = Pattern(spec, limits=PatternLimits(max_size=10_000))
    assert pattern.matches({"key": "value-299"})


def test_a_one_megabyte_wildcard_is_refused_in_little_memory() -> None:
    """Building a 1 MB wildcard used 1.2 GB; it is refused using a few kilobytes."""
    spec = {"key": [{"wildcard": "a*" * 500_000}]}
    with pytest.raises(PatternError, match=r"PatternLimits\.max_size"):
        Pattern(spec)
    assert peak_bytes(lambda: Pattern(spec)) < 1_000_000


def test_two_hundred_thousand_fields_are_refused_in_little_memory() -> None:
    """Building 200,000 fields used 5 GB; it is refused early, in bounded memory."""
    spec = {f"field{i}": ["x"] for i in range(200_000)}
    with pytest.raises(PatternError, match=r"PatternLimits\.max_size"):
        Pattern(spec)
    assert peak_bytes(lambda: Pattern(spec)) < 1_000_000


# --------------------------------------------------------------------------- depth, alternatives


def test_a_deep_pattern_is_refused_naming_max_depth_and_the_path() -> None:
    """Objects nested past max_depth raise PatternError at the path where it was crossed."""
    spec: dict[str, Any] = {"a": ["x"]}
    for _ in range(40):
        spec = {"a": spec}
    with pytest.raises(PatternError, match=r"^where(\.a){32}: .*PatternLimits\.max_depth"):
        Pattern(spec)


def test_each_part_of_a_dotted_name_is_a_level() -> None:
    """A dotted name expands into nested objects, so its parts count towards max_depth."""
    with pytest.raises(PatternError, match=r"PatternLimits\.max_depth"):
        Pattern({".".join(["a"] * 40): ["x"]})


def test_a_pattern_that_contains_itself_is_refused() -> None:
    """A mapping that refers to itself is refused by the depth limit, not a RecursionError."""
    spec: dict[str, Any] = {}
    spec["a"] = spec
    with pytest.raises(PatternError, match=r"PatternLimits\.max_depth"):
        Pattern(spec)


def test_deeply_nested_text_with_a_raised_size_is_refused_by_name() -> None:
    """Text nested 100,000 deep raises PatternError, never RecursionError."""
    with pytest.raises(PatternError):
        Pattern('{"a":' + "[" * 100_000, limits=BIG)


def test_too_many_alternatives_are_refused() -> None:
    """More array elements than max_alternatives raise PatternError naming the limit."""
    spec = {"n": list(range(1001))}
    with pytest.raises(PatternError, match=r"^where\.n: .*1,000 .*max_alternatives"):
        Pattern(spec, limits=PatternLimits(max_size=100_000))


def test_combinations_limit_is_configurable() -> None:
    """max_combinations bounds how far $or may multiply out."""
    spec = {"$or": [{"a": ["x"]}, {"b": ["y"]}, {"c": ["z"]}]}
    Pattern(spec)
    with pytest.raises(PatternError, match=r"3 combinations, more than the limit of 2"):
        Pattern(spec, limits=PatternLimits(max_combinations=2))


@pytest.mark.parametrize("field", ["max_size", "max_depth", "max_alternatives", "max_combinations"])
@pytest.mark.parametrize("value", [0, -1, True, 1.5])
def test_limits_must_be_positive_ints(field: str, value: object) -> None:
    """Each limit is a positive int."""
    with pytest.raises(ValueError, match=f"PatternLimits.{field} must be a positive int"):
        PatternLimits(**{field: value})  # type: ignore[arg-type]


def test_max_depth_is_capped() -> None:
    """max_depth cannot exceed what compiling can recurse through."""
    with pytest.raises(ValueError, match="max_depth may be at most 200"):
        PatternLimits(max_depth=201)


def test_limits_of_the_wrong_type_are_refused() -> None:
    """limits= takes a PatternLimits."""
    with pytest.raises(TypeError, match="limits must be a PatternLimits"):
        Pattern({"a": ["x"]}, limits={"max_size": 10})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- linear matching


def test_a_megabyte_against_ten_thousand_case_insensitive_affixes() -> None:
    """A 1 MB value against 10,000 prefix/suffix equals-ignore-case alternatives matches correctly."""
    alternatives: list[dict[str, Any]]
    alternatives = [{"prefix": {"equals-ignore-case": f"p{i}-"}} for i in range(5000)]
    alternatives += [{"suffix": {"equals-ignore-case": f"-s{i}"}} for i in range(5000)]
    alternatives += [{"equals-ignore-case": f"e{i}"} for i in range(5000)]
    pattern = Pattern({"v": alternatives}, limits=BIG)
    body = "x" * 1_000_000
    assert not pattern.matches({"v": body})
    assert pattern.matches({"v": "P4999-" + body})
    assert pattern.matches({"v": body + "-S17"})
    assert pattern.matches({"v": "E42"})


@settings(max_examples=300, deadline=timedelta(seconds=1))
@given(
    st.lists(st.text(max_size=4), max_size=3),
    st.lists(st.text(max_size=4), max_size=3),
    st.lists(st.text(max_size=4), max_size=3),
    st.text(max_size=12),
)
def test_folding_part_of_a_value_decides_as_folding_all_of_it(
    equal: list[str], prefixes: list[str], suffixes: list[str], value: str
) -> None:
    """Folding only as much of the value as can matter gives the same answers."""
    equal_f = frozenset(t.casefold() for t in equal)
    prefixes_f = tuple(t.casefold() for t in prefixes)
    suffixes_f = tuple(t.casefold() for t in suffixes)
    folded = value.casefold()
    expected = (
        folded in equal_f
        or any(folded.startswith(p) for p in prefixes_f)
        or any(folded.endswith(s) for s in suffixes_f)
    )
    assert _fold_test(equal_f, prefixes_f, suffixes_f)(value) is expected


# --------------------------------------------------------------------------- deep events


def test_arrays_nested_past_the_limit_are_refused_by_name() -> None:
    """Matching arrays nested 3,000 deep raises SerializationError naming MAX_ARRAY_DEPTH."""
    pattern = Pattern({"body": ["x"]})
    with pytest.raises(SerializationError, match=r"event\.body .*MAX_ARRAY_DEPTH"):
        pattern.matches({"body": nested_list(3000)})


def test_arrays_nested_up_to_the_limit_match() -> None:
    """Arrays nested MAX_ARRAY_DEPTH deep are read."""
    pattern = Pattern({"body": ["x"]})
    assert pattern.matches({"body": nested_list(MAX_ARRAY_DEPTH)})


def test_deep_arrays_of_objects_are_refused_by_name() -> None:
    """A nested pattern over arrays nested 3,000 deep raises SerializationError."""
    with pytest.raises(SerializationError, match="MAX_ARRAY_DEPTH"):
        Pattern({"body": {"a": ["x"]}}).matches({"body": nested_list(3000, {"a": "x"})})


def test_explain_refuses_deep_arrays_by_name() -> None:
    """explain() raises the same named error, not RecursionError."""
    with pytest.raises(SerializationError, match="MAX_ARRAY_DEPTH"):
        Pattern({"body": ["y"]}).explain({"body": nested_list(3000)})


def test_index_refuses_deep_arrays_by_name() -> None:
    """PatternIndex.match raises SerializationError naming the field."""
    index: PatternIndex[int] = PatternIndex()
    for i in range(5):
        index.add(i, {"body": [f"x{i}"]})
    with pytest.raises(SerializationError, match=r"event\.body .*MAX_ARRAY_DEPTH"):
        index.match({"body": nested_list(3000)})


@attrs.frozen
class Nested(Event):
    """An event with a free-form body."""

    body: Any


async def test_publish_refuses_a_deeply_nested_event() -> None:
    """publish() raises SerializationError for an event nested 3,000 deep; nothing is accepted."""
    handled = anyio.Event()

    async def handle(event: Nested) -> None:
        handled.set()

    async with Bus() as bus:
        bus.subscribe(Nested, handle, where={"body": ["x"]}, name="filtered")
        with pytest.raises(SerializationError, match="MAX_ARRAY_DEPTH"):
            await bus.publish(Nested(body=nested_list(3000)))
        assert bus.metrics()["filtered"].accepted == 0
        receipt = await bus.publish(Nested(body=["x"]))
        assert receipt.subscriptions == ("filtered",)
        await bus.drain()
    assert handled.is_set()


# --------------------------------------------------------------------------- fuzzing

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["x", "X", "ß", "ss", "a.b", "10.0.0.1"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "x", "a.b"]), children, max_size=4)
    ),
    max_leaves=20,
)
deep_values = st.builds(nested_list, st.integers(min_value=0, max_value=300), json_scalars)
documents = st.dictionaries(st.sampled_from(["a", "b", "x"]), json_values | deep_values, max_size=4)

FUZZ_PATTERNS = [
    Pattern(spec)
    for spec in (
        {"a": ["x", 1, None, True]},
        {"a": [{"prefix": "x"}, {"suffix": {"equals-ignore-case": "SS"}}]},
        {"a": [{"equals-ignore-case": "ß"}, {"wildcard": "x*y"}]},
        {"a": [{"anything-but": {"wildcard": ["*x*", "y*"]}}], "b": [{"exists": False}]},
        {"a": [{"numeric": [">", 0, "<=", 5]}, {"cidr": "10.0.0.0/8"}]},
        {"a": {"b": [{"exists": True}]}, "$or": [{"x": ["x"]}, {"b": {"a": ["X"]}}]},
        {"a.b": [{"anything-but": {"equals-ignore-case": ["x", "SS"]}}]},
    )
]


@settings(max_examples=200, deadline=timedelta(seconds=1))
@given(documents)
def test_matching_arbitrary_json_raises_only_named_errors(document: dict[str, Any]) -> None:
    """matches, explain and an index raise nothing, or SerializationError, on any JSON document."""
    index: PatternIndex[int] = PatternIndex()
    for i, pattern in enumerate(FUZZ_PATTERNS):
        index.add(i, pattern)
    errors: list[SerializationError] = []
    for pattern in FUZZ_PATTERNS:
        try:
            matched = pattern.matches(document)
        except SerializationError as exc:
            errors.append(exc)
        else:
            assert (pattern.explain(document) is None) is matched
    try:
        index.match(document)
    except SerializationError as exc:
        errors.append(exc)
    assert all("MAX_ARRAY_DEPTH" in str(exc) for exc in errors)


@settings(max_examples=300, deadline=timedelta(seconds=1))
@given(json_values | deep_values | st.dictionaries(st.text(max_size=6), json_values | deep_values))
def test_building_from_arbitrary_json_raises_only_pattern_errors(spec: object) -> None:
    """Pattern(spec) either builds or raises PatternError, whatever JSON it is given."""
    with contextlib.suppress(PatternError):
        Pattern(spec)  # type: ignore[arg-type]
    with contextlib.suppress(PatternError):
        Pattern(json.dumps(spec))


async def test_a_pattern_with_raised_limits_works_as_where() -> None:
    """A Pattern built with raised limits routes like any where= pattern."""
    many = Pattern({"body": [f"c-{i}" for i in range(500)]}, limits=PatternLimits(max_size=8192))

    async def handle(event: Nested) -> None:
        return None

    async with Bus() as bus:
        bus.subscribe(Nested, handle, where=many, name="many")
        assert (await bus.publish(Nested(body="c-499"))).subscriptions == ("many",)
        assert (await bus.publish(Nested(body="c-500"))).subscriptions == ()
        await bus.drain()


async def test_a_pattern_over_the_default_limits_is_refused_at_subscribe() -> None:
    """subscribe(where=spec) applies the default limits, naming the one crossed."""

    async def handle(event: Nested) -> None:
        return None

    async with Bus() as bus:
        with pytest.raises(PatternError, match=r"^where\.body\[\d+\]: .*max_size"):
            bus.subscribe(Nested, handle, where={"body": [f"c-{i}" for i in range(500)]})
