"""The examples run and do what they say."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import anyio
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_thumbnails_pipeline_runs_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An upload makes a thumbnail, a catalog row and a topic notification, per photo."""
    thumbnails = load("thumbnails")
    summary = await thumbnails.main(tmp_path)
    assert summary.thumbnails == {
        "thumbnails/photos/cat.jpg": 1000,
        "thumbnails/photos/dog.png": 600,
    }
    assert [(row["image"], row["thumbnail"]) for row in summary.catalog] == [
        ("photos/cat.jpg", "thumbnails/photos/cat.jpg"),
        ("photos/dog.png", "thumbnails/photos/dog.png"),
    ]
    assert len(summary.notifications) == 2
    assert '"image":"photos/cat.jpg"' in summary.notifications[0]
    assert (tmp_path / "uploads" / "thumbnails" / "photos" / "cat.jpg").stat().st_size == 1000
    out = capsys.readouterr().out
    assert "done: 2 thumbnails, 2 catalog rows, 2 notifications" in out
    assert summary.log[-1] in out


async def test_thumbnails_runs_as_a_script() -> None:
    """``python examples/thumbnails.py`` prints what happened and exits 0."""
    result = await anyio.run_process([sys.executable, str(EXAMPLES / "thumbnails.py")])
    assert result.returncode == 0
    assert b"done: 2 thumbnails" in result.stdout
