"""Run ``python -m eventbus worker`` as a real subprocess and watch its log (test helper)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc


class WorkerProcess:
    """A running worker: its process and everything it logged so far."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self.log = ""
        self._changed = anyio.Event()
        self.closed = False

    async def _read(self) -> None:
        assert self.process.stderr is not None
        try:
            async for chunk in self.process.stderr:
                self.log += chunk.decode(errors="replace")
                self._changed.set()
                self._changed = anyio.Event()
        finally:
            self.closed = True
            self._changed.set()

    async def wait_for(self, text: str, limit: float = 20) -> str:
        """Wait until *text* appears in the log; return the log."""
        with anyio.fail_after(limit):
            while text not in self.log:
                if self.closed:
                    raise AssertionError(f"the worker exited without logging {text!r}:\n{self.log}")
                await self._changed.wait()
        return self.log

    def signal(self, signum: signal.Signals = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    async def wait(self, limit: float = 30) -> int:
        """Wait for the process to exit; return its status."""
        with anyio.fail_after(limit):
            code = await self.process.wait()
            while not self.closed:
                await self._changed.wait()
        return code


@asynccontextmanager
async def run_worker(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None
) -> AsyncIterator[WorkerProcess]:
    """Start ``python -m eventbus worker *args`` in *cwd*; kill it (by pid) if still running at the end."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = await anyio.open_process(
        [sys.executable, "-m", "eventbus", "worker", *args],
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    worker = WorkerProcess(process)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker._read)
        try:
            yield worker
        finally:
            if process.returncode is None:
                process.kill()
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await process.wait()
            await process.aclose()
