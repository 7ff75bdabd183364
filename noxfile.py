"""Developer sessions, the same matrix as CI (``.ci/run``).

``nox`` runs ``tests`` on every supported Python, ``lint``, ``typing`` and
``docs``. Others: ``nox -s integration`` (broker tests only, failing when a
service is missing) and ``nox -s bench``. Arguments after ``--`` go to the
tool, e.g. ``nox -s tests-3.13 -- tests/test_bus.py -x``.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typing", "docs"]
nox.options.default_venv_backend = "venv"

PYTHONS = ["3.11", "3.12", "3.13"]
LOWEST, HIGHEST = PYTHONS[0], PYTHONS[-1]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The README's test command: the whole suite (broker tests skip when a service is absent)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=LOWEST)
def integration(session: nox.Session) -> None:
    """Only the broker tests, failing if a service is missing."""
    session.install("-e", ".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "-m",
        "integration",
        *session.posargs,
        env={"EVENTBUS_REQUIRE_SERVICES": "1"},
    )


@nox.session(python=LOWEST)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=LOWEST)
@nox.parametrize("target", [LOWEST, HIGHEST])
def typing(session: nox.Session, target: str) -> None:
    """mypy --strict on the package, for the lowest and the highest supported Python."""
    session.install("-e", ".[test,lint]")
    session.run("mypy", "--strict", "--python-version", target, "eventbus")


@nox.session(python=LOWEST)
def docs(session: nox.Session) -> None:
    """Run every Python block of README.md and docs/*.md (sybil)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "README.md", "docs", *session.posargs)


@nox.session(python=LOWEST)
def bench(session: nox.Session) -> None:
    """Run the side-by-side benchmark (python benchmarks/run.py)."""
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/run.py", *session.posargs)
