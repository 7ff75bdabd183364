"""DynamoDB Streams records <-> :class:`~eventbus.TableChange`, and AttributeValue conversion."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from decimal import Decimal, InvalidOperation
from typing import Any

from ..sources.tables import TableChange, TableOperation
from ._common import (
    Arn,
    RenderOptions,
    as_int,
    as_list,
    as_object,
    as_str,
    b64decode,
    b64encode,
    digest,
    epoch_seconds,
    fail,
    join,
    kind,
    now_utc,
    parse_epoch_seconds,
    rebuild_arn,
    region_of,
    req_obj,
    req_str,
    required,
)
from ._limits import check_number_text

__all__ = [
    "from_attribute_value",
    "from_dynamodb_item",
    "parse_record",
    "render_record",
    "to_attribute_value",
    "to_dynamodb_item",
]

_OPS: dict[str, TableOperation] = {"INSERT": "INSERT", "MODIFY": "MODIFY", "REMOVE": "REMOVE"}
_TTL_PRINCIPAL = "dynamodb.amazonaws.com"
_STREAM_LABEL = "1970-01-01T00:00:00.000"
_TYPES = ("S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS")


# -- AttributeValue -> plain ----------------------------------------------------------


def from_attribute_value(value: Mapping[str, Any], *, path: str = "value") -> Any:
    """Convert one DynamoDB ``AttributeValue`` (``{"N": "5"}``) to a plain Python value.

    ``S`` becomes ``str``, ``N`` ``Decimal``, ``B`` ``bytes`` (base64-decoded),
    ``BOOL`` ``bool``, ``NULL`` ``None``, ``L`` ``list``, ``M`` ``dict``, and
    ``SS`` / ``NS`` / ``BS`` a ``set`` of ``str`` / ``Decimal`` / ``bytes``.

    Args:
        value: the AttributeValue, as found in stream records (JSON form).
        path: where *value* sits, used in error messages.

    Returns:
        The plain value.

    Raises:
        SerializationError: *value* is not a well-formed AttributeValue (not
            exactly one known type key with a non-null value, a bad number or
            base64 text); the message names the offending path. An empty set
            reads as an empty ``set``.

    .. versionadded:: 0.1
    """
    av = as_object(value, path)
    if len(av) > 1 and any(inner is None for inner in av.values()):
        # Some SDKs serialise every type key and set the unused ones to null
        # (the aws-lambda-go sample stream records do): only the non-null one counts.
        av = {tag: inner for tag, inner in av.items() if inner is not None}
    if len(av) != 1:
        found = ", ".join(sorted(map(str, av))) or "none"
        fail(
            path, f"an AttributeValue has exactly one type key ({'/'.join(_TYPES)}); found {found}"
        )
    ((tag, inner),) = av.items()
    here = join(path, str(tag))
    if tag == "S":
        return as_str(inner, here)
    if tag == "N":
        return _number(inner, here)
    if tag == "B":
        return b64decode(inner, here)
    if tag == "BOOL":
        if not isinstance(inner, bool):
            fail(here, f"expected true or false, got {kind(inner)}")
        return inner
    if tag == "NULL":
        if inner is not True:
            fail(here, f"expected true, got {inner!r:.40}")
        return None
    if tag == "L":
        return [
            from_attribute_value(item, path=f"{here}[{i}]")
            for i, item in enumerate(as_list(inner, here))
        ]
    if tag == "M":
        return from_dynamodb_item(as_object(inner, here), path=here)
    if tag in ("SS", "NS", "BS"):
        # DynamoDB never stores an empty set, but sample records carry them
        # (aws-lambda-go's stream fixture has "SS": []): read one as an empty set.
        items = as_list(inner, here)
        if tag == "SS":
            return {as_str(item, f"{here}[{i}]") for i, item in enumerate(items)}
        if tag == "NS":
            return {_number(item, f"{here}[{i}]") for i, item in enumerate(items)}
        return {b64decode(item, f"{here}[{i}]") for i, item in enumerate(items)}
    fail(path, f"unknown AttributeValue type {tag!r}; expected one of {', '.join(_TYPES)}")


def from_dynamodb_item(item: Mapping[str, Any], *, path: str = "item") -> dict[str, Any]:
    """Convert a DynamoDB item (``{"name": {"S": "x"}, ...}``) to a plain ``dict``.

    Args:
        item: attribute names to AttributeValues.
        path: where *item* sits, used in error messages.

    Returns:
        Attribute names to plain values (see :func:`from_attribute_value`).

    Raises:
        SerializationError: an attribute is malformed; the message names it.

    .. versionadded:: 0.1
    """
    obj = as_object(item, path)
    return {name: from_attribute_value(av, path=join(path, name)) for name, av in obj.items()}


def _number(value: object, path: str) -> Decimal:
    text = as_str(value, path)
    check_number_text(text.strip(), path)
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        fail(path, f"{text!r:.60} is not a number")
    if not number.is_finite():
        fail(path, f"{text!r:.60} is not a finite number")
    return number


# -- plain -> AttributeValue ----------------------------------------------------------


def to_attribute_value(value: Any, *, path: str = "value") -> dict[str, Any]:
    """Convert a plain Python value to a DynamoDB ``AttributeValue`` (JSON form).

    ``str`` -> ``S``; ``bool`` -> ``BOOL``; ``int``, ``Decimal`` and ``float``
    -> ``N`` (floats by their shortest ``repr``); ``bytes`` -> ``B`` (base64);
    ``None`` -> ``NULL``; lists and tuples -> ``L``; mappings with string keys
    -> ``M``; sets of ``str`` / numbers / ``bytes`` -> ``SS`` / ``NS``
    / ``BS``, written in sorted order (an empty set as ``{"SS": []}``, the
    form sample payloads carry, though DynamoDB never streams one).

    Args:
        value: the value to convert.
        path: where *value* sits, used in error messages.

    Returns:
        The AttributeValue.

    Raises:
        SerializationError: *value* cannot be stored in DynamoDB (a mixed set,
            a non-finite number, a non-string map key, another type).

    .. versionadded:: 0.1
    """
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float | Decimal):
        return {"N": _number_text(value, path)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"B": b64encode(bytes(value))}
    if isinstance(value, Mapping):
        return {"M": to_dynamodb_item(value, path=path)}
    if isinstance(value, list | tuple):
        return {
            "L": [to_attribute_value(item, path=f"{path}[{i}]") for i, item in enumerate(value)]
        }
    if isinstance(value, AbstractSet):
        return _set_value(value, path)
    fail(path, f"{type(value).__name__} cannot be stored in DynamoDB")


def to_dynamodb_item(item: Mapping[str, Any], *, path: str = "item") -> dict[str, Any]:
    """Convert a plain mapping to a DynamoDB item (names to AttributeValues).

    Args:
        item: attribute names (strings) to plain values.
        path: where *item* sits, used in error messages.

    Returns:
        The item in DynamoDB JSON form.

    Raises:
        SerializationError: a key is not a string or a value cannot be stored
            (see :func:`to_attribute_value`).

    .. versionadded:: 0.1
    """
    out: dict[str, Any] = {}
    for name, value in item.items():
        if not isinstance(name, str):
            fail(path, f"attribute names must be strings, got {name!r:.40}")
        out[name] = to_attribute_value(value, path=join(path, name))
    return out


def _number_text(value: float | Decimal, path: str) -> str:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            fail(path, f"{value!r} is not a finite number; DynamoDB numbers are finite")
        value = Decimal(repr(value))
    if not value.is_finite():
        fail(path, f"{value!r} is not a finite number; DynamoDB numbers are finite")
    return str(value)


def _set_value(value: AbstractSet[Any], path: str) -> dict[str, Any]:
    items = list(value)
    if not items:
        # DynamoDB never streams an empty set, but sample payloads carry {"SS": []},
        # which reads as set(): it renders back the same way.
        return {"SS": []}
    if all(isinstance(item, str) for item in items):
        return {"SS": sorted(items)}
    if all(isinstance(item, bytes | bytearray) for item in items):
        return {"BS": [b64encode(bytes(item)) for item in sorted(bytes(i) for i in items)]}
    if all(
        isinstance(item, int | float | Decimal) and not isinstance(item, bool) for item in items
    ):
        numbers = sorted(Decimal(repr(i)) if isinstance(i, float) else Decimal(i) for i in items)
        return {"NS": [_number_text(n, path) for n in numbers]}
    kinds = ", ".join(sorted({type(item).__name__ for item in items}))
    fail(path, f"a set must hold only strings, only numbers or only bytes; found {kinds}")


# -- stream records -------------------------------------------------------------------


def parse_record(record: Mapping[str, Any], path: str) -> TableChange:
    """Convert one DynamoDB Streams record to a :class:`TableChange`."""
    name = req_str(record, "eventName", path)
    op = _OPS.get(name)
    if op is None:
        fail(join(path, "eventName"), f"expected one of {', '.join(_OPS)}, got {name!r:.40}")
    arn_text = req_str(record, "eventSourceARN", path)
    table = _table_name(arn_text, join(path, "eventSourceARN"))
    ddb_path = join(path, "dynamodb")
    ddb = req_obj(record, "dynamodb", path)
    keys = from_dynamodb_item(ddb.get("Keys") or {}, path=join(ddb_path, "Keys"))
    images: dict[str, dict[str, Any] | None] = {}
    for name in ("NewImage", "OldImage"):
        raw = ddb.get(name)
        images[name] = None if raw is None else from_dynamodb_item(raw, path=join(ddb_path, name))
    sequence = as_int(
        required(ddb, "SequenceNumber", ddb_path),
        join(ddb_path, "SequenceNumber"),
        non_negative=True,
    )
    created = ddb.get("ApproximateCreationDateTime")
    time = (
        now_utc()
        if created is None
        else parse_epoch_seconds(
            created, join(ddb_path, "ApproximateCreationDateTime"), allow_millis=True
        )
    )
    identity = record.get("userIdentity")
    expired = (
        identity is not None
        and as_object(identity, join(path, "userIdentity")).get("principalId") == _TTL_PRINCIPAL
    )
    event_id = record.get("eventID")
    if event_id is None:
        event_id = digest("dynamodb", arn_text, str(sequence))
    return TableChange(
        table,
        op,
        keys,
        images["NewImage"],
        images["OldImage"],
        sequence,
        expired=expired,
        id=as_str(event_id, join(path, "eventID")),
        time=time,
        source=arn_text,
    )


def _table_name(arn_text: str, path: str) -> str:
    arn = Arn.parse(arn_text)
    if arn is None:
        # Sample payloads (Powertools for AWS Lambda's) carry placeholders such
        # as "eventsource_arn": the placeholder then names the table.
        if not arn_text or arn_text.startswith("arn:"):
            fail(path, f"{arn_text!r:.80} is not a DynamoDB stream ARN " + _STREAM_ARN_SHAPE)
        return arn_text
    parts = arn.resource.split("/")
    if arn.service != "dynamodb" or len(parts) < 2 or parts[0] != "table" or not parts[1]:
        fail(path, f"{arn_text!r:.80} is not a DynamoDB stream ARN " + _STREAM_ARN_SHAPE)
    return parts[1]


_STREAM_ARN_SHAPE = "(arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>)"


def render_record(event: TableChange, path: str, options: RenderOptions) -> dict[str, Any]:
    """Render a :class:`TableChange` as a DynamoDB Streams record."""
    if event.op not in _OPS:
        fail(join(path, "op"), f"expected one of {', '.join(_OPS)}, got {event.op!r:.40}")
    if event.sequence_number < 0:
        fail(join(path, "sequence_number"), "must not be negative")
    arn = _stream_arn(event, options)
    ddb: dict[str, Any] = {
        "ApproximateCreationDateTime": epoch_seconds(event.time),
        "Keys": to_dynamodb_item(event.keys, path=join(path, "keys")),
    }
    if event.new_image is not None:
        ddb["NewImage"] = to_dynamodb_item(event.new_image, path=join(path, "new_image"))
    if event.old_image is not None:
        ddb["OldImage"] = to_dynamodb_item(event.old_image, path=join(path, "old_image"))
    ddb["SequenceNumber"] = str(event.sequence_number)
    ddb["SizeBytes"] = len(
        json.dumps(
            [ddb["Keys"], ddb.get("NewImage"), ddb.get("OldImage")],
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8", "surrogatepass")
    )
    ddb["StreamViewType"] = _view_type(event)
    record: dict[str, Any] = {
        "eventID": event.id,
        "eventName": event.op,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region_of(arn, options),
        "dynamodb": ddb,
        "eventSourceARN": arn,
    }
    if event.expired:
        record["userIdentity"] = {"type": "Service", "principalId": _TTL_PRINCIPAL}
    return record


def _stream_arn(event: TableChange, options: RenderOptions) -> str:
    current = Arn.parse(event.source)
    if current is None and event.source == event.table and not event.source.startswith("arn:"):
        return event.source  # a sample payload's placeholder, read as the table's name
    if current is not None and current.service == "dynamodb":
        parts = current.resource.split("/")
        if len(parts) >= 2 and parts[0] == "table" and parts[1] == event.table:
            return event.source
        if len(parts) >= 4 and parts[0] == "table" and parts[2] == "stream":
            label = "/".join(parts[3:])
            return str(
                rebuild_arn(
                    event.source, "dynamodb", f"table/{event.table}/stream/{label}", options
                )
            )
    resource = f"table/{event.table}/stream/{_STREAM_LABEL}"
    return str(rebuild_arn(event.source, "dynamodb", resource, options))


def _view_type(event: TableChange) -> str:
    if event.new_image is None and event.old_image is None:
        return "KEYS_ONLY"
    if event.op == "MODIFY" and event.old_image is None:
        return "NEW_IMAGE"
    if event.op == "MODIFY" and event.new_image is None:
        return "OLD_IMAGE"
    return "NEW_AND_OLD_IMAGES"
