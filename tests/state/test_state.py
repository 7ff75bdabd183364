"""The state primitives: JSON encoding of states, state keys, the Protocols."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventbus import EventBusError
from eventbus._state import encode_state, state_key
from eventbus.state import (
    MemoryState,
    ReminderStore,
    SqliteState,
    StateError,
    StateKeys,
    StateStore,
    StoredState,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_encode_state_round_trips_json_values(state: dict[str, Any]) -> None:
    """Any JSON object encodes to text that decodes to an equal object."""
    assert json.loads(encode_state("sub", "k", state)) == state


@pytest.mark.parametrize(
    ("state", "where"),
    [
        ({"when": object()}, r"state\['when'\] = <object"),
        ({"items": [1, {2, 3}]}, r"state\['items'\]\[1\] = \{2, 3\}.*use a list"),
        ({"n": math.nan}, r"state\['n'\] = nan is not a finite number"),
        ({"m": {1: "x"}}, r"state\['m'\] = 1 is a int key"),
        ({"t": (1, 2)}, r"state\['t'\] = \(1, 2\).*use a list"),
    ],
)
def test_encode_state_names_the_bad_field(state: dict[str, Any], where: str) -> None:
    """A value that is not JSON raises StateError naming subscription, key and field."""
    with pytest.raises(StateError, match=rf"subscription 'cart', key 'c1': {where}"):
        encode_state("cart", "c1", state)


def test_encode_state_refuses_deep_nesting() -> None:
    """A state nested past 100 levels is refused in bounded time."""
    deep: Any = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(StateError, match="nests deeper than 100 levels"):
        encode_state("sub", "k", {"deep": deep})


def test_state_error_is_a_value_error() -> None:
    """StateError is an EventBusError and a ValueError."""
    assert issubclass(StateError, EventBusError)
    assert issubclass(StateError, ValueError)


@pytest.mark.parametrize(
    ("key", "text"),
    [("c1", "c1"), (42, "42"), (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001")],
)
def test_state_key_accepts_str_int_and_uuid(key: object, text: str) -> None:
    """Ordering keys of type str, int or UUID become text store keys."""
    assert state_key("sub", key) == text


@pytest.mark.parametrize("key", [None, True, 1.5, ("a", 1)])
def test_state_key_refuses_other_types(key: object) -> None:
    """Other ordering keys raise StateError saying what ordered_by must return."""
    with pytest.raises(StateError, match=r"a state key must be a str or an int.*ordered_by"):
        state_key("sub", key)


def test_stored_state_decodes_to_a_new_dict() -> None:
    """``StoredState.decode`` returns a fresh dict each time."""
    stored = StoredState('{"a":[1]}', 3)
    first = stored.decode()
    first["a"].append(2)
    assert stored.decode() == {"a": [1]}


def test_built_in_stores_implement_every_protocol(tmp_path: Any) -> None:
    """MemoryState and SqliteState are StateStore, StateKeys and ReminderStore."""
    with SqliteState(tmp_path / "s.db") as sqlite:
        for store in (MemoryState(), sqlite):
            assert isinstance(store, StateStore)
            assert isinstance(store, StateKeys)
            assert isinstance(store, ReminderStore)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10"])
def test_applied_ids_must_be_a_positive_int(bad: object) -> None:
    """``applied_ids`` that is not an int >= 1 raises StateError."""
    with pytest.raises(StateError, match=r"MemoryState\(applied_ids=...\) must be an int >= 1"):
        MemoryState(applied_ids=bad)  # type: ignore[arg-type]
