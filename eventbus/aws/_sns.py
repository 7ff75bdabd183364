"""SNS notification records <-> :class:`~eventbus.TopicMessage`."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..sources.topics import TopicMessage
from ._common import (
    Arn,
    RenderOptions,
    as_list,
    as_object,
    as_str,
    b64encode,
    digest,
    fail,
    format_iso,
    format_number,
    join,
    json_text,
    kind,
    now_utc,
    opt_str,
    parse_iso,
    parse_number,
    rebuild_arn,
    region_of,
    req_obj,
    req_str,
    required,
    source_arn,
)

__all__ = ["parse_record", "render_record"]


def parse_record(record: Mapping[str, Any], path: str) -> TopicMessage:
    """Convert one SNS record (``{"EventSource": "aws:sns", "Sns": {...}}``) to a :class:`TopicMessage`."""
    sns_path = join(path, "Sns")
    sns = req_obj(record, "Sns", path)
    arn_text = req_str(sns, "TopicArn", sns_path)
    topic = _topic_name(arn_text, join(sns_path, "TopicArn"))
    message = as_str(required(sns, "Message", sns_path), join(sns_path, "Message"))
    raw_time = sns.get("Timestamp")
    time = now_utc() if raw_time is None else parse_iso(raw_time, join(sns_path, "Timestamp"))
    message_id = sns.get("MessageId")
    if message_id is None:
        message_id = digest("sns", arn_text, message, format_iso(time))
    return TopicMessage(
        topic,
        message,
        parse_attributes(sns.get("MessageAttributes"), join(sns_path, "MessageAttributes")),
        opt_str(sns, "Subject", sns_path),
        id=as_str(message_id, join(sns_path, "MessageId")),
        time=time,
        source=arn_text,
    )


def _topic_name(arn_text: str, path: str) -> str:
    arn = Arn.parse(arn_text)
    if arn is not None and arn.service == "sns" and arn.resource and ":" not in arn.resource:
        return arn.resource
    # Sample payloads (aws-lambda-go's, SAM's) carry placeholders such as
    # "arn:aws:sns:EXAMPLE": the topic is then the last ":"-separated part.
    name = arn_text.rsplit(":", 1)[-1]
    if arn is not None or not arn_text.startswith("arn:") or not name:
        fail(
            path,
            f"{arn_text!r:.80} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)",
        )
    return name


def parse_attributes(value: object, path: str) -> dict[str, Any]:
    """SNS ``MessageAttributes`` (``{"n": {"Type": ..., "Value": ...}}``) as plain values."""
    if value is None:
        return {}
    out: dict[str, Any] = {}
    for name, spec in as_object(value, path).items():
        here = join(path, name)
        spec = as_object(spec, here)
        type_ = req_str(spec, "Type", here)
        raw = required(spec, "Value", here)
        value_path = join(here, "Value")
        base = type_.split(".", 1)[0]
        if type_ == "String.Array":
            out[name] = as_list(json_text(raw, value_path), value_path)
        elif base == "String":
            out[name] = as_str(raw, value_path)
        elif base == "Number":
            out[name] = parse_number(raw, value_path)
        elif base == "Binary":
            out[name] = _binary(raw, value_path)
        else:
            fail(
                join(here, "Type"),
                f"unsupported attribute type {type_!r:.40}; expected String, Number, "
                "String.Array or Binary",
            )
    return out


def _binary(raw: object, path: str) -> bytes | str:
    """A Binary attribute's bytes; text that is not base64 is kept as it is.

    Sample payloads (aws-lambda-go's SNS fixture) carry placeholders such as
    ``"TestBinary"`` where a real notification has base64 text.
    """
    text = as_str(raw, path)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text


def render_attributes(attributes: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Plain attribute values as SNS ``MessageAttributes``."""
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        here = join(path, str(name))
        if isinstance(value, str):
            out[name] = {"Type": "String", "Value": value}
        elif isinstance(value, bytes | bytearray):
            out[name] = {"Type": "Binary", "Value": b64encode(bytes(value))}
        elif isinstance(value, list | tuple):
            try:
                text = json.dumps(list(value), allow_nan=False, ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                fail(here, f"a String.Array holds strings, numbers, booleans and nulls: {exc}")
            out[name] = {"Type": "String.Array", "Value": text}
        elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            out[name] = {"Type": "Number", "Value": format_number(value, here)}
        else:
            fail(
                here,
                f"SNS attributes are strings, numbers, bytes or lists; got {kind(value)}",
            )
    return out


def render_record(event: TopicMessage, path: str, options: RenderOptions) -> dict[str, Any]:
    """Render a :class:`TopicMessage` as an SNS notification record."""
    if not event.topic:
        fail(join(path, "topic"), "must not be empty")
    arn = event.source
    current = source_arn(event.source, "sns")
    placeholder = (
        Arn.parse(arn) is None and arn.startswith("arn:") and arn.rsplit(":", 1)[-1] == event.topic
    )
    if not placeholder and (current is None or current.resource != event.topic):
        arn = str(rebuild_arn(event.source, "sns", event.topic, options))
    region = region_of(arn, options)
    subscription = f"{arn}:{_uuid_text(digest('sns-subscription', arn))}"
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription,
        "Sns": {
            "Type": "Notification",
            "MessageId": event.id,
            "TopicArn": arn,
            "Subject": event.subject,
            "Message": event.message,
            "Timestamp": format_iso(event.time),
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertUrl": (
                f"https://sns.{region}.amazonaws.com/SimpleNotificationService-EXAMPLE.pem"
            ),
            "UnsubscribeUrl": (
                f"https://sns.{region}.amazonaws.com/"
                f"?Action=Unsubscribe&SubscriptionArn={subscription}"
            ),
            "MessageAttributes": render_attributes(event.attributes, join(path, "attributes")),
        },
    }


def _uuid_text(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:32]}"
