"""Suite-wide checks, and every ```python block of README.md and docs/*.md as a test.

Leaked resources fail the suite on every interpreter: each test module ends
with a garbage collection, so a file, socket or SQLite connection left to the
collector raises ``ResourceWarning`` (an error under ``filterwarnings``) in
the module that leaked it, and the session ends with one more collection.

The docs blocks run with sybil: the blocks of one page share a namespace and
run top to bottom, in a temporary working directory of their own (a page may
create files). A block that is a fragment on purpose is preceded by the line
``<!-- skip: next -->``.
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

_CWD_KEY = "__eventbus_docs_cwd__"


def _enter_scratch_dir(namespace: dict[str, Any]) -> None:
    """Run the page in an empty temporary directory, so files it writes are thrown away."""
    scratch = tempfile.mkdtemp(prefix="eventbus-docs-")
    namespace[_CWD_KEY] = (os.getcwd(), scratch)
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
