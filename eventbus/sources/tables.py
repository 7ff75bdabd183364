"""Table change-stream events (the DynamoDB Streams model)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .._events import Event

__all__ = ["TableChange", "TableOperation"]

TableOperation = Literal["INSERT", "MODIFY", "REMOVE"]
_OPS = ("INSERT", "MODIFY", "REMOVE")


def _check_op(_inst: object, _attr: object, value: str) -> None:
    if value not in _OPS:
        raise ValueError(f"TableChange.op must be one of {', '.join(_OPS)}; got {value!r}")


@attrs.frozen
class TableChange(Event, type_name="eventbus.TableChange"):
    """A row of a table was inserted, modified or removed (a DynamoDB stream record).

    Attributes:
        table: the table name.
        op: ``"INSERT"``, ``"MODIFY"`` or ``"REMOVE"``.
        keys: the row's key attributes.
        new_image: the row after the change (``None`` for REMOVE, or when the
            stream view does not include new images).
        old_image: the row before the change (``None`` for INSERT, or when the
            stream view does not include old images).
        sequence_number: strictly increasing per table.
        expired: the row was removed by TTL expiry, not by a caller
            (DynamoDB's ``userIdentity`` of ``dynamodb.amazonaws.com``).
    """

    table: str
    op: TableOperation = attrs.field(validator=_check_op)
    keys: Mapping[str, Any]
    new_image: Mapping[str, Any] | None
    old_image: Mapping[str, Any] | None
    sequence_number: int
    expired: bool = False
