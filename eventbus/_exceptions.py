"""Every error eventbus raises.

The tree::

    EventBusError
    ├── BusClosed              (RuntimeError)  publish after the bus closed
    ├── BusFull                (anyio.WouldBlock) publish_nowait on a full queue
    ├── PatternError           (ValueError)    an invalid ``where=`` pattern
    ├── ScheduleError          (ValueError)    an invalid cron/rate/at expression
    ├── InvocationError                        ``bus.invoke`` whose handler failed
    ├── BatchItemFailure                       a batch handler reported events as failed
    ├── HandlerTimeout         (TimeoutError)  a handler ran past its timeout
    ├── LoopDetected           (RuntimeError)  a chain of follow-up events ran too deep
    ├── UnknownSubscription    (LookupError)   no subscription has that name
    ├── ObjectNotFound         (LookupError)   an ObjectStore has no such key or version
    ├── InvalidObjectKey       (ValueError)    an object key is malformed or escapes the root
    ├── ConditionFailed                        a Table's conditional write did not hold
    └── RecordExpired                          a Log record outlived max_record_age
    ├── DuplicateSubscription  (ValueError)    a subscription name is taken
    ├── SerializationError     (ValueError)    an event cannot be encoded/decoded
    ├── TransportError         (ConnectionError) a broker could not be reached or refused
    └── MeteringError          (ValueError)    a memory size, granularity or price is invalid

Each also subclasses the builtin it is most like, so ``except ValueError``
keeps working for code that does not know eventbus.
Messages say what was wrong, where, and what to do about it.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import Any

import anyio

__all__ = [
    "BatchItemFailure",
    "BusClosed",
    "BusFull",
    "ConditionFailed",
    "DuplicateSubscription",
    "EventBusError",
    "HandlerTimeout",
    "InvalidObjectKey",
    "InvocationError",
    "LoopDetected",
    "MeteringError",
    "ObjectNotFound",
    "PatternError",
    "RecordExpired",
    "ScheduleError",
    "SerializationError",
    "TransportError",
    "UnknownSubscription",
]


class EventBusError(Exception):
    """Base class of every error eventbus raises."""


class BusClosed(EventBusError, RuntimeError):
    """The bus is closed (or closing) and accepts no new events or subscriptions."""


class BusFull(EventBusError, anyio.WouldBlock):
    """``publish_nowait`` found a matching subscription's queue full.

    Nothing was enqueued anywhere: the event was not accepted. Use
    ``await bus.publish(event)`` to wait for room instead, or raise the
    subscription's ``queue_size``.
    """


class PatternError(EventBusError, ValueError):
    """A content pattern (``where=``) is invalid; the message names the JSON path."""

    def __init__(self, message: str, *, path: str = "where") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


class ScheduleError(EventBusError, ValueError):
    """A schedule expression is invalid; the message names the field and why."""


class BatchItemFailure(EventBusError):
    """A batch handler returned :class:`~eventbus.BatchResult` naming failed events.

    Recorded as the error of those events (and passed to the retry policy);
    never raised to callers.
    """


class HandlerTimeout(EventBusError, TimeoutError):
    """A handler ran longer than its subscription's ``timeout``."""


class LoopDetected(EventBusError, RuntimeError):
    """A chain of follow-up events (``ctx.publish``) exceeded the bus's ``max_chain_depth``.

    The event that would have gone one level deeper is dead-lettered with
    condition ``RecursiveLoop`` instead of being delivered.
    """


class UnknownSubscription(EventBusError, LookupError):
    """No subscription has the given name."""


class DuplicateSubscription(EventBusError, ValueError):
    """A subscription with that name already exists on this bus."""


class SerializationError(EventBusError, ValueError):
    """An event could not be encoded to, or decoded from, its wire form."""


class InvocationError(EventBusError):
    """``bus.invoke`` ran the handler and it failed.

    Carries the failure in AWS Lambda's error shape: :attr:`error_type`,
    :attr:`error_message` and :attr:`stack_trace` (a list of lines);
    :meth:`to_dict` renders ``{"errorType", "errorMessage", "stackTrace"}``.
    The original exception is ``__cause__``.
    """

    def __init__(
        self,
        subscription: str,
        error_type: str,
        error_message: str,
        stack_trace: list[str],
    ) -> None:
        super().__init__(f"{subscription!r} failed: {error_type}: {error_message}")
        self.subscription = subscription
        self.error_type = error_type
        self.error_message = error_message
        self.stack_trace = stack_trace

    @classmethod
    def from_exception(cls, subscription: str, exc: BaseException) -> InvocationError:
        """Build the Lambda-shaped error for *exc* raised by *subscription*'s handler."""
        info = error_info(exc)
        err = cls(subscription, info["errorType"], info["errorMessage"], info["stackTrace"])
        err.__cause__ = exc
        return err

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"errorType", "errorMessage", "stackTrace"}`` as AWS Lambda does."""
        return {
            "errorType": self.error_type,
            "errorMessage": self.error_message,
            "stackTrace": list(self.stack_trace),
        }


def error_info(exc: BaseException) -> dict[str, Any]:
    """Describe *exc* in Lambda's error shape (``errorType``, ``errorMessage``, ``stackTrace``)."""
    frames = traceback.format_tb(exc.__traceback__)
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": [line.rstrip("\n") for line in frames],
    }


class InvalidObjectKey(EventBusError, ValueError):
    """An object key is empty, malformed, or would leave the store's root directory."""


class ObjectNotFound(EventBusError, LookupError):
    """No object (or no such version) has the key asked for."""


class ConditionFailed(EventBusError):
    """A conditional write found the row not as expected; nothing was written or published.

    Attributes:
        table: the table name.
        keys: the row's key attributes.
        current: the row as it was (None: there was none).
    """

    def __init__(
        self, table: str, keys: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> None:
        state = "no such row" if current is None else "the row did not match"
        super().__init__(
            f"condition failed in table {table!r} for keys {dict(keys)!r:.120} ({state}); "
            "nothing was written or published. Read the row again and retry, or change the condition"
        )
        self.table = table
        self.keys = dict(keys)
        self.current = None if current is None else dict(current)


class RecordExpired(EventBusError):
    """A log record grew older than its consumer's ``max_record_age`` (or the log's retention).

    Recorded as the error of records dead-lettered with condition
    ``EventAgeExceeded``; never raised to callers.
    """


class TransportError(EventBusError, ConnectionError):
    """A broker transport could not carry the event: the broker is unreachable,
    timed out or refused it. The client library's own exception is chained as
    ``__cause__``; the message names the transport and what to do.

    .. versionadded:: 0.2
    """


class MeteringError(EventBusError, ValueError):
    """A metering or pricing setting is invalid: a ``memory_mb`` outside Lambda's
    range (128 to 10,240 MB), a billing granularity, a negative price -- or
    :meth:`Bus.usage` on a bus without ``metering=``.

    .. versionadded:: 0.2
    """
