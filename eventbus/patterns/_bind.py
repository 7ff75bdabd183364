"""Checking a pattern's field names against event classes: the work of :meth:`Pattern.bind`.

The declared type of each field of an attrs class or dataclass is resolved
into a shape (:func:`_shape_of`): the fields a nested pattern may name, "any
key" (mappings, ``Any``), or the name of a plain value's type, which a nested
pattern can never match. :func:`_check_body` walks the compiled tree against
a shape and returns the first error.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, time
from decimal import Decimal
from typing import Any, Final, Literal, final

import attrs

from .._exceptions import PatternError
from ._tree import _Body, _Nested, _Or
from ._values import _NOT_ARRAYS, _did_you_mean, _Sentinel


@final
class _ObjectShape:
    """The fields a nested pattern may name, with their declared types."""

    __slots__ = ("fields", "name")

    def __init__(self, name: str, fields: dict[str, tuple[object, ...]]) -> None:
        self.name = name
        self.fields = fields  # name -> the declared types (several when merged from a union)


_ANY: Final = _Sentinel("<any>")

_SCALAR_TYPES: Final = (str, bytes, bytearray, int, float, complex, bool, Decimal, date, time)


def _hints(cls: type) -> dict[str, tuple[object, ...]]:
    """The declared type of each field of an attrs class or dataclass (``_ANY`` if unknown)."""
    try:
        hints: dict[str, object] = typing.get_type_hints(cls)
    except Exception:  # e.g. __module__ re-pointed to the package: resolve field by field
        hints = _hints_by_hand(cls)
    result: dict[str, tuple[object, ...]] = {}
    if attrs.has(cls):
        declared_types = {a.name: a.type for a in attrs.fields(cls)}
    else:
        declared_types = {f.name: f.type for f in dataclasses.fields(cls)}
    for name, fallback in declared_types.items():
        declared = hints.get(name, fallback)
        result[name] = (_ANY if declared is None or isinstance(declared, str) else declared,)
    return result


def _hints_by_hand(cls: type) -> dict[str, object]:
    hints: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        annotations = inspect.get_annotations(klass)
        namespaces = _defining_globals(klass)
        for name, annotation in annotations.items():
            hints[name] = _ANY
            if not isinstance(annotation, str):
                hints[name] = annotation
                continue
            for namespace in namespaces:
                try:
                    hints[name] = eval(annotation, namespace, dict(vars(klass)))
                except Exception:  # an annotation we cannot resolve accepts anything
                    continue
                break
    return hints


def _defining_globals(klass: type) -> list[dict[str, Any]]:
    """Where the names in *klass*'s annotations may be defined."""
    modules = [klass.__dict__.get("__event_module__"), klass.__module__]
    found = [vars(sys.modules[m]) for m in modules if isinstance(m, str) and m in sys.modules]
    for value in vars(klass).values():
        function = getattr(value, "__func__", value)
        namespace = getattr(function, "__globals__", None)
        if isinstance(namespace, dict) and getattr(function, "__module__", None) != "eventbus":
            found.append(namespace)
    return found


def _shape_of(hint: object) -> _ObjectShape | _Sentinel | str:
    """What a nested pattern may say about a value of type *hint*.

    Returns an object shape (field names known), ``_ANY`` (accept any key)
    or a type name (a plain value: a nested pattern can never match it).
    """
    if hint is _ANY or hint is Any or hint is object or isinstance(hint, typing.TypeVar):
        return _ANY
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _shape_of(typing.get_args(hint)[0])
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        return _union_shape(members)
    if origin is Literal:
        return "literal"
    if origin is not None:
        if isinstance(origin, type) and issubclass(origin, Mapping):
            return _ANY
        if isinstance(origin, type) and issubclass(origin, (Sequence, AbstractSet)):
            if issubclass(origin, _NOT_ARRAYS):
                return origin.__name__
            args = [a for a in typing.get_args(hint) if a is not Ellipsis]
            return _union_shape(args) if args else _ANY
        return _ANY
    if isinstance(hint, type):
        if attrs.has(hint) or dataclasses.is_dataclass(hint):
            return _ObjectShape(hint.__name__, _hints(hint))
        if issubclass(hint, Mapping):
            return _ANY
        if issubclass(hint, _SCALAR_TYPES) or issubclass(hint, enum.Enum):
            return hint.__name__
    return _ANY


def _union_shape(members: Sequence[object]) -> _ObjectShape | _Sentinel | str:
    shapes = [_shape_of(m) for m in members]
    if not shapes or any(s is _ANY for s in shapes):
        return _ANY
    objects = [s for s in shapes if isinstance(s, _ObjectShape)]
    if not objects:
        return " | ".join(str(s) for s in shapes)
    if len(objects) == 1:
        return objects[0]
    merged: dict[str, tuple[object, ...]] = {}
    for shape in objects:
        for name, declared in shape.fields.items():
            merged[name] = merged.get(name, ()) + declared
    return _ObjectShape(" | ".join(s.name for s in objects), merged)


def _check_body(body: _Body, shape: _ObjectShape) -> PatternError | None:
    for clause in body.clauses:
        if isinstance(clause, _Or):
            errors = [_check_body(b, shape) for b in clause.branches]
            if all(e is not None for e in errors):
                return errors[0]
            continue
        if clause.key not in shape.fields:
            names = sorted(shape.fields)
            hint = _did_you_mean(clause.key, names)
            if not hint:
                hint = f"; its fields are {', '.join(names)}"
            return PatternError(f'{shape.name} has no field "{clause.key}"{hint}', path=clause.path)
        if isinstance(clause.node, _Nested):
            inner = _union_shape(shape.fields[clause.key])
            if isinstance(inner, _ObjectShape):
                error = _check_body(clause.node.body, inner)
                if error is not None:
                    return error
            elif isinstance(inner, str):
                return PatternError(
                    f"{shape.name}.{clause.key} holds a plain value ({inner}), not an object, "
                    "so a nested pattern can never match it; match the value with an array, "
                    f'e.g. "{clause.key}": ["..."]',
                    path=clause.path,
                )
    return None
