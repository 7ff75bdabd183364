"""Partitioned-log events (the Kinesis Data Streams model)."""

from __future__ import annotations

import attrs

from .._events import Event

__all__ = ["LogRecord"]


@attrs.frozen
class LogRecord(Event, type_name="eventbus.LogRecord"):
    """A record appended to a partitioned log (a Kinesis record).

    Attributes:
        log: the log (stream) name.
        partition_key: the key that chose the partition; order is kept per key.
        sequence_number: increasing within the partition.
        data: the record's payload, as bytes.
        partition: the partition (shard) index.
    """

    log: str
    partition_key: str
    sequence_number: int
    data: bytes
    partition: int = 0
