"""The ``eventbus`` command line: ``python -m eventbus --help``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import main as demo

    return demo()


def _version() -> str:
    """The installed distribution's version, else the package's own."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eventbus")
    except PackageNotFoundError:  # run from a source tree that is not installed
        from . import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m eventbus",
        description="eventbus: an embeddable, typed asyncio event bus with the AWS Lambda event model.",
    )
    parser.add_argument(
        "--version", action="version", version=f"eventbus {_version()}", help="print the version"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run a small pipeline (fan-out, filters, a sync handler, retries, a dead letter) "
        "and print what happened with a metrics table",
        description="Run a small self-explanatory pipeline and print what happened.",
    )
    demo.set_defaults(func=_demo)
    from .aws import cli as aws_cli

    aws_cli.register(commands)
    from . import worker

    worker.register(commands)
    from .http import _cli as http_cli

    http_cli.register(commands)
    from . import _topology

    _topology.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    code: int = func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
