"""Destinations: where a record of each invocation's outcome goes (Lambda destinations)."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import anyio.to_thread
import attrs

from ._deadletter import ErrorInfo
from ._events import Event
from ._hooks import log_extra

if TYPE_CHECKING:
    from ._bus import Bus

__all__ = ["Destination", "InvocationRecord", "check_destination", "deliver_record"]

logger = logging.getLogger("eventbus.destinations")

Destination: TypeAlias = "Callable[[InvocationRecord], Any] | Bus | Any"
"""A destination: a callable (sync or async) taking an :class:`InvocationRecord`,
another :class:`~eventbus.Bus` (the record is published there), or a
:class:`~eventbus.Topic` (the record is published as CloudEvents JSON)."""


@attrs.frozen
class InvocationRecord(Event, type_name="eventbus.InvocationRecord"):
    """The outcome of handling one event, sent to ``on_success`` / ``on_failure``.

    Like Lambda's destination records: what was invoked, with what, and how
    it ended. It is an :class:`~eventbus.Event` itself, so it can be published
    onto another bus and routed there.

    Attributes:
        event: the event that was handled (for a batch, the first one).
        subscription: the subscription's name.
        outcome: ``"Success"`` or ``"Failure"``.
        result: the handler's return value on success (``None`` on failure).
        error: the last error on failure, in Lambda's shape.
        condition: on failure, why the bus gave up (``RetriesExhausted``, ...).
        attempts: how many attempts were made.
        duration: seconds the last attempt took.
    """

    event: Event
    subscription: str
    outcome: Literal["Success", "Failure"]
    result: Any = None
    error: ErrorInfo | None = None
    condition: str | None = None
    attempts: int = 1
    duration: float = 0.0


def check_destination(value: object, option: str) -> None:
    """Raise a clear TypeError at subscribe time if *value* cannot be a destination."""
    if value is None or callable(value):
        return
    publish = getattr(value, "publish", None)
    if callable(publish):
        return
    raise TypeError(
        f"subscribe({option}=...) takes a callable (record) -> None, a Topic or a Bus, "
        f"got {type(value).__name__}"
    )


async def deliver_record(destination: object, record: InvocationRecord) -> None:
    """Send *record* to *destination*; failures are logged, never raised.

    A destination that fails does not change the invocation's outcome (as
    with Lambda destinations); the error is logged on ``eventbus.destinations``.
    """
    try:
        from ._bus import Bus  # a cycle: the bus imports this module

        if isinstance(destination, Bus):
            await destination.publish(record)
            return
        publish = getattr(destination, "publish", None)
        if not callable(destination) and callable(publish):
            from ._serialization import to_cloudevent

            body = json.dumps(to_cloudevent(record), default=str)
            subject = f"{record.subscription}: {record.outcome}"
            if len(subject) > 100:  # SNS's subject limit, which Topic enforces
                subject = (
                    f"{record.subscription[: 100 - len(record.outcome) - 5]}...: {record.outcome}"
                )
            result = publish(body, subject=subject)
            if inspect.isawaitable(result):
                await result
            return
        call: Callable[[InvocationRecord], Any] = destination  # type: ignore[assignment]
        if inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
            getattr(call, "__call__", None)  # noqa: B004
        ):
            await call(record)
            return
        outcome = await anyio.to_thread.run_sync(call, record)
        if inspect.isawaitable(outcome):
            await _await(outcome)
    except Exception:
        logger.exception(
            "destination %r failed to receive the %s record of subscription %r for event %s",
            destination,
            record.outcome,
            record.subscription,
            record.event.id,
            extra=log_extra(record.subscription, record.event, record.attempts),
        )


async def _await(value: Awaitable[Any]) -> None:
    await value
