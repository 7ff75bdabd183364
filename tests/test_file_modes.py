"""The durable stores create private files (0600) unless told otherwise."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from eventbus import Bus, DeadLetter, ErrorInfo, Event, SqliteDeadLetters, SqliteIdempotencyStore
from eventbus._sqlite import create_private_file, dir_mode_for
from eventbus.sources.tables import Table

WHEN = datetime(2024, 1, 1, tzinfo=UTC)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def letter() -> DeadLetter:
    return DeadLetter(Event(), "sub", ErrorInfo("E", "m"), 1, WHEN, WHEN)


async def use_dead_letters(path: Path, **options: Any) -> None:
    with SqliteDeadLetters(path, **options) as sink:
        await sink.put(letter())


async def use_idempotency(path: Path, **options: Any) -> None:
    with SqliteIdempotencyStore(path, **options):
        pass


async def use_table(path: Path, **options: Any) -> None:
    async with Bus() as bus, Table(bus, "t", key="k", path=path, **options) as table:
        await table.put({"k": "1"})


STORES: dict[str, Callable[..., Any]] = {
    "dead letters": use_dead_letters,
    "idempotency": use_idempotency,
    "table": use_table,
}


@pytest.mark.parametrize("store", sorted(STORES))
async def test_a_new_database_is_private(tmp_path: Path, store: str) -> None:
    """The database file is created 0600."""
    path = tmp_path / "store.db"
    await STORES[store](path)
    assert mode_of(path) == 0o600


async def test_the_write_ahead_log_is_private_too(tmp_path: Path) -> None:
    """SQLite's -wal and -shm files take the database's 0600 while it is open."""
    path = tmp_path / "store.db"
    with SqliteDeadLetters(path) as sink:
        await sink.put(letter())
        companions = [tmp_path / "store.db-wal", tmp_path / "store.db-shm"]
        assert [mode_of(p) for p in companions] == [0o600, 0o600]


@pytest.mark.parametrize("store", sorted(STORES))
async def test_a_mode_the_user_passes_is_used(tmp_path: Path, store: str) -> None:
    """mode=0o640 creates the file 0o640, even under a stricter umask."""
    path = tmp_path / "store.db"
    old = os.umask(0o077)
    try:
        await STORES[store](path, mode=0o640)
    finally:
        os.umask(old)
    assert mode_of(path) == 0o640


@pytest.mark.parametrize("store", sorted(STORES))
async def test_an_existing_file_keeps_its_mode(tmp_path: Path, store: str) -> None:
    """A database that exists already is not re-permissioned."""
    path = tmp_path / "store.db"
    path.touch()
    path.chmod(0o644)
    await STORES[store](path)
    assert mode_of(path) == 0o644


@pytest.mark.parametrize("store", sorted(STORES))
@pytest.mark.parametrize("mode", [-1, 0o1000, "0600", True])
async def test_an_invalid_mode_is_refused(tmp_path: Path, store: str, mode: object) -> None:
    """mode must be permission bits; the error names the argument."""
    with pytest.raises((TypeError, ValueError), match=r"mode=\.\.\."):
        await STORES[store](tmp_path / "store.db", mode=mode)


def test_memory_databases_are_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """':memory:' and file: URIs are not created as files."""
    monkeypatch.chdir(tmp_path)
    create_private_file(":memory:")
    create_private_file("file:x?mode=memory")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("mode", "folder"), [(0o600, 0o700), (0o640, 0o750), (0o644, 0o755), (0o000, 0o100)]
)
def test_folder_modes_follow_file_modes(mode: int, folder: int) -> None:
    """A folder may be entered by each class that may read its files."""
    assert dir_mode_for(mode) == folder


async def test_a_new_log_file_is_private(tmp_path: Path) -> None:
    """A Log's SQLite file is created 0600."""
    from eventbus.sources.logs import Log

    path = tmp_path / "log.db"
    async with Bus() as bus:
        log = Log(bus, "app", path=path)
        await log.append(b"payload", "key")
        assert mode_of(path) == 0o600
