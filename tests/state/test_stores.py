"""The state stores' contract, checked on every store (Redis only when it runs)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from eventbus import Event, to_cloudevent
from eventbus.state import (
    Reminder,
    ReminderStore,
    StateChange,
    StateConflict,
    StateKeys,
    StateStore,
    StoredState,
)

DUE = datetime(2024, 1, 1, tzinfo=UTC)


def change(text: str, version: int, event_id: str, *reminders: Reminder) -> StateChange:
    return StateChange(text, version, event_id, reminders)


def reminder(key: str, seconds: float, sub: str = "sub") -> Reminder:
    return Reminder(sub, key, DUE + timedelta(seconds=seconds), to_cloudevent(Event()))


async def keys_of(store: StateStore, sub: str) -> list[str]:
    assert isinstance(store, StateKeys)
    return sorted([key async for key in store.keys(sub)])


async def test_a_new_key_is_empty_at_version_zero(store: StateStore) -> None:
    """A key never committed loads as ``{}`` at version 0, nothing applied."""
    assert await store.load("sub", "k", "e1") == StoredState("{}", 0, False)


async def test_commit_writes_state_version_and_event_id(store: StateStore) -> None:
    """A commit stores the text, bumps the version and records the event id."""
    assert await store.commit("sub", "k", change('{"n":1}', 0, "e1"))
    assert await store.load("sub", "k", "e1") == StoredState('{"n":1}', 1, True)
    assert await store.load("sub", "k", "e2") == StoredState('{"n":1}', 1, False)
    assert await store.load("sub", "k") == StoredState('{"n":1}', 1, False)


async def test_an_applied_event_id_is_refused(store: StateStore) -> None:
    """Committing an event id already applied to the key writes nothing and returns False."""
    await store.commit("sub", "k", change('{"n":1}', 0, "e1"))
    assert not await store.commit("sub", "k", change('{"n":2}', 1, "e1"))
    assert await store.load("sub", "k") == StoredState('{"n":1}', 1, False)


async def test_a_stale_version_raises_state_conflict(store: StateStore) -> None:
    """A commit from a version the key has moved past raises StateConflict."""
    await store.commit("sub", "k", change('{"n":1}', 0, "e1"))
    with pytest.raises(StateConflict, match=r"'sub', key 'k'.*version 1.*version 0") as info:
        await store.commit("sub", "k", change('{"n":9}', 0, "e2"))
    assert (info.value.expected, info.value.found) == (0, 1)
    assert await store.load("sub", "k") == StoredState('{"n":1}', 1, False)


async def test_applied_ids_keep_only_the_latest(make_store: Callable[..., StateStore]) -> None:
    """Each key remembers only its latest ``applied_ids`` event ids."""
    store = make_store(applied_ids=2)
    for version, event_id in enumerate(["e1", "e2", "e3"]):
        await store.commit("sub", "k", change("{}", version, event_id))
    assert [(await store.load("sub", "k", e)).applied for e in ["e1", "e2", "e3"]] == [
        False,
        True,
        True,
    ]


async def test_subscriptions_and_keys_are_separate(store: StateStore) -> None:
    """The same key in two subscriptions, and two keys, are independent records."""
    await store.commit("a", "k", change('{"a":1}', 0, "e1"))
    await store.commit("b", "k", change('{"b":1}', 0, "e1"))
    await store.commit("a", "k2", change('{"c":1}', 0, "e1"))
    assert (await store.load("a", "k")).text == '{"a":1}'
    assert (await store.load("b", "k")).text == '{"b":1}'
    assert (await store.load("a", "k2")).text == '{"c":1}'


async def test_names_with_separators_do_not_collide(store: StateStore) -> None:
    """Subscription names and keys containing ':' never share a record."""
    await store.commit("x:s:y", "z", change('{"one":1}', 0, "e1"))
    await store.commit("x", "y:s:z", change('{"two":2}', 0, "e1"))
    assert (await store.load("x:s:y", "z")).text == '{"one":1}'
    assert (await store.load("x", "y:s:z")).text == '{"two":2}'


async def test_keys_lists_keys_whose_state_is_not_empty(store: StateStore) -> None:
    """``keys`` lists a subscription's keys with a non-empty state, only."""
    await store.commit("sub", "a", change('{"n":1}', 0, "e1"))
    await store.commit("sub", "b", change('{"n":1}', 0, "e2"))
    await store.commit("sub", "b", change("{}", 1, "e3"))
    await store.commit("other", "c", change('{"n":1}', 0, "e4"))
    assert await keys_of(store, "sub") == ["a"]


async def test_reminders_are_committed_with_the_state(store: StateStore) -> None:
    """Reminders in a commit are listed earliest due first, with their event."""
    late, early = reminder("k", 60), reminder("k", 5)
    await store.commit("sub", "k", change("{}", 0, "e1", late, early))
    assert isinstance(store, ReminderStore)
    assert await store.reminders("sub") == [early, late]
    assert await store.reminders("other") == []


async def test_forget_removes_a_reminder(store: StateStore) -> None:
    """``forget`` removes one reminder; forgetting an unknown one is harmless."""
    first, second = reminder("k", 1), reminder("k", 2)
    await store.commit("sub", "k", change("{}", 0, "e1", first, second))
    assert isinstance(store, ReminderStore)
    await store.forget(first)
    await store.forget(first)
    assert await store.reminders("sub") == [second]


async def test_a_refused_commit_stores_no_reminder(store: StateStore) -> None:
    """A duplicate or conflicting commit leaves its reminders out."""
    await store.commit("sub", "k", change("{}", 0, "e1"))
    assert not await store.commit("sub", "k", change("{}", 1, "e1", reminder("k", 1)))
    with pytest.raises(StateConflict):
        await store.commit("sub", "k", change("{}", 0, "e2", reminder("k", 2)))
    assert isinstance(store, ReminderStore)
    assert await store.reminders("sub") == []


async def test_concurrent_writers_lose_no_update(make_store: Callable[..., StateStore]) -> None:
    """Writers on separate connections retrying on StateConflict count every increment."""
    writers = [make_store() for _ in range(4)]

    async def increment(store: StateStore, worker: int) -> None:
        for i in range(25):
            while True:
                loaded = await store.load("sub", "k", f"{worker}-{i}")
                n = int(loaded.text[5:-1]) if loaded.version else 0
                try:
                    await store.commit(
                        "sub", "k", change(f'{{"n":{n + 1}}}', loaded.version, f"{worker}-{i}")
                    )
                except StateConflict:
                    continue
                break

    async with anyio.create_task_group() as tg:
        for worker, store in enumerate(writers):
            tg.start_soon(increment, store, worker)
    assert await writers[0].load("sub", "k") == StoredState('{"n":100}', 100, False)


async def test_a_batch_commit_applies_every_event_id(store: StateStore) -> None:
    """A commit with ``also_applied`` records each id; a later commit naming any is refused."""
    batch = StateChange('{"n":3}', 0, "e1", (), ("e2", "e3"))
    assert batch.event_ids == ("e1", "e2", "e3")
    assert await store.commit("sub", "k", batch)
    assert [(await store.load("sub", "k", e)).applied for e in ("e1", "e2", "e3", "e4")] == [
        True,
        True,
        True,
        False,
    ]
    assert not await store.commit("sub", "k", StateChange('{"n":9}', 1, "e4", (), ("e3",)))
    assert (await store.load("sub", "k")).text == '{"n":3}'


async def test_applied_ids_are_kept_per_commit(make_store: Callable[..., StateStore]) -> None:
    """``applied_ids`` counts commits: a batch's ids are forgotten together."""
    store = make_store(applied_ids=1)
    await store.commit("sub", "k", StateChange("{}", 0, "a1", (), ("a2",)))
    await store.commit("sub", "k", StateChange("{}", 1, "b1", (), ("b2",)))
    applied = [(await store.load("sub", "k", e)).applied for e in ("a1", "a2", "b1", "b2")]
    assert applied == [False, False, True, True]
