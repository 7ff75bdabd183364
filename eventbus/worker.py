"""The worker process: ``python -m eventbus worker module:bus``.

A worker imports a :class:`~eventbus.Bus` (or a zero-argument function
returning one), starts it, runs its subscriptions until SIGTERM or SIGINT,
then closes the bus -- which drains: every accepted event is handled or
dead-lettered, within the bus's ``grace_period`` -- and exits with status
0. A second signal stops at once (status 1): running handlers are
cancelled, and if the bus has not stopped 3 seconds later (a handler in a
thread cannot be cancelled) the process exits anyway. With a broker
transport, the events not yet acknowledged are then delivered again to
another worker.

Several workers with a broker transport (``eventbus.bridges``) share each
subscription's work: run as many as the load needs::

    python -m eventbus worker shop.app:bus --concurrency 8 --health-port 8081

Options:

* ``--concurrency N`` runs every subscription with *N* workers, overriding
  what the code passed to ``subscribe``.
* ``--subscriptions a,b`` runs only the named subscriptions; the others are
  removed before the bus starts (so this process never takes their events).
* ``--health-port P`` answers HTTP ``GET`` on ``127.0.0.1:P`` with
  ``200`` and a small JSON document (state, pid, transport and its
  connection status, subscriptions): a liveness endpoint for an
  orchestrator.

The startup line (logger ``eventbus.worker``, level INFO) names the
transport and the subscriptions.

.. versionadded:: 0.2
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

import anyio
import anyio.abc
import attrs

from ._bus import Bus
from ._exceptions import EventBusError

__all__ = ["WorkerError", "load_bus", "register", "run_worker"]

logger = logging.getLogger("eventbus.worker")

_HEALTH_REQUEST_LIMIT: Final = 8192  # bytes of request read at most
_HEALTH_READ_TIMEOUT: Final = 5.0  # seconds a health client may take to send its request
_FORCED_EXIT_AFTER: Final = 3.0  # seconds a forced stop may take before the process exits hard
EXIT_OK: Final = 0
EXIT_FORCED: Final = 1
EXIT_USAGE: Final = 2


class WorkerError(EventBusError, ValueError):
    """The worker cannot start: the target is not a Bus, or an option does not fit it.

    The message says what was wrong and what to do. The command prints it
    and exits with status 2.

    .. versionadded:: 0.2
    """


def load_bus(target: str) -> Bus:
    """Import ``module:attribute`` and return the :class:`~eventbus.Bus` it names.

    The attribute may be a ``Bus``, or a function taking no arguments that
    returns one (called here). The current directory is importable, as with
    ``python -m``.

    Raises:
        WorkerError: the target is malformed, cannot be imported, or does
            not name a Bus or a function returning one.
    """
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise WorkerError(
            f"worker target {target!r} must be 'module:attribute', e.g. 'shop.app:bus' "
            "(a Bus, or a function taking no arguments that returns one)"
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise WorkerError(
                f"cannot import module {module_name!r} of worker target {target!r}: {exc}; "
                "run the worker from the directory that holds it, or install its package"
            ) from exc
        raise
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise WorkerError(
                f"module {module_name!r} has no attribute {attribute!r} (worker target "
                f"{target!r}); name a Bus, or a function returning one"
            ) from None
    if isinstance(value, Bus):
        return value
    if callable(value) and not isinstance(value, type):
        try:
            inspect.signature(value).bind()
        except TypeError:
            raise WorkerError(
                f"worker target {target!r} is a function that takes arguments; the worker "
                "calls it with none: name a Bus, or a factory taking no arguments"
            ) from None
        except ValueError:  # no signature to check: just call it
            pass
        made = value()
        if isinstance(made, Bus):
            return made
        raise WorkerError(
            f"worker target {target!r} returned {type(made).__name__}, not a Bus; "
            "the factory must return an eventbus.Bus"
        )
    raise WorkerError(
        f"worker target {target!r} is {type(value).__name__}, not a Bus; name a Bus, or a "
        "function taking no arguments that returns one"
    )


def _select(bus: Bus, names: Sequence[str] | None, concurrency: int | None) -> list[str]:
    """Check *names* and *concurrency* against *bus*; return the subscriptions to drop."""
    present = [sub.name for sub in bus.subscriptions()]
    if names is not None:
        unknown = [name for name in names if name not in present]
        if unknown:
            raise WorkerError(
                f"--subscriptions names {', '.join(map(repr, unknown))}, which the bus does not "
                f"have; its subscriptions are: {', '.join(map(repr, present)) or '(none)'}"
            )
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
    ):
        raise WorkerError(f"--concurrency must be an int >= 1, got {concurrency!r}")
    if names is None:
        return []
    return [name for name in present if name not in names]


def _transport_status(bus: Bus) -> dict[str, Any] | None:
    try:
        status = bus.transport_status()
    except Exception:  # a health probe must answer even if the transport cannot tell
        return None
    return None if status is None else attrs.asdict(status)


def _health_document(bus: Bus, state: str) -> dict[str, Any]:
    return {
        "status": "ok",
        "state": state,
        "pid": os.getpid(),
        "transport": repr(bus.transport) if bus.transport is not None else "memory",
        "connection": _transport_status(bus),
        "subscriptions": [sub.name for sub in bus.subscriptions()],
    }


async def _serve_health(
    bus: Bus,
    port: int,
    state: Callable[[], str],
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Answer every HTTP request on 127.0.0.1:*port* with 200 and the health JSON."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)

    async def answer(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            request = b""
            with anyio.move_on_after(_HEALTH_READ_TIMEOUT):
                while b"\r\n\r\n" not in request and len(request) < _HEALTH_REQUEST_LIMIT:
                    try:
                        request += await stream.receive(4096)
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
            body = json.dumps(_health_document(bus, state()), default=str).encode()
            head = (
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await stream.send(head + body)

    async with listener:
        bound = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started(bound)
        await listener.serve(answer)


async def run_worker(
    bus: Bus,
    *,
    concurrency: int | None = None,
    subscriptions: Sequence[str] | None = None,
    health_port: int | None = None,
    ready: Callable[[], None] | None = None,
    exit_process: bool = False,
) -> int:
    """Run *bus* until SIGTERM or SIGINT, then close it (draining); return the exit status.

    Args:
        bus: a bus that has not started, with its subscriptions made.
        concurrency: run every subscription with this many workers.
        subscriptions: run only these subscriptions (the others are removed
            before the bus starts).
        health_port: serve the liveness endpoint on ``127.0.0.1`` at this
            port (``0``: any free port; the startup line names it).
        ready: called once the bus runs and the startup line is logged.
        exit_process: on a second signal, end the whole process with
            status 1 (``os._exit``) once the bus has stopped, or after 3
            seconds if it has not (handlers running in threads cannot be
            cancelled, and would keep the process alive). The command does
            this; leave it false when embedding the worker.

    Returns:
        ``0`` once the bus closed after draining; ``1`` when a second
        signal stopped it without waiting.

    Raises:
        WorkerError: *subscriptions* names one the bus does not have, or
            *concurrency* is not an int >= 1.
    """
    drop = _select(bus, subscriptions, concurrency)
    for name in drop:
        await bus.unsubscribe(name)
    if concurrency is not None:
        for sub in bus.subscriptions():
            sub.concurrency = concurrency
    state = "starting"
    forced = False
    stop = anyio.Event()
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with anyio.create_task_group() as outer:
            scope = anyio.CancelScope()

            async def watch() -> None:
                nonlocal forced
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if not stop.is_set():
                        logger.info("eventbus worker %d: %s received, draining", os.getpid(), name)
                        stop.set()
                    else:
                        logger.warning(
                            "eventbus worker %d: %s received again, stopping without waiting",
                            os.getpid(),
                            name,
                        )
                        forced = True
                        scope.cancel()
                        if not exit_process:
                            return
                        # Handlers running in threads cannot be cancelled: do not wait for them.
                        await anyio.sleep(_FORCED_EXIT_AFTER)
                        logger.error(
                            "eventbus worker %d: still running %gs after the second signal "
                            "(a handler in a thread?); exiting now",
                            os.getpid(),
                            _FORCED_EXIT_AFTER,
                        )
                        _exit_now(EXIT_FORCED)

            outer.start_soon(watch)
            where = ""
            if health_port is not None:  # answers while the bus starts, runs and drains
                port = await outer.start(_serve_health, bus, health_port, lambda: state)
                where = f"; health on http://127.0.0.1:{port}/"
            with scope:
                async with bus:
                    state = "running"
                    logger.info(
                        "eventbus worker %d started: transport %s; subscriptions %s%s",
                        os.getpid(),
                        repr(bus.transport) if bus.transport is not None else "memory",
                        ", ".join(
                            f"{sub.name} (concurrency {sub.concurrency})"
                            for sub in bus.subscriptions()
                        )
                        or "(none)",
                        where,
                    )
                    if ready is not None:
                        ready()
                    await stop.wait()
                    state = "draining"
            outer.cancel_scope.cancel()
    if forced:
        if exit_process:
            logger.warning("eventbus worker %d stopped without draining", os.getpid())
            _exit_now(EXIT_FORCED)
        return EXIT_FORCED
    logger.info("eventbus worker %d stopped", os.getpid())
    return EXIT_OK


def _exit_now(code: int) -> None:
    """End the process at once: threads still running a handler are not waited for."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# -- the command ------------------------------------------------------------------------------


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give subscription names separated by commas: a,b")
    return names


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a TCP port (0-65535), got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port (0-65535), got {value}")
    return value


def _command(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=getattr(logging, args.log_level),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    try:
        bus = load_bus(args.target)
        _select(bus, args.subscriptions, args.concurrency)
    except WorkerError as exc:
        print(f"eventbus worker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    code: int = anyio.run(
        lambda: run_worker(
            bus,
            concurrency=args.concurrency,
            subscriptions=args.subscriptions,
            health_port=args.health_port,
            exit_process=True,
        )
    )
    return code


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``worker`` subcommand to *subparsers*."""
    parser = subparsers.add_parser(
        "worker",
        help="run a bus's subscriptions until SIGTERM/SIGINT, then drain and exit",
        description=(
            "Import a Bus (module:attribute; or a function taking no arguments that returns "
            "one), run its subscriptions until SIGTERM or SIGINT, then drain within the bus's "
            "grace period and exit 0. A second signal stops at once (exit 1)."
        ),
    )
    parser.add_argument("target", help="the Bus to run, as module:attribute (e.g. shop.app:bus)")
    parser.add_argument(
        "--concurrency",
        type=_positive,
        metavar="N",
        help="run every subscription with N workers (overrides the code's concurrency)",
    )
    parser.add_argument(
        "--subscriptions",
        type=_names,
        metavar="A,B",
        help="run only these subscriptions (comma-separated names); the others are removed",
    )
    parser.add_argument(
        "--health-port",
        type=_port,
        metavar="P",
        help="answer HTTP GET on 127.0.0.1:P with 200 and a JSON status (liveness)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="the level of the log lines written to stderr (default: INFO)",
    )
    parser.set_defaults(func=_command)
