"""Testing kit for code that uses eventbus; also a pytest plugin (``pytest11`` entry point)."""

from ._clock import FakeClock as FakeClock

__all__ = ("FakeClock",)
