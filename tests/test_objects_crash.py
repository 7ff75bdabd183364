"""ObjectStore: events are journaled until settled; a cancel or a SIGKILL loses none."""

from __future__ import annotations

import textwrap
from pathlib import Path

import anyio
import pytest
from _sigkill import handled_in, run_until

from eventbus import Bus
from eventbus.sources.objects import ObjectCreated, ObjectRemoved, ObjectStore

WRITER = textwrap.dedent(
    """
    import sys
    import anyio
    from eventbus import Bus
    from eventbus.sources.objects import ObjectCreated, ObjectRemoved, ObjectStore

    root, handled_path, total = sys.argv[1], sys.argv[2], int(sys.argv[3])

    async def main():
        with open(handled_path, "a") as handled:

            async def slow(event):
                await anyio.sleep(0.003)
                handled.write(f"{type(event).__name__} {event.key}\\n")
                handled.flush()

            async with Bus() as bus:
                bus.subscribe((ObjectCreated, ObjectRemoved), slow, queue_size=4)
                store = ObjectStore(bus, "b", root=root)
                for i in range(total):
                    await store.put(f"k/{i}", b"x")
                    print(f"committed put k/{i}", flush=True)
                    if i % 5 == 4:
                        await store.delete(f"k/{i - 1}")
                        print(f"committed delete k/{i - 1}", flush=True)
                await anyio.sleep_forever()

    anyio.run(main)
    """
)


def journal(root: Path) -> list[str]:
    folder = root / ".eventbus" / "journal"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("kill_after", [1, 25, 120])
async def test_every_committed_write_is_handled_after_a_kill(
    tmp_path: Path, kill_after: int
) -> None:
    """Killed after N writes with events queued, the next run handles every committed write."""
    root, handled_file = tmp_path / "root", tmp_path / "handled.txt"
    lines = await run_until(
        WRITER,
        tmp_path,
        [str(root), str(handled_file), "300"],
        lambda lines: len(lines) >= kill_after,
    )
    names = {"put": "ObjectCreated", "delete": "ObjectRemoved"}
    committed = {
        f"{names[line.split()[1]]} {line.split()[2]}"
        for line in lines
        if line.startswith("committed")
    }
    before = set(handled_in(handled_file))
    after: list[str] = []

    async def record(event: ObjectCreated | ObjectRemoved) -> None:
        after.append(f"{type(event).__name__} {event.key}")

    async with Bus() as bus:
        bus.subscribe((ObjectCreated, ObjectRemoved), record)
        store = ObjectStore(bus, "b", root=root)
        await store.open()
        await bus.drain()
        await store.open()  # forgets the settled entries
    missing = sorted(committed - before - set(after))
    assert missing == [], f"committed writes whose event was never handled: {missing}"
    assert journal(root) == []


@pytest.mark.parametrize("disk", [False, True])
async def test_a_write_cancelled_while_publishing_keeps_its_event(
    tmp_path: Path, disk: bool
) -> None:
    """A put cancelled while its event waits for room is published by the next operation."""
    gate = anyio.Event()
    handled: list[str] = []

    async def slow(event: ObjectCreated) -> None:
        await gate.wait()
        handled.append(event.key)

    async with Bus() as bus:
        bus.subscribe(ObjectCreated, slow, queue_size=1)
        store = ObjectStore(bus, "b", root=tmp_path / "root" if disk else None)
        await store.put("k1", b"1")  # taken by the handler
        await store.put("k2", b"2")  # fills the queue
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(store.put, "k3", b"3")  # stored; waits for room
                await anyio.wait_all_tasks_blocked()
                scope.cancel()
        gate.set()
        assert (await store.get("k3")).body == b"3"  # a read publishes what was left
        await bus.drain()
    assert handled == ["k1", "k2", "k3"]


async def test_the_journal_empties_once_events_settle(tmp_path: Path) -> None:
    """Settled events leave the journal with the next write (or open())."""
    root = tmp_path / "root"
    async with Bus() as bus:
        bus.subscribe(ObjectCreated, lambda event: None)
        store = ObjectStore(bus, "b", root=root)
        await store.put("a", b"1")
        await bus.drain()
        assert len(journal(root)) == 1
        await store.put("b", b"2")
        assert len(journal(root)) == 1  # "a" forgotten, "b" still open
        await bus.drain()
        await store.open()
        assert journal(root) == []


async def test_a_reopened_store_republishes_unsettled_events_once(tmp_path: Path) -> None:
    """Events journaled by a store whose bus stopped before handling them come back, once each."""
    root = tmp_path / "root"
    gate = anyio.Event()

    async def stuck(event: ObjectCreated) -> None:
        await gate.wait()

    async def first_run() -> None:
        async with Bus() as bus:
            bus.subscribe(ObjectCreated, stuck, name="s")
            store = ObjectStore(bus, "b", root=root)
            await store.put("a", b"1")
            await store.put("b", b"2")
            raise RuntimeError("the process stops without draining")

    with pytest.raises(RuntimeError, match="without draining"):
        await first_run()
    assert len(journal(root)) == 2
    seen: list[str] = []

    async def record(event: ObjectCreated) -> None:
        seen.append(event.key)

    async with Bus() as bus:
        bus.subscribe(ObjectCreated, record, name="s")
        await ObjectStore(bus, "b", root=root).open()
        await bus.drain()
    assert seen == ["a", "b"]


async def test_async_with_opens_and_tidies_the_journal(tmp_path: Path) -> None:
    """``async with store:`` publishes leftovers on entry and forgets settled events on exit."""
    root = tmp_path / "root"
    async with Bus() as bus:
        bus.subscribe(ObjectCreated, lambda event: None)
        async with ObjectStore(bus, "b", root=root) as store:
            await store.put("a", b"1")
            await bus.drain()
        assert journal(root) == []


async def test_events_settling_after_later_writes_are_forgotten(tmp_path: Path) -> None:
    """An event that settles after further writes began is still forgotten by the next one."""
    root = tmp_path / "root"
    gate = anyio.Event()

    async def gated(event: ObjectCreated) -> None:
        await gate.wait()

    async with Bus() as bus:
        bus.subscribe(ObjectCreated, gated)
        store = ObjectStore(bus, "b", root=root)
        await store.put("a", b"1")
        await store.put("b", b"2")  # written while "a" is still being handled
        gate.set()
        await bus.drain()
        await store.put("c", b"3")
        assert len(journal(root)) == 1  # only "c", whose event has not settled yet
