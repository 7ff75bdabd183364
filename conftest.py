"""Suite-wide checks, and every ```python block of README.md and docs/*.md as a test.

Leaked resources fail the suite on every interpreter: each test module ends
with a garbage collection, so a file, socket or SQLite connection left to the
collector raises ``ResourceWarning`` (an error under ``filterwarnings``) in
the module that leaked it, and the session ends with one more collection.

The docs blocks run with sybil: the blocks of one page share a namespace and
run top to bottom, in a temporary working directory of their own (a page may
create files). A block that is a fragment on purpose is preceded by the line
``<!-- skip: next -->``. A page about tests may run the tests it shows from an
invisible block (``<!-- invisible-code-block: python ... -->``) with
``run_test(test_function)``, which plays the ``bus`` and ``fake_clock``
fixtures of the pytest plugin.
"""

from __future__ import annotations

import gc
import inspect
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import anyio
import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

from eventbus import Bus
from eventbus.testing import FakeClock
from eventbus.testing._recording import (
    attach_fixture_state,
    detach_fixture_state,
    pop_default_bus,
    push_default_bus,
)

_CWD_KEY = "__eventbus_docs_cwd__"


def run_test(test: Callable[..., Coroutine[Any, Any, None]], **options: Any) -> None:
    """Run an ``async def test_...(bus, fake_clock)`` shown in the docs, as the plugin would.

    The test gets a started bus (with the plugin's history, so
    ``assert_published(bus, ...)`` works) and, if it asks, a ``FakeClock``
    the bus runs on; the bus is drained after the test. *options* go to ``Bus``.
    """
    wanted = inspect.signature(test).parameters

    async def main() -> None:
        clock = FakeClock() if "fake_clock" in wanted else None
        async with Bus(clock=clock, **options) as bus:
            attach_fixture_state(bus)
            push_default_bus(bus)
            try:
                kwargs: dict[str, Any] = {"bus": bus, "fake_clock": clock}
                await test(**{name: kwargs[name] for name in wanted})
                await bus.drain()
            finally:
                pop_default_bus(bus)
                detach_fixture_state(bus)

    anyio.run(main)


def _enter_scratch_dir(namespace: dict[str, Any]) -> None:
    """Run the page in an empty temporary directory, so files it writes are thrown away."""
    scratch = tempfile.mkdtemp(prefix="eventbus-docs-")
    namespace[_CWD_KEY] = (os.getcwd(), scratch)
    namespace["run_test"] = run_test
    os.chdir(scratch)


def _leave_scratch_dir(namespace: dict[str, Any]) -> None:
    previous, scratch = namespace.pop(_CWD_KEY)
    os.chdir(previous)
    shutil.rmtree(scratch, ignore_errors=True)


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["README.md", "docs/*.md"],
    setup=_enter_scratch_dir,
    teardown=_leave_scratch_dir,
).pytest()


@pytest.fixture(scope="module", autouse=True)
def _collect_garbage_after_module() -> Iterator[None]:
    """Collect at the end of each module, so a leak is reported where it happened."""
    yield
    gc.collect()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a last collection finds an unclosed resource."""
    leaks: list[str] = []
    previous = sys.unraisablehook

    def record(unraisable: sys.UnraisableHookArgs) -> None:
        if isinstance(unraisable.exc_value, ResourceWarning):
            leaks.append(f"{unraisable.exc_value} ({unraisable.object!r})")
        else:
            previous(unraisable)

    sys.unraisablehook = record
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            gc.collect()
            gc.collect()
    finally:
        sys.unraisablehook = previous
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["resources left to the garbage collector at the end of the session:", *leaks]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        else:
            print("\n".join(lines), file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
