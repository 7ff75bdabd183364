"""From a spec to the compiled tree: parsing, the structure of objects and arrays, exact values.

Operator objects (``{"prefix": ...}``) go to :mod:`eventbus._pattern_operators`.
Every error is a :class:`~eventbus.PatternError` naming the JSON path of the
offending part, what is wrong and how to fix it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from .._exceptions import PatternError
from ._operators import _OPERATOR_COMPILERS, OPERATORS, _finite
from ._tree import _Alt, _Body, _Field, _Leaf, _Nested, _Or, _Test
from ._values import _ROOT, _canon, _did_you_mean, _join, _kind_name, _render


def _parse_json(text: str) -> object:
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise PatternError(
            f"the pattern is not valid JSON ({exc}); pass a dict or JSON text of an object",
            path=_ROOT,
        ) from None
    except RecursionError:
        raise PatternError(
            "the pattern text nests arrays and objects too deeply to parse; flatten it",
            path=_ROOT,
        ) from None


def _plain(spec: object) -> object:
    """A deep copy of a spec with mappings as dicts and arrays as lists."""
    if isinstance(spec, Mapping):
        return {k: _plain(v) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [_plain(v) for v in spec]
    return spec


def _expand_dotted(spec: Mapping[Any, Any]) -> dict[Any, Any]:
    """``{"a.b": v}`` as ``{"a": {"b": v}}``: EventBridge joins field names with dots.

    EventBridge compiles a pattern into dot-joined field paths, so a dotted
    name in a pattern reaches the nested field. Objects reached both ways are
    merged; when the same field is given twice, the later one counts, as
    EventBridge uses the last pattern given for a field.
    """
    out: dict[Any, Any] = {}
    for key, value in spec.items():
        parts = key.split(".") if isinstance(key, str) else []
        if len(parts) < 2 or not all(parts) or "$or" in parts:
            _merge_field(out, key, value)
            continue
        node = value
        for part in reversed(parts[1:]):
            node = {part: node}
        _merge_field(out, parts[0], node)
    return out


def _merge_field(out: dict[Any, Any], key: object, value: object) -> None:
    old = out.get(key)
    if isinstance(old, Mapping) and isinstance(value, Mapping) and key != "$or":
        merged = dict(old)
        for inner_key, inner_value in value.items():
            _merge_field(merged, inner_key, inner_value)
        out[key] = merged
    else:
        out.pop(key, None)  # the later one counts, and goes last
        out[key] = value


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
    if any(isinstance(key, str) and "." in key for key in spec):
        spec = _expand_dotted(spec)
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
    return _Leaf(tuple(_compile_alt(item, f"{path}[{i}]") for i, item in enumerate(values)), path)


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
        key=("exact", expected),
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


def _exact_one(expected: object) -> _Test:
    # Canonical leaves compare exactly: equal numbers are equal whatever their
    # type, a string never equals a number, and true/false are sentinels.
    def test(canon: object) -> bool:
        return canon == expected

    return test


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
