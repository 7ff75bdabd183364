"""Flow control for a subscription: a circuit breaker and a rate limit.

Both gate *when a worker may take the next event*; neither fails events.
While a breaker is open or the rate is exhausted, events wait in the queue
(and publishers feel backpressure once it is full), exactly as they wait
for a free worker.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal, final

import anyio
import attrs

if TYPE_CHECKING:
    from ._clock import Clock

__all__ = ["CircuitBreaker", "CircuitState", "RateLimit"]

logger = logging.getLogger("eventbus")

CircuitState = Literal["closed", "open", "half-open"]

_ROUNDING = 1e-9  # tokens: a shortfall this small is floating-point error


def _positive_int(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attr.name} must be an int >= 1, got {value!r}")


def _positive_number(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{attr.name} must be a number > 0, got {value!r}")


@final
@attrs.frozen
class CircuitBreaker:
    """Stop calling a handler that keeps failing, then probe it before resuming.

    After ``failure_threshold`` consecutive failed attempts the circuit
    *opens*: workers stop taking events, which wait in the queue (they do
    not fail). After ``reset_timeout`` seconds on the bus clock it is
    *half-open*: one event is let through as a probe. If the probe succeeds
    the circuit closes and work resumes; if it fails the circuit opens again.

    Args:
        failure_threshold: consecutive failures that open the circuit.
        reset_timeout: seconds the circuit stays open before a probe.
    """

    failure_threshold: int = attrs.field(default=5, validator=_positive_int)
    reset_timeout: float = attrs.field(default=30.0, validator=_positive_number)


@final
@attrs.frozen
class RateLimit:
    """At most ``rate`` handler invocations per ``per`` seconds (a token bucket).

    Args:
        rate: invocations allowed per period.
        per: the period, in seconds on the bus clock.
        burst: how many invocations may run back to back after a quiet
            spell (the bucket's size); defaults to ``rate``.
    """

    rate: int = attrs.field(validator=_positive_int)
    per: float = attrs.field(default=1.0, validator=_positive_number)
    burst: int | None = attrs.field(default=None)

    @burst.validator
    def _check_burst(self, _attr: object, value: int | None) -> None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"burst must be an int >= 1 or None, got {value!r}")


@final
class Gate:
    """The runtime state of a subscription's breaker and limiter (internal)."""

    __slots__ = (
        "_breaker",
        "_changed",
        "_clock",
        "_failures",
        "_limit",
        "_name",
        "_opened_at",
        "_probing",
        "_tokens",
        "_updated",
        "state",
    )

    def __init__(
        self,
        name: str,
        clock: Clock,
        breaker: CircuitBreaker | None,
        limit: RateLimit | None,
    ) -> None:
        self._name = name
        self._clock = clock
        self._breaker = breaker
        self._limit = limit
        self.state: CircuitState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._changed: anyio.Event | None = None
        self._tokens = float(limit.burst or limit.rate) if limit is not None else 0.0
        self._updated: float | None = None

    async def admit(self) -> None:
        """Wait until a worker may take the next event."""
        if self._breaker is not None:
            await self._admit_breaker(self._breaker)
        if self._limit is not None:
            await self._admit_rate(self._limit)

    async def _admit_breaker(self, breaker: CircuitBreaker) -> None:
        clock = self._clock
        while True:
            if self.state == "closed":
                return
            if self.state == "open":
                reopen = self._opened_at + breaker.reset_timeout
                if clock.now() < reopen:
                    await self._wait_change_or(reopen)
                    continue
                self._set("half-open")
            if not self._probing:  # half-open: this worker carries the probe
                self._probing = True
                return
            await self._wait_change_or(None)

    async def _wait_change_or(self, deadline: float | None) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        changed = self._changed
        if deadline is None:
            await changed.wait()
            return
        with self._clock.deadline_scope(deadline):
            await changed.wait()

    def _set(self, state: CircuitState) -> None:
        if state != self.state:
            logger.warning("subscription %r: circuit %s -> %s", self._name, self.state, state)
        self.state = state
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def withdraw(self) -> None:
        """Give back an admission that found no event (the probe slot, if held)."""
        if self.state == "half-open" and self._probing:
            self._probing = False
            if self._changed is not None:
                self._changed.set()
                self._changed = None

    def record(self, ok: bool) -> None:
        """Count an attempt's outcome toward the breaker."""
        breaker = self._breaker
        if breaker is None:
            return
        if ok:
            self._failures = 0
            if self.state != "closed":
                self._probing = False
                self._set("closed")
            return
        self._failures += 1
        if self.state == "half-open" or (
            self.state == "closed" and self._failures >= breaker.failure_threshold
        ):
            self._probing = False
            self._opened_at = self._clock.now()
            self._set("open")

    async def _admit_rate(self, limit: RateLimit) -> None:
        clock = self._clock
        capacity = float(limit.burst or limit.rate)
        per_token = limit.per / limit.rate
        while True:
            now = clock.now()
            if self._updated is None:
                self._updated = now
            self._tokens = min(capacity, self._tokens + (now - self._updated) / per_token)
            self._updated = now
            # Within a rounding error of a whole token counts as one: the wait
            # for the sliver left would not move the clock, and would spin.
            if self._tokens >= 1.0 - _ROUNDING:
                self._tokens = max(0.0, self._tokens - 1.0)
                return
            await clock.sleep_until(now + (1.0 - self._tokens) * per_token)
