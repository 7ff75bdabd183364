"""Issue 13/15 patterns under fuzzing: build or PatternError; matching never raises."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import Pattern, PatternError

_OPS = [
    "prefix",
    "suffix",
    "anything-but",
    "numeric",
    "exists",
    "equals-ignore-case",
    "wildcard",
    "cidr",
    "$or",
]

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["*", "**", "a*b", "10.0.0.0/8", ">", "<=", "=", "1e400", ""])
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.sampled_from(_OPS), inner, max_size=3)
    ),
    max_leaves=25,
)
_specs = st.dictionaries(st.text(max_size=6) | st.sampled_from(_OPS), _json, min_size=1, max_size=3)


@settings(max_examples=200, deadline=1000)
@given(spec=_specs, doc=_json)
def test_any_spec_builds_or_raises_pattern_error_and_matching_never_raises(
    spec: Any, doc: Any
) -> None:
    """Random specs build or raise PatternError/TypeError; a built pattern matches any doc to a bool."""
    try:
        pattern = Pattern(spec)
    except (PatternError, TypeError):
        return
    if isinstance(doc, dict):
        assert pattern.matches(doc) in (True, False)


@settings(max_examples=300, deadline=1000)
@given(
    op=st.sampled_from(["prefix", "suffix", "equals-ignore-case", "wildcard"]),
    value=_json,
    doc=_json,
)
def test_anything_but_forms_build_or_raise_pattern_error(op: str, value: Any, doc: Any) -> None:
    """anything-but with any operand builds or raises PatternError; matching returns a bool."""
    try:
        pattern = Pattern({"a": [{"anything-but": {op: value}}]})
    except (PatternError, TypeError):
        return
    assert pattern.matches({"a": doc}) in (True, False)
