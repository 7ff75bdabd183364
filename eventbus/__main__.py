"""The ``eventbus`` command line: ``python -m eventbus --help``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import main as demo

    return demo()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m eventbus",
        description="eventbus: an embeddable, typed asyncio event bus with the AWS Lambda event model.",
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
    from .http import _cli as http_cli

    http_cli.register(commands)
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
