"""Retry policies: when a failed handler is tried again, and when the bus gives up."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Final, Literal, Protocol, final, runtime_checkable

import attrs

__all__ = ["DeadLetterCondition", "ExponentialBackoff", "GiveUp", "NoRetry", "RetryPolicy"]

DeadLetterCondition = Literal[
    "RetriesExhausted",
    "EventAgeExceeded",
    "Timeout",
    "RecursiveLoop",
    "Shutdown",
    "NotRetryable",
]


@final
@attrs.frozen
class GiveUp:
    """A retry policy's verdict that the event goes to the dead letters.

    Attributes:
        condition: why (``"RetriesExhausted"``, ``"EventAgeExceeded"``,
            ``"NotRetryable"``, ...), recorded on the :class:`~eventbus.DeadLetter`.
    """

    condition: DeadLetterCondition = "RetriesExhausted"


@runtime_checkable
class RetryPolicy(Protocol):
    """**Protocol:** decides whether and when a failed invocation is retried.

    Pure and synchronous: the bus passes the failure, the attempt that just
    failed (1-based) and the event's age in seconds; the policy returns the
    delay in seconds before the next attempt, or a :class:`GiveUp` (``None``
    means ``GiveUp("RetriesExhausted")``). The bus does the waiting, on its
    clock, so tests can fake time. Cancellation never reaches a policy.
    """

    def next_delay(
        self, error: BaseException, attempt: int, event_age: float
    ) -> float | GiveUp | None:
        """Return seconds to wait before attempt ``attempt + 1``, or give up."""
        ...


_NOT_RETRYABLE: Final = GiveUp("NotRetryable")
_EXHAUSTED: Final = GiveUp("RetriesExhausted")
_TOO_OLD: Final = GiveUp("EventAgeExceeded")


def _positive(name: str) -> Callable[[object, object, float | None], None]:
    def check(_inst: object, _attr: object, value: float | None) -> None:
        if value is not None and not value > 0:
            raise ValueError(f"ExponentialBackoff({name}=...) must be > 0, got {value!r}")

    return check


def _check_attempts(_inst: object, _attr: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"ExponentialBackoff(max_attempts=...) must be an int >= 1 (1 means no retry), "
            f"got {value!r}"
        )


def _check_exc_types(_inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in value
    ):
        raise TypeError(
            f"ExponentialBackoff({attr.name}=...) must be a tuple of exception classes, "
            f"got {value!r}"
        )


def _as_tuple(value: Any) -> Any:
    if isinstance(value, type):
        return (value,)
    if isinstance(value, list | set | frozenset):
        return tuple(value)
    return value  # anything else is left for the validator to reject with its message


@final
@attrs.frozen
class ExponentialBackoff:
    """Retry with exponentially growing delays; the default policy.

    Attempt ``n`` (1-based) that fails is retried after
    ``min(initial * multiplier ** (n - 1), max_delay)`` seconds -- with full
    jitter when ``jitter`` is true (a uniform random delay between 0 and that
    figure, which spreads out retries of many events that failed together).

    Args:
        max_attempts: total attempts, the first one included (Lambda's
            asynchronous invocation makes 3).
        initial: the delay after the first failure, in seconds.
        multiplier: growth factor per attempt.
        max_delay: cap on any single delay, in seconds.
        jitter: randomise delays (disable for deterministic tests).
        max_event_age: give up (``EventAgeExceeded``) once the event is older
            than this many seconds; ``None`` for no limit. Lambda's default is
            6 hours.
        retry_on: exception types that are retried; others give up at once
            with ``NotRetryable``.
        give_up_on: exception types never retried, even if in ``retry_on``.

    Raises:
        ValueError: a parameter is out of range (the message names it).
    """

    max_attempts: int = attrs.field(default=3, validator=_check_attempts)
    initial: float = attrs.field(default=1.0, validator=_positive("initial"))
    multiplier: float = attrs.field(default=2.0)
    max_delay: float = attrs.field(default=300.0, validator=_positive("max_delay"))
    jitter: bool = True
    max_event_age: float | None = attrs.field(
        default=6 * 3600.0, validator=_positive("max_event_age")
    )
    retry_on: tuple[type[BaseException], ...] = attrs.field(
        default=(Exception,), converter=_as_tuple, validator=_check_exc_types
    )
    give_up_on: tuple[type[BaseException], ...] = attrs.field(
        default=(), converter=_as_tuple, validator=_check_exc_types
    )

    @multiplier.validator
    def _check_multiplier(self, _attr: object, value: float) -> None:
        if not value >= 1:
            raise ValueError(f"ExponentialBackoff(multiplier=...) must be >= 1, got {value!r}")

    def next_delay(
        self, error: BaseException, attempt: int, event_age: float
    ) -> float | GiveUp | None:
        """The delay before the next attempt, or why not to make one."""
        if isinstance(error, self.give_up_on) or not isinstance(error, self.retry_on):
            return _NOT_RETRYABLE
        if attempt >= self.max_attempts:
            return _EXHAUSTED
        delay = min(self.initial * self.multiplier ** (attempt - 1), self.max_delay)
        if self.jitter:
            delay = random.uniform(0.0, delay)
        if self.max_event_age is not None and event_age + delay > self.max_event_age:
            return _TOO_OLD
        return delay


@final
@attrs.frozen
class NoRetry:
    """Never retry: the first failure goes straight to the dead letters."""

    def next_delay(
        self, error: BaseException, attempt: int, event_age: float
    ) -> float | GiveUp | None:
        """Always ``GiveUp("RetriesExhausted")``."""
        return _EXHAUSTED
