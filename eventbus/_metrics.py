"""Per-subscription counters, gauges and duration percentiles."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, final

import attrs

if TYPE_CHECKING:
    from ._transport import TransportStatus

__all__ = ["MetricsSnapshot", "SubscriptionMetrics"]

DURATION_WINDOW = 4096  # durations kept for percentiles: the most recent invocations


@final
@attrs.frozen
class SubscriptionMetrics:
    """A snapshot of one subscription's delivery accounting.

    At every moment, not only after ``drain``::

        accepted == succeeded + dead_lettered + in_flight + queued + waiting_retry

    Counters (since the subscription was created):
        accepted: events the subscription took responsibility for.
        succeeded: events its handler handled successfully.
        errors: failed attempts (each retry that fails counts again).
        retries: attempts scheduled after a failure.
        dead_lettered: events given up on and sent to the dead-letter sink.
        timeouts: attempts that ran past ``timeout``.
        throttled: times a publisher had to wait for room, or was refused.

    Gauges (now):
        in_flight: events whose handler is running.
        queued: events waiting for a worker.
        waiting_retry: failed events waiting for their next attempt.

    Durations (seconds, over the most recent invocations; 0.0 before any):
        duration_p50, duration_p99.

    Also:
        abandoned_threads: plain ``def`` handlers whose thread was left
            running after a timeout or shutdown (threads cannot be cancelled).
        circuit: the circuit breaker's state: ``"closed"``, ``"open"`` or
            ``"half-open"`` (always ``"closed"`` without a breaker).
        redriven: dead-lettered events delivered to it again by a redrive
            (``sink.redrive(bus)``, i.e. ``bus.publish_to``); each is also
            counted in ``accepted`` again, so after a successful redrive
            ``succeeded`` grows by as many. *Added in 0.2.*
    """

    accepted: int = 0
    succeeded: int = 0
    errors: int = 0
    retries: int = 0
    dead_lettered: int = 0
    timeouts: int = 0
    throttled: int = 0
    in_flight: int = 0
    queued: int = 0
    waiting_retry: int = 0
    duration_p50: float = 0.0
    duration_p99: float = 0.0
    abandoned_threads: int = 0
    circuit: str = "closed"
    redriven: int = 0

    @property
    def balanced(self) -> bool:
        """Whether the accounting identity holds for this snapshot."""
        return self.accepted == (
            self.succeeded + self.dead_lettered + self.in_flight + self.queued + self.waiting_retry
        )


class Counters:
    """The live, mutable counters behind :class:`SubscriptionMetrics` (internal)."""

    __slots__ = (
        "_durations",
        "_next",
        "abandoned_threads",
        "accepted",
        "dead_lettered",
        "errors",
        "in_flight",
        "queued",
        "redriven",
        "retries",
        "succeeded",
        "throttled",
        "timeouts",
        "waiting_retry",
    )

    def __init__(self) -> None:
        self.accepted = 0
        self.succeeded = 0
        self.errors = 0
        self.retries = 0
        self.dead_lettered = 0
        self.timeouts = 0
        self.throttled = 0
        self.in_flight = 0
        self.queued = 0
        self.waiting_retry = 0
        self.abandoned_threads = 0
        self.redriven = 0
        # The latest DURATION_WINDOW durations: appending drops the oldest, in C.
        self._durations: deque[float] = deque(maxlen=DURATION_WINDOW)
        self._next = 0  # unused; kept so the slot layout stays as it was

    def record_duration(self, seconds: float) -> None:
        self._durations.append(seconds)

    def snapshot(self, circuit: str = "closed") -> SubscriptionMetrics:
        ordered = sorted(self._durations)
        return SubscriptionMetrics(
            accepted=self.accepted,
            succeeded=self.succeeded,
            errors=self.errors,
            retries=self.retries,
            dead_lettered=self.dead_lettered,
            timeouts=self.timeouts,
            throttled=self.throttled,
            in_flight=self.in_flight,
            queued=self.queued,
            waiting_retry=self.waiting_retry,
            duration_p50=_percentile(ordered, 0.50),
            duration_p99=_percentile(ordered, 0.99),
            abandoned_threads=self.abandoned_threads,
            circuit=circuit,
            redriven=self.redriven,
        )


@final
class MetricsSnapshot(dict[str, SubscriptionMetrics]):
    """What ``bus.metrics()`` returns: each subscription's metrics by name (a ``dict``).

    A handler works as a key too -- the function given to ``subscribe`` or
    decorated with ``@bus.on`` -- so ``bus.metrics()[send_receipt]`` is
    ``bus.metrics()["send_receipt"]``.

    Beside the subscriptions, :attr:`transport` tells the state of the broker
    connection; it is not an item, so the snapshot still equals a plain
    ``dict`` of the same subscriptions.

    .. versionadded:: 0.2
    """

    __slots__ = ("_handlers", "_transport")

    def __init__(
        self,
        metrics: Mapping[str, SubscriptionMetrics],
        handlers: Iterable[tuple[object, str]] = (),
        *,
        transport: TransportStatus | None = None,
    ) -> None:
        super().__init__(metrics)
        self._handlers = tuple(handlers)
        self._transport = transport

    @property
    def transport(self) -> TransportStatus | None:
        """The broker connection when the snapshot was taken, or ``None`` in memory.

        A :class:`~eventbus.TransportStatus` (``connected``, ``reconnects``,
        ``last_error``, ``buffered``), as ``bus.transport_status()`` gives it.
        If the transport failed to report, it has ``connected=False`` and the
        failure as ``last_error``.

        .. versionadded:: 0.2
        """
        return self._transport

    def __getitem__(self, key: str | Any) -> SubscriptionMetrics:
        if isinstance(key, str):
            return dict.__getitem__(self, key)
        subscription = getattr(key, "subscription", None)
        name = getattr(subscription, "name", None)
        if isinstance(name, str) and name in self:
            return dict.__getitem__(self, name)
        for handler, handler_name in self._handlers:
            if handler == key:
                return dict.__getitem__(self, handler_name)
        label = getattr(key, "__qualname__", type(key).__qualname__)
        raise KeyError(
            f"{label} is not the handler of any subscription in this snapshot; "
            f"index by subscription name, one of: {', '.join(map(repr, self)) or 'none'}"
        )


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]
