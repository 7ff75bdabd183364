"""One-line factories for the built-in events, with consistent defaults.

Each ``make_*`` function fills every field a test does not care about and
derives the ones that must agree (an object's ``size`` and ``etag`` from its
body; a table change's images from its operation and keys). Extra keyword
arguments go to the event class (``id=``, ``time=``, ``source=``,
``version_id=``, ...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..sources.logs import LogRecord
from ..sources.objects import ObjectCreated, ObjectRemoved
from ..sources.schedules import ScheduledEvent
from ..sources.tables import TableChange, TableOperation
from ..sources.topics import TopicMessage

__all__ = [
    "make_log_record",
    "make_object_created",
    "make_object_removed",
    "make_scheduled_event",
    "make_table_change",
    "make_topic_message",
]


def make_object_created(
    key: str = "object.txt",
    body: bytes | str = b"",
    *,
    bucket: str = "bucket",
    **fields: Any,
) -> ObjectCreated:
    """An :class:`~eventbus.ObjectCreated` for *key* whose ``size`` and ``etag`` fit *body*.

    ``etag`` is the MD5 of the body in hex, as S3 gives for single-part
    uploads; text bodies are encoded as UTF-8. Pass ``size=`` or ``etag=``
    to set them yourself.

    .. versionadded:: 0.1
    """
    data = body.encode() if isinstance(body, str) else bytes(body)
    fields.setdefault("size", len(data))
    fields.setdefault("etag", hashlib.md5(data, usedforsecurity=False).hexdigest())
    return ObjectCreated(bucket=bucket, key=key, **fields)


def make_object_removed(
    key: str = "object.txt", *, bucket: str = "bucket", **fields: Any
) -> ObjectRemoved:
    """An :class:`~eventbus.ObjectRemoved` for *key*.

    .. versionadded:: 0.1
    """
    return ObjectRemoved(bucket=bucket, key=key, **fields)


def make_table_change(
    op: TableOperation = "INSERT",
    keys: Mapping[str, Any] | None = None,
    *,
    new: Mapping[str, Any] | None = None,
    old: Mapping[str, Any] | None = None,
    table: str = "table",
    sequence_number: int = 1,
    **fields: Any,
) -> TableChange:
    """A :class:`~eventbus.TableChange` whose images fit *op*, as a ``NEW_AND_OLD_IMAGES`` stream has them.

    The images contain the *keys* plus the attributes given: ``INSERT`` has
    a new image only, ``REMOVE`` an old image only, ``MODIFY`` both::

        make_table_change("MODIFY", {"id": "o-1"}, old={"status": "new"}, new={"status": "paid"})

    Args:
        op: ``"INSERT"``, ``"MODIFY"`` or ``"REMOVE"``.
        keys: the item's key attributes (default ``{"id": "1"}``).
        new: the other attributes of the item after the change.
        old: the other attributes of the item before the change.
        table: the table name.
        sequence_number: the change's position in the table's stream.

    Raises:
        ValueError: *op* is unknown, or an image is given that *op* does
            not have (``old`` for an INSERT, ``new`` for a REMOVE).

    .. versionadded:: 0.1
    """
    if op not in ("INSERT", "MODIFY", "REMOVE"):
        raise ValueError(f"op must be 'INSERT', 'MODIFY' or 'REMOVE', got {op!r}")
    if op == "INSERT" and old is not None:
        raise ValueError("an INSERT has no old image; drop old=... or use op='MODIFY'")
    if op == "REMOVE" and new is not None:
        raise ValueError("a REMOVE has no new image; drop new=... or use op='MODIFY'")
    key_values = dict(keys) if keys is not None else {"id": "1"}
    new_image = None if op == "REMOVE" else {**(new or {}), **key_values}
    old_image = None if op == "INSERT" else {**(old or {}), **key_values}
    return TableChange(
        table=table,
        op=op,
        keys=key_values,
        new_image=new_image,
        old_image=old_image,
        sequence_number=sequence_number,
        **fields,
    )


def make_topic_message(
    message: str = "{}",
    *,
    topic: str = "topic",
    attributes: Mapping[str, Any] | None = None,
    subject: str | None = None,
    **fields: Any,
) -> TopicMessage:
    """A :class:`~eventbus.TopicMessage` on *topic*.

    .. versionadded:: 0.1
    """
    return TopicMessage(
        topic=topic,
        message=message,
        attributes=dict(attributes or {}),
        subject=subject,
        **fields,
    )


def make_log_record(
    data: bytes | str = b"",
    *,
    log: str = "log",
    partition_key: str = "key",
    sequence_number: int = 0,
    partition: int = 0,
    **fields: Any,
) -> LogRecord:
    """A :class:`~eventbus.LogRecord` holding *data* (text is encoded as UTF-8).

    .. versionadded:: 0.1
    """
    payload = data.encode() if isinstance(data, str) else bytes(data)
    return LogRecord(
        log=log,
        partition_key=partition_key,
        sequence_number=sequence_number,
        data=payload,
        partition=partition,
        **fields,
    )


def make_scheduled_event(
    scheduled_time: datetime | None = None, *, rule: str = "rule", **fields: Any
) -> ScheduledEvent:
    """A :class:`~eventbus.ScheduledEvent` of *rule*, fired at *scheduled_time*.

    The time defaults to now, to the whole second (schedules fire on whole
    seconds); the event's ``time`` defaults to the same instant.

    Raises:
        ValueError: *scheduled_time* is naive.

    .. versionadded:: 0.1
    """
    if scheduled_time is None:
        scheduled_time = datetime.now(UTC).replace(microsecond=0)
    elif scheduled_time.tzinfo is None:
        raise ValueError(
            "scheduled_time must be timezone-aware, e.g. datetime(2024, 1, 1, tzinfo=UTC)"
        )
    fields.setdefault("time", scheduled_time)
    return ScheduledEvent(rule=rule, scheduled_time=scheduled_time, **fields)
