"""What the documentation promises about the command line and the docs themselves."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import eventbus

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])


def test_version_prints_the_installed_version() -> None:
    """``python -m eventbus --version`` prints ``eventbus <version>`` and exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "eventbus", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"eventbus {eventbus.__version__}"


def test_every_skipped_block_is_a_python_block() -> None:
    """A ``<!-- skip: next -->`` marker is followed by a ```python block (or it skips nothing)."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"<!-- skip: next -->\n(.*)\n", text):
            assert match.group(1) == "```python", f"{page.name}: marker before {match.group(1)!r}"


def test_the_quickstart_test_command_is_the_one_ci_runs() -> None:
    """The README's test command installs the test extra and runs pytest, as .ci/run does."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = (
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
    )
    assert command in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "\"$venv/bin/pip\" install -q -e '.[test]'" in ci
    assert '"$venv/bin/python" -m pytest "$@"' in ci


async def test_the_tutorial_runs_as_one_script(tmp_path: Path) -> None:
    """The tutorial's blocks, pasted into one file in order, run with plain ``python``."""
    import anyio

    text = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 10
    script = tmp_path / "tutorial.py"
    script.write_text("\n\n".join(blocks), encoding="utf-8")
    result = await anyio.run_process([sys.executable, str(script)], cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "('index',)" in out
    assert "['a.png'] ['autosave', 'autosave']" in out
