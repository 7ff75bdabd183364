"""``python -m eventbus serve module:gateway``: serve a gateway with uvicorn.

Starlette and uvicorn are imported only when the command runs, so the
command line works (and ``serve --help`` explains the extra) without them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

__all__ = ["load_target", "register", "serve"]

_COMMAND = "serve"


class TargetError(Exception):
    """The TARGET argument names nothing servable (internal)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` subcommand to *subparsers*.

    .. versionadded:: 0.2
    """
    command = subparsers.add_parser(
        _COMMAND,
        help="serve an eventbus.http.Gateway (or a Bus) over HTTP with uvicorn",
        description=(
            "Serve an eventbus.http.Gateway with uvicorn (needs eventbus[http]). TARGET is "
            "'package.module:gateway'; a Bus is served behind a Gateway with no routes of its "
            "own (POST /events, /health, /metrics, /openapi.json). The gateway starts its bus "
            "when the server starts (unless it is running already) and drains it on shutdown."
        ),
    )
    command.add_argument("target", metavar="TARGET", help="'package.module:gateway'")
    command.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    command.add_argument(
        "--port", type=int, default=8080, help="TCP port to listen on (default: %(default)s)"
    )
    command.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn's log level (default: %(default)s)",
    )
    command.set_defaults(func=serve)


def load_target(spec: str) -> Any:
    """Import the gateway (or bus) *spec* names (``package.module:attribute``) and return it.

    A :class:`~eventbus.Bus` is wrapped in a :class:`~eventbus.http.Gateway`.

    Raises:
        TargetError: *spec* is malformed, the module cannot be imported, or
            the attribute is missing or neither a Gateway nor a Bus.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise TargetError(f"TARGET {spec!r}: write 'package.module:gateway'")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise TargetError(f"cannot import module {module_name!r}: {exc}") from None
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"module {module_name!r} has no attribute {attribute!r}") from None
    from .._bus import Bus
    from ._gateway import Gateway

    if isinstance(obj, Bus):
        return Gateway(obj)
    if not isinstance(obj, Gateway):
        raise TargetError(
            f"{spec} is a {type(obj).__name__}; serve an eventbus.http.Gateway or an eventbus.Bus"
        )
    return obj


def serve(args: argparse.Namespace) -> int:
    """Run the ``serve`` command; return the exit code (2 for usage errors)."""
    try:
        import uvicorn
    except ImportError:
        print("serve needs uvicorn: pip install 'eventbus[http]'", file=sys.stderr)
        return 2
    try:
        app = load_target(args.target)
    except ImportError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except TargetError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"serve: --port must be 0-65535, got {args.port}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, lifespan="on"
    )
    uvicorn.Server(config).run()
    return 0
