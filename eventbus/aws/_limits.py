"""The bounds every Lambda payload is checked against before it is read.

A payload comes from outside the program, so :func:`~eventbus.aws.from_lambda_event`
refuses, with a :class:`~eventbus.SerializationError` naming the limit,
anything that would take unbounded time or memory to read: text larger than
Lambda accepts, nesting deeper than any AWS service produces, numbers with
more digits or a larger exponent than any AWS service sends, and compressed
data (CloudWatch Logs) that inflates past a fixed size. The checks run
before any value is converted, so a hostile payload fails in time linear in
its size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final, NoReturn, final

import attrs

from .._exceptions import SerializationError

__all__ = ["LIMITS", "PayloadLimits", "check_json", "check_number_text", "load_json"]


@final
@attrs.frozen
class PayloadLimits:
    """The limits :func:`~eventbus.aws.from_lambda_event` enforces: the defaults are in force.

    Attributes:
        max_payload_bytes: the largest payload text (or decompressed
            CloudWatch Logs data) accepted: 6 MiB, Lambda's own limit for a
            synchronous invocation's payload.
        max_depth: the deepest nesting of arrays and objects accepted: 64
            levels. AWS payloads nest a dozen levels at most; DynamoDB
            allows 32 levels of nested attributes.
        max_number_digits: the longest number accepted, in characters of its
            text (sign, digits, point and exponent): 100. DynamoDB numbers
            have at most 38 significant digits.
        max_number_exponent: the largest power of ten a number may have,
            either way: 400. DynamoDB numbers span 1E-130 to 1E+126,
            binary floats 1E-308 to 1E+308.

    .. versionadded:: 0.2
    """

    max_payload_bytes: int = 6 * 1024 * 1024
    max_depth: int = 64
    max_number_digits: int = 100
    max_number_exponent: int = 400


#: The limits in force.
LIMITS: Final = PayloadLimits()

_INT_BOUND: Final = 10**LIMITS.max_number_digits


def _fail(path: str, message: str) -> NoReturn:
    raise SerializationError(f"{path}: {message}" if path else message)


def too_deep(path: str) -> NoReturn:
    """Raise for a value nested past :attr:`PayloadLimits.max_depth`."""
    if len(path) > 80:
        path = f"{path[:40]}...{path[-30:]}"
    _fail(
        path or "payload",
        f"nested deeper than {LIMITS.max_depth} levels (the max_depth limit of "
        "eventbus.aws.PayloadLimits); no AWS service sends such a payload",
    )


def check_number_text(text: str, path: str) -> None:
    """Refuse number text longer than, or with an exponent beyond, the limits."""
    if len(text) > LIMITS.max_number_digits:
        _fail(
            path,
            f"a number of {len(text)} characters is longer than the max_number_digits limit "
            f"({LIMITS.max_number_digits}) of eventbus.aws.PayloadLimits",
        )
    mantissa, _, exponent = text.lower().partition("e")
    if exponent:
        try:
            power = int(exponent)
        except ValueError:
            return  # not a number at all: the caller says so
        digits = len(mantissa.strip().lstrip("+-").split(".")[0].lstrip("0"))
        if abs(power + digits) > LIMITS.max_number_exponent:
            _fail(
                path,
                f"{text!r:.60} is beyond the max_number_exponent limit "
                f"(1e±{LIMITS.max_number_exponent}) of eventbus.aws.PayloadLimits",
            )


def _check_number(value: object, path: str) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -_INT_BOUND < value < _INT_BOUND:
            _fail(
                path,
                f"an integer of more than {LIMITS.max_number_digits} digits (the "
                "max_number_digits limit of eventbus.aws.PayloadLimits)",
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            _fail(path, f"{value!r} is not a JSON number")
    elif isinstance(value, Decimal):
        if not value.is_finite():
            _fail(path, f"{value!r} is not a JSON number")
        digits = value.as_tuple().digits
        if len(digits) > LIMITS.max_number_digits:
            _fail(
                path,
                f"a number of {len(digits)} digits is longer than the max_number_digits "
                f"limit ({LIMITS.max_number_digits}) of eventbus.aws.PayloadLimits",
            )
        if abs(value.adjusted()) > LIMITS.max_number_exponent:
            _fail(
                path,
                f"a number beyond the max_number_exponent limit (1e±"
                f"{LIMITS.max_number_exponent}) of eventbus.aws.PayloadLimits",
            )


_Chain = tuple[object, ...] | None  # (parent chain, key): a path, built only for errors


def _path(chain: _Chain, base: str) -> str:
    keys: list[object] = []
    while chain is not None:
        parent, key = chain
        keys.append(key)
        chain = parent  # type: ignore[assignment]
    out = base
    for key in reversed(keys):
        out = f"{out}[{key}]" if isinstance(key, int) else f"{out}.{key}" if out else str(key)
    return out


def check_json(value: object, path: str = "") -> None:
    """Check that *value* is JSON within :data:`LIMITS`, without recursion.

    Objects must have string keys; numbers must be finite and within the
    digit and exponent limits; nesting must not pass ``max_depth``. Runs in
    time linear in the size of *value*; paths are built only for errors.

    Raises:
        SerializationError: a limit is passed or a value is not JSON; the
            message names the path.
    """
    scalars = (str, bool, type(None))
    stack: list[tuple[object, _Chain, int]] = [(value, None, 0)]
    while stack:
        item, chain, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Iterable[tuple[object, object]] = item.items()
        elif isinstance(item, list | tuple):
            children = enumerate(item)
        elif isinstance(item, scalars):
            continue
        elif isinstance(item, int | float | Decimal):
            _check_number(item, _path(chain, path) or "payload")
            continue
        else:
            _fail(_path(chain, path) or "payload", f"{type(item).__name__} is not a JSON value")
        if depth >= LIMITS.max_depth:
            too_deep(_path(chain, path))
        is_object = isinstance(item, Mapping)
        low, high = -_INT_BOUND, _INT_BOUND
        for key, child in children:
            if is_object and type(key) is not str and not isinstance(key, str):
                _fail(_path(chain, path) or "payload", f"object key {key!r:.40} is not a string")
            kind = type(child)
            # Fast paths for the common cases; anything else takes the full checks.
            if kind is str or kind is bool or child is None:
                continue
            if kind is int and low < child < high:
                continue
            here: _Chain = (chain, key)
            if isinstance(child, scalars):
                continue
            if isinstance(child, int | float | Decimal):
                _check_number(child, _path(here, path))
                continue
            stack.append((child, here, depth + 1))


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _parse_int(text: str) -> int:
    check_number_text(text, "payload")
    return int(text)


def _parse_float(text: str) -> float:
    check_number_text(text, "payload")
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text!r:.60} overflows a JSON number")
    return number


def load_json(text: str | bytes | bytearray, path: str = "payload") -> Any:
    """Parse JSON text within :data:`LIMITS` (size, nesting, numbers).

    Raises:
        SerializationError: the text is too large, not valid JSON, or past
            a limit; the message names the limit.
    """
    if len(text) > LIMITS.max_payload_bytes:
        _fail(
            path,
            f"{len(text)} bytes is larger than the max_payload_bytes limit "
            f"({LIMITS.max_payload_bytes}) of eventbus.aws.PayloadLimits",
        )
    if isinstance(text, str):
        text = text.removeprefix("\ufeff")  # a byte order mark some editors write
    try:
        value = json.loads(
            text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_no_constant
        )
    except RecursionError:
        too_deep(path)
    except SerializationError:
        raise
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        _fail(path, f"not valid JSON: {exc}")
    check_json(value, "" if path == "payload" else path)
    return value
