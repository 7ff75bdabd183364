"""Issues 10 and 17 as a user checks them: cheap events, lazy import, bounded memory, no leaks."""

from __future__ import annotations

import gc
import itertools
import json
import os
import subprocess
import sys
import threading
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import anyio
import attrs
import pytest

from eventbus import Bus, Context, Event, Log, NoRetry, SqliteDeadLetters, Table


@attrs.frozen
class Tick(Event, type_name="acceptance.i10.Tick"):
    n: int = 0


# -- issue 10: the envelope stays as promised ------------------------------------------------


def test_envelope_is_complete_and_stable() -> None:
    """A lazy envelope still gives a hex id, an aware UTC time, stable across reads."""
    event = Tick()
    first_id, first_time = event.id, event.time
    assert isinstance(first_id, str)
    assert len(first_id) == 32
    int(first_id, 16)
    assert event.id == first_id
    assert isinstance(first_time, datetime)
    assert first_time.tzinfo is not None
    assert first_time.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert event.time is first_time or event.time == first_time
    assert event.source == ""
    assert event.correlation_id is None
    assert event.causation_id is None


def test_ids_unique_under_threads() -> None:
    """Ids made in 8 threads at once are all distinct, and first reads agree."""
    shared = [Tick() for _ in range(2000)]
    seen: list[list[str]] = [[] for _ in range(8)]

    def work(i: int) -> None:
        seen[i].extend(e.id for e in shared)
        seen[i].extend(Tick().id for _ in range(2000))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in seen[1:]:
        assert s[:2000] == seen[0][:2000]
    fresh = [i for s in seen for i in s[2000:]]
    assert len(set(fresh)) == len(fresh)
    assert not set(fresh) & set(seen[0][:2000])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_ids_unique_across_fork() -> None:
    """A forked child makes ids its parent never makes."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        ids = [Tick().id for _ in range(500)]
        os.write(write_fd, json.dumps(ids).encode())
        os._exit(0)
    os.close(write_fd)
    parent = [Tick().id for _ in range(500)]
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    child = json.loads(b"".join(chunks))
    assert len(child) == 500
    assert not set(child) & set(parent)


def test_neighbouring_ids_do_not_share_a_guessable_suffix() -> None:
    """Consecutive ids differ in more than a counter: at least half their hex digits change."""
    ids = [Tick().id for _ in range(200)]
    diffs = [sum(a != b for a, b in zip(x, y, strict=True)) for x, y in itertools.pairwise(ids)]
    assert min(diffs) >= 8


def test_explicit_time_must_be_aware() -> None:
    """A naive time is refused or made UTC, never kept naive."""
    try:
        event = Tick(time=datetime(2024, 1, 1))
    except (TypeError, ValueError):
        return
    assert event.time.tzinfo is not None


def test_explicit_envelope_round_trips() -> None:
    """An explicit id and time are kept exactly."""
    when = datetime(2024, 1, 1, 12, tzinfo=UTC)
    event = Tick(id="abc", time=when)
    assert (event.id, event.time) == ("abc", when)


def test_import_is_lazy() -> None:
    """import eventbus loads neither sqlite3, zoneinfo nor ssl, nor the sources."""
    code = (
        "import sys, eventbus; "
        "print([m for m in ('sqlite3', 'zoneinfo', 'ssl', 'eventbus.sources', 'eventbus.aws') "
        "if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_queued_events_cost_at_most_200_bytes_each() -> None:
    """10,000 events queued behind a blocked handler take <= 200 bytes each, event included."""

    async def main() -> float:
        release = anyio.Event()

        async def blocked(event: Tick, ctx: Context) -> None:
            await release.wait()

        async with Bus() as bus:
            bus.subscribe(Tick, blocked, name="b", queue_size=20_000)
            await bus.publish(Tick())
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(10_000):
                await bus.publish(Tick())
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            release.set()
        return (after - before) / 10_000

    per_event = anyio.run(main)
    assert per_event <= 200, per_event


# -- issue 17: nothing left behind ------------------------------------------------------------


def _open_fds_to(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(path)):
            count += 1
    return count


pytestmark_linux = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")


@pytestmark_linux
def test_sqlite_dead_letters_leave_no_file_open(tmp_path: Path) -> None:
    """A bus with SqliteDeadLetters closes every handle to the file once closed."""

    async def fail(event: Tick) -> None:
        raise RuntimeError("x")

    async def main() -> None:
        sink = SqliteDeadLetters(tmp_path / "dlq.db")
        async with Bus(dead_letters=sink, retry=NoRetry()) as bus:
            bus.subscribe(Tick, fail, name="f")
            await bus.publish(Tick())
            await bus.drain()
            assert len(sink) == 1
        close = getattr(sink, "close", None)
        if close is not None:
            close()

    anyio.run(main)
    assert _open_fds_to(tmp_path) == 0


@pytestmark_linux
def test_durable_table_and_log_leave_no_file_open(tmp_path: Path) -> None:
    """A durable Log is closed when its bus stops; a Table once it is closed (aclose)."""
    seen: list[object] = []

    async def on_any(event: Event) -> None:
        seen.append(event)

    async def main() -> None:
        async with Bus() as bus:
            table = Table(bus, "t", key="id", path=tmp_path / "t.db")
            log = Log(bus, "l", path=tmp_path / "l.db")
            bus.subscribe(Event, on_any, name="any")
            async with table:
                await table.put({"id": "1", "v": 1})
                await bus.drain()
            await log.append(b"x", partition_key="p")
            await bus.drain()

    anyio.run(main)
    gc.collect()
    assert seen
    assert _open_fds_to(tmp_path) == 0
