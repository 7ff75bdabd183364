"""The examples run and do what they say."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import anyio
import pytest

from eventbus.testing import FakeClock

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


FIRST_HOUR = EXAMPLES / "first_hour"


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module."""
    module_name = "example_" + name.replace("/", "_")
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
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


# -- a newcomer's first hour: three programs written from the docs alone ------------


async def test_the_async_component_welcomes_upsells_and_explains() -> None:
    """signups.py: a retried handler, a where= filter, a follow-up, metrics and explain."""
    signups = load("first_hour/signups")
    summary = await signups.main()
    assert summary.welcomed == ["alice", "bob", "carol"]
    assert summary.upgrades == ["alice", "carol"]
    assert summary.attempts == 4  # bob's first attempt failed and was retried
    welcome = summary.metrics["welcome"]
    assert (welcome.accepted, welcome.succeeded, welcome.retries) == (3, 3, 1)
    assert summary.metrics["audit"].succeeded == 3
    assert summary.why_not is not None
    assert "anything-but" in summary.why_not


def test_the_threads_only_program_autosaves_on_its_schedule() -> None:
    """autosave.py: edits from plain threads, a plain def handler, a schedule every minute."""
    autosave = load("first_hour/autosave")
    result = autosave.run(FakeClock(start=datetime(2024, 1, 1, tzinfo=UTC)), minutes=3)
    assert result.saved == {"a.txt": "a.txt v2", "b.txt": "b.txt v2"}
    assert result.autosaves == ["00:01", "00:02", "00:03"]
    assert threading.get_ident() not in result.handler_threads


@pytest.mark.parametrize("script", ["signups.py", "autosave.py"])
async def test_the_first_hour_programs_run_as_scripts(script: str) -> None:
    """``python examples/first_hour/<script>`` exits 0."""
    result = await anyio.run_process([sys.executable, str(FIRST_HOUR / script)], check=False)
    assert result.returncode == 0, result.stderr.decode()


async def test_the_newcomer_test_suite_passes_in_a_fresh_project(tmp_path: Path) -> None:
    """newcomer_tests/, copied into an empty project, passes with only its own pytest settings."""
    project = tmp_path / "project"
    shutil.copytree(FIRST_HOUR / "newcomer_tests", project)
    result = await anyio.run_process(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, check=False
    )
    out = result.stdout.decode()
    assert result.returncode == 0, out
    assert "2 passed" in out


async def test_without_auto_mode_the_plugin_says_why_the_tests_did_not_run(tmp_path: Path) -> None:
    """In pytest-asyncio's default strict mode, the failure names asyncio_mode = "auto"."""
    project = tmp_path / "project"
    shutil.copytree(FIRST_HOUR / "newcomer_tests", project)
    (project / "pyproject.toml").unlink()
    (project / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = await anyio.run_process(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf"],
        cwd=project,
        check=False,
    )
    out = result.stdout.decode()
    assert result.returncode == 1, out
    assert "pytest-asyncio is in strict mode" in out
    assert 'asyncio_mode = "auto"' in out
