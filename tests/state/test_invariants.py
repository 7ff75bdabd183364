"""Hypothesis: a store behaves as a simple model under any sequence of commits."""

from __future__ import annotations

import tempfile
from collections import deque
from pathlib import Path

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus.state import MemoryState, SqliteState, StateChange, StateConflict, StateStore

# One operation: (key, event id, how many versions stale the commit is)
operations = st.lists(
    st.tuples(st.sampled_from("ab"), st.integers(0, 7), st.integers(0, 2)),
    max_size=40,
)


async def _check(store: StateStore, ops: list[tuple[str, int, int]], keep: int) -> None:
    versions = {"a": 0, "b": 0}
    applied: dict[str, deque[str]] = {"a": deque(maxlen=keep), "b": deque(maxlen=keep)}
    texts = {"a": "{}", "b": "{}"}
    for step, (key, n, stale) in enumerate(ops):
        event_id = f"e{n}"
        text = f'{{"step":{step}}}'
        version = versions[key] - stale
        duplicate = event_id in applied[key]
        try:
            written = await store.commit("sub", key, StateChange(text, version, event_id))
        except StateConflict:
            assert not duplicate
            assert stale > 0
            continue
        assert written == (not duplicate)
        if written:
            assert stale == 0
            versions[key] += 1
            applied[key].append(event_id)
            texts[key] = text
        for k in "ab":
            loaded = await store.load("sub", k, event_id)
            assert (loaded.text, loaded.version) == (texts[k], versions[k])
            assert loaded.applied == (event_id in applied[k])


@settings(max_examples=60, deadline=None)
@given(ops=operations, keep=st.integers(1, 4))
def test_memory_state_matches_the_model(ops: list[tuple[str, int, int]], keep: int) -> None:
    """MemoryState: a commit writes iff its version is current and its event id is new."""
    anyio.run(_check, MemoryState(applied_ids=keep), ops, keep)


@settings(max_examples=30, deadline=None)
@given(ops=operations, keep=st.integers(1, 4))
def test_sqlite_state_matches_the_model(ops: list[tuple[str, int, int]], keep: int) -> None:
    """SqliteState: a commit writes iff its version is current and its event id is new."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        SqliteState(Path(tmp) / "s.db", applied_ids=keep) as store,
    ):
        anyio.run(_check, store, ops, keep)
