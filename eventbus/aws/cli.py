"""The AWS commands: ``generate-event`` prints a sample Lambda payload, ``invoke`` runs a handler on one.

``register(subparsers)`` adds both commands to a parent parser, so that::

    python -m eventbus generate-event s3 put --bucket b --key k
    python -m eventbus generate-event s3-put --bucket b --key k
    python -m eventbus invoke app:lambda_handler --event payload.json

print an S3 ``ObjectCreated:Put`` payload (both spellings), and run
``lambda_handler`` from ``app.py`` on a payload, printing its result. Every
leaf parser sets a ``func`` default; the caller runs ``args.func(args)`` and
exits with the integer it returns.
"""

from __future__ import annotations

import argparse
import collections.abc
import contextlib
import functools
import importlib
import importlib.util
import inspect
import json
import os
import sys
import threading
import types
import typing
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.to_thread

from .._batching import BatchResult
from .._bus import Bus
from .._context import Context
from .._events import Event
from .._exceptions import EventBusError, error_info
from .._subscribe import inspect_handler
from ._cognito_events import UserPoolTrigger
from ._handler import MAX_TIMEOUT, LambdaContext, item_identifiers
from ._lambda import from_lambda_event, to_lambda_event
from ._samples import SampleKind, generate_event, sample_kinds

__all__ = ["main", "register"]

_COMMAND = "generate-event"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``generate-event`` and ``invoke`` subcommands to *subparsers*.

    Both spellings of ``generate-event`` are registered: ``generate-event
    SERVICE KIND [options]`` (as ``sam local generate-event``) and
    ``generate-event SERVICE-KIND [options]``. Each leaf parser has its own
    ``--help`` listing its options and their defaults, and a ``func``
    default: call ``args.func(args)`` to run the command; it returns the
    exit code (for ``generate-event``: 0, or 2 when an option value is
    rejected; for ``invoke``: see :mod:`eventbus.aws.cli`'s ``invoke``
    help -- 0, 1 when the function failed, 2 for usage errors).

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
    _add_invoke(subparsers)


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


# -- invoke ------------------------------------------------------------------------------

_INVOKE: Final = "invoke"
_SEQUENCE_ORIGINS: Final = (
    list,
    tuple,
    collections.abc.Sequence,
    collections.abc.Iterable,
    collections.abc.Collection,
)

_INVOKE_DESCRIPTION = """\
Run a function locally on an event payload and print its result as JSON,
like 'sam local invoke'.

HANDLER names the function: 'package.module:function', 'path/to/app.py:function'
(the file's folder is put on sys.path) or Lambda's own 'module.function'.
The current directory is put on sys.path first.

A Lambda function, handler(event, context), receives the payload as is and a
Lambda-like context. An eventbus handler, (event) or (event, ctx), receives
the typed events eventbus.aws.from_lambda_event() reads from the payload: once
per event, or once with the list when its first parameter is annotated as a
list or sequence of events. A function whose first parameter is annotated
with an eventbus Event class is taken for an eventbus handler; --eventbus and
--lambda decide explicitly.

What the function prints goes to standard error; standard output gets only the
result (a returned eventbus BatchResult is printed as Lambda's
batchItemFailures response). When the function fails, the error is printed in
Lambda's shape, {"errorType", "errorMessage", "stackTrace"}, and the exit
status is 1. Usage errors (a bad HANDLER, an unreadable or invalid payload
file) exit with status 2.
"""


class _Failure(Exception):
    """The invocation failed; carries Lambda's error shape."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["errorMessage"])
        self.error = error


class _UsageError(Exception):
    """The command line or the payload file is wrong (exit status 2)."""


def _add_invoke(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        _INVOKE,
        help="run a Lambda function (or an eventbus handler) locally on an event payload",
        description=_INVOKE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "handler",
        metavar="HANDLER",
        help="'package.module:function', 'path/to/app.py:function' or 'module.function'",
    )
    parser.add_argument(
        "-e",
        "--event",
        metavar="FILE",
        help="the event payload, a JSON file; '-' reads standard input (default: {})",
    )
    style = parser.add_mutually_exclusive_group()
    style.add_argument(
        "--eventbus",
        dest="style",
        action="store_const",
        const="eventbus",
        help="call it as an eventbus handler with typed events",
    )
    style.add_argument(
        "--lambda",
        dest="style",
        action="store_const",
        const="lambda",
        help="call it as a Lambda function with the raw payload and a context",
    )
    parser.add_argument(
        "--function-name",
        metavar="NAME",
        help="the function name the context reports (default: the function's name)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="fail the invocation after this many seconds (default: no limit)",
    )
    parser.add_argument(
        "--memory",
        type=int,
        default=128,
        metavar="MB",
        help="the memory_limit_in_mb the context reports (default: %(default)s)",
    )
    parser.set_defaults(func=_run_invoke, style=None)


def _run_invoke(args: argparse.Namespace) -> int:
    try:
        if args.timeout is not None and not args.timeout > 0:
            raise _UsageError(f"--timeout must be a number of seconds > 0, got {args.timeout:g}")
        if args.memory < 1:
            raise _UsageError(f"--memory must be an int >= 1, got {args.memory}")
        payload = _read_payload(args.event)
        func, default_name = _load_handler(args.handler)
        name = args.function_name or default_name
        style = args.style or ("eventbus" if _event_parameter(func) is not None else "lambda")
        with contextlib.redirect_stdout(sys.stderr):
            if style == "eventbus":
                result = _invoke_eventbus(func, payload, name, args.timeout)
            else:
                result = _invoke_lambda(func, payload, name, args.timeout, args.memory)
        text = _to_json(result)
    except _UsageError as exc:
        print(f"{_INVOKE}: error: {exc}", file=sys.stderr)
        return 2
    except _Failure as failure:
        sys.stdout.write(json.dumps(failure.error, indent=2, ensure_ascii=False) + "\n")
        return 1
    sys.stdout.write(text + "\n")
    return 0


def _read_payload(source: str | None) -> Any:
    if source is None:
        return {}
    where = "standard input" if source == "-" else repr(source)
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _UsageError(f"cannot read the event from {where}: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _UsageError(f"the event in {where} is not valid JSON: {exc}") from None


def _load_handler(spec: str) -> tuple[Callable[..., Any], str]:
    """Import the function *spec* names; return it and its default function name."""
    if ":" in spec:
        target, _, attribute = spec.rpartition(":")
    elif spec.endswith(".py"):
        raise _UsageError(f"name the function in the file: '{spec}:handler'")
    else:
        target, _, attribute = spec.rpartition(".")
    if not target or not attribute:
        raise _UsageError(
            f"HANDLER {spec!r} names no function; write 'package.module:function', "
            "'path/to/app.py:function' or 'module.function'"
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    is_file = target.endswith(".py") or "/" in target or os.sep in target
    module_name = Path(target).stem if is_file else target
    try:
        module = _import_file(Path(target)) if is_file else importlib.import_module(target)
    except Exception as exc:
        raise _Failure(
            {
                **error_info(exc),
                "errorType": "Runtime.ImportModuleError",
                "errorMessage": f"Unable to import module '{module_name}': {exc}",
            }
        ) from None
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _Failure(
                {
                    "errorType": "Runtime.HandlerNotFound",
                    "errorMessage": f"Handler '{attribute}' missing on module '{module_name}'",
                    "stackTrace": [],
                }
            ) from None
    if not callable(obj):
        raise _Failure(
            {
                "errorType": "Runtime.HandlerNotFound",
                "errorMessage": (
                    f"Handler '{attribute}' on module '{module_name}' is a "
                    f"{type(obj).__name__}, not a function"
                ),
                "stackTrace": [],
            }
        )
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in attribute.rsplit(".", 1)[-1])
    return obj, name[:64] or "function"


def _import_file(path: Path) -> types.ModuleType:
    path = path.resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:  # pragma: no cover - only for odd suffixes
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # annotations and dataclasses resolve names through it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(path.stem, None)
        raise
    return module


def _event_parameter(func: Callable[..., Any]) -> bool | None:
    """How an eventbus handler takes events: True for a list, False for one; None if it is no eventbus handler.

    It is one when its first positional parameter is annotated with an
    :class:`~eventbus.Event` class (a union of them, or a list or sequence
    of them for a batch handler).
    """
    target: Any = func
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = getattr(target, "__call__", target)  # noqa: B004
    try:
        params = [
            p
            for p in inspect.signature(target).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return None
    if not params:
        return None
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # names the annotations use cannot be resolved
        return None
    return _event_annotation(hints.get(params[0].name))


def _event_annotation(annotation: Any) -> bool | None:
    if isinstance(annotation, type) and issubclass(annotation, Event):
        return False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _event_annotation(args[0])
    if origin is typing.Union or origin is types.UnionType:
        kinds = [_event_annotation(arg) for arg in args]
        if all(kind is None for kind in kinds):
            return None
        return any(kind is True for kind in kinds)
    if origin in _SEQUENCE_ORIGINS and args and _event_annotation(args[0]) is False:
        return True
    return None


def _timed_out(seconds: float) -> _Failure:
    return _Failure(
        {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"Task timed out after {seconds:.2f} seconds",
            "stackTrace": [],
        }
    )


_PLUMBING: Final = ("eventbus.aws.cli", "anyio.", "asyncio.", "threading", "concurrent.")


def _failed(exc: BaseException) -> _Failure:
    """*exc* in Lambda's error shape, its stack trace starting at the function's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if not (module == "anyio" or module.startswith(_PLUMBING)):
            break
        tb = tb.tb_next
    return _Failure({**error_info(exc.with_traceback(tb))})


def _invoke_lambda(
    func: Callable[..., Any],
    payload: Any,
    name: str,
    timeout: float | None,
    memory: int,
) -> Any:
    context = LambdaContext(name, timeout=timeout or MAX_TIMEOUT, memory_limit_in_mb=memory)
    is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004
    )
    if not is_async:
        # Outside any event loop, as the Lambda runtime calls it (so the
        # function may call asyncio.run itself).
        if timeout is None:
            try:
                return func(payload, context)
            except Exception as exc:
                raise _failed(exc) from None
        return _in_daemon_thread(functools.partial(func, payload, context), timeout)

    async def run() -> Any:
        with anyio.move_on_after(_no_limit(timeout)) as scope:
            result = await func(payload, context)
        if scope.cancelled_caught:
            raise _timed_out(timeout or 0.0)
        return result

    try:
        return anyio.run(run)
    except _Failure:
        raise
    except Exception as exc:
        raise _failed(exc) from None


def _in_daemon_thread(call: Callable[[], Any], timeout: float) -> Any:
    """Run *call* in a daemon thread for at most *timeout* seconds.

    A function still running when time is up is left behind; being a
    daemon thread, it does not keep the process alive.
    """
    outcome: list[Any] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=target, name="eventbus-invoke", daemon=True).start()
    if not done.wait(timeout):
        raise _timed_out(timeout)
    if errors:
        if isinstance(errors[0], Exception):
            raise _failed(errors[0])
        raise errors[0]
    return outcome[0]


def _no_limit(value: float | None) -> float:
    """*value*, or infinity for None."""
    return float("inf") if value is None else value


def _invoke_eventbus(
    func: Callable[..., Any], payload: Any, name: str, timeout: float | None
) -> Any:
    try:
        inspect_handler(func)
        events = from_lambda_event(payload)
    except (TypeError, EventBusError) as exc:
        raise _failed(exc) from None
    batch = _event_parameter(func) is True

    async def run() -> Any:
        async with Bus() as bus:
            if batch:
                return await _call_handler(bus, func, events, events, name, timeout)
            results = [
                await _call_handler(bus, func, event, [event], name, timeout) for event in events
            ]
            return results[0] if len(results) == 1 else results

    try:
        result = anyio.run(run)
    except _Failure:
        raise
    except Exception as exc:
        raise _failed(exc) from None
    if isinstance(result, BatchResult):
        return _batch_response(result, events, payload)
    if len(events) == 1 and isinstance(events[0], UserPoolTrigger):
        return _trigger_response(events[0], result)
    return result


def _trigger_response(event: UserPoolTrigger, result: Any) -> Any:
    """What a Cognito trigger's function returns: the payload, its ``response`` filled in.

    An eventbus handler may return the updated event, or only the response
    keys (a mapping); ``None`` leaves the response as received.
    """
    if isinstance(result, UserPoolTrigger):
        return to_lambda_event([result])
    if result is None:
        return to_lambda_event([event])
    if isinstance(result, collections.abc.Mapping) and "triggerSource" not in result:
        return to_lambda_event([event.with_response(result)])
    return result


async def _call_handler(
    bus: Bus,
    func: Callable[..., Any],
    arg: Any,
    events: list[Event],
    name: str,
    limit: float | None,
) -> Any:
    is_async, wants_ctx = inspect_handler(func)
    clock = bus.clock
    deadline = None if limit is None else clock.now() + limit
    first = events[0] if events else Event()
    args: tuple[Any, ...] = (arg, Context(bus, name, first, 1, deadline)) if wants_ctx else (arg,)
    with contextlib.ExitStack() as stack:
        scope = None if deadline is None else stack.enter_context(clock.deadline_scope(deadline))
        if is_async:
            result = await func(*args)
        else:
            call = functools.partial(func, *args)
            result = await anyio.to_thread.run_sync(call, abandon_on_cancel=deadline is not None)
    if scope is not None and scope.cancel_called:
        raise _timed_out(limit or 0.0)
    return result


def _batch_response(result: BatchResult, events: list[Event], payload: Any) -> dict[str, Any]:
    """An eventbus :class:`~eventbus.BatchResult` as Lambda's partial batch response."""
    identifiers = item_identifiers(payload) if isinstance(payload, dict) else []
    by_id: dict[str, str] = {}
    for i, event in enumerate(events):
        identifier = identifiers[i] if i < len(identifiers) else None
        by_id[event.id] = identifier if identifier is not None else event.id
    return {
        "batchItemFailures": [
            {"itemIdentifier": by_id.get(event_id, event_id)} for event_id in result.failed
        ]
    }


def _json_default(value: object) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _to_json(result: Any) -> str:
    try:
        return json.dumps(result, indent=2, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise _Failure(
            {
                "errorType": "Runtime.MarshalError",
                "errorMessage": f"Unable to marshal response: {exc}",
                "stackTrace": [],
            }
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``generate-event`` or ``invoke`` with *argv* (default: ``sys.argv[1:]``).

    Args:
        argv: the command line after the program name, starting with the command.

    Returns:
        The exit code: 0 on success, 1 when an invoked function failed, 2
        when an option value is rejected. Usage errors exit through
        :class:`SystemExit`, as argparse does.
    """
    parser = argparse.ArgumentParser(prog="eventbus")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
