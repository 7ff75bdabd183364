"""Shared fixtures for the core bus tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eventbus.testing import FakeClock

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def fake_clock() -> FakeClock:
    """A virtual clock starting at 2024-01-01T00:00:00Z."""
    return FakeClock(start=EPOCH)
