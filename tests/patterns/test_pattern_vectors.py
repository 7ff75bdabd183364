"""EventBridge pattern vectors whose outcomes were recorded against AWS.

The data file names its public source; each case is a pattern, an event and
the outcome AWS gave: a match, no match, or a rejected pattern.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eventbus import Pattern, PatternError

_DATA = json.loads(
    (Path(__file__).parent.parent / "data" / "vectors" / "eventbridge_patterns.json").read_text()
)
_CASES: list[list[Any]] = _DATA["cases"]


@pytest.mark.parametrize(
    ("pattern", "event", "outcome"),
    [pytest.param(p, e, o, id=name) for name, p, e, o in _CASES],
)
def test_recorded_outcome(pattern: Any, event: dict[str, Any], outcome: str) -> None:
    """Pattern(spec).matches(event) agrees with AWS, and invalid patterns are refused."""
    if outcome == "error":
        with pytest.raises(PatternError):
            Pattern(pattern)
        return
    assert Pattern(pattern).matches(event) is (outcome == "match")


def test_vectors_cover_all_outcomes() -> None:
    """The table has matches, non-matches and rejected patterns."""
    assert {case[3] for case in _CASES} == {"match", "nomatch", "error"}


# Cases from moto's EventBridge pattern tests (github.com/getmoto/moto,
# tests/test_events/test_event_pattern.py): pattern, event, whether it matches.
_MOTO: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    ({"source": ["foo", "bar"]}, {"source": "foo"}, True),
    ({"source": ["foo", "bar"]}, {"source": "baz"}, False),
    ({"detail": {"foo": ["bar"]}}, {"detail": {"foo": "baz"}}, False),
    ({"detail": {"foo": [{"exists": True}]}}, {"detail": {"foo": "bar"}}, True),
    ({"detail": {"foo": [{"exists": True}]}}, {"detail": {}}, False),
    ({"detail": {"foo": [{"exists": True}]}}, {"detail": {"foo": {"bar": "baz"}}}, False),
    ({"detail": {"foo": [{"exists": False}]}}, {"detail": {"foo": "bar"}}, False),
    ({"detail": {"foo": [{"exists": False}]}}, {"detail": {}}, True),
    ({"detail": {"foo": [{"exists": False}]}}, {"detail": {"foo": {"bar": "baz"}}}, True),
    ({"detail": {"foo": [{"prefix": "bar"}]}}, {"detail": {"foo": "bar!"}}, True),
    ({"detail": {"foo": [{"prefix": "bar"}]}}, {"detail": {"foo": "ba"}}, False),
    ({"detail": {"foo": [{"numeric": ["<=", 1]}]}}, {"detail": {"foo": 1}}, True),
    ({"detail": {"foo": [{"numeric": [">", 1]}]}}, {"detail": {"foo": 1}}, False),
    ({"detail": {"foo": [{"numeric": [">=", 1, "<", 3]}]}}, {"detail": {"foo": 3}}, False),
    ({"detail": {"foo": [{"numeric": [">", 1, "<=", 3]}]}}, {"detail": {"foo": 3}}, True),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), _MOTO)
def test_moto_cases(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    """Pattern(spec).matches(event) agrees with moto's expectations."""
    assert Pattern(pattern).matches(event) is expected


# The anything-but forms EventBridge added in 2024, from LocalStack's templates run
# against AWS (tests/data/patterns/SOURCES.md pins each file by commit).
_ANYTHING_BUT: list[list[Any]] = json.loads(
    (
        Path(__file__).parent.parent / "data" / "patterns" / "eventbridge_anything_but.json"
    ).read_text()
)["cases"]


@pytest.mark.parametrize(
    ("pattern", "event", "outcome"),
    [pytest.param(p, e, o, id=name) for name, _commit, p, e, o in _ANYTHING_BUT],
)
def test_recorded_anything_but_outcome(pattern: Any, event: dict[str, Any], outcome: str) -> None:
    """The newer anything-but forms match, and do not match, as AWS recorded."""
    assert Pattern(pattern).matches(event) is (outcome == "match")


def test_anything_but_vectors_cover_each_new_form_both_ways() -> None:
    """Each new form has a recorded match and a recorded non-match."""
    forms = {"prefix", "suffix", "wildcard", "equals-ignore-case"}
    seen = {
        (form, o)
        for _name, _commit, p, _e, o in _ANYTHING_BUT
        for form in forms
        if f'"{form}"' in json.dumps(p)
    }
    assert seen == {(form, o) for form in forms for o in ("match", "nomatch")}
