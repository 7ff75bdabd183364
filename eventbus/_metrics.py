"""Per-subscription counters, gauges and duration percentiles."""

from __future__ import annotations

import math
from typing import final

import attrs

__all__ = ["SubscriptionMetrics"]

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
        self._durations: list[float] = []
        self._next = 0

    def record_duration(self, seconds: float) -> None:
        durations = self._durations
        if len(durations) < DURATION_WINDOW:
            durations.append(seconds)
        else:
            durations[self._next] = seconds
            self._next = (self._next + 1) % DURATION_WINDOW

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
        )


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]
