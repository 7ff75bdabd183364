"""Shared helpers for the AWS payload codecs: path-aware readers, timestamps, ARNs.

Every reader takes the JSON path of the value it reads (``Records[2].s3.object``)
so that a malformed payload is reported as ``Records[2].s3.object.key: missing``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import attrs

from .._exceptions import SerializationError
from ._limits import LIMITS, check_number_text, load_json

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_PARTITION = "aws"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_INT_TEXT = re.compile(r"[+-]?\d+")
_INT_BOUND = 10**LIMITS.max_number_digits


@attrs.frozen
class RenderOptions:
    """Defaults used when an event's ``source`` carries no region or account."""

    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT


# -- errors and paths ---------------------------------------------------------------


def fail(path: str, message: str) -> NoReturn:
    """Raise :class:`SerializationError` for the value at *path*."""
    raise SerializationError(f"{path}: {message}" if path else message)


def join(path: str, key: str) -> str:
    """The path of *key* inside the object at *path*."""
    return f"{path}.{key}" if path else key


def kind(value: object) -> str:
    """A JSON-flavoured name for the type of *value*, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


# -- readers ------------------------------------------------------------------------


def as_object(value: object, path: str) -> Mapping[str, Any]:
    """*value* as a JSON object, or raise naming *path*."""
    if not isinstance(value, Mapping):
        fail(path, f"expected an object, got {kind(value)}")
    return value


def as_list(value: object, path: str) -> list[Any]:
    """*value* as a JSON array, or raise naming *path*."""
    if not isinstance(value, list | tuple):
        fail(path, f"expected an array, got {kind(value)}")
    return list(value)


def as_str(value: object, path: str) -> str:
    """*value* as a string, or raise naming *path*."""
    if not isinstance(value, str):
        fail(path, f"expected a string, got {kind(value)}")
    return value


def as_int(value: object, path: str, *, non_negative: bool = False) -> int:
    """*value* as an integer; integral numbers and decimal digit strings are accepted."""
    number: int | None = None
    if isinstance(value, bool):
        fail(path, f"expected an integer, got {kind(value)}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        check_number_text(value.strip(), path)
        number = int(value.strip())
    if number is None:
        fail(path, f"expected an integer, got {value!r:.60}")
    if not -_INT_BOUND < number < _INT_BOUND:
        fail(
            path,
            f"an integer of more than {LIMITS.max_number_digits} digits (the "
            "max_number_digits limit of eventbus.aws.PayloadLimits)",
        )
    if non_negative and number < 0:
        fail(path, f"must not be negative, got {number}")
    return number


def required(obj: Mapping[str, Any], key: str, path: str) -> Any:
    """The value of *key* in *obj*; missing and ``null`` are errors."""
    value = obj.get(key)
    if value is None:
        fail(join(path, key), "missing")
    return value


def req_str(obj: Mapping[str, Any], key: str, path: str) -> str:
    """The string value of *key* in *obj*, which must be present."""
    return as_str(required(obj, key, path), join(path, key))


def opt_str(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    """The string value of *key* in *obj*, or ``None`` when missing or ``null``."""
    value = obj.get(key)
    return None if value is None else as_str(value, join(path, key))


def req_obj(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    """The object value of *key* in *obj*, which must be present."""
    return as_object(required(obj, key, path), join(path, key))


def opt_obj(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    """The object value of *key* in *obj*; missing or ``null`` reads as ``{}``."""
    value = obj.get(key)
    return {} if value is None else as_object(value, join(path, key))


# -- JSON, bytes, numbers, ids ---------------------------------------------------------


def json_text(text: object, path: str) -> Any:
    """Parse JSON text strictly (``NaN`` and ``Infinity`` are not JSON), within the limits."""
    return load_json(as_str(text, path), path)


def json_copy(value: object, path: str) -> Any:
    """A deep copy of a JSON value, checking that it is JSON (no NaN, only JSON types)."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except RecursionError:
        fail(path, f"nested deeper than {LIMITS.max_depth} levels (eventbus.aws.PayloadLimits)")
    except (TypeError, ValueError) as exc:
        fail(path, f"not JSON: {exc}")


def b64decode(value: object, path: str) -> bytes:
    """Decode base64 text strictly (no stray characters, correct padding)."""
    text = as_str(value, path)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        fail(path, f"{text!r:.60} is not valid base64")


def b64encode(data: bytes) -> str:
    """Standard base64 text of *data*."""
    return base64.b64encode(data).decode("ascii")


def digest(*parts: str) -> str:
    """A deterministic 32-hex-digit id (the shape of a uuid4 hex) derived from *parts*."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def parse_number(text: object, path: str) -> int | float:
    """A message-attribute number: ``int`` for integer text, else a finite ``float``."""
    raw = as_str(text, path).strip()
    check_number_text(raw, path)
    if _INT_TEXT.fullmatch(raw):
        return int(raw)
    try:
        number = float(raw)
    except ValueError:
        fail(path, f"{raw!r:.60} is not a number")
    if not math.isfinite(number):
        fail(path, f"{raw!r:.60} is not a finite number")
    return number


def format_number(value: object, path: str) -> str:
    """Render an ``int``, finite ``float`` or finite ``Decimal`` as attribute text."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        fail(path, f"expected a number, got {kind(value)}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            fail(path, f"{value!r} is not a finite number")
        return repr(value)
    if not value.is_finite():
        fail(path, f"{value!r} is not a finite number")
    return str(value)


# -- timestamps -----------------------------------------------------------------------


def now_utc() -> datetime:
    """The current time, aware and in UTC."""
    return datetime.now(UTC)


def parse_iso(value: object, path: str) -> datetime:
    """An ISO 8601 timestamp (``2019-09-03T19:37:27.192Z``); naive values are UTC."""
    text = as_str(value, path)
    try:
        if len(text) > 64:
            raise ValueError(text)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        fail(path, f"{text!r:.60} is not an ISO 8601 timestamp")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        fail(path, f"{text!r:.60} is out of range: it falls outside years 1-9999 in UTC")


def format_iso(value: datetime, *, fraction: bool = True) -> str:
    """Render *value* as ISO 8601 in UTC with a ``Z`` suffix.

    With ``fraction=True`` milliseconds are always written (as S3 and SNS
    do); otherwise whole seconds are written bare (as EventBridge does).
    Sub-millisecond precision is written as microseconds, never dropped.
    """
    value = value.astimezone(UTC)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    micro = value.microsecond
    if micro % 1000:
        return f"{base}.{micro:06d}Z"
    if micro or fraction:
        return f"{base}.{micro // 1000:03d}Z"
    return f"{base}Z"


#: Epoch values at or past this are read as milliseconds: as seconds they
#: would fall after the year 5000 (some SDK samples write milliseconds).
MILLIS_THRESHOLD = Decimal(100_000_000_000)
#: Far past the last representable datetime (year 9999) either way, in seconds.
_EPOCH_BOUND = Decimal(10) ** 15


def parse_epoch_seconds(value: object, path: str, *, allow_millis: bool = False) -> datetime:
    """Seconds since the epoch (a JSON number, maybe fractional) as an aware datetime.

    With *allow_millis*, a value of :data:`MILLIS_THRESHOLD` or more is read
    as milliseconds (DynamoDB's ``ApproximateCreationDateTime`` appears in
    both units in published samples).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        fail(path, f"expected seconds since the epoch, got {kind(value)}")
    if isinstance(value, int) and not -_EPOCH_BOUND < value < _EPOCH_BOUND:
        fail(path, f"{value!r:.60} is out of range")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    check_number_text(text, path)
    try:
        seconds = Decimal(text)
    except InvalidOperation:
        fail(path, f"{value!r:.60} is not a number of seconds")
    if not seconds.is_finite():
        fail(path, f"{value!r:.60} is not a finite number of seconds")
    if not -_EPOCH_BOUND < seconds < _EPOCH_BOUND:
        fail(path, f"{value!r:.60} is out of range")
    if allow_millis and seconds >= MILLIS_THRESHOLD:
        seconds = seconds / 1000
    micros = int((seconds * 1_000_000).to_integral_value())
    try:
        return _EPOCH + micros * _MICRO
    except OverflowError:
        fail(path, f"{value!r:.60} is out of range")


def epoch_seconds(value: datetime) -> int | float:
    """*value* as seconds since the epoch: an ``int`` when whole, else a ``float``."""
    micros = (value - _EPOCH) // _MICRO
    whole, rest = divmod(micros, 1_000_000)
    if not rest:
        return whole
    return float(Decimal(micros) / Decimal(1_000_000))


def parse_epoch_millis(value: object, path: str) -> datetime:
    """Milliseconds since the epoch (SQS ``SentTimestamp``) as an aware datetime."""
    millis = as_int(value, path)
    if not -_EPOCH_BOUND * 1000 < millis < _EPOCH_BOUND * 1000:
        fail(path, f"{value!r:.60} is out of range")
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        fail(path, f"{value!r:.60} is out of range")


def epoch_millis(value: datetime) -> int:
    """*value* as whole milliseconds since the epoch (sub-millisecond parts dropped)."""
    return (value - _EPOCH) // timedelta(milliseconds=1)


def truncate_to_millis(value: datetime) -> datetime:
    """*value* with its sub-millisecond part dropped."""
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


# -- ARNs -----------------------------------------------------------------------------


@attrs.frozen
class Arn:
    """An Amazon Resource Name split into its parts.

    ``arn:<partition>:<service>:<region>:<account>:<resource>``; the resource
    may itself contain ``:`` and ``/``.
    """

    partition: str
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, text: object) -> Arn | None:
        """Split *text*, or return ``None`` when it is not an ARN."""
        if not isinstance(text, str):
            return None
        parts = text.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2]:
            return None
        return cls(*parts[1:])

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


def source_arn(source: str, service: str) -> Arn | None:
    """The event's ``source`` as an ARN of *service*, or ``None``."""
    arn = Arn.parse(source)
    return arn if arn is not None and arn.service == service else None


def rebuild_arn(
    source: str,
    service: str,
    resource: str,
    options: RenderOptions,
    *,
    regional: bool = True,
) -> Arn:
    """An ARN for *resource* of *service*, keeping what the event's ``source`` says.

    The partition, region and account come from *source* when it is an ARN of
    the same service, else from *options*. ``regional=False`` leaves region and
    account empty, as in S3 bucket ARNs.
    """
    arn = source_arn(source, service)
    partition = arn.partition if arn is not None else DEFAULT_PARTITION
    if not regional:
        return Arn(partition, service, "", "", resource)
    region = arn.region if arn is not None and arn.region else options.region
    account = arn.account if arn is not None and arn.account else options.account
    return Arn(partition, service, region, account, resource)


def region_of(arn_text: str, options: RenderOptions) -> str:
    """The region named by an ARN, or the default region."""
    arn = Arn.parse(arn_text)
    return arn.region if arn is not None and arn.region else options.region


def account_of(arn_text: str, options: RenderOptions) -> str:
    """The account named by an ARN, or the default account."""
    arn = Arn.parse(arn_text)
    return arn.account if arn is not None and arn.account else options.account
