"""The ``generate-event`` command: print a sample AWS Lambda payload as JSON.

``register(subparsers)`` adds the command to a parent parser, so that::

    python -m eventbus generate-event s3 put --bucket b --key k
    python -m eventbus generate-event s3-put --bucket b --key k

both print an S3 ``ObjectCreated:Put`` payload. Every leaf parser sets a
``func`` default; the caller runs ``args.func(args)`` and exits with the
integer it returns.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Sequence

from ._samples import SampleKind, generate_event, sample_kinds

__all__ = ["main", "register"]

_COMMAND = "generate-event"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``generate-event`` subcommand to *subparsers*.

    Both spellings are registered: ``generate-event SERVICE KIND [options]``
    (as ``sam local generate-event``) and ``generate-event SERVICE-KIND
    [options]``. Each leaf parser has its own ``--help`` listing its
    options and their defaults, and a ``func`` default: call
    ``args.func(args)`` to print the payload; it returns the exit code
    (0, or 2 when an option value is rejected).

    Args:
        subparsers: the result of ``parser.add_subparsers()`` on the parent parser.

    .. versionadded:: 0.1
    """
    kinds = sample_kinds()
    dashed = ", ".join(f"{k.service}-{k.kind}" for k in kinds)
    command = subparsers.add_parser(
        _COMMAND,
        help="print a sample AWS Lambda event payload (like sam local generate-event)",
        description=(
            "Print a sample AWS Lambda event payload as JSON. "
            f"Spell the sample as 'SERVICE KIND' or as one word: {dashed}."
        ),
    )
    services = command.add_subparsers(dest="service", metavar="SERVICE", required=True)
    by_service: dict[str, list[SampleKind]] = {}
    for sample in kinds:
        by_service.setdefault(sample.service, []).append(sample)
    for service, samples in by_service.items():
        service_parser = services.add_parser(
            service,
            help=f"{service} samples: {', '.join(s.kind for s in samples)}",
            description=f"Sample {service} payloads.",
        )
        kind_parsers = service_parser.add_subparsers(dest="kind", metavar="KIND", required=True)
        for sample in samples:
            _add_sample(kind_parsers.add_parser(sample.kind, help=sample.help), sample)
    for sample in kinds:
        # The one-word spelling; listed in the command's description, not its table.
        _add_sample(services.add_parser(f"{sample.service}-{sample.kind}"), sample)


def _add_sample(parser: argparse.ArgumentParser, sample: SampleKind) -> None:
    parser.description = f"Print {sample.help} as a Lambda payload (JSON)."
    for option in sample.options:
        parser.add_argument(
            "--" + option.name.replace("_", "-"),
            dest=option.name,
            type=option.type,
            default=option.default,
            metavar=option.name.upper(),
            help=f"{option.help} (default: %(default)s)",
        )
    parser.set_defaults(func=functools.partial(_run, sample))


def _run(sample: SampleKind, args: argparse.Namespace) -> int:
    options = {option.name: getattr(args, option.name) for option in sample.options}
    try:
        payload = generate_event(sample.service, sample.kind, **options)
    except ValueError as exc:
        print(f"{_COMMAND}: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``generate-event`` with *argv* (default: ``sys.argv[1:]``) and return the exit code.

    Args:
        argv: the command line after the program name, starting with ``generate-event``.

    Returns:
        The exit code: 0 on success, 2 when an option value is rejected.
        Usage errors exit through :class:`SystemExit`, as argparse does.
    """
    parser = argparse.ArgumentParser(prog="eventbus")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
