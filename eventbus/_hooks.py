"""Hooks: where tracing, metrics, metering and logging plug into the bus.

A hook is any object with some of the methods of :class:`Hook`. The bus calls
them at five points: when an event is published, when a delivery attempt
starts and ends, when a failed attempt is scheduled for a retry, and when an
event is dead-lettered. None of the telemetry that ships with eventbus
(:class:`~eventbus.Metering`, :func:`eventbus.otel.instrument`, the
Prometheus collector) is special-cased in the bus: each one is a hook.

With no hook installed the bus keeps ``None`` where the hooks would be, and
each call site pays one falsy check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, Protocol, TypeAlias, final

from ._events import Event
from ._exceptions import HandlerTimeout

if TYPE_CHECKING:
    from ._deadletter import DeadLetter

__all__ = ["Delivery", "DeliveryOutcome", "Hook", "HookSet"]

logger = logging.getLogger("eventbus")

DeliveryOutcome: TypeAlias = Literal["success", "error", "timeout", "cancelled"]
"""How a delivery attempt ended: ``"success"``, ``"error"`` (the handler
raised), ``"timeout"`` (it ran past the subscription's ``timeout``) or
``"cancelled"`` (the bus shut down, or the caller of ``invoke`` was cancelled)."""

_METHODS: Final = (
    "on_publish",
    "on_delivery_start",
    "on_delivery_end",
    "on_retry",
    "on_dead_letter",
)


class Delivery(NamedTuple):
    """One delivery attempt, as hooks see it (an immutable named tuple: cheap to make).

    Attributes:
        subscription: the subscription's name (Lambda's function name).
        event: the event delivered (for a batch, the first one).
        attempt: 1 for the first attempt, 2 for the first retry, ...
        invocation_id: unique per attempt; the same as the handler's
            ``ctx.invocation_id`` (Lambda's request id).
        memory_mb: the subscription's ``memory_mb`` (what metering bills).
        batch_size: how many events the attempt carries (1 unless batched).

    .. versionadded:: 0.2
    """

    subscription: str
    event: Event
    attempt: int
    invocation_id: str
    memory_mb: int = 128
    batch_size: int = 1


class Hook(Protocol):
    """**Protocol:** an observer of the bus: publish, delivery start and end, retry, dead letter.

    Every method is optional: implement the ones you need (the bus checks
    once, when the hook is installed, which ones an object has), or subclass
    ``Hook`` to inherit no-op defaults. Install hooks with
    ``Bus(hooks=[...])`` or :meth:`Bus.add_hook`.

    Hooks run on the event loop, inline with delivery: keep them short and
    non-blocking. A hook that raises is logged (logger ``eventbus``) and
    otherwise ignored: an observer never changes what happens to an event.

    .. versionadded:: 0.2
    """

    def on_publish(self, event: Event) -> Event | None:
        """*event* is being published (before routing; also for ``ctx.publish``).

        Returns:
            ``None`` to publish *event* as it is, or a replacement event to
            publish instead -- e.g. a copy stamped with trace context
            (``attrs.evolve(event, traceparent=...)``). It must keep the id.
        """
        return None

    def on_delivery_start(self, delivery: Delivery) -> object:
        """A delivery attempt is about to call the handler.

        Runs in the task (and context) the handler runs in, so it may set
        context variables for the handler, such as the current span.

        Returns:
            A token for this attempt (e.g. a span), handed back to
            :meth:`on_delivery_end`.
        """
        return None

    def on_delivery_end(
        self,
        delivery: Delivery,
        token: Any,
        outcome: DeliveryOutcome,
        duration: float,
        error: BaseException | None,
    ) -> None:
        """A delivery attempt ended.

        Args:
            delivery: the attempt, as given to :meth:`on_delivery_start`.
            token: what :meth:`on_delivery_start` returned (``None`` if this
                hook has no ``on_delivery_start``).
            outcome: ``"success"``, ``"error"``, ``"timeout"`` or ``"cancelled"``.
            duration: seconds the attempt took, on the bus's clock (exact
                under ``FakeClock``).
            error: the exception for ``"error"`` and ``"timeout"``, else ``None``.
        """
        return None

    def on_retry(self, subscription: str, event: Event, attempt: int, delay: float) -> None:
        """Attempt *attempt* of *event* in *subscription* is scheduled *delay* seconds from now."""
        return None

    def on_dead_letter(self, letter: DeadLetter) -> None:
        """*letter* is being stored in a dead-letter sink (any condition)."""
        return None


_DEFAULTS: Final = {name: getattr(Hook, name) for name in _METHODS}

_Start: TypeAlias = Callable[[Delivery], object]
_End: TypeAlias = Callable[[Delivery, Any, DeliveryOutcome, float, "BaseException | None"], None]


def _method(hook: object, name: str) -> Callable[..., Any] | None:
    """*hook*'s method *name*, or ``None`` when it lacks it or only inherits the no-op."""
    method = getattr(hook, name, None)
    if method is None or not callable(method):
        return None
    if getattr(type(hook), name, None) is _DEFAULTS[name]:
        return None
    return method  # type: ignore[no-any-return]


def check_hook(hook: object, where: str) -> None:
    """Raise a clear TypeError unless *hook* has at least one hook method."""
    if not any(callable(getattr(hook, name, None)) for name in _METHODS):
        raise TypeError(
            f"{where} needs a hook: an object with at least one of the methods "
            f"{', '.join(_METHODS)} (see eventbus.Hook), got {type(hook).__name__}"
        )


@final
class HookSet:
    """The installed hooks of a bus, as lists of bound methods (internal).

    The bus keeps ``None`` instead of an empty set, so that call sites test
    ``if bus._hooks is not None`` and pay nothing else when there are none.
    """

    __slots__ = ("_dead_letter", "_ends", "_publish", "_retry", "attempts", "hooks")

    def __init__(self, hooks: Iterable[Hook]) -> None:
        self.hooks: tuple[Hook, ...] = tuple(hooks)
        publish = []
        attempts: list[tuple[_Start | None, _End | None]] = []
        retry = []
        dead = []
        for hook in self.hooks:
            if (m := _method(hook, "on_publish")) is not None:
                publish.append(m)
            start, end = _method(hook, "on_delivery_start"), _method(hook, "on_delivery_end")
            if start is not None or end is not None:
                attempts.append((start, end))
            if (m := _method(hook, "on_retry")) is not None:
                retry.append(m)
            if (m := _method(hook, "on_dead_letter")) is not None:
                dead.append(m)
        self._publish = tuple(publish)
        self.attempts = tuple(attempts)
        # (index of the token, end method), innermost first
        self._ends = tuple(
            (i, end) for i, (_, end) in reversed(list(enumerate(attempts))) if end is not None
        )
        self._retry = tuple(retry)
        self._dead_letter = tuple(dead)

    def publish(self, event: Event) -> Event:
        """Run the ``on_publish`` hooks; return the event to publish."""
        for fn in self._publish:
            try:
                replacement = fn(event)
            except Exception:
                logger.exception("hook %r failed in on_publish (event %s)", fn, event.id)
                continue
            if replacement is not None:
                if not isinstance(replacement, Event) or replacement.id != event.id:
                    logger.error(
                        "hook %r: on_publish must return None or an Event with the same id; "
                        "ignoring what it returned (%s)",
                        fn,
                        type(replacement).__name__,
                    )
                    continue
                event = replacement
        return event

    def start(self, delivery: Delivery) -> list[object]:
        """Run the ``on_delivery_start`` hooks; return their tokens, in order."""
        tokens: list[object] = []
        for start, _ in self.attempts:
            token = None
            if start is not None:
                try:
                    token = start(delivery)
                except Exception:
                    logger.exception(
                        "hook %r failed in on_delivery_start (subscription %r, event %s)",
                        start,
                        delivery.subscription,
                        delivery.event.id,
                        extra=_extra(delivery),
                    )
            tokens.append(token)
        return tokens

    def end(
        self,
        delivery: Delivery,
        tokens: list[object],
        outcome: DeliveryOutcome,
        duration: float,
        error: BaseException | None,
    ) -> None:
        """Run the ``on_delivery_end`` hooks, innermost (last started) first."""
        for i, end in self._ends:
            try:
                end(delivery, tokens[i], outcome, duration, error)
            except Exception:
                logger.exception(
                    "hook %r failed in on_delivery_end (subscription %r, event %s)",
                    end,
                    delivery.subscription,
                    delivery.event.id,
                    extra=_extra(delivery),
                )

    def retry(self, subscription: str, event: Event, attempt: int, delay: float) -> None:
        """Run the ``on_retry`` hooks."""
        for fn in self._retry:
            try:
                fn(subscription, event, attempt, delay)
            except Exception:
                logger.exception(
                    "hook %r failed in on_retry (event %s)",
                    fn,
                    event.id,
                    extra=log_extra(subscription, event, attempt),
                )

    def dead_letter(self, letter: DeadLetter) -> None:
        """Run the ``on_dead_letter`` hooks."""
        for fn in self._dead_letter:
            try:
                fn(letter)
            except Exception:
                logger.exception(
                    "hook %r failed in on_dead_letter (letter %s)",
                    fn,
                    letter.id,
                    extra=log_extra(letter.subscription, letter.event, letter.attempts),
                )


def outcome_of(error: BaseException | None, cancelled: type[BaseException]) -> DeliveryOutcome:
    """Classify how an attempt ended from the exception it raised (or ``None``)."""
    if error is None:
        return "success"
    if isinstance(error, cancelled):
        return "cancelled"
    if isinstance(error, HandlerTimeout):
        return "timeout"
    return "error"


def log_extra(
    subscription: str, event: Event, attempt: int | None, invocation_id: str | None = None
) -> dict[str, object]:
    """The ``extra=`` of a log record about a delivery: the ids a formatter can use."""
    return {
        "subscription": subscription,
        "event_id": event.id,
        "event_type": type(event).event_type(),
        "attempt": attempt,
        "invocation_id": invocation_id,
    }


def _extra(delivery: Delivery) -> dict[str, object]:
    return log_extra(
        delivery.subscription, delivery.event, delivery.attempt, delivery.invocation_id
    )
