"""Table: SIGKILL with a slow handler and a small queue loses no committed change."""

from __future__ import annotations

import contextlib
import sqlite3
import textwrap
from pathlib import Path

import pytest
from _sigkill import handled_in, run_until

from eventbus import Bus, TableChange
from eventbus.sources.tables import Table

WRITER = textwrap.dedent(
    """
    import sys
    import anyio
    from eventbus import Bus, TableChange
    from eventbus.sources.tables import Table

    path, handled_path, total = sys.argv[1], sys.argv[2], int(sys.argv[3])

    async def main():
        with open(handled_path, "a") as handled:

            async def slow(event):
                await anyio.sleep(0.003)
                handled.write(f"{event.sequence_number}\\n")
                handled.flush()

            async with Bus() as bus:
                bus.subscribe(TableChange, slow, queue_size=4, concurrency=1)
                async with Table(bus, "t", key="id", path=path) as table:
                    for i in range(1, total + 1):
                        await table.put({"id": i})
                        print(f"committed {i}", flush=True)
                    await anyio.sleep_forever()

    anyio.run(main)
    """
)


def committed_sequences(db: Path) -> list[int]:
    """The sequence numbers of every change the file has committed (1 .. last)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (last,) = conn.execute(
            "SELECT last_sequence FROM eventbus_tables WHERE name = 't'"
        ).fetchone()
    return list(range(1, int(last) + 1))


@pytest.mark.parametrize("kill_after", [1, 40, 150])
async def test_every_committed_change_is_handled_after_a_kill(
    tmp_path: Path, kill_after: int
) -> None:
    """Killed after N commits with events still queued, reopening handles every commit."""
    db, handled_file = tmp_path / "t.db", tmp_path / "handled.txt"
    await run_until(
        WRITER,
        tmp_path,
        [str(db), str(handled_file), "400"],
        lambda lines: len(lines) >= kill_after,
    )
    committed = committed_sequences(db)
    assert len(committed) >= kill_after
    before = {int(line) for line in handled_in(handled_file)}
    after: list[int] = []

    async def record(event: TableChange) -> None:
        after.append(event.sequence_number)

    async with Bus() as bus:
        bus.subscribe(TableChange, record)
        async with Table(bus, "t", key="id", path=db):
            await bus.drain()
    missing = sorted(set(committed) - before - set(after))
    assert missing == [], f"committed changes never handled: {missing}"
    assert after == sorted(after), "redelivered changes keep their order"


async def test_changes_settling_after_later_writes_leave_the_outbox(tmp_path: Path) -> None:
    """A change that settles after further writes began leaves the outbox with the next write."""
    import anyio

    db = tmp_path / "t.db"
    gate = anyio.Event()

    async def gated(event: TableChange) -> None:
        await gate.wait()

    async with Bus() as bus:
        bus.subscribe(TableChange, gated)
        async with Table(bus, "t", key="id", path=db) as table:
            await table.put({"id": 1})
            await table.put({"id": 2})  # written while change 1 is still being handled
            gate.set()
            await bus.drain()
            await table.put({"id": 3})
            with contextlib.closing(sqlite3.connect(db)) as conn:
                kept = [seq for (seq,) in conn.execute("SELECT seq FROM eventbus_outbox")]
            assert kept == [3]
