"""PatternIndex: many patterns matched at once, exactly as evaluating each would."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import ObjectCreated, PatternError
from eventbus.patterns import Pattern, PatternIndex


def test_match_returns_matching_keys_in_insertion_order() -> None:
    """Keys come back in the order they were added, whatever the index found first."""
    index: PatternIndex[str] = PatternIndex()
    index.add("any-png", {"key": [{"suffix": ".png"}]})
    index.add("photos", {"bucket": ["photos"]})
    index.add("docs", {"bucket": ["docs"]})
    index.add("big", {"size": [{"numeric": [">", 100]}]})
    event = ObjectCreated("photos", "a.png", 1000, "etag")
    assert index.match(event) == ["any-png", "photos", "big"]


def test_match_on_mappings() -> None:
    """Plain dicts are matched like events."""
    index: PatternIndex[int] = PatternIndex()
    index.add(1, {"detail": {"state": ["running"]}})
    index.add(2, {"detail": {"state": ["stopped"]}})
    assert index.match({"detail": {"state": "running"}}) == [1]


def test_no_match_is_an_empty_list() -> None:
    """A document nothing matches gives []."""
    index: PatternIndex[int] = PatternIndex()
    index.add(1, {"a": ["1"]})
    assert index.match({"a": "2"}) == []
    assert PatternIndex[int]().match({"a": "1"}) == []


def test_add_returns_the_compiled_pattern() -> None:
    """``add`` compiles specs, and accepts compiled patterns as they are."""
    index: PatternIndex[str] = PatternIndex()
    compiled = Pattern({"a": ["1"]})
    assert index.add("x", compiled) is compiled
    assert isinstance(index.add("y", {"a": ["2"]}), Pattern)


def test_add_rejects_invalid_specs() -> None:
    """An invalid spec raises PatternError and leaves the index unchanged."""
    index: PatternIndex[str] = PatternIndex()
    with pytest.raises(PatternError, match=r"^where\.a: expected an array"):
        index.add("x", {"a": "1"})
    assert len(index) == 0


def test_duplicate_key_is_rejected() -> None:
    """A key is added once."""
    index: PatternIndex[str] = PatternIndex()
    index.add("x", {"a": ["1"]})
    with pytest.raises(ValueError, match="'x' is already in the index; remove it"):
        index.add("x", {"a": ["2"]})


def test_remove_forgets_the_pattern() -> None:
    """A removed key is no longer returned, and may be added again."""
    index: PatternIndex[str] = PatternIndex()
    index.add("x", {"a": ["1", "2"]})
    index.add("y", {"a": ["1"]})
    index.add("z", {"b": [{"prefix": ""}]})
    index.remove("x")
    index.remove("z")
    assert index.match({"a": "1", "b": "q"}) == ["y"]
    assert "x" not in index
    assert len(index) == 1
    index.add("x", {"a": ["1"]})
    assert index.match({"a": "1"}) == ["y", "x"]


def test_remove_unknown_key() -> None:
    """Removing a key that is not there raises KeyError."""
    index: PatternIndex[str] = PatternIndex()
    with pytest.raises(KeyError, match="'x' is not in the index"):
        index.remove("x")


def test_patterns_without_an_indexable_field_are_always_evaluated() -> None:
    """Patterns with no field of indexable alternatives fall back to full evaluation."""
    index: PatternIndex[str] = PatternIndex()
    index.add("exact", {"a": ["1"]})
    index.add("prefix", {"a": [{"prefix": "1"}]})
    index.add("or", {"$or": [{"a": ["1"]}, {"b": ["2"]}]})
    index.add("absent", {"c": [{"exists": False}]})
    assert index.match({"a": "1"}) == ["exact", "prefix", "or", "absent"]
    assert index.match({"b": "2", "c": 3}) == ["or"]


INDEXED_KINDS: dict[str, tuple[Callable[[int], dict[str, Any]], str]] = {
    "prefix": (lambda i: {"key": [{"prefix": f"k{i}/"}]}, "k500/a.png"),
    "suffix": (lambda i: {"key": [{"suffix": f".{i}.png"}]}, "a.500.png"),
    "equals-ignore-case": (lambda i: {"key": [{"equals-ignore-case": f"K{i}"}]}, "k500"),
    "prefix ignoring case": (
        lambda i: {"key": [{"prefix": {"equals-ignore-case": f"K{i}/"}}]},
        "k500/a.png",
    ),
    "suffix ignoring case": (
        lambda i: {"key": [{"suffix": {"equals-ignore-case": f".{i}.PNG"}}]},
        "a.500.png",
    ),
    "wildcard with a literal start": (
        lambda i: {"key": [{"wildcard": f"k{i}/*.png"}]},
        "k500/a.png",
    ),
    "wildcard with a literal end": (lambda i: {"key": [{"wildcard": f"*/{i}.png"}]}, "a/500.png"),
}


@pytest.mark.parametrize("kind", sorted(INDEXED_KINDS))
def test_string_operators_are_looked_up_not_evaluated(kind: str) -> None:
    """With 1,000 patterns of an indexed kind, a match evaluates about one of them."""
    make, value = INDEXED_KINDS[kind]
    index: PatternIndex[int] = PatternIndex()
    for i in range(1000):
        index.add(i, make(i))
    assert "1000 indexed" in repr(index)
    document = CountingDocument({"key": value})
    assert index.match(document) == [500]
    assert document.reads <= 3


def test_an_empty_prefix_finds_every_string() -> None:
    """{"prefix": ""} and {"suffix": ""} are found for any string, and never for a number."""
    index: PatternIndex[str] = PatternIndex()
    for name, spec in [("p", {"prefix": ""}), ("s", {"suffix": ""}), ("x", {"prefix": "x"})]:
        index.add(name, {"key": [spec]})
    assert index.match({"key": "abc"}) == ["p", "s"]
    assert index.match({"key": ""}) == ["p", "s"]
    assert index.match({"key": 5}) == []


def test_case_folding_that_changes_length_is_found() -> None:
    """ "ß" folds to "ss": keys folded longer or shorter than the value are still found."""
    index: PatternIndex[str] = PatternIndex()
    index.add("eq", {"key": [{"equals-ignore-case": "STRASSE"}]})
    index.add("prefix", {"key": [{"prefix": {"equals-ignore-case": "ss"}}]})
    index.add("suffix", {"key": [{"suffix": {"equals-ignore-case": "SSE"}}]})
    index.add("other", {"key": ["nothing"]})
    assert index.match({"key": "straße"}) == ["eq", "suffix"]
    assert index.match({"key": "ßx"}) == ["prefix"]


def test_exact_fields_are_preferred_as_anchors() -> None:
    """A pattern with an exact field and a prefix field is filed under the exact one."""
    index: PatternIndex[str] = PatternIndex()
    index.add("both", {"key": [{"prefix": "k"}], "bucket": ["photos"]})
    index.add("other", {"bucket": ["docs"]})
    index.add("third", {"bucket": ["x"]})
    entry = index._entries["both"]
    assert entry.anchor == (("bucket",), frozenset({("exact", "photos")}))


def test_numbers_are_indexed_by_value() -> None:
    """300 in a pattern finds 3.0e2 and Decimal 300 in documents."""
    index: PatternIndex[str] = PatternIndex()
    index.add("n", {"n": [300]})
    index.add("t", {"n": [True]})
    assert index.match({"n": 3.0e2}) == ["n"]
    assert index.match({"n": 1}) == []
    assert index.match({"n": True}) == ["t"]


def test_arrays_in_documents_find_every_element() -> None:
    """Each value of an array is looked up, and a pattern is returned once."""
    index: PatternIndex[str] = PatternIndex()
    index.add("ab", {"tags": ["a", "b"]})
    index.add("c", {"tags": ["c"]})
    assert index.match({"tags": ["b", "a", "c"]}) == ["ab", "c"]


def test_nested_anchor() -> None:
    """Exact values inside nested objects are indexed too."""
    index: PatternIndex[str] = PatternIndex()
    index.add("running", {"detail": {"state": ["running"], "n": [{"numeric": [">", 0]}]}})
    assert index.match({"detail": [{"state": "stopped"}, {"state": "running", "n": 1}]}) == [
        "running"
    ]
    assert index.match({"detail": {"state": "running", "n": 0}}) == []


def test_repr_counts_patterns() -> None:
    """The repr says how many patterns are indexed."""
    index: PatternIndex[str] = PatternIndex()
    index.add("x", {"a": ["1"]})
    index.add("y", {"a": [{"anything-but": "1"}]})
    assert repr(index) == "<PatternIndex: 2 patterns, 1 indexed on 1 fields>"


class CountingDocument(Mapping[str, object]):
    """A mapping that counts how often its fields are read."""

    def __init__(self, data: dict[str, object]) -> None:
        self.data = data
        self.reads = 0

    def __getitem__(self, key: str) -> object:
        self.reads += 1
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_lookup_evaluates_a_handful_of_patterns_not_all() -> None:
    """With 1,000 exact-value patterns, a match reads the document a few times, not 1,000."""
    index: PatternIndex[int] = PatternIndex()
    for i in range(1000):
        index.add(i, {"key": [f"k{i}"]})
    document = CountingDocument({"key": "k500"})
    assert index.match(document) == [500]
    assert document.reads <= 3


# --------------------------------------------------------------------------- equivalence

KEYS = st.sampled_from(["a", "b", "c"])
# Exact values are weighted up: they are what the index files patterns under.
exact_values = st.sampled_from(["x", "y", 0, 1, 1.0, True, None])
# Texts whose case folding changes their length ("ß" folds to "ss") or spans characters.
texts = st.sampled_from(["x", "y", "", "X", "xy", "ss", "ß", "SS", "ﬁ", "İ"])
operators = st.one_of(
    st.builds(lambda s: {"prefix": s}, st.sampled_from(["x", "y", ""])),
    st.builds(lambda n: {"numeric": [">", n]}, st.integers(min_value=0, max_value=2)),
    st.sampled_from([{"exists": True}, {"exists": False}]),
    st.builds(lambda s: {"anything-but": s}, st.sampled_from(["x", "y", 1])),
)
# The kinds the index files besides exact values: affixes, case-insensitive tests, wildcards.
string_operators = st.one_of(
    st.builds(lambda s: {"prefix": s}, texts),
    st.builds(lambda s: {"suffix": s}, texts),
    st.builds(lambda s: {"equals-ignore-case": s}, texts),
    st.builds(lambda s: {"prefix": {"equals-ignore-case": s}}, texts),
    st.builds(lambda s: {"suffix": {"equals-ignore-case": s}}, texts),
    st.builds(lambda s: {"wildcard": s}, st.sampled_from(["x*", "*y", "x*y", "*", "xy", "ß*", ""])),
)
alternatives = st.one_of(exact_values, exact_values, exact_values, operators, string_operators)
leaves = st.lists(alternatives, min_size=1, max_size=3)
flat_patterns = st.dictionaries(KEYS, leaves, min_size=1, max_size=2)


def _with_children(
    children: st.SearchStrategy[dict[str, Any]],
) -> st.SearchStrategy[dict[str, Any]]:
    nested = st.dictionaries(KEYS, children | leaves, min_size=1, max_size=2)
    with_or = st.builds(
        lambda first, second, rest: {**rest, "$or": [first, second]},
        children,
        children,
        st.dictionaries(KEYS, leaves, max_size=1),
    )
    return nested | with_or


patterns = st.recursive(flat_patterns, _with_children, max_leaves=5)
_PLAIN: list[object] = ["x", "y", "z", "xy", "", 0, 1, 2, 1.0, True, False, None]
_CASED: list[object] = ["X", "XY", "yx", "ss", "ß", "SSy", "xß", "ﬁx", "i̇", "İ", "x*y"]
doc_scalars = st.sampled_from([*_PLAIN, *_CASED])
doc_values = st.recursive(
    doc_scalars | st.lists(doc_scalars, min_size=1, max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=8,
)
flat_docs = st.dictionaries(
    KEYS, doc_scalars | st.lists(doc_scalars, min_size=1, max_size=3), max_size=3
)
docs = st.one_of(
    flat_docs,
    flat_docs,
    st.dictionaries(KEYS, doc_values, max_size=3),
    st.lists(st.dictionaries(KEYS, doc_values, max_size=2), max_size=2),
)


@settings(max_examples=300)
@given(st.lists(patterns, min_size=1, max_size=12), st.lists(docs, min_size=1, max_size=5))
def test_index_equals_evaluating_every_pattern(
    specs: list[dict[str, Any]], documents: list[object]
) -> None:
    """``match`` returns exactly the keys whose pattern matches, in insertion order."""
    index: PatternIndex[int] = PatternIndex()
    compiled = [index.add(i, spec) for i, spec in enumerate(specs)]
    for document in documents:
        expected = [i for i, pattern in enumerate(compiled) if pattern.matches(document)]
        assert index.match(document) == expected


array_docs = st.fixed_dictionaries(
    {key: st.lists(doc_scalars, min_size=1, max_size=4) for key in ("a", "b", "c")}
)


string_leaves = st.lists(string_operators, min_size=1, max_size=3)
string_patterns = st.dictionaries(KEYS, string_leaves, min_size=1, max_size=2)


@settings(max_examples=300)
@given(
    st.lists(string_patterns, min_size=3, max_size=30), st.lists(flat_docs, min_size=1, max_size=5)
)
def test_index_equivalence_with_string_operators(
    specs: list[dict[str, Any]], documents: list[dict[str, Any]]
) -> None:
    """Patterns filed under prefixes, suffixes, folded values and wildcards are found exactly."""
    index: PatternIndex[int] = PatternIndex()
    compiled = [index.add(i, spec) for i, spec in enumerate(specs)]
    for document in documents:
        assert index.match(document) == [i for i, p in enumerate(compiled) if p.matches(document)]


@given(
    st.lists(flat_patterns, min_size=1, max_size=12), st.lists(array_docs, min_size=1, max_size=5)
)
def test_index_equivalence_with_array_values(
    specs: list[dict[str, Any]], documents: list[dict[str, Any]]
) -> None:
    """Documents whose fields are arrays find patterns through any element."""
    index: PatternIndex[int] = PatternIndex()
    compiled = [index.add(i, spec) for i, spec in enumerate(specs)]
    for document in documents:
        assert index.match(document) == [i for i, p in enumerate(compiled) if p.matches(document)]


@given(st.lists(patterns, min_size=2, max_size=10), st.data())
def test_index_stays_equivalent_after_removals(
    specs: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Removing patterns keeps the index equal to evaluating those left."""
    index: PatternIndex[int] = PatternIndex()
    compiled = {i: index.add(i, spec) for i, spec in enumerate(specs)}
    for key in data.draw(st.lists(st.sampled_from(sorted(compiled)), unique=True)):
        index.remove(key)
        del compiled[key]
    for document in data.draw(st.lists(docs, min_size=1, max_size=4)):
        assert index.match(document) == [i for i, p in compiled.items() if p.matches(document)]


events = st.builds(
    ObjectCreated,
    bucket=st.sampled_from(["x", "y", "photos"]),
    key=st.sampled_from(["x", "y", "a.png"]),
    size=st.integers(min_value=0, max_value=3),
    etag=st.just("e"),
    metadata=st.dictionaries(KEYS, st.sampled_from(["x", "y"]), max_size=2),
)
event_patterns = st.dictionaries(
    st.sampled_from(["bucket", "key", "size", "zone"]), leaves, min_size=1, max_size=2
) | st.builds(lambda meta: {"metadata": meta}, flat_patterns)


@given(st.lists(event_patterns, min_size=1, max_size=10), st.lists(events, min_size=1, max_size=4))
def test_index_equivalence_on_events(
    specs: list[dict[str, Any]], documents: list[ObjectCreated]
) -> None:
    """Events read by attribute give the same answer through the index."""
    index: PatternIndex[int] = PatternIndex()
    compiled = [index.add(i, spec) for i, spec in enumerate(specs)]
    for document in documents:
        assert index.match(document) == [i for i, p in enumerate(compiled) if p.matches(document)]
