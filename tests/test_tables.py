"""Table: the same behaviour in memory and in SQLite, plus the SQLite outbox's guarantees."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.text import TextReceiveStream

from eventbus import Bus, BusClosed, EventBusError, SerializationError
from eventbus.sources.tables import ConditionFailed, Table, TableChange
from eventbus.testing import FakeClock

NOW = datetime(2024, 1, 1, tzinfo=UTC)  # the fake_clock fixture's start


@contextlib.asynccontextmanager
async def running(clock: FakeClock | None = None) -> AsyncIterator[tuple[Bus, list[TableChange]]]:
    """A running bus, and the table changes it delivers, in order."""
    changes: list[TableChange] = []

    async def record(event: TableChange) -> None:
        changes.append(event)

    async with Bus(clock=clock) as bus:
        bus.subscribe(TableChange, record, name="recorder")
        yield bus, changes


@pytest.fixture(params=["memory", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    """None for the memory backend, an SQLite file for the durable one."""
    return None if request.param == "memory" else tmp_path / "tables.db"


async def test_put_publishes_an_insert_with_every_field(
    fake_clock: FakeClock, db: Path | None
) -> None:
    """A new row publishes INSERT with keys, new image, sequence number, source and time."""
    async with running(fake_clock) as (bus, seen), Table(bus, "users", key="id", path=db) as users:
        change = await users.put({"id": "u1", "name": "Ann"})
        await bus.drain()
    assert seen == [change]
    assert change is not None
    assert change.table == "users"
    assert change.op == "INSERT"
    assert change.keys == {"id": "u1"}
    assert change.new_image == {"id": "u1", "name": "Ann"}
    assert change.old_image is None
    assert change.sequence_number == 1
    assert change.expired is False
    assert change.source == "eventbus.tables/users"
    assert change.time == fake_clock.wall()


async def test_put_over_a_row_publishes_modify_with_both_images(
    fake_clock: FakeClock, db: Path | None
) -> None:
    """Replacing a row publishes MODIFY with the old and new images."""
    async with running(fake_clock) as (bus, seen), Table(bus, "t", key="id", path=db) as t:
        await t.put({"id": 1, "v": "a"})
        change = await t.put({"id": 1, "v": "b"})
        await bus.drain()
    assert change is not None
    assert (change.op, change.old_image, change.new_image) == (
        "MODIFY",
        {"id": 1, "v": "a"},
        {"id": 1, "v": "b"},
    )
    assert [c.sequence_number for c in seen] == [1, 2]


async def test_a_write_that_changes_nothing_publishes_nothing(
    fake_clock: FakeClock, db: Path | None
) -> None:
    """Equal puts, empty updates and deletes of missing rows return None and publish nothing."""
    async with running(fake_clock) as (bus, seen), Table(bus, "t", key="id", path=db) as t:
        await t.put({"id": 1, "n": 1, "tags": ["x"]})
        assert await t.put({"id": 1.0, "n": Decimal("1.0"), "tags": ("x",)}) is None
        assert await t.update({"id": 1}, {"n": 1}) is None
        assert await t.update({"id": 1}, remove=["missing"]) is None
        assert await t.delete({"id": 2}) is None
        later = await t.put({"id": 1, "n": 2})
        await bus.drain()
    assert later is not None
    assert later.sequence_number == 2
    assert [c.op for c in seen] == ["INSERT", "MODIFY"]


async def test_get_returns_a_copy_or_none(fake_clock: FakeClock, db: Path | None) -> None:
    """get() returns the row (a copy the caller may change) or None."""
    async with running(fake_clock) as (bus, _), Table(bus, "t", key="id", path=db) as t:
        await t.put({"id": "a", "nested": {"n": [1, 2]}})
        row = await t.get({"id": "a"})
        assert row == {"id": "a", "nested": {"n": [1, 2]}}
        row["nested"]["n"].append(3)
        assert await t.get({"id": "a"}) == {"id": "a", "nested": {"n": [1, 2]}}
        assert await t.get({"id": "b"}) is None


async def test_update_sets_and_removes_attributes(fake_clock: FakeClock, db: Path | None) -> None:
    """update() changes only what it names, and creates the row when missing."""
    async with running(fake_clock) as (bus, seen), Table(bus, "t", key="id", path=db) as t:
        created = await t.update({"id": 1}, {"a": 1})
        modified = await t.update({"id": 1}, {"b": 2}, remove=["a"])
        await bus.drain()
        assert await t.get({"id": 1}) == {"id": 1, "b": 2}
    assert created is not None
    assert modified is not None
    assert (created.op, created.new_image) == ("INSERT", {"id": 1, "a": 1})
    assert (modified.op, modified.old_image, modified.new_image) == (
        "MODIFY",
        {"id": 1, "a": 1},
        {"id": 1, "b": 2},
    )
    assert len(seen) == 2


async def test_update_refuses_to_change_keys(fake_clock: FakeClock, db: Path | None) -> None:
    """Naming a key attribute in update() is a ValueError that says what to do instead."""
    async with (
        running(fake_clock) as (bus, _),
        Table(bus, "t", key="id", sort_key="s", path=db) as t,
    ):
        with pytest.raises(ValueError, match="key attributes cannot change"):
            await t.update({"id": 1, "s": 1}, {"s": 2})
        with pytest.raises(ValueError, match="key attributes cannot change"):
            await t.update({"id": 1, "s": 1}, remove=["id"])
        with pytest.raises(TypeError, match="not a string"):
            await t.update({"id": 1, "s": 1}, remove="x")


async def test_delete_publishes_a_remove_with_the_old_image(
    fake_clock: FakeClock, db: Path | None
) -> None:
    """delete() publishes REMOVE with the old image and no new image."""
    async with running(fake_clock) as (bus, seen), Table(bus, "t", key="id", path=db) as t:
        await t.put({"id": 1, "v": "x"})
        change = await t.delete({"id": 1})
        await bus.drain()
        assert await t.get({"id": 1}) is None
    assert change is not None
    assert (change.op, change.keys, change.old_image, change.new_image) == (
        "REMOVE",
        {"id": 1},
        {"id": 1, "v": "x"},
        None,
    )
    assert change.expired is False
    assert seen[-1] == change


@pytest.mark.parametrize(
    ("view", "new", "old"),
    [
        ("KEYS_ONLY", False, False),
        ("NEW_IMAGE", True, False),
        ("OLD_IMAGE", False, True),
        ("NEW_AND_OLD_IMAGES", True, True),
    ],
)
async def test_stream_view_decides_the_images(
    fake_clock: FakeClock, db: Path | None, view: Any, new: bool, old: bool
) -> None:
    """Each stream view carries keys always, and the new/old images it names."""
    async with (
        running(fake_clock) as (bus, seen),
        Table(bus, "t", key="id", stream_view=view, path=db) as t,
    ):
        await t.put({"id": 1, "v": 1})
        await t.put({"id": 1, "v": 2})
        await t.delete({"id": 1})
        await bus.drain()
    insert, modify, remove = seen
    assert all(c.keys == {"id": 1} for c in seen)
    assert insert.new_image == ({"id": 1, "v": 1} if new else None)
    assert modify.new_image == ({"id": 1, "v": 2} if new else None)
    assert modify.old_image == ({"id": 1, "v": 1} if old else None)
    assert remove.old_image == ({"id": 1, "v": 2} if old else None)
    assert insert.old_image is None
    assert remove.new_image is None


async def test_sequence_numbers_strictly_increase(fake_clock: FakeClock, db: Path | None) -> None:
    """Every change gets the next sequence number of its table."""
    async with running(fake_clock) as (bus, seen), Table(bus, "t", key="id", path=db) as t:
        for i in range(5):
            await t.put({"id": i})
        await t.update({"id": 0}, {"x": 1})
        await t.delete({"id": 1})
        await bus.drain()
    assert [c.sequence_number for c in seen] == list(range(1, 8))


async def test_concurrent_writers_publish_in_sequence(
    fake_clock: FakeClock, db: Path | None
) -> None:
    """Changes from concurrent writers reach the bus in sequence-number order, once each."""
    async with running(fake_clock) as (bus, seen), Table(bus, "t", key="id", path=db) as t:
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(t.put, {"id": i % 5, "v": i})
        await bus.drain()
    assert [c.sequence_number for c in seen] == list(range(1, 21))


async def test_rows_keep_bytes_decimals_sets_and_datetimes(
    fake_clock: FakeClock, db: Path | None
) -> None:
    """Non-JSON values come back as their own types, in rows and in images."""
    row = {
        "id": b"\x00\x01",
        "price": Decimal("9.99"),
        "tags": {"a", "b"},
        "at": NOW,
        "nested": {"list": [1, 2.5, None, True], "text": "é"},
    }
    async with running(fake_clock) as (bus, seen), Table(bus, "t", key="id", path=db) as t:
        await t.put(row)
        await bus.drain()
        assert await t.get({"id": b"\x00\x01"}) == row
    assert seen[0].new_image == row


async def test_numeric_keys_compare_by_value(fake_clock: FakeClock, db: Path | None) -> None:
    """1, 1.0 and Decimal('1') name the same row, as in DynamoDB."""
    async with running(fake_clock) as (bus, _), Table(bus, "t", key="id", path=db) as t:
        await t.put({"id": 1, "v": "x"})
        assert await t.get({"id": Decimal("1.0")}) == {"id": 1, "v": "x"}
        change = await t.put({"id": 1.0, "v": "y"})
        assert change is not None
        assert change.op == "MODIFY"


@pytest.mark.parametrize(
    ("item", "error", "match"),
    [
        ({"name": "no key"}, ValueError, "has no key attribute 'id'"),
        ({"id": None}, ValueError, "must be a non-empty string, a finite number"),
        ({"id": ""}, ValueError, "must be a non-empty string"),
        ({"id": float("nan")}, ValueError, "cannot be represented in JSON"),
        ({"id": 1, "v": object()}, SerializationError, "cannot be serialized"),
        ({"id": 1, 2: "x"}, TypeError, "attribute names must be non-empty strings"),
        (["id", 1], TypeError, "must be a mapping"),
    ],
)
async def test_bad_rows_are_refused(
    fake_clock: FakeClock, db: Path | None, item: Any, error: type[Exception], match: str
) -> None:
    """Rows without keys, with bad key values or unstorable values fail before any write."""
    async with running(fake_clock) as (bus, seen), Table(bus, "t", key="id", path=db) as t:
        with pytest.raises(error, match=match):
            await t.put(item)
        await bus.drain()
        assert await t.scan() == []
    assert seen == []


async def test_keys_must_name_exactly_the_key_attributes(
    fake_clock: FakeClock, db: Path | None
) -> None:
    """get/delete/update take only the key attributes; extras and gaps are errors."""
    async with (
        running(fake_clock) as (bus, _),
        Table(bus, "t", key="id", sort_key="s", path=db) as t,
    ):
        with pytest.raises(ValueError, match="'x' is not a key attribute"):
            await t.get({"id": 1, "s": 1, "x": 2})
        with pytest.raises(ValueError, match="has no key attribute 's'"):
            await t.delete({"id": 1})
        with pytest.raises(TypeError, match="keys must be a mapping"):
            await t.get(1)  # type: ignore[arg-type]


# -- queries and scans -------------------------------------------------------------------


async def orders(t: Table) -> None:
    for at in [10, 2, 1, 30, 20]:
        await t.put({"c": "ann", "at": at})
    await t.put({"c": "bob", "at": 5})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({}, [1, 2, 10, 20, 30]),
        ({"eq": 10}, [10]),
        ({"lt": 10}, [1, 2]),
        ({"le": 10}, [1, 2, 10]),
        ({"gt": 10}, [20, 30]),
        ({"ge": 10}, [10, 20, 30]),
        ({"between": (2, 20)}, [2, 10, 20]),
        ({"eq": "10"}, []),
    ],
)
async def test_query_applies_sort_key_conditions(
    fake_clock: FakeClock, db: Path | None, condition: dict[str, Any], expected: list[int]
) -> None:
    """query() returns one partition in numeric sort-key order, narrowed by one condition."""
    async with (
        running(fake_clock) as (bus, _),
        Table(bus, "o", key="c", sort_key="at", path=db) as t,
    ):
        await orders(t)
        rows = await t.query("ann", **condition)
    assert [r["at"] for r in rows] == expected
    assert all(r["c"] == "ann" for r in rows)


async def test_query_begins_with_reverse_and_limit(fake_clock: FakeClock, db: Path | None) -> None:
    """begins_with matches string prefixes; reverse and limit shape the result."""
    async with (
        running(fake_clock) as (bus, _),
        Table(bus, "e", key="k", sort_key="s", path=db) as t,
    ):
        for s in ["2024-01-02", "2024-02-01", "2023-12-31", "2024-01-01"]:
            await t.put({"k": "x", "s": s})
        assert [r["s"] for r in await t.query("x", begins_with="2024-01")] == [
            "2024-01-01",
            "2024-01-02",
        ]
        assert [r["s"] for r in await t.query("x", reverse=True, limit=2)] == [
            "2024-02-01",
            "2024-01-02",
        ]
        assert await t.query("nobody") == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lt": 1, "gt": 0}, ValueError, "at most one sort-key condition"),
        ({"between": (5, 1)}, ValueError, "must not be above"),
        ({"between": 5}, TypeError, r"\(low, high\) pair"),
        ({"begins_with": 5}, TypeError, "non-empty string or bytes"),
        ({"lt": None, "eq": [1]}, ValueError, "must be a non-empty string, a finite number"),
        ({"limit": 0}, ValueError, "limit must be an int >= 1"),
    ],
)
async def test_query_rejects_bad_conditions(
    fake_clock: FakeClock,
    db: Path | None,
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    """Conflicting, reversed or mistyped conditions are clear errors."""
    async with (
        running(fake_clock) as (bus, _),
        Table(bus, "o", key="c", sort_key="at", path=db) as t,
    ):
        with pytest.raises(error, match=match):
            await t.query("ann", **kwargs)


async def test_query_conditions_need_a_sort_key(fake_clock: FakeClock, db: Path | None) -> None:
    """A sort-key condition on a table without a sort key says how to add one."""
    async with running(fake_clock) as (bus, _), Table(bus, "t", key="id", path=db) as t:
        await t.put({"id": "a"})
        assert await t.query("a") == [{"id": "a"}]
        with pytest.raises(ValueError, match="has no sort key"):
            await t.query("a", gt=1)


async def test_scan_orders_filters_and_limits(fake_clock: FakeClock, db: Path | None) -> None:
    """scan() returns every row by partition then sort key; filter and limit narrow it."""
    async with (
        running(fake_clock) as (bus, _),
        Table(bus, "o", key="c", sort_key="at", path=db) as t,
    ):
        await orders(t)
        rows = await t.scan()
        assert [(r["c"], r["at"]) for r in rows] == [
            ("ann", 1),
            ("ann", 2),
            ("ann", 10),
            ("ann", 20),
            ("ann", 30),
            ("bob", 5),
        ]
        assert await t.scan(filter={"c": "bob"}) == [{"c": "bob", "at": 5}]
        assert len(await t.scan(filter=lambda r: r is not None and r["at"] > 9)) == 3
        assert len(await t.scan(limit=2)) == 2


# -- conditional writes --------------------------------------------------------------------


async def test_conditions_on_expected_values(fake_clock: FakeClock, db: Path | None) -> None:
    """A mapping condition needs the row to exist with those values."""
    async with running(fake_clock) as (bus, seen), Table(bus, "t", key="id", path=db) as t:
        await t.put({"id": 1, "version": 1})
        ok = await t.put({"id": 1, "version": 2}, condition={"version": 1})
        with pytest.raises(ConditionFailed, match="condition failed in table 't'") as failed:
            await t.put({"id": 1, "version": 3}, condition={"version": 1})
        with pytest.raises(ConditionFailed, match="no such row"):
            await t.update({"id": 9}, {"v": 1}, condition={})
        await bus.drain()
        assert await t.get({"id": 1}) == {"id": 1, "version": 2}
        assert await t.get({"id": 9}) is None
    assert ok is not None
    assert isinstance(failed.value, EventBusError)
    assert failed.value.table == "t"
    assert failed.value.keys == {"id": 1}
    assert failed.value.current == {"id": 1, "version": 2}
    assert [c.sequence_number for c in seen] == [1, 2]


async def test_conditions_as_predicates(fake_clock: FakeClock, db: Path | None) -> None:
    """A callable condition sees the current row or None; insert-only and delete-if work."""
    async with running(fake_clock) as (bus, seen), Table(bus, "t", key="id", path=db) as t:

        def absent(row: Any) -> bool:
            return row is None

        assert await t.put({"id": 1, "s": "new"}, condition=absent) is not None
        with pytest.raises(ConditionFailed):
            await t.put({"id": 1, "s": "again"}, condition=absent)
        with pytest.raises(ConditionFailed):
            await t.delete({"id": 1}, condition=lambda row: row is not None and row["s"] == "done")
        removed = await t.delete({"id": 1}, condition={"s": "new"})
        await bus.drain()
    assert removed is not None
    assert [c.op for c in seen] == ["INSERT", "REMOVE"]


async def test_bad_condition_forms_are_refused(fake_clock: FakeClock, db: Path | None) -> None:
    """A condition that is neither a mapping nor callable is a TypeError."""
    async with running(fake_clock) as (bus, _), Table(bus, "t", key="id", path=db) as t:
        with pytest.raises(TypeError, match="mapping of expected attribute values or a function"):
            await t.put({"id": 1}, condition="exists")  # type: ignore[arg-type]


# -- time to live ----------------------------------------------------------------------------


async def test_expire_removes_rows_past_their_ttl(fake_clock: FakeClock, db: Path | None) -> None:
    """expire() deletes rows whose TTL passed on the bus clock, as REMOVEs with expired=True."""
    soon = NOW.timestamp() + 60
    async with (
        running(fake_clock) as (bus, seen),
        Table(bus, "s", key="id", path=db, ttl_attribute="ttl") as t,
    ):
        await t.put({"id": "soon", "ttl": soon})
        await t.put({"id": "dt", "ttl": NOW + timedelta(seconds=30)})
        await t.put({"id": "later", "ttl": soon + 3600})
        await t.put({"id": "never"})
        await t.put({"id": "odd", "ttl": "tomorrow"})
        assert await t.expire() == 0
        await fake_clock.advance(60)
        assert await t.expire() == 2
        await bus.drain()
        assert sorted(r["id"] for r in await t.scan()) == ["later", "never", "odd"]
    expired = [c for c in seen if c.expired]
    assert sorted(c.keys["id"] for c in expired) == ["dt", "soon"]
    assert all(c.op == "REMOVE" and c.old_image is not None for c in expired)


async def test_the_sweeper_expires_rows_on_the_bus_clock(
    fake_clock: FakeClock, db: Path | None
) -> None:
    """run_sweeper(interval) calls expire() every interval of virtual time."""
    swept = anyio.Event()

    async def on_expiry(event: TableChange) -> None:
        swept.set()

    async with (
        running(fake_clock) as (bus, seen),
        Table(bus, "s", key="id", path=db, ttl_attribute="ttl") as t,
        anyio.create_task_group() as tg,
    ):
        bus.subscribe(TableChange, on_expiry, where=lambda e: e.expired)
        await t.put({"id": "a", "ttl": NOW.timestamp() + 90})
        tg.start_soon(t.run_sweeper, 60)
        await fake_clock.advance(60)
        assert await t.get({"id": "a"}) is not None
        await fake_clock.advance(60)
        with anyio.fail_after(10):  # a safety net: the sweep's own event ends the wait
            await swept.wait()
        await bus.drain()
        assert await t.get({"id": "a"}) is None
        tg.cancel_scope.cancel()
    assert [(c.op, c.expired) for c in seen] == [("INSERT", False), ("REMOVE", True)]


async def test_ttl_options_are_checked(fake_clock: FakeClock) -> None:
    """Tables without a TTL expire nothing and refuse to run a sweeper."""
    async with running(fake_clock) as (bus, _):
        t = Table(bus, "t", key="id")
        assert await t.expire() == 0
        with pytest.raises(ValueError, match="no ttl_attribute"):
            await t.run_sweeper()
        with pytest.raises(ValueError, match="cannot be a key attribute"):
            Table(bus, "t", key="id", ttl_attribute="id")


# -- arguments and lifecycle ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "bad name"}, ValueError, "name is 1 to 255 characters"),
        ({"key": ""}, TypeError, "non-empty attribute name"),
        ({"sort_key": "id"}, ValueError, "must differ from key"),
        ({"stream_view": "ALL"}, ValueError, "must be one of KEYS_ONLY"),
        ({"path": 3}, TypeError, "file path or None"),
    ],
)
async def test_constructor_checks_its_arguments(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Bad names, keys, views and paths fail at construction."""
    args: dict[str, Any] = {"name": "t", "key": "id", **kwargs}
    with pytest.raises(error, match=match):
        Table(Bus(), **args)


async def test_writes_need_a_running_bus(db: Path | None) -> None:
    """Writing with a bus that is not running raises BusClosed and writes nothing."""
    bus = Bus()
    async with Table(bus, "t", key="id", path=db) as t:
        with pytest.raises(BusClosed, match="nothing was changed"):
            await t.put({"id": 1})
        assert await t.get({"id": 1}) is None


async def test_a_cancelled_publish_is_delivered_later(db: Path | None) -> None:
    """A change committed while publishing was cancelled stays pending until deliver()."""
    gate = anyio.Event()
    handled: list[int] = []

    async def slow(event: TableChange) -> None:
        await gate.wait()
        handled.append(event.sequence_number)

    async with Bus() as bus, Table(bus, "t", key="id", path=db) as t:
        bus.subscribe(TableChange, slow, queue_size=1)
        await t.put({"id": 1})  # taken by the handler
        await t.put({"id": 2})  # waits in the queue
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(t.put, {"id": 3})  # committed; publishing waits for room
                await anyio.wait_all_tasks_blocked()
                scope.cancel()
        assert await t.get({"id": 3}) is not None
        gate.set()
        assert await t.deliver() == 1
        await bus.drain()
        assert await t.deliver() == 0
    assert handled == [1, 2, 3]


# -- the SQLite backend ----------------------------------------------------------------------


async def test_sqlite_rows_and_sequence_survive_reopening(tmp_path: Path) -> None:
    """Reopening the file sees the rows, and sequence numbers carry on."""
    db = tmp_path / "t.db"
    async with running() as (bus, seen):
        async with Table(bus, "t", key="id", path=db) as t:
            await t.put({"id": 1, "v": Decimal("2.5")})
        async with Table(bus, "t", key="id", path=db) as again:
            assert await again.get({"id": 1}) == {"id": 1, "v": Decimal("2.5")}
            await again.put({"id": 2})
        await bus.drain()
    assert [c.sequence_number for c in seen] == [1, 2]


async def test_sqlite_tables_share_a_file_but_not_keys(tmp_path: Path) -> None:
    """Several tables live in one file; reopening with other keys is refused."""
    db = tmp_path / "t.db"
    async with running() as (bus, seen):
        async with Table(bus, "a", key="id", path=db) as a, Table(bus, "b", key="k", path=db) as b:
            await a.put({"id": 1})
            await b.put({"k": 1})
            assert await a.scan() == [{"id": 1}]
        with pytest.raises(ValueError, match="open it with the same keys"):
            await Table(bus, "a", key="other", path=db).open()
        await bus.drain()
    assert sorted((c.table, c.sequence_number) for c in seen) == [("a", 1), ("b", 1)]


async def test_operations_open_the_table_lazily(tmp_path: Path) -> None:
    """The first operation opens the file; aclose() releases it and a later one reopens it."""
    async with running() as (bus, _):
        t = Table(bus, "t", key="id", path=tmp_path / "t.db")
        await t.put({"id": 1})
        await t.aclose()
        assert await t.get({"id": 1}) == {"id": 1}
        await t.aclose()


# -- crash safety: a killed writer loses nothing ---------------------------------------------

CHILD = textwrap.dedent(
    """
    import sqlite3, sys, threading
    import anyio
    from eventbus import Bus
    from eventbus.sources.tables import Table, TableChange

    path, mode = sys.argv[1], sys.argv[2]

    def report(line):
        print(line, flush=True)

    async def main():
        async with Bus() as bus:
            if mode == "blocked":
                # The only subscriber takes one change, queues one, and never
                # finishes: later publishes wait for room, after their commit.
                never = anyio.Event()

                async def stuck(event):
                    await never.wait()

                bus.subscribe(TableChange, stuck, queue_size=1)
            else:
                # Freeze the whole process inside publish() of change 3,
                # after its commit and before the bus accepts it.
                def freeze(event):
                    if event.sequence_number == 3:
                        report("committed 3")
                        threading.Event().wait()
                    return True

                bus.subscribe(TableChange, lambda e: None, where=freeze)
            table = Table(bus, "t", key="id", path=path)
            await table.open()
            await table.put({"id": 1})
            await table.put({"id": 2})
            if mode == "frozen":
                await table.put({"id": 3})  # never returns
            async with anyio.create_task_group() as tg:
                for i in (3, 4, 5):
                    tg.start_soon(table.put, {"id": i})
                await anyio.wait_all_tasks_blocked()
                db = sqlite3.connect(path)
                pending = [s for (s,) in db.execute("SELECT seq FROM eventbus_outbox ORDER BY seq")]
                report("committed " + ",".join(map(str, pending)))
                await anyio.sleep_forever()

    anyio.run(main)
    """
)


async def run_child_until_committed(script: Path, db: Path, mode: str) -> str:
    """Run the writer, wait for its 'committed' line, then SIGKILL it."""
    process: anyio.abc.Process
    async with await anyio.open_process([sys.executable, str(script), str(db), mode]) as process:
        assert process.stdout is not None
        buffer = ""
        with anyio.fail_after(60):
            async for chunk in TextReceiveStream(process.stdout):
                buffer += chunk
                if "committed" in buffer and buffer.endswith("\n"):
                    break
        process.kill()
        await process.wait()
    assert process.returncode == -9
    return buffer.strip()


def outbox(db: Path) -> list[tuple[int, str]]:
    """The (sequence, event id) pairs waiting in the outbox."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT seq, event FROM eventbus_outbox ORDER BY seq").fetchall()
    return [(seq, json.loads(text)["id"]) for seq, text in rows]


def rows_in(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (count,) = conn.execute("SELECT count(*) FROM eventbus_rows").fetchone()
    return int(count)


@pytest.mark.parametrize(
    ("mode", "committed", "unsettled"),
    [("blocked", [1, 2, 3, 4, 5], [1, 2, 3, 4, 5]), ("frozen", [1, 2, 3], [3])],
)
async def test_changes_committed_before_a_kill_are_delivered_on_reopen(
    tmp_path: Path, mode: str, committed: list[int], unsettled: list[int]
) -> None:
    """A writer killed with changes committed but not settled loses none; reopening delivers them."""
    script = tmp_path / "writer.py"
    script.write_text(CHILD)
    db = tmp_path / "crash.db"
    line = await run_child_until_committed(script, db, mode)
    assert line.startswith("committed ")
    pending = outbox(db)
    kept = [seq for seq, _ in pending]
    assert set(unsettled) <= set(kept) <= set(committed)
    assert rows_in(db) == committed[-1]
    async with running() as (bus, seen):
        async with Table(bus, "t", key="id", path=db) as t:
            await bus.drain()
            assert len(await t.scan()) == committed[-1]
        async with Table(bus, "t", key="id", path=db):
            await bus.drain()
    assert [(c.sequence_number, c.id) for c in seen] == pending
    assert all(c.op == "INSERT" and c.keys == {"id": c.sequence_number} for c in seen)
    assert outbox(db) == []
