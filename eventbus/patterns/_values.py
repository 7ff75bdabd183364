"""How a pattern sees a document: its fields, its values, and how they appear in messages.

A document is a mapping, an attrs instance or a dataclass. Each value in it
is a scalar (a leaf), an array or a nested object (:func:`_kind`); leaves are
compared in a canonical form (:func:`_canon`) so that values compare as
EventBridge compares JSON values. :func:`_render` and the helpers after it
write values and JSON paths into error messages and explanations.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import re
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Final, final

import attrs

from .._exceptions import SerializationError

# --------------------------------------------------------------------------- document model


@final
class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: The value of a field the document does not have.
_MISSING: Final = _Sentinel("<missing>")
#: Canonical leaves of ``true`` and ``false`` (kept apart from 1 and 0, which equal them in Python).
_TRUE: Final = _Sentinel("true")
_FALSE: Final = _Sentinel("false")
#: The canonical leaf of a value that is not JSON-like (bytes, NaN, arbitrary objects).
_OPAQUE: Final = _Sentinel("<opaque>")
#: Stands for "no object here" when a nested pattern meets a scalar or nothing.
_EMPTY: Final[Mapping[str, object]] = types.MappingProxyType({})

_SCALAR: Final = 0
_ARRAY: Final = 1
_OBJECT: Final = 2

_NOT_ARRAYS: Final = (str, bytes, bytearray, memoryview)

#: How deeply arrays may nest inside one another where a pattern reads an
#: event: as deep as a CloudEvent may nest (``eventbus._serialization.MAX_DEPTH``).
MAX_ARRAY_DEPTH: Final = 64


_FIELDS: dict[type, frozenset[str] | None] = {}


def _object_fields(cls: type) -> frozenset[str] | None:
    """The field names of an attrs class or dataclass; None for any other type."""
    try:
        return _FIELDS[cls]
    except KeyError:
        pass
    names: frozenset[str] | None = None
    if attrs.has(cls):
        names = frozenset(a.name for a in attrs.fields(cls))
    elif dataclasses.is_dataclass(cls):
        names = frozenset(f.name for f in dataclasses.fields(cls))
    if len(_FIELDS) > 4096:  # classes made on the fly must not pile up forever
        _FIELDS.clear()
    _FIELDS[cls] = names
    return names


def _kind(value: object) -> int:
    """Classify a document value as a scalar (a leaf), an array or an object."""
    cls = type(value)
    if cls is str or cls is int or cls is float or cls is bool or value is None:
        return _SCALAR
    if cls is dict:
        return _OBJECT
    if cls is list or cls is tuple:
        return _ARRAY
    if isinstance(value, Mapping) or _object_fields(cls) is not None:
        return _OBJECT
    if isinstance(value, _NOT_ARRAYS):
        return _SCALAR
    if isinstance(value, (Sequence, AbstractSet)):
        return _ARRAY
    return _SCALAR


def _get(container: object, key: str) -> object:
    """The value of field *key* of an object (a mapping, an attrs instance, a dataclass)."""
    if type(container) is dict:
        value = container.get(key, _MISSING)
        return _dotted(container, key) if value is _MISSING else value
    if isinstance(container, Mapping):
        try:
            return container[key]
        except (KeyError, TypeError):
            return _dotted(container, key)
    names = _object_fields(type(container))
    if names is not None and key in names:
        return getattr(container, key, _MISSING)
    return _MISSING


def _dotted(container: Mapping[Any, Any], key: str) -> object:
    """Field *key* of a mapping that lacks it, read through dotted names.

    EventBridge joins field names with dots, so ``{"state.status": "x"}`` in
    an event holds ``status`` inside ``state``: the fields named
    ``key.<rest>`` make up an object ``{<rest>: ...}``. Missing when there
    are none.
    """
    prefix = key + "."
    found: dict[str, object] | None = None
    for name in container:
        if type(name) is str and name.startswith(prefix):
            if found is None:
                found = {}
            found[name[len(prefix) :]] = container[name]
    return _MISSING if found is None else found


def _too_deep(path: str) -> SerializationError:
    where = f"the event's field at {path}" if path else "an array in the event"
    return SerializationError(
        f"{where} nests arrays more than {MAX_ARRAY_DEPTH} deep "
        "(eventbus.patterns.MAX_ARRAY_DEPTH), too deep for a content pattern to read; "
        "flatten the data"
    )


def _scalars(array: Iterable[object], path: str = "") -> Iterator[object]:
    """The leaf values of an array, nested arrays flattened, objects skipped.

    Raises:
        SerializationError: arrays nest deeper than :data:`MAX_ARRAY_DEPTH`.
    """
    stack = [iter(array)]
    while stack:
        for item in stack[-1]:
            kind = _kind(item)
            if kind == _SCALAR:
                yield item
            elif kind == _ARRAY:
                if len(stack) >= MAX_ARRAY_DEPTH:
                    raise _too_deep(path)
                stack.append(iter(item))  # type: ignore[call-overload]  # _kind said: an array
                break
        else:
            stack.pop()


def _objects(array: Iterable[object], path: str) -> Iterator[tuple[object, str]]:
    """The objects in an array (nested arrays flattened), each with its path.

    Raises:
        SerializationError: arrays nest deeper than :data:`MAX_ARRAY_DEPTH`.
    """
    stack = [(enumerate(array), path)]
    while stack:
        items, here = stack[-1]
        for i, item in items:
            kind = _kind(item)
            if kind == _OBJECT:
                yield item, f"{here}[{i}]"
            elif kind == _ARRAY:
                if len(stack) >= MAX_ARRAY_DEPTH:
                    raise _too_deep(path)
                stack.append((enumerate(item), f"{here}[{i}]"))  # type: ignore[arg-type]
                break
        else:
            stack.pop()


def _containers(value: object, path: str = "") -> list[object]:
    """The objects a nested pattern is tried against: the value, the objects in an array, or none."""
    if value is _MISSING:
        return [_EMPTY]
    kind = _kind(value)
    if kind == _OBJECT:
        return [value]
    if kind == _ARRAY:
        found = [obj for obj, _ in _objects(value, path)]  # type: ignore[arg-type]
        if found:
            return found
    return [_EMPTY]


def _canon_float(value: float) -> object:
    if value != value:  # NaN is no number to compare
        return _OPAQUE
    if value.is_integer():
        return int(value)
    # The shortest repr is the decimal the float was written as: 0.1 means 0.1.
    return Decimal(repr(value))


def _canon(value: object) -> object:
    """The canonical form of a leaf, so that values compare as EventBridge compares them.

    Strings stay strings; numbers become ``int`` or ``Decimal`` (equal numbers
    compare and hash equal whatever their spelling); booleans become sentinels
    (so ``true`` is never the number 1); datetimes, dates and times become
    their ISO-8601 strings; enums their values; anything else is opaque.
    """
    cls = type(value)
    if cls is str or cls is int or value is None:
        return value
    if cls is float:
        return _canon_float(value)  # type: ignore[arg-type]
    if cls is bool:
        return _TRUE if value else _FALSE
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _canon_float(float(value))
    if isinstance(value, Decimal):
        return _OPAQUE if value.is_nan() else value
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _canon(value.value)
    return _OPAQUE


def _is_number(canon: object) -> bool:
    cls = type(canon)
    return cls is int or cls is Decimal


# --------------------------------------------------------------------------- rendering


def _render(value: object, limit: int = 60, depth: int = 0) -> str:
    """Show a value as JSON-like text in a message (arrays shown three levels deep)."""
    if value is None or value is _MISSING:
        return "null" if value is None else "nothing"
    if value is True or value is _TRUE:
        return "true"
    if value is False or value is _FALSE:
        return "false"
    if isinstance(value, str):
        text = json.dumps(str.__str__(value), ensure_ascii=False)
        return text if len(text) <= limit else text[: limit - 2] + '…"'
    if isinstance(value, bool):  # pragma: no cover - handled above
        return str(value).lower()
    if isinstance(value, int):
        number = int(value)
        if number.bit_length() > 128:  # str() of a huge int is slow, or refused
            return f"a {number.bit_length() * 3 // 10 + 1}-digit number"
        return str(number)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        text = str(value)
        return text if len(text) <= limit else text[: limit - 1] + "…"
    if isinstance(value, (datetime, date, time)):
        return json.dumps(value.isoformat())
    if isinstance(value, enum.Enum):
        return _render(value.value, limit)
    kind = _kind(value)
    if kind == _OBJECT:
        return "an object" if isinstance(value, Mapping) else f"a {type(value).__name__} object"
    if kind == _ARRAY:
        if depth >= 3:
            return "[…]"
        items = list(value)  # type: ignore[call-overload]
        shown = ", ".join(_render(item, 30, depth + 1) for item in items[:5])
        return f"[{shown}{', …' if len(items) > 5 else ''}]"
    return repr(value) if len(repr(value)) <= limit else f"a {type(value).__name__}"


def _kind_name(canon: object, raw: object = None) -> str:
    """Name the JSON type of a canonical leaf, for messages (*raw* names opaque values)."""
    if isinstance(canon, str):
        return "a string"
    if _is_number(canon):
        return "a number"
    if canon is _TRUE or canon is _FALSE:
        return "a boolean"
    if canon is None:
        return "null"
    return f"a {type(raw).__name__} value"


#: The root of every JSON path in messages: ``where.key[0]: ...``.
_ROOT: Final = "where"

_SIMPLE_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*\Z")


def _join(path: str, key: str) -> str:
    """Extend a JSON path by a field name: ``where.key`` or ``where["a.b"]``."""
    if _SIMPLE_KEY.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""
