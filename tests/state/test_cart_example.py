"""examples/cart.py runs and keeps every cart right."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import anyio

from eventbus import SqliteState

CART = Path(__file__).resolve().parent.parent.parent / "examples" / "cart.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_cart", CART)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_carts_end_right(tmp_path: Path) -> None:
    """One cart ordered, one abandoned by its reminder, one still open; the duplicate applied once."""
    cart = load()
    with SqliteState(tmp_path / "carts.db") as store:
        carts = await cart.main(store)
    assert carts == {
        "alice": {
            "items": {"tea": 2, "mug": 1},
            "total_cents": 2100,
            "status": "ordered",
            "seen": 2,
        },
        "bob": {"items": {"tea": 1}, "total_cents": 450, "status": "abandoned", "seen": 1},
        "carol": {"items": {"cup": 3}, "total_cents": 900, "status": "open", "seen": 1},
    }


async def test_cart_runs_as_a_script() -> None:
    """``python examples/cart.py`` prints each cart and exits 0."""
    result = await anyio.run_process([sys.executable, str(CART)])
    assert result.returncode == 0
    assert b"bob: abandoned" in result.stdout
