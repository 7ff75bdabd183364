"""Batching: handlers that take a list of events, and partial batch failures."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal, final

import attrs

__all__ = ["BatchResult", "Batching", "StartingPosition", "StreamOptions"]

StartingPosition = Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]


def _check_size(_inst: object, _attr: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise ValueError(f"Batching(size=...) must be an int from 1 to 10000, got {value!r}")


def _check_window(_inst: object, _attr: object, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 300:
        raise ValueError(
            f"Batching(window=...) must be seconds from 0 to 300 (Lambda's maximum "
            f"batching window), got {value!r}"
        )


@final
@attrs.frozen
class Batching:
    """Deliver events to a handler in batches, as Lambda event source mappings do.

    The handler receives ``list[E]``. A batch is delivered as soon as it has
    ``size`` events, or ``window`` seconds (on the bus clock) after its first
    event arrived, whichever comes first (Lambda's ``BatchSize`` and
    ``MaximumBatchingWindowInSeconds``). With ``window=0`` a batch is
    whatever is queued when a worker is free.

    Args:
        size: the most events in one batch (1-10000).
        window: the longest wait, in seconds, for a batch to fill (0-300).

    Raises:
        ValueError: a value is out of range.
    """

    size: int = attrs.field(default=10, validator=_check_size)
    window: float = attrs.field(default=0.0, validator=_check_window)


def _ids(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError(
            "BatchResult(failed=...) takes a list of event ids, not a single string; "
            "write BatchResult(failed=[event.id])"
        )
    return tuple(value)


@final
@attrs.frozen
class BatchResult:
    """What a batch handler returns to report a partial failure.

    Lambda's ``ReportBatchItemFailures``: the events whose ids are listed
    failed and are retried (for a stream, from the first failed record on);
    the others succeeded. Returning ``None`` means the whole batch succeeded;
    raising means the whole batch failed.

    Args:
        failed: ids of the events that failed.
    """

    failed: tuple[str, ...] = attrs.field(default=(), converter=_ids)


def _check_factor(_inst: object, _attr: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
        raise ValueError(f"parallelization_factor must be an int from 1 to 10, got {value!r}")


def _check_optional_positive(_inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{attr.name} must be a number > 0 or None, got {value!r}")


def _check_retry_attempts(_inst: object, _attr: object, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000:
        raise ValueError(
            f"max_retry_attempts must be an int from 0 to 10000 (Lambda's range) or None, got {value!r}"
        )


def _check_position(_inst: object, _attr: object, value: str) -> None:
    if value not in ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"):
        raise ValueError(
            f"starting_position must be 'TRIM_HORIZON', 'LATEST' or 'AT_TIMESTAMP', got {value!r}"
        )


@final
@attrs.frozen
class StreamOptions:
    """How a subscription consumes a partitioned log (Lambda's stream event source options).

    Made by ``Bus.subscribe`` from its stream keyword arguments; only valid
    on subscriptions to :class:`~eventbus.LogRecord`.

    Attributes:
        starting_position: where a consumer without a checkpoint starts.
        starting_timestamp: the time for ``AT_TIMESTAMP`` (aware datetime).
        bisect_on_error: split a failing batch in two and retry the halves.
        max_record_age: skip (and send to the failure destination) records
            older than this many seconds; ``None`` for no limit.
        max_retry_attempts: retries of a failing batch before it is
            dead-lettered and the partition moves on; ``None`` for the
            retry policy's say.
        parallelization_factor: concurrent batches per partition (1-10);
            order is kept per partition key.
    """

    starting_position: StartingPosition = attrs.field(
        default="TRIM_HORIZON", validator=_check_position
    )
    starting_timestamp: datetime | None = None
    bisect_on_error: bool = False
    max_record_age: float | None = attrs.field(default=None, validator=_check_optional_positive)
    max_retry_attempts: int | None = attrs.field(default=None, validator=_check_retry_attempts)
    parallelization_factor: int = attrs.field(default=1, validator=_check_factor)

    def __attrs_post_init__(self) -> None:
        stamp = self.starting_timestamp
        if self.starting_position == "AT_TIMESTAMP":
            if not isinstance(stamp, datetime) or stamp.tzinfo is None:
                raise ValueError(
                    "starting_position='AT_TIMESTAMP' needs starting_timestamp=<an aware "
                    "datetime>, e.g. datetime(2026, 1, 1, tzinfo=UTC)"
                )
        elif stamp is not None:
            raise ValueError(
                "starting_timestamp is only used with starting_position='AT_TIMESTAMP'; "
                "pass both, or neither"
            )
