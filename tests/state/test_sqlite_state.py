"""SqliteState specifics: the file, reopening it, and a SIGKILL mid-commit."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from eventbus import Event, to_cloudevent
from eventbus.state import Reminder, SqliteState, StateChange

DUE = datetime(2024, 1, 1, 12, tzinfo=UTC)


def test_a_new_file_is_private(tmp_path: Path) -> None:
    """A new state file is readable and writable by its owner only (0600)."""
    with SqliteState(tmp_path / "state.db") as store:
        assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


async def test_state_and_reminders_survive_reopening(tmp_path: Path) -> None:
    """What was committed is there after closing and reopening the file."""
    reminder = Reminder("sub", "k", DUE, to_cloudevent(Event()))
    with SqliteState(tmp_path / "state.db") as store:
        await store.commit("sub", "k", StateChange('{"n":1}', 0, "e1", (reminder,)))
    with SqliteState(tmp_path / "state.db") as store:
        loaded = await store.load("sub", "k", "e1")
        assert (loaded.text, loaded.version, loaded.applied) == ('{"n":1}', 1, True)
        assert await store.reminders("sub") == [reminder]


def test_a_bad_path_type_raises_type_error() -> None:
    """A path that is not a path raises TypeError naming SqliteState."""
    with pytest.raises(TypeError, match=r"SqliteState\(path\) takes a file path"):
        SqliteState(42)  # type: ignore[arg-type]


async def test_a_closed_store_says_so(tmp_path: Path) -> None:
    """Using a closed store raises an error saying to open a new one."""
    store = SqliteState(tmp_path / "state.db")
    store.close()
    store.close()
    with pytest.raises(RuntimeError, match="is closed; open a new one"):
        await store.load("sub", "k")


_WRITER = textwrap.dedent(
    """
    import sys, anyio
    from eventbus.state import SqliteState, StateChange

    async def main(path):
        with SqliteState(path, applied_ids=100_000) as store:
            n = 0
            while True:
                loaded = await store.load("sub", "k")
                await store.commit(
                    "sub", "k", StateChange('{"n":%d}' % (n + 1), loaded.version, "e%d" % n)
                )
                n += 1
                if n == 20:
                    print("ready", flush=True)

    anyio.run(main, sys.argv[1])
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_leaves_state_and_applied_ids_consistent(tmp_path: Path) -> None:
    """After SIGKILL mid-run, the state, its version and the applied ids agree."""
    path = tmp_path / "state.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    anyio.run(_check_consistent, path)


async def _check_consistent(path: Path) -> None:
    with SqliteState(path, applied_ids=100_000) as store:
        loaded = await store.load("sub", "k")
        n = json.loads(loaded.text)["n"]
        assert loaded.version == n >= 20
        assert (await store.load("sub", "k", f"e{n - 1}")).applied
        assert not (await store.load("sub", "k", f"e{n}")).applied
