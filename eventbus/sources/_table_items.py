"""Rows of a :class:`~eventbus.Table`: encoding, keys, equality, conditions and sort-key tests."""

from __future__ import annotations

import base64
import copy
import json
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, TypeAlias

from .._exceptions import SerializationError
from .._serialization import _decode_dynamic, _encode_dynamic

__all__ = [
    "Condition",
    "Item",
    "KeySchema",
    "canonical",
    "check_condition_form",
    "decode_item",
    "encode_item",
    "equal",
    "expiry",
    "matches",
    "sort_test",
    "sort_value",
]

Item: TypeAlias = dict[str, Any]
#: A write condition or scan filter: expected attribute values, or a predicate.
Condition: TypeAlias = Mapping[str, Any] | Callable[[Mapping[str, Any] | None], bool]

_RANKS: Final = {"N": 0, "S": 1, "B": 2}
SORT_OPERATORS: Final = ("eq", "lt", "le", "gt", "ge", "between", "begins_with")


def encode_item(item: Mapping[str, Any]) -> str:
    """A row as JSON text, with bytes, Decimal, sets and datetimes tagged (CloudEvents' form)."""
    return json.dumps(_encode_dynamic(item, "item"), separators=(",", ":"), ensure_ascii=False)


def decode_item(text: str) -> Item:
    """The row :func:`encode_item` wrote."""
    value: Item = _decode_dynamic(json.loads(text), "item")
    return value


def canonical(item: object, what: str = "item") -> Item:
    """A deep copy of *item* as the table keeps it (tuples become lists).

    Raises:
        TypeError: *item* is not a mapping with string keys.
        SerializationError: a value cannot be stored (the message names it).
    """
    if not isinstance(item, Mapping):
        raise TypeError(
            f"{what} must be a mapping (a dict of attributes), got {type(item).__name__}"
        )
    for name in item:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{what}: attribute names must be non-empty strings, got {name!r}")
    try:
        value: Item = _decode_dynamic(_encode_dynamic(item, what), what)
    except SerializationError as exc:
        raise SerializationError(
            f"{exc}; table rows hold JSON values, bytes, Decimal, datetime and sets"
        ) from None
    return value


def _number(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def equal(a: object, b: object) -> bool:
    """Equality as the table sees it: numbers by value (``1 == 1.0``), ``True != 1``."""
    if _number(a) and _number(b):
        return Decimal(str(a)) == Decimal(str(b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def key_kind(value: object) -> str | None:
    """``"S"``, ``"N"`` or ``"B"`` for a valid key value, else None."""
    if isinstance(value, str):
        return "S" if value else None
    if isinstance(value, bytes):
        return "B" if value else None
    if _number(value):
        return "N" if math.isfinite(float(value)) else None  # type: ignore[arg-type]
    return None


def _token(value: Any) -> str:
    kind = key_kind(value)
    if kind == "S":
        return "S" + str(value)
    if kind == "B":
        return "B" + base64.b64encode(value).decode("ascii")
    number = Decimal(str(value))
    return "N" + ("0" if number == 0 else format(number.normalize(), "f"))


def sort_value(value: Any) -> tuple[int, Any]:
    """An orderable form of a key value: numbers, then strings, then bytes."""
    kind = key_kind(value) or "S"
    return _RANKS[kind], Decimal(str(value)) if kind == "N" else value


class KeySchema:
    """A table's key attributes, and the checks and tokens built from them."""

    __slots__ = ("key", "sort_key", "table")

    def __init__(self, table: str, key: str, sort_key: str | None) -> None:
        self.table = table
        self.key = key
        self.sort_key = sort_key

    @property
    def names(self) -> tuple[str, ...]:
        """The key attribute names."""
        return (self.key,) if self.sort_key is None else (self.key, self.sort_key)

    def check_value(self, name: str, value: object, where: str) -> None:
        """Raise unless *value* may be the key attribute *name*."""
        if key_kind(value) is None:
            raise ValueError(
                f"{where}: key attribute {name!r} of table {self.table!r} must be a non-empty "
                f"string, a finite number or non-empty bytes, got {value!r:.60}"
            )

    def keys_of(self, item: Mapping[str, Any], where: str) -> Item:
        """The key attributes of a full row (which must have them)."""
        for name in self.names:
            if name not in item:
                raise ValueError(
                    f"{where}: the row has no key attribute {name!r}; table {self.table!r} "
                    f"is keyed by {', '.join(map(repr, self.names))}"
                )
            self.check_value(name, item[name], where)
        return {name: item[name] for name in self.names}

    def exact_keys(self, keys: object, where: str) -> Item:
        """*keys* if it holds exactly the key attributes, else a clear error."""
        if not isinstance(keys, Mapping):
            raise TypeError(
                f"{where}: keys must be a mapping such as {{{self.key!r}: ...}}, got {type(keys).__name__}"
            )
        extra = [k for k in keys if k not in self.names]
        if extra:
            raise ValueError(
                f"{where}: {', '.join(map(repr, extra))} is not a key attribute of table "
                f"{self.table!r}; pass only {', '.join(map(repr, self.names))}"
            )
        return self.keys_of(canonical(keys, "keys"), where)

    def row(self, keys: Mapping[str, Any]) -> str:
        """The row's identity: equal for keys that DynamoDB would call equal."""
        sort = _token(keys[self.sort_key]) if self.sort_key is not None else None
        return json.dumps([_token(keys[self.key]), sort], ensure_ascii=False)

    def partition(self, value: Any) -> str:
        """The partition's identity."""
        return _token(value)

    def order(self, item: Mapping[str, Any]) -> tuple[tuple[int, Any], ...]:
        """How rows sort: by partition key, then sort key."""
        return tuple(sort_value(item[name]) for name in self.names)


def check_condition_form(condition: object, where: str) -> Condition | None:
    """*condition* if it is None, a mapping or a callable.

    Raises:
        TypeError: anything else.
    """
    if condition is None or callable(condition):
        return condition
    if isinstance(condition, Mapping):
        return canonical(condition, f"{where}(condition=...)")
    raise TypeError(
        f"{where}(condition=...) must be a mapping of expected attribute values or a "
        f"function (row or None) -> bool, got {type(condition).__name__}"
    )


def matches(condition: Condition, row: Mapping[str, Any] | None) -> bool:
    """Whether *row* (None: no row) meets *condition*.

    A mapping holds when the row exists and each named attribute equals the
    given value (``{}``: the row exists); a callable gets a copy of the row.
    """
    if callable(condition):
        return bool(condition(copy.deepcopy(row)))
    if row is None:
        return False
    return all(name in row and equal(row[name], value) for name, value in condition.items())


def sort_test(schema: KeySchema, given: Mapping[str, Any]) -> Callable[[Any], bool] | None:
    """A test for sort-key values from query keywords (``lt=5``, ``between=(1, 9)``...).

    Raises:
        ValueError, TypeError: more than one operator, no sort key, or a bad operand.
    """
    chosen = {op: v for op, v in given.items() if v is not None}
    if not chosen:
        return None
    if len(chosen) > 1:
        raise ValueError(
            f"query(): give at most one sort-key condition ({', '.join(SORT_OPERATORS)}), "
            f"got {', '.join(sorted(chosen))}"
        )
    if schema.sort_key is None:
        raise ValueError(
            f"query(): table {schema.table!r} has no sort key, so {', '.join(chosen)}= cannot "
            "apply; create it with Table(..., sort_key=...)"
        )
    [(op, operand)] = chosen.items()
    where = f"query({op}=...)"
    if op == "begins_with":
        if not isinstance(operand, str | bytes) or not operand:
            raise TypeError(f"{where}: needs a non-empty string or bytes, got {operand!r:.60}")
        prefix: Any = operand
        return lambda v: type(v) is type(prefix) and bool(v.startswith(prefix))
    if op == "between":
        if not isinstance(operand, tuple | list) or len(operand) != 2:
            raise TypeError(f"{where}: needs a (low, high) pair, got {operand!r:.60}")
        low, high = operand
        for value in operand:
            schema.check_value(schema.sort_key, value, where)
        lo, hi = sort_value(low), sort_value(high)
        if lo[0] != hi[0] or lo[1] > hi[1]:
            raise ValueError(f"{where}: low {low!r} must not be above high {high!r} (same type)")
        return lambda v: sort_value(v)[0] == lo[0] and lo[1] <= sort_value(v)[1] <= hi[1]
    schema.check_value(schema.sort_key, operand, where)
    rank, bound = sort_value(operand)
    compare: Callable[[Any, Any], bool] = {
        "eq": lambda a, b: a == b,
        "lt": lambda a, b: a < b,
        "le": lambda a, b: a <= b,
        "gt": lambda a, b: a > b,
        "ge": lambda a, b: a >= b,
    }[op]

    def test(value: Any) -> bool:
        r, v = sort_value(value)
        return r == rank and compare(v, bound)

    return test


def expiry(item: Mapping[str, Any], attribute: str | None) -> float | None:
    """When a row expires, in epoch seconds, from its TTL attribute (None: never)."""
    if attribute is None:
        return None
    value = item.get(attribute)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.timestamp()
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    return None
