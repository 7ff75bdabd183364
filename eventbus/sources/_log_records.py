"""Small pieces of the partitioned log: key hashing, record ids, argument checks.

Partition keys map to partitions as Kinesis maps them to shards: the MD5 of
the key, read as a 128-bit number, falls into one of ``partitions`` equal
ranges. The mapping depends on nothing but the key and the partition count,
so it is the same in every process and on every run.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, final

from .._exceptions import RecordExpired

if TYPE_CHECKING:
    from .._events import LogRecord
    from .._subscription import Subscription

__all__ = [
    "MAX_PARTITIONS",
    "MAX_PARTITION_KEY",
    "RecordExpired",
    "Rejected",
    "check_data",
    "check_partition_key",
    "check_partitions",
    "check_retention",
    "check_stream_options",
    "from_micros",
    "lane_for",
    "partition_for",
    "record_id",
    "to_micros",
]

MAX_PARTITIONS: Final = 1024
MAX_PARTITION_KEY: Final = 256  # characters, as Kinesis allows
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


@final
class Rejected:
    """A record whose ``where`` predicate raised: accepted, then dead-lettered in its turn."""

    __slots__ = ("error", "record")

    def __init__(self, record: LogRecord, error: Exception) -> None:
        self.record = record
        self.error = error


def hash_key(partition_key: str) -> int:
    """The MD5 of *partition_key* (UTF-8) as a 128-bit number (Kinesis's hash key)."""
    digest = hashlib.md5(partition_key.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest, "big")


def partition_for(partition_key: str, partitions: int) -> int:
    """The partition *partition_key* belongs to, out of *partitions* equal hash ranges."""
    return (hash_key(partition_key) * partitions) >> 128


def lane_for(partition_key: str, factor: int) -> int:
    """The lane (of *factor*) within its partition that *partition_key*'s records use.

    Lanes split a partition by the low bits of the key's hash, which are
    independent of the high bits that chose the partition.
    """
    return 0 if factor == 1 else hash_key(partition_key) % factor


def record_id(log: str, partition: int, sequence_number: int) -> str:
    """The stable id of a record: ``<log>:shardId-<partition, 12 digits>:<sequence number>``."""
    return f"{log}:shardId-{partition:012d}:{sequence_number}"


def to_micros(time: datetime) -> int:
    """*time* as whole microseconds since the Unix epoch."""
    return (time - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime *micros* microseconds after the Unix epoch."""
    return _EPOCH + timedelta(microseconds=micros)


def check_data(data: object) -> bytes:
    """Return *data* as bytes: bytes-like objects as they are, text as UTF-8.

    Raises:
        TypeError: *data* is neither.
    """
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    raise TypeError(
        f"Log.append(data=...) takes bytes (or str, stored as UTF-8), got {type(data).__name__}; "
        "serialise the payload first, e.g. json.dumps(value).encode()"
    )


def check_partition_key(partition_key: object) -> str:
    """Return *partition_key* if it is a string of 1 to 256 characters.

    Raises:
        TypeError: it is not a string.
        ValueError: it is empty or too long.
    """
    if not isinstance(partition_key, str):
        raise TypeError(
            f"Log.append(partition_key=...) must be a string, got {type(partition_key).__name__}; "
            "pass str(value) for numbers and ids"
        )
    if not 1 <= len(partition_key) <= MAX_PARTITION_KEY:
        raise ValueError(
            f"Log.append(partition_key=...) must be 1 to {MAX_PARTITION_KEY} characters, "
            f"got {len(partition_key)}"
        )
    return partition_key


def check_partitions(partitions: object) -> int:
    """Return *partitions* if it is an int from 1 to :data:`MAX_PARTITIONS`.

    Raises:
        ValueError: it is not.
    """
    if (
        isinstance(partitions, bool)
        or not isinstance(partitions, int)
        or not 1 <= partitions <= MAX_PARTITIONS
    ):
        raise ValueError(
            f"Log(partitions=...) must be an int from 1 to {MAX_PARTITIONS}, got {partitions!r}"
        )
    return partitions


def check_retention(retention: object) -> float | None:
    """Return *retention* (seconds) as a float, or None (keep records forever).

    Raises:
        ValueError: it is not a finite number > 0 or None.
    """
    if retention is None:
        return None
    if (
        isinstance(retention, bool)
        or not isinstance(retention, int | float)
        or not math.isfinite(retention)
        or not retention > 0
    ):
        raise ValueError(
            f"Log(retention=...) must be seconds > 0 (default 24 hours, as Kinesis) or None "
            f"to keep records forever, got {retention!r}"
        )
    return float(retention)


def check_stream_options(sub: Subscription) -> None:
    """Check what ``StreamOptions`` alone cannot: the starting position and timestamp agree.

    Raises:
        ValueError: ``AT_TIMESTAMP`` without an aware ``starting_timestamp``,
            or a timestamp with another position.
    """
    options = sub.stream
    if options is None:
        return
    at_timestamp = options.starting_position == "AT_TIMESTAMP"
    stamp = options.starting_timestamp
    if at_timestamp and stamp is None:
        raise ValueError(
            f"subscription {sub.name!r}: starting_position='AT_TIMESTAMP' needs "
            "starting_timestamp=datetime(..., tzinfo=UTC)"
        )
    if stamp is not None and not at_timestamp:
        raise ValueError(
            f"subscription {sub.name!r}: starting_timestamp applies only with "
            "starting_position='AT_TIMESTAMP'"
        )
    if stamp is not None and (stamp.tzinfo is None or stamp.utcoffset() is None):
        raise ValueError(
            f"subscription {sub.name!r}: starting_timestamp must be timezone-aware, "
            "e.g. datetime(..., tzinfo=UTC)"
        )
