"""What ``import eventbus`` (and the pytest plugin) load: the rest waits for first use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

NOT_AT_IMPORT = (
    "eventbus.sources",
    "eventbus.aws",
    "eventbus._cron",
    "eventbus._bus",
    "sqlite3",
    "zoneinfo",
    "ssl",
)


def _loaded_after(code: str) -> set[str]:
    """The modules loaded in a fresh interpreter after running *code*."""
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_import_eventbus_loads_no_outer_layer_nor_heavy_stdlib() -> None:
    """``import eventbus`` loads no source, AWS interop, cron, sqlite3, zoneinfo or ssl."""
    loaded = _loaded_after("import eventbus")
    assert [m for m in NOT_AT_IMPORT if m in loaded] == []


def test_the_bus_loads_no_outer_layer_nor_heavy_stdlib() -> None:
    """Using the core (Bus, Event, Pattern) still loads no source, cron or SQLite."""
    loaded = _loaded_after("from eventbus import Bus, Context, Event, Pattern, Subscription")
    unwanted = [m for m in NOT_AT_IMPORT if m in loaded and m != "eventbus._bus"]
    assert unwanted == []
    assert "eventbus._bus" in loaded


def test_a_source_loads_on_first_use() -> None:
    """``eventbus.ObjectStore`` imports the sources when first touched."""
    loaded = _loaded_after("import eventbus\nassert eventbus.ObjectStore.__name__")
    assert "eventbus.sources.objects" in loaded


def test_lazily_loaded_names_report_the_public_module() -> None:
    """A name loaded on first use gets ``__module__ == 'eventbus'`` like the others."""
    code = "import eventbus\nassert eventbus.Bus.__module__ == 'eventbus', eventbus.Bus.__module__"
    _loaded_after(code)


def test_pytest_plugin_does_not_import_the_package(tmp_path: Path) -> None:
    """A pytest session with the plugin loaded imports neither the bus nor the testing kit."""
    (tmp_path / "test_probe.py").write_text(
        "import sys\n"
        "def test_probe():\n"
        "    loaded = sorted(m for m in sys.modules if m.startswith('eventbus'))\n"
        "    assert loaded == ['eventbus', 'eventbus.testing', 'eventbus.testing._plugin'], loaded\n"
    )
    (tmp_path / "empty.ini").write_text("[pytest]\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "empty.ini"),
            str(tmp_path / "test_probe.py"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("fixture", ["bus", "fake_clock"])
def test_pytest_plugin_fixtures_still_work_lazily(tmp_path: Path, fixture: str) -> None:
    """The plugin's fixtures import what they need when a test asks for them."""
    (tmp_path / "test_probe.py").write_text(
        "import pytest\n"
        "@pytest.mark.anyio\n"
        f"async def test_probe({fixture}):\n"
        f"    assert {fixture} is not None\n"
        "@pytest.fixture\n"
        "def anyio_backend():\n"
        "    return 'asyncio'\n"
    )
    (tmp_path / "empty.ini").write_text("[pytest]\nasyncio_mode = strict\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "empty.ini"),
            str(tmp_path / "test_probe.py"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
