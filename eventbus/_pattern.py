"""EventBridge-style content patterns: :class:`Pattern` validates and compiles one.

A pattern is a JSON object that mirrors the shape of the events it selects::

    {"bucket": ["photos"], "size": [{"numeric": [">", 0]}], "key": [{"suffix": ".png"}]}

Each field maps either to an array of alternatives (the field matches when its
value matches any of them) or to a nested object (for nested fields); every
field named must match; ``$or`` at any level lists alternative sub-patterns.
The semantics and the validation rules are Amazon EventBridge's, described in
``docs/patterns.md``; the few places where an in-process bus has to decide
something EventBridge leaves open are documented there too.

How matching is fast: a pattern is validated and compiled once, into a tree
of small closures (the general path, which also powers :meth:`Pattern.explain`).
On first use with a given document type (an attrs event class, ``dict``, any
``Mapping``), :meth:`Pattern.matches` also generates one straight-line function
for that type: fields are read as plain attribute or item accesses and the
common leaf tests (one exact string, a set of exact values, a numeric bound,
a prefix or a suffix) are inlined for scalar values, falling back to the
closures for arrays, nested objects and unusual values. Operands never appear
in the generated source; they are bound as constants, and field names appear
only when they are the Python identifiers of the class's own attrs fields.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import enum
import inspect
import ipaddress
import json
import keyword
import re
import sys
import threading
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Final, Literal, final

import attrs

from ._exceptions import PatternError

__all__ = ["Pattern"]

_ROOT: Final = "where"
#: The operators, in the order error messages list them.
OPERATORS: Final = (
    "prefix",
    "suffix",
    "anything-but",
    "numeric",
    "exists",
    "equals-ignore-case",
    "wildcard",
    "cidr",
)
#: The most alternatives ``$or`` may multiply out to in one pattern.
MAX_COMBINATIONS: Final = 1000
#: ``numeric`` operands lie in [-NUMERIC_LIMIT, NUMERIC_LIMIT] ...
NUMERIC_LIMIT: Final = Decimal("5e9")
#: ... with at most this many digits after the decimal point.
NUMERIC_PLACES: Final = 6

_COMPARISONS: Final = ("<", "<=", "=", ">", ">=")
_ANYTHING_BUT_OBJECT: Final = ("prefix", "suffix", "equals-ignore-case", "wildcard")


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
        return container.get(key, _MISSING)
    if isinstance(container, Mapping):
        try:
            return container[key]
        except (KeyError, TypeError):
            return _MISSING
    names = _object_fields(type(container))
    if names is not None and key in names:
        return getattr(container, key, _MISSING)
    return _MISSING


def _scalars(array: Iterable[object]) -> Iterator[object]:
    """The leaf values of an array, nested arrays flattened, objects skipped."""
    for item in array:
        kind = _kind(item)
        if kind == _SCALAR:
            yield item
        elif kind == _ARRAY:
            yield from _scalars(item)  # type: ignore[arg-type]  # _kind said: an array


def _objects(array: Iterable[object], path: str) -> Iterator[tuple[object, str]]:
    """The objects in an array (nested arrays flattened), each with its path."""
    for i, item in enumerate(array):
        kind = _kind(item)
        if kind == _OBJECT:
            yield item, f"{path}[{i}]"
        elif kind == _ARRAY:
            yield from _objects(item, f"{path}[{i}]")  # type: ignore[arg-type]


def _containers(value: object) -> list[object]:
    """The objects a nested pattern is tried against: the value, the objects in an array, or none."""
    if value is _MISSING:
        return [_EMPTY]
    kind = _kind(value)
    if kind == _OBJECT:
        return [value]
    if kind == _ARRAY:
        found = [obj for obj, _ in _objects(value, "")]  # type: ignore[arg-type]
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


def _render(value: object, limit: int = 60) -> str:
    """Show a value as JSON-like text in a message."""
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
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date, time)):
        return json.dumps(value.isoformat())
    if isinstance(value, enum.Enum):
        return _render(value.value, limit)
    kind = _kind(value)
    if kind == _OBJECT:
        return "an object" if isinstance(value, Mapping) else f"a {type(value).__name__} object"
    if kind == _ARRAY:
        items = list(value)  # type: ignore[call-overload]
        shown = ", ".join(_render(item, 30) for item in items[:5])
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


_SIMPLE_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*\Z")


def _join(path: str, key: str) -> str:
    """Extend a JSON path by a field name: ``where.key`` or ``where["a.b"]``."""
    if _SIMPLE_KEY.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


# --------------------------------------------------------------------------- compiled tree

_Test = Callable[[object], bool]


@final
class _Alt:
    """One alternative in a field's array: an exact value or an operator."""

    __slots__ = ("describe", "exact", "fast", "kind", "test", "why")

    def __init__(
        self,
        kind: str,
        test: _Test,
        describe: str,
        why: Callable[[object], str],
        *,
        exact: object = _MISSING,
        fast: tuple[Any, ...] | None = None,
    ) -> None:
        self.kind = kind  # "exact", "exists-true", "exists-false", or the operator name
        self.test = test  # canonical leaf -> bool
        self.describe = describe  # e.g. 'prefix "us-"'
        self.why = why  # raw leaf -> "why this leaf does not match"
        self.exact = exact  # the canonical value of an exact alternative
        self.fast = fast  # an inlinable form, see _fast_code()


@final
class _Leaf:
    """A field's array of alternatives."""

    __slots__ = ("absent_ok", "alts", "match", "test")

    def __init__(self, alts: tuple[_Alt, ...]) -> None:
        self.alts = alts
        self.absent_ok = any(a.kind == "exists-false" for a in alts)
        present = [a for a in alts if a.kind != "exists-false"]
        exact = [a for a in present if a.kind == "exact"]
        test: _Test
        if len(exact) > 1 and len(exact) == len(present):
            test = frozenset(a.exact for a in exact).__contains__
        elif len(present) == 1:
            test = present[0].test
        elif present:
            test = _any_test([a.test for a in present])
        else:
            test = _never
        self.test = test
        self.match = self._build_match()

    def _build_match(self) -> _Test:
        test = self.test
        absent_ok = self.absent_ok

        def match(value: object) -> bool:
            if value is _MISSING:
                return absent_ok
            kind = _kind(value)
            if kind == _SCALAR:
                return test(_canon(value))
            if kind == _ARRAY:
                found = False
                for item in _scalars(value):  # type: ignore[arg-type]
                    if test(_canon(item)):
                        return True
                    found = True
                return absent_ok and not found
            return absent_ok  # an object is not a leaf value

        return match

    @property
    def fast(self) -> tuple[Any, ...] | None:
        present = [a for a in self.alts if a.kind != "exists-false"]
        if self.absent_ok or not present:
            return None
        exact = [a for a in present if a.kind == "exact"]
        if len(exact) == len(present):
            values = frozenset(a.exact for a in exact)
            if len(values) == 1 and isinstance(exact[0].exact, str):
                return ("eq", exact[0].exact)
            if all(type(v) is str or type(v) is int for v in values):
                return ("in", values)
            return None
        if len(present) == 1:
            return present[0].fast
        return None

    def explain(self, value: object, path: str) -> str:
        if value is _MISSING:
            return f"{path}: field is missing"
        kind = _kind(value)
        if kind == _OBJECT:
            return (
                f"{path}: found {_render(value)} where the pattern expects a value "
                f"({self._wanted()}); match the fields inside it with a nested pattern"
            )
        if kind == _ARRAY:
            leaves = list(_scalars(value))  # type: ignore[arg-type]
            if not leaves:
                return (
                    f"{path}: the array {_render(value)} holds no values to match {self._wanted()}"
                )
            if self._only_absent():
                return f"{path}: field is present ({_render(value)}), but the pattern requires it to be absent"
            return f"{path}: none of {_render(leaves)} {self._phrase_many()}"
        if self._only_absent():
            return f"{path}: field is present ({_render(value)}), but the pattern requires it to be absent"
        return f"{path}: {self._phrase_one(value)}"

    def _only_absent(self) -> bool:
        return all(a.kind == "exists-false" for a in self.alts)

    def _exacts(self) -> list[_Alt] | None:
        exact = [a for a in self.alts if a.kind == "exact"]
        return exact if len(exact) == len(self.alts) else None

    def _wanted(self) -> str:
        exact = self._exacts()
        if exact is not None:
            return " or ".join(a.describe for a in exact)
        return " or ".join(a.describe for a in self.alts)

    def _phrase_one(self, value: object) -> str:
        if len(self.alts) == 1:
            return self.alts[0].why(value)
        exact = self._exacts()
        if exact is not None:
            return f"{_render(value)} is not one of [{', '.join(a.describe for a in exact)}]"
        return f"{_render(value)} matches none of: {', '.join(a.describe for a in self.alts)}"

    def _phrase_many(self) -> str:
        exact = self._exacts()
        if exact is not None:
            if len(exact) == 1:
                return f"is {exact[0].describe}"
            return f"is one of [{', '.join(a.describe for a in exact)}]"
        return f"matches any of: {', '.join(a.describe for a in self.alts)}"


def _never(_canon: object) -> bool:
    return False


def _exact_one(expected: object) -> _Test:
    # Canonical leaves compare exactly: equal numbers are equal whatever their
    # type, a string never equals a number, and true/false are sentinels.
    def test(canon: object) -> bool:
        return canon == expected

    return test


@final
class _Field:
    """``"key": [...]`` or ``"key": {...}`` in an object pattern."""

    __slots__ = ("key", "node", "path")

    def __init__(self, key: str, node: _Leaf | _Nested, path: str) -> None:
        self.key = key
        self.node = node
        self.path = path  # where it is in the spec, for bind() errors


@final
class _Or:
    """``"$or": [{...}, {...}]``: at least one branch matches the same object."""

    __slots__ = ("branches", "match", "path")

    match: _Test

    def __init__(self, branches: tuple[_Body, ...], path: str) -> None:
        self.branches = branches
        self.path = path
        checks = tuple(b.check for b in branches)

        def match(container: object) -> bool:
            for check in checks:  # noqa: SIM110 - no generator object per call
                if check(container):
                    return True
            return False

        self.match = match


@final
class _Body:
    """An object pattern: every clause must match the same object."""

    __slots__ = ("check", "clauses", "combinations", "path")

    check: _Test
    combinations: int

    def __init__(self, clauses: tuple[_Field | _Or, ...], path: str) -> None:
        self.clauses = clauses
        self.path = path
        combinations = 1
        for clause in clauses:
            if isinstance(clause, _Or):
                combinations *= sum(b.combinations for b in clause.branches)
            elif isinstance(clause.node, _Nested):
                combinations *= clause.node.body.combinations
        self.combinations = combinations
        self.check = self._build_check()

    def _build_check(self) -> _Test:
        steps: list[_Test] = []
        for clause in self.clauses:
            if isinstance(clause, _Or):
                steps.append(clause.match)
            else:
                steps.append(_field_step(clause.key, clause.node.match))

        def check(container: object) -> bool:
            for step in steps:  # noqa: SIM110 - no generator object per call
                if not step(container):
                    return False
            return True

        return check

    def explain(self, container: object, path: str) -> str | None:
        for clause in self.clauses:
            if isinstance(clause, _Or):
                if clause.match(container):
                    continue
                reasons = [b.explain(container, path) or "matched" for b in clause.branches]
                listed = "; ".join(f"({i}) {r}" for i, r in enumerate(reasons, 1))
                return f"{path}: none of the {len(reasons)} $or alternatives matched: {listed}"
            value = _get(container, clause.key)
            if not clause.node.match(value):
                return clause.node.explain(value, _join(path, clause.key))
        return None


def _field_step(key: str, match: _Test) -> _Test:
    def step(container: object) -> bool:
        return match(_get(container, key))

    return step


@final
class _Nested:
    """``"key": {...}``: the field holds an object (or an array of objects)."""

    __slots__ = ("body", "match")

    def __init__(self, body: _Body) -> None:
        self.body = body
        check = body.check

        def match(value: object) -> bool:
            if type(value) is dict:
                return check(value)
            for container in _containers(value):  # noqa: SIM110 - no generator object per call
                if check(container):
                    return True
            return False

        self.match = match

    def explain(self, value: object, path: str) -> str:
        return _explain_containers(self.body, value, path)


def _explain_containers(body: _Body, value: object, path: str) -> str:
    if value is _MISSING:
        return f"{path}: field is missing"
    kind = _kind(value)
    if kind == _OBJECT:
        return body.explain(value, path) or f"{path}: does not match"
    if kind == _ARRAY:
        found = list(_objects(value, path))  # type: ignore[arg-type]
        if len(found) == 1:
            obj, where = found[0]
            return body.explain(obj, where) or f"{where}: does not match"
        if found:
            obj, where = found[0]
            first = body.explain(obj, where) or f"{where}: does not match"
            return f"{path}: none of its {len(found)} objects matched; the first fails with {first}"
    return f"{path}: expected an object, found {_render(value)}"


# --------------------------------------------------------------------------- compiling a spec


def _compile_body(spec: object, path: str, *, in_or: bool = False) -> _Body:
    if not isinstance(spec, Mapping):
        raise PatternError(
            f'expected an object (a dict of fields), got {_render(spec)}; e.g. {{"key": ["k"]}}',
            path=path,
        )
    if not spec:
        raise PatternError(
            'empty object; name at least one field to match, e.g. {"key": ["k"]}, or remove it',
            path=path,
        )
    clauses: list[_Field | _Or] = []
    for key, value in spec.items():
        if not isinstance(key, str):
            raise PatternError(f"field names must be strings, got {key!r}", path=path)
        here = _join(path, key)
        if key == "$or":
            clauses.append(_compile_or(value, here))
            continue
        if in_or and key in OPERATORS:
            raise PatternError(
                f'"{key}" is an operator, not a field; operators go inside a field\'s array, '
                f'e.g. {{"field": [{{"{key}": ...}}]}}',
                path=here,
            )
        if isinstance(value, Mapping):
            clauses.append(_Field(key, _Nested(_compile_body(value, here, in_or=in_or)), here))
        elif isinstance(value, (list, tuple)):
            clauses.append(_Field(key, _compile_leaf(value, here), here))
        elif key in OPERATORS:
            parent = path.rsplit(".", 1)[-1] if "." in path else "field"
            raise PatternError(
                f'"{key}" is an operator, and operators go inside the field\'s array: '
                f'"{parent}": [{{"{key}": {_render(value)}}}]',
                path=here,
            )
        elif isinstance(value, AbstractSet):
            raise PatternError(
                "expected an array of values, got a set; write the values as a list, "
                f"e.g. [{', '.join(sorted(_render(v) for v in value)[:3])}]",
                path=here,
            )
        else:
            raise PatternError(
                f"expected an array of values, e.g. [{_render(value)}]",
                path=here,
            )
    return _Body(tuple(clauses), path)


def _compile_or(value: object, path: str) -> _Or:
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise PatternError(
            "expected an array of at least 2 sub-patterns, "
            'e.g. "$or": [{"a": ["x"]}, {"b": ["y"]}]',
            path=path,
        )
    branches = []
    for i, branch in enumerate(value):
        here = f"{path}[{i}]"
        if not isinstance(branch, Mapping):
            raise PatternError(
                f'expected an object (a sub-pattern), got {_render(branch)}; e.g. {{"a": ["x"]}}',
                path=here,
            )
        branches.append(_compile_body(branch, here, in_or=True))
    return _Or(tuple(branches), path)


def _compile_leaf(values: Sequence[object], path: str) -> _Leaf:
    if not values:
        raise PatternError(
            'empty array; it would match nothing. List at least one value, e.g. ["k"], '
            "or remove the field",
            path=path,
        )
    return _Leaf(tuple(_compile_alt(item, f"{path}[{i}]") for i, item in enumerate(values)))


def _compile_alt(item: object, path: str) -> _Alt:
    if isinstance(item, Mapping):
        return _compile_operator(item, path)
    if isinstance(item, (list, tuple)):
        raise PatternError(
            "arrays cannot be nested; list the alternatives directly in the field's array",
            path=path,
        )
    expected = _exact_value(item, path)
    return _Alt(
        "exact",
        _exact_one(expected),
        _render(expected),
        _why_exact(expected),
        exact=expected,
    )


def _exact_value(item: object, path: str) -> object:
    """Validate an exact value and return its canonical form."""
    if item is None or isinstance(item, (str, bool, int)):
        return _canon(item)
    if isinstance(item, (float, Decimal)):
        if not _finite(item):
            raise PatternError(
                f"{_render(item)} is not a JSON number; use a finite number", path=path
            )
        return _canon(item)
    if isinstance(item, (datetime, date, time)):
        raise PatternError(
            f"a {type(item).__name__} is not a JSON value; write its ISO-8601 string, "
            f'e.g. [{json.dumps(item.isoformat())}], or a prefix such as [{{"prefix": "2024-01-01"}}]',
            path=path,
        )
    raise PatternError(
        f"{type(item).__name__} values are not JSON; use a string, a number, true, false, "
        'null or an operator object such as {"prefix": "..."}',
        path=path,
    )


def _finite(number: float | Decimal) -> bool:
    if isinstance(number, Decimal):
        return number.is_finite()
    return number == number and number not in (float("inf"), float("-inf"))


def _why_exact(expected: object) -> Callable[[object], str]:
    def why(value: object) -> str:
        canon = _canon(value)
        shown = f"{_render(value)} is not {_render(expected)}"
        ours, theirs = _kind_name(canon, value), _kind_name(expected)
        if ours != theirs and canon is not None:
            return f"{shown} ({ours} never equals {theirs})"
        return shown

    return why


def _compile_operator(item: Mapping[Any, object], path: str) -> _Alt:
    if len(item) != 1:
        if not item:
            raise PatternError(
                f"empty operator object; expected one of {', '.join(OPERATORS)}", path=path
            )
        names = ", ".join(str(k) for k in item)
        raise PatternError(
            f"an operator object has exactly one key, got {len(item)} ({names}); "
            "put each operator in its own array element, e.g. "
            '[{"prefix": "a"}, {"suffix": "z"}]',
            path=path,
        )
    ((name, operand),) = item.items()
    if name not in OPERATORS:
        hint = _did_you_mean(str(name), OPERATORS)
        raise PatternError(
            f"unknown operator {_render(name)}; expected one of {', '.join(OPERATORS)}{hint}",
            path=path,
        )
    here = f"{path}.{name}"
    compile_op = _OPERATOR_COMPILERS[name]
    return compile_op(operand, here)


def _string_operand(operand: object, path: str, what: str, *, allow_empty: bool = True) -> str:
    if not isinstance(operand, str):
        raise PatternError(f"{what} takes a string, got {_render(operand)}", path=path)
    if not allow_empty and not operand:
        raise PatternError(f"{what} takes a non-empty string", path=path)
    return str.__str__(operand)


def _affix_operand(operand: object, path: str, name: str) -> tuple[str, bool]:
    """The operand of prefix/suffix: a string, or ``{"equals-ignore-case": string}``."""
    if isinstance(operand, Mapping):
        if len(operand) == 1 and "equals-ignore-case" in operand:
            text = _string_operand(
                operand["equals-ignore-case"], f"{path}.equals-ignore-case", "equals-ignore-case"
            )
            return text, True
        raise PatternError(
            f'{name} takes a string or {{"equals-ignore-case": "..."}}, got {_render(operand)}',
            path=path,
        )
    if not isinstance(operand, str):
        raise PatternError(
            f'{name} takes a string or {{"equals-ignore-case": "..."}}, got {_render(operand)}',
            path=path,
        )
    return str.__str__(operand), False


def _op_prefix(operand: object, path: str) -> _Alt:
    text, ignore_case = _affix_operand(operand, path, "prefix")
    test = _prefix_test(text, ignore_case)
    described = f"prefix {_render(text)}" + (" (ignoring case)" if ignore_case else "")

    def why(value: object) -> str:
        if not isinstance(_canon(value), str):
            return f"{_render(value)} is not a string, so it has no prefix {_render(text)}"
        return f"{_render(value)} does not start with {_render(text)}" + (
            " (ignoring case)" if ignore_case else ""
        )

    fast = None if ignore_case else ("prefix", text)
    return _Alt("prefix", test, described, why, fast=fast)


def _prefix_test(text: str, ignore_case: bool) -> _Test:
    if ignore_case:
        folded = text.casefold()

        def test(canon: object) -> bool:
            return type(canon) is str and canon.casefold().startswith(folded)

        return test

    def test_exact(canon: object) -> bool:
        return type(canon) is str and canon.startswith(text)

    return test_exact


def _suffix_test(text: str, ignore_case: bool) -> _Test:
    if ignore_case:
        folded = text.casefold()

        def test(canon: object) -> bool:
            return type(canon) is str and canon.casefold().endswith(folded)

        return test

    def test_exact(canon: object) -> bool:
        return type(canon) is str and canon.endswith(text)

    return test_exact


def _op_suffix(operand: object, path: str) -> _Alt:
    text, ignore_case = _affix_operand(operand, path, "suffix")
    test = _suffix_test(text, ignore_case)
    described = f"suffix {_render(text)}" + (" (ignoring case)" if ignore_case else "")

    def why(value: object) -> str:
        if not isinstance(_canon(value), str):
            return f"{_render(value)} is not a string, so it has no suffix {_render(text)}"
        return f"{_render(value)} does not end with {_render(text)}" + (
            " (ignoring case)" if ignore_case else ""
        )

    fast = None if ignore_case else ("suffix", text)
    return _Alt("suffix", test, described, why, fast=fast)


def _ignore_case_test(texts: Sequence[str]) -> _Test:
    folded = frozenset(t.casefold() for t in texts)

    def test(canon: object) -> bool:
        return type(canon) is str and canon.casefold() in folded

    return test


def _op_equals_ignore_case(operand: object, path: str) -> _Alt:
    text = _string_operand(operand, path, "equals-ignore-case")
    test = _ignore_case_test([text])

    def why(value: object) -> str:
        if not isinstance(_canon(value), str):
            return f"{_render(value)} is not a string, so it cannot equal {_render(text)} ignoring case"
        return f"{_render(value)} is not {_render(text)}, even ignoring case"

    return _Alt("equals-ignore-case", test, f"{_render(text)} (ignoring case)", why)


def _parse_wildcard(text: str, path: str) -> tuple[str, ...]:
    """Split a wildcard at its unescaped ``*``; validate EventBridge's escaping rules."""
    segments: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "*":
            if i + 1 < len(text) and text[i + 1] == "*":
                raise PatternError(
                    f'consecutive "*" at position {i} are not allowed; '
                    'one "*" already matches any run of characters',
                    path=path,
                )
            segments.append("".join(current))
            current = []
        elif char == "\\":
            following = text[i + 1] if i + 1 < len(text) else ""
            if following not in ("*", "\\") or not following:
                raise PatternError(
                    f"invalid escape at position {i}: a backslash must be followed by "
                    '"*" (a literal asterisk) or another backslash',
                    path=path,
                )
            current.append(following)
            i += 1
        else:
            current.append(char)
        i += 1
    segments.append("".join(current))
    return tuple(segments)


def _wildcard_test(segments: tuple[str, ...]) -> _Test:
    if len(segments) == 1:
        (literal,) = segments

        def test_literal(canon: object) -> bool:
            return type(canon) is str and canon == literal

        return test_literal
    first, middle, last = segments[0], segments[1:-1], segments[-1]
    shortest = len(first) + len(last)

    def test(canon: object) -> bool:
        # Greedy, left to right: linear in the text, no backtracking blow-up.
        if type(canon) is not str or len(canon) < shortest:
            return False
        if not (canon.startswith(first) and canon.endswith(last)):
            return False
        position, end = len(first), len(canon) - len(last)
        for part in middle:
            found = canon.find(part, position, end)
            if found < 0:
                return False
            position = found + len(part)
        return True

    return test


def _any_test(tests: Sequence[_Test]) -> _Test:
    if len(tests) == 1:
        return tests[0]
    frozen = tuple(tests)

    def test(canon: object) -> bool:
        return any(t(canon) for t in frozen)

    return test


def _op_wildcard(operand: object, path: str) -> _Alt:
    text = _string_operand(operand, path, "wildcard")
    test = _wildcard_test(_parse_wildcard(text, path))

    def why(value: object) -> str:
        if not isinstance(_canon(value), str):
            return (
                f"{_render(value)} is not a string, so it cannot match the wildcard {_render(text)}"
            )
        return f"{_render(value)} does not match the wildcard {_render(text)}"

    return _Alt("wildcard", test, f"wildcard {_render(text)}", why)


def _op_exists(operand: object, path: str) -> _Alt:
    if operand is True:
        return _Alt("exists-true", _always, "exists: true", lambda _v: "field is missing")
    if operand is False:
        return _Alt(
            "exists-false",
            _never,
            "exists: false",
            lambda v: f"field is present ({_render(v)}), but the pattern requires it to be absent",
        )
    raise PatternError(f"exists takes true or false, got {_render(operand)}", path=path)


def _always(_canon: object) -> bool:
    return True


def _op_cidr(operand: object, path: str) -> _Alt:
    text = _string_operand(operand, path, "cidr")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise PatternError(
            f'{_render(text)} is not a CIDR block ({exc}); write e.g. "10.0.0.0/24" or "2001:db8::/32"',
            path=path,
        ) from None
    version = network.version

    def test(canon: object) -> bool:
        if type(canon) is not str:
            return False
        try:
            address = ipaddress.ip_address(canon)
        except ValueError:
            return False
        return address.version == version and address in network

    def why(value: object) -> str:
        canon = _canon(value)
        if type(canon) is str:
            try:
                ipaddress.ip_address(canon)
            except ValueError:
                return f"{_render(value)} is not an IP address, so it is not in {network}"
        else:
            return (
                f"{_render(value)} is not a string holding an IP address, so it is not in {network}"
            )
        return f"{_render(value)} is not in {network}"

    return _Alt("cidr", test, f"in {network}", why)


# numeric ------------------------------------------------------------------------------

_COMPARE: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _numeric_operand(value: object, path: str, after: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise PatternError(
            f'"{after}" must be followed by a number, got {_render(value)}', path=path
        )
    if not _finite(value):
        raise PatternError(f"{_render(value)} is not a JSON number; use a finite number", path=path)
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if abs(number) > NUMERIC_LIMIT:
        raise PatternError(
            f"{_render(value)} is out of range; numeric matching works with numbers "
            "from -5e9 to 5e9 inclusive",
            path=path,
        )
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -NUMERIC_PLACES:
        raise PatternError(
            f"{_render(value)} has more than {NUMERIC_PLACES} digits after the decimal point; "
            f"numeric matching is precise to {NUMERIC_PLACES} decimal places",
            path=path,
        )
    return number


def _bound(number: Decimal) -> int | Decimal:
    """The bound to compare ints and Decimals with: an int when integral (fastest), else exact."""
    return int(number) if number == number.to_integral_value() else number


def _float_bound(number: Decimal) -> float | None:
    """The bound as a float, when comparing floats with it equals comparing their decimals."""
    as_float = float(number)
    return as_float if Decimal(repr(as_float)) == number else None


def _op_numeric(operand: object, path: str) -> _Alt:
    usage = 'numeric takes an array such as [">", 0], ["=", 5] or [">", 0, "<=", 5]'
    if not isinstance(operand, (list, tuple)) or len(operand) not in (2, 4):
        raise PatternError(f"{usage}; got {_render(operand)}", path=path)
    comparisons: list[tuple[str, Decimal]] = []
    for i in range(0, len(operand), 2):
        op = operand[i]
        if not isinstance(op, str) or op not in _COMPARISONS:
            raise PatternError(
                f"unknown comparison {_render(op)} at position {i}; "
                f"expected one of {', '.join(_COMPARISONS)}",
                path=path,
            )
        comparisons.append((op, _numeric_operand(operand[i + 1], path, op)))
    if len(comparisons) == 2:
        (low_op, low), (high_op, high) = comparisons
        if low_op == "=" or high_op == "=":
            raise PatternError('"=" takes a single number, e.g. ["=", 5]', path=path)
        if low_op in ("<", "<="):
            raise PatternError(
                "put the lower bound first: "
                f'[">", {_render(high)}, "<", {_render(low)}] or similar, '
                f"with > or >= first and < or <= second",
                path=path,
            )
        if high_op not in ("<", "<="):
            raise PatternError(
                f'the second comparison must be an upper bound, "<" or "<=", got "{high_op}"',
                path=path,
            )
        if low == high and (low_op, high_op) == (">=", "<="):
            raise PatternError(
                f'the range holds only {_render(low)}; write it as ["=", {_render(low)}]',
                path=path,
            )
        if not low < high:
            fix = (
                f'; did you mean [">", {_render(high)}, "<", {_render(low)}]?' if low > high else ""
            )
            raise PatternError(
                f"the range is empty: no number is {low_op} {_render(low)} and "
                f"{high_op} {_render(high)}{fix}",
                path=path,
            )
    described = " and ".join(f"{op} {_render(n)}" for op, n in comparisons)
    checks = tuple((_COMPARE[op], _bound(n)) for op, n in comparisons)

    def test(canon: object) -> bool:
        cls = type(canon)
        if cls is not int and cls is not Decimal:
            return False
        return all(compare(canon, bound) for compare, bound in checks)

    def why(value: object) -> str:
        if not _is_number(_canon(value)):
            return f"{_render(value)} is not a number, so it cannot be {described}"
        return f"{_render(value)} is not {described}"

    fast = ("numeric", tuple((op, _bound(n), _float_bound(n)) for op, n in comparisons))
    return _Alt("numeric", test, described, why, fast=fast)


# anything-but --------------------------------------------------------------------------


def _op_anything_but(operand: object, path: str) -> _Alt:
    usage = (
        "anything-but takes a string, a number, an array of strings or of numbers, or an object "
        'with prefix, suffix, equals-ignore-case or wildcard, e.g. {"anything-but": ["a", "b"]}'
    )
    inner: _Test
    fast: tuple[Any, ...] | None = None
    if isinstance(operand, Mapping):
        if len(operand) != 1:
            raise PatternError(f"{usage}; got {_render(operand)}", path=path)
        ((name, value),) = operand.items()
        here = f"{path}.{name}"
        if name == "prefix" or name == "suffix":
            text = _string_operand(value, here, name, allow_empty=False)
            inner = _prefix_test(text, False) if name == "prefix" else _suffix_test(text, False)
            shown = f"{name} {_render(text)}"
        elif name == "equals-ignore-case":
            texts = _string_list(value, here, name)
            inner = _ignore_case_test(texts)
            shown = f"{_render(texts[0]) if len(texts) == 1 else _render(texts)} (ignoring case)"
        elif name == "wildcard":
            texts = _string_list(value, here, name)
            inner = _any_test([_wildcard_test(_parse_wildcard(t, here)) for t in texts])
            shown = f"wildcard {_render(texts[0]) if len(texts) == 1 else _render(texts)}"
        else:
            hint = _did_you_mean(str(name), _ANYTHING_BUT_OBJECT)
            raise PatternError(
                f"anything-but cannot hold {_render(name)}; inside an object it takes one of "
                f"{', '.join(_ANYTHING_BUT_OBJECT)}{hint}",
                path=path,
            )
    else:
        values = _anything_but_values(operand, path, usage)
        excluded = frozenset(values)

        def inner(canon: object) -> bool:
            return canon in excluded

        shown = _render(values[0]) if len(values) == 1 else f"[{', '.join(map(_render, values))}]"
        if all(type(v) is str or type(v) is int for v in excluded):
            fast = ("not-in", excluded)
    described = f"anything-but {shown}"

    def test(canon: object) -> bool:
        return not inner(canon)

    def why(value: object) -> str:
        return f"{_render(value)} is excluded by {described}"

    return _Alt("anything-but", test, described, why, fast=fast)


def _string_list(value: object, path: str, name: str) -> list[str]:
    if isinstance(value, str):
        return [str.__str__(value)]
    if isinstance(value, (list, tuple)) and value:
        texts = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise PatternError(
                    f"{name} takes strings, got {_render(item)}", path=f"{path}[{i}]"
                )
            texts.append(str.__str__(item))
        return texts
    raise PatternError(f"{name} takes a string or a non-empty array of strings", path=path)


def _anything_but_values(operand: object, path: str, usage: str) -> list[object]:
    items = list(operand) if isinstance(operand, (list, tuple)) else [operand]
    if not items:
        raise PatternError(f"empty array; {usage}", path=path)
    values: list[object] = []
    for i, item in enumerate(items):
        here = f"{path}[{i}]" if isinstance(operand, (list, tuple)) else path
        if item is None or isinstance(item, bool):
            raise PatternError(
                f"{_render(item)} is not supported; anything-but takes only strings or numbers "
                '(to require a field to be present, use {"exists": true})',
                path=here,
            )
        if isinstance(item, str):
            values.append(str.__str__(item))
        elif isinstance(item, (int, float, Decimal)):
            if not _finite(item):
                raise PatternError(f"{_render(item)} is not a JSON number", path=here)
            values.append(_canon(item))
        else:
            raise PatternError(f"{usage}; got {_render(item)}", path=here)
    if any(isinstance(v, str) for v in values) and not all(isinstance(v, str) for v in values):
        raise PatternError(
            "mixes strings and numbers; anything-but takes either all strings or all numbers",
            path=path,
        )
    return values


_OPERATOR_COMPILERS: Final[dict[str, Callable[[object, str], _Alt]]] = {
    "prefix": _op_prefix,
    "suffix": _op_suffix,
    "anything-but": _op_anything_but,
    "numeric": _op_numeric,
    "exists": _op_exists,
    "equals-ignore-case": _op_equals_ignore_case,
    "wildcard": _op_wildcard,
    "cidr": _op_cidr,
}


def _plain(spec: object) -> object:
    """A deep copy of a spec with mappings as dicts and arrays as lists."""
    if isinstance(spec, Mapping):
        return {k: _plain(v) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [_plain(v) for v in spec]
    return spec


# --------------------------------------------------------------------------- specialisation

_COMPARE_SOURCE: Final = {"<": "<", "<=": "<=", "=": "==", ">": ">", ">=": ">="}


#: How many document types one pattern inlines in its dispatcher; more go through a dict.
_MAX_INLINED: Final = 8


def _fast_code(fast: tuple[Any, ...] | None, tag: str, ns: dict[str, object]) -> list[str]:
    """Lines testing the local ``v`` against the leaf whose names end in *tag*.

    Common scalar cases are inlined; every form falls back to ``n{tag}(v)``,
    the leaf's general matcher, for any value it does not handle itself, so
    the inlined code only ever decides the cases it is sure of.
    """
    generic = f"if not n{tag}(v): return False"
    if fast is None:
        return [generic]
    form = fast[0]
    if form == "eq":
        ns[f"c{tag}"] = fast[1]
        return [f"if v != c{tag}:", f"    if v.__class__ is _str or not n{tag}(v): return False"]
    if form in ("in", "not-in"):
        ns[f"s{tag}"] = fast[1]
        test = "not in" if form == "in" else "in"
        return [
            "t = v.__class__",
            "if t is _str or t is _int:",
            f"    if v {test} s{tag}: return False",
            f"elif not n{tag}(v): return False",
        ]
    if form in ("prefix", "suffix"):
        ns[f"c{tag}"] = fast[1]
        method = "startswith" if form == "prefix" else "endswith"
        return [
            "if v.__class__ is _str:",
            f"    if not v.{method}(c{tag}): return False",
            f"elif not n{tag}(v): return False",
        ]
    if form == "numeric":
        int_terms, float_terms = [], []
        float_ok = True
        for j, (op, bound, float_bound) in enumerate(fast[1]):
            ns[f"b{tag}_{j}"] = bound
            ns[f"f{tag}_{j}"] = float_bound
            int_terms.append(f"v {_COMPARE_SOURCE[op]} b{tag}_{j}")
            float_terms.append(f"v {_COMPARE_SOURCE[op]} f{tag}_{j}")
            float_ok = float_ok and float_bound is not None
        lines = [
            "t = v.__class__",
            "if t is _int:",
            f"    if not ({' and '.join(int_terms)}): return False",
        ]
        if float_ok:
            lines += [
                "elif t is _float:",
                f"    if not ({' and '.join(float_terms)}): return False",
            ]
        lines.append(f"elif not n{tag}(v): return False")
        return lines
    return [generic]  # pragma: no cover - every fast form is handled above


def _type_lines(body: _Body, cls: type, tag: str, ns: dict[str, object]) -> list[str]:
    """The statements deciding whether a document of type *cls* matches *body*.

    They read the document from the local ``doc`` and always end in a
    ``return``. Names they use are bound in *ns*, suffixed with *tag*.
    """
    if cls is dict:
        mode = "dict"
        names: frozenset[str] = frozenset()
    elif issubclass(cls, Mapping):
        mode = "mapping"
        names = frozenset()
    else:
        found = _object_fields(cls)
        if found is None:
            return ["return _generic(doc)"]
        mode, names = "object", found
    lines: list[str] = []
    for i, clause in enumerate(body.clauses):
        here = f"{tag}_{i}"
        if isinstance(clause, _Or):
            ns[f"o{here}"] = clause.match
            lines.append(f"if not o{here}(doc): return False")
            continue
        key, node = clause.key, clause.node
        ns[f"k{here}"] = key
        ns[f"n{here}"] = node.match
        if mode == "dict":
            lines += ["try:", f"    v = doc[k{here}]", "except KeyError:", "    v = _MISSING"]
        elif mode == "mapping":
            lines.append(f"v = doc.get(k{here}, _MISSING)")
        elif key in names:
            if key.isidentifier() and not keyword.iskeyword(key):
                lines.append(f"v = doc.{key}")
            else:  # pragma: no cover - attrs and dataclass fields are identifiers
                lines.append(f"v = getattr(doc, k{here}, _MISSING)")
        else:
            # The class has no such field: the clause always sees a missing value.
            if not node.match(_MISSING):
                return ["return False"]
            continue
        lines += _fast_code(node.fast if isinstance(node, _Leaf) else None, here, ns)
    lines.append("return True")
    if mode == "object":
        # An attrs slot left unset (init=False, no default) reads as missing there.
        lines = ["try:", *("    " + line for line in lines)]
        lines += ["except AttributeError:", "    return _generic(doc)"]
    return lines


def _dispatcher(body: _Body, classes: Sequence[type], generic: _Test, slow: _Test) -> _Test:
    """Generate one function matching *body*, with the code for each of *classes* inlined.

    Documents of other types go to *slow*, which may generate a new dispatcher.
    """
    ns: dict[str, object] = {
        "_MISSING": _MISSING,
        "_generic": generic,
        "_slow": slow,
        "_type": type,
        "_str": str,
        "_int": int,
        "_float": float,
    }
    lines = ["def matches(doc):", "    cls = _type(doc)"]
    for j, cls in enumerate(classes):
        ns[f"T{j}"] = cls
        lines.append(f"    if cls is T{j}:")
        lines += ["        " + line for line in _type_lines(body, cls, str(j), ns)]
    lines.append("    return _slow(doc)")
    code = compile("\n".join(lines) + "\n", "<eventbus pattern>", "exec")
    exec(code, ns)
    match: _Test = ns["matches"]  # type: ignore[assignment]
    match.__qualname__ = "Pattern.matches"
    match.__doc__ = "Whether *doc* matches the pattern (code generated for its type)."
    return match


# --------------------------------------------------------------------------- the public class


@final
class Pattern:
    """A content pattern, validated and compiled once: EventBridge's event-pattern language.

    ``Pattern(spec)`` takes a JSON object, as a mapping (or as JSON text)::

        photos = Pattern({
            "bucket": ["photos"],
            "size": [{"numeric": [">", 0]}],
            "key": [{"suffix": ".png"}],
        })
        photos.matches(event)          # True or False
        photos.explain(event)          # None, or why not: 'where.size: 0 is not > 0'

    Patterns match events (attrs instances: fields by attribute name, nested
    attrs objects and mappings followed) and any JSON-like mapping. The
    language, its limits, and how Python values compare are described in
    ``docs/patterns.md``.

    A pattern is immutable and safe to share between threads and subscriptions.

    ``matches`` is an attribute holding a function generated for the pattern
    (one call, no method dispatch), so ``pattern.matches(value)`` reads and
    behaves like a method call, and ``match = pattern.matches`` may be kept.

    Args:
        spec: the pattern: a mapping of field names to arrays of alternatives
            or to nested patterns, or JSON text of one, or another
            :class:`Pattern` (reused as is).

    Raises:
        PatternError: the pattern is invalid; the message names the JSON path
            of the offending part (``where.key[0]: ...``), what is wrong
            and how to fix it.

    .. versionadded:: 0.1
    """

    __slots__ = (
        "__weakref__",
        "_body",
        "_generic",
        "_inlined",
        "_lock",
        "_overflow",
        "_spec",
        "matches",
    )

    #: ``matches(value) -> bool``: whether *value* matches the pattern.
    #:
    #: *value* is an event (any attrs instance or dataclass: fields by
    #: attribute name) or a JSON-like mapping; nested attrs objects,
    #: dataclasses and mappings are followed; lists, tuples and sets are
    #: arrays. Never raises for JSON-like documents; values that are not
    #: JSON-like (bytes, other objects) only satisfy ``exists`` and
    #: ``anything-but``.
    matches: Callable[[object], bool]
    _spec: dict[str, Any]
    _body: _Body
    _generic: _Test
    _inlined: tuple[type, ...]  # the document types the generated matches() has code for
    _overflow: dict[type, _Test]  # code for further types, once _inlined is full
    _lock: threading.Lock  # serialises code generation

    def __init__(self, spec: Mapping[str, Any] | str | Pattern) -> None:
        self.matches = self._slow
        self._inlined = ()
        self._overflow = {}
        self._lock = threading.Lock()
        if isinstance(spec, Pattern):
            self._spec = spec._spec
            self._body = spec._body
            self._generic = spec._generic
            return
        parsed: object = _parse_json(spec) if isinstance(spec, str) else spec
        if not isinstance(parsed, Mapping):
            raise PatternError(
                f"a pattern must be a JSON object (a mapping of field names), got "
                f'{type(parsed).__name__}; e.g. {{"key": ["k"]}}',
                path=_ROOT,
            )
        if not parsed:
            raise PatternError(
                'the pattern is empty; name at least one field, e.g. {"key": ["k"]} '
                "(to receive every event, pass no pattern at all)",
                path=_ROOT,
            )
        body = _compile_body(parsed, _ROOT)
        if body.combinations > MAX_COMBINATIONS:
            raise PatternError(
                f"the $or alternatives multiply out to {body.combinations:,} combinations, "
                f"more than the limit of {MAX_COMBINATIONS:,}; factor shared fields out of $or, "
                "or split the pattern into several subscriptions",
                path=_ROOT,
            )
        self._spec = typing.cast("dict[str, Any]", _plain(parsed))
        self._body = body
        check = body.check

        def generic(doc: object) -> bool:
            if type(doc) is dict:
                return check(doc)
            return any(check(c) for c in _containers(doc))

        self._generic = generic

    @property
    def spec(self) -> dict[str, Any]:
        """A copy of the pattern as plain JSON-like data (dicts and lists)."""
        return copy.deepcopy(self._spec)

    def __repr__(self) -> str:
        return f"Pattern({self._spec!r})"

    def _slow(self, value: object) -> bool:
        """Whether *value* matches: first call for its type, which generates the code for it."""
        cls = type(value)
        if cls not in self._inlined and len(self._inlined) < _MAX_INLINED:
            self._inline(cls)
        if cls in self._inlined:
            return self.matches(value)
        match = self._overflow.get(cls)
        if match is None:
            match = _dispatcher(self._body, (cls,), self._generic, self._generic)
            self._overflow[cls] = match
        return match(value)

    def _inline(self, cls: type) -> None:
        with self._lock:
            if cls in self._inlined or len(self._inlined) >= _MAX_INLINED:
                return
            inlined = (*self._inlined, cls)
            # Publish the code before the list of types it covers: a thread that
            # sees cls in _inlined then always finds a matches() that handles it.
            self.matches = _dispatcher(self._body, inlined, self._generic, self._slow)
            self._inlined = inlined

    def explain(self, value: object) -> str | None:
        """Say why *value* does not match, or return None when it does.

        Args:
            value: an event or a JSON-like mapping, as for :meth:`matches`.

        Returns:
            None when :meth:`matches` is true; otherwise one sentence about
            the first clause (in pattern order) that failed, prefixed with its
            path in the document, such as ``where.size: 0 is not > 0``,
            ``where.key: "a.png" is not one of ["k1", "k2"]`` or
            ``where.region: field is missing``.
        """
        if self.matches(value):
            return None
        body = self._body
        if _kind(value) == _OBJECT:
            reason = body.explain(value, _ROOT)
        else:
            reason = _explain_containers(body, value, _ROOT)
        return reason or f"{_ROOT}: does not match"

    def bind(self, event_types: type | tuple[type, ...]) -> None:
        """Check the pattern's field names against the event classes it will see.

        The bus calls this at subscribe time. For every attrs class (or
        dataclass) in *event_types*, each field the pattern names must exist
        on that class -- a subscription to ``(A, B)`` receives both, so a
        field missing from one of them would silently never match its events.
        Inside ``$or`` it is enough that one alternative fits each class.
        Nested patterns are checked against nested attrs classes; below a
        mapping-typed field (``Mapping[str, Any]``, ``dict``) or an ``Any``
        field any key is accepted. Classes that are neither attrs classes nor
        dataclasses are not checked.

        Args:
            event_types: a class or a tuple of classes.

        Raises:
            PatternError: a field does not exist, e.g. ``where.kye:
                ObjectCreated has no field "kye"; did you mean "key"?``, or a
                nested pattern is given for a field that holds a plain value.
        """
        classes = event_types if isinstance(event_types, tuple) else (event_types,)
        for cls in classes:
            shape = _shape_of(cls)
            if isinstance(shape, _ObjectShape):
                error = _check_body(self._body, shape)
                if error is not None:
                    raise error
        for cls in classes:
            self._inline(cls)  # the subscription's hot path is ready before the first event


def _parse_json(text: str) -> object:
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise PatternError(
            f"the pattern is not valid JSON ({exc}); pass a dict or JSON text of an object",
            path=_ROOT,
        ) from None


# --------------------------------------------------------------------------- bind(): type shapes


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


# --------------------------------------------------------------------------- for the index


def exact_anchor(pattern: Pattern) -> tuple[tuple[str, ...], frozenset[object]] | None:
    """A field the pattern requires to hold one of a set of exact values, if there is one.

    Returns the path of keys to the field (through nested objects, never
    through ``$or``) and the canonical values, or None. Any document the
    pattern matches has, at that path, a leaf whose canonical form is in the
    set; :class:`~eventbus._pattern_index.PatternIndex` relies on it.
    """
    found: list[tuple[tuple[str, ...], frozenset[object]]] = []
    todo: list[tuple[tuple[str, ...], _Body]] = [((), pattern._body)]
    while todo:
        prefix, body = todo.pop(0)
        for clause in body.clauses:
            if isinstance(clause, _Or):
                continue
            path = (*prefix, clause.key)
            node = clause.node
            if isinstance(node, _Nested):
                todo.append((path, node.body))
            elif all(a.kind == "exact" for a in node.alts):
                found.append((path, frozenset(a.exact for a in node.alts)))
    # The shallowest such field (cheapest to read), the first one on a tie.
    return min(found, key=lambda item: len(item[0])) if found else None


def leaf_values(doc: object, path: tuple[str, ...]) -> Sequence[object]:
    """The canonical leaf values found at *path* in *doc*, arrays flattened.

    It walks exactly the objects the matcher would try (the document or the
    objects in an array, then each nested field the same way).
    """
    if len(path) == 1:  # the common case, without the walk
        key = path[0]
        value: object = _MISSING
        if type(doc) is dict:
            value = doc.get(key, _MISSING)
        else:
            names = _object_fields(type(doc))
            if names is not None and key in names:
                value = getattr(doc, key, _MISSING)
        cls = type(value)
        if cls is str or cls is int:
            return (value,)
    containers = [c for c in _containers(doc) if c is not _EMPTY]
    for key in path[:-1]:
        deeper: list[object] = []
        for container in containers:
            deeper += [c for c in _containers(_get(container, key)) if c is not _EMPTY]
        containers = deeper
    last = path[-1]
    found: list[object] = []
    for container in containers:
        value = _get(container, last)
        if value is _MISSING:
            continue
        kind = _kind(value)
        if kind == _SCALAR:
            found.append(_canon(value))
        elif kind == _ARRAY:
            found += [_canon(item) for item in _scalars(value)]  # type: ignore[arg-type]
    return found
