"""Run a child Python script, read its report lines, and SIGKILL it at a chosen point."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.abc
from anyio.streams.text import TextReceiveStream


async def run_until(
    script: str, folder: Path, args: list[str], kill_when: Callable[[list[str]], bool]
) -> list[str]:
    """Run *script* with *args*; SIGKILL it once its stdout lines satisfy *kill_when*.

    The child signals progress by printing lines (flushed); the kill follows
    a line, never a timer. Returns the lines read up to the kill.
    """
    path = folder / "child.py"
    path.write_text(script)
    lines: list[str] = []
    process: anyio.abc.Process
    async with await anyio.open_process([sys.executable, str(path), *args]) as process:
        assert process.stdout is not None
        buffer = ""
        with anyio.fail_after(120):
            async for chunk in TextReceiveStream(process.stdout):
                buffer += chunk
                *complete, buffer = buffer.split("\n")
                lines.extend(complete)
                if kill_when(lines):
                    break
            else:  # pragma: no cover - the child ended on its own
                stderr = b""
                if process.stderr is not None:
                    stderr = await process.stderr.receive()
                raise AssertionError(f"the child exited early: {lines[-5:]} {stderr!r}")
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL
    return lines


def handled_in(path: Path) -> list[str]:
    """The lines a child appended to *path* (one per handled event), complete ones only."""
    if not path.exists():
        return []
    text = path.read_text()
    return [line for line in text.split("\n")[:-1] if line]
