"""The operators of the pattern language, each validated and compiled into an alternative.

One compiler per operator (``prefix``, ``suffix``, ``anything-but``,
``numeric``, ``exists``, ``equals-ignore-case``, ``wildcard``, ``cidr``) takes
the operand and its JSON path, enforces EventBridge's rules for the operand
(``docs/patterns.md``), and returns an :class:`~eventbus._pattern_tree._Alt`:
its test on canonical leaves, its description, its explanation of a mismatch,
and an inlinable form for the generated code when there is one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from .._exceptions import PatternError
from ._tree import _affix_test, _Alt, _fold_test, _never, _Test
from ._values import _canon, _did_you_mean, _is_number, _render

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


#: ``numeric`` operands lie in [-NUMERIC_LIMIT, NUMERIC_LIMIT] ...
NUMERIC_LIMIT: Final = Decimal("5e9")
#: ... with at most this many digits after the decimal point.
NUMERIC_PLACES: Final = 6

_COMPARISONS: Final = ("<", "<=", "=", ">", ">=")
_ANYTHING_BUT_OBJECT: Final = ("prefix", "suffix", "equals-ignore-case", "wildcard")


def _finite(number: float | Decimal) -> bool:
    if isinstance(number, Decimal):
        return number.is_finite()
    return number == number and number not in (float("inf"), float("-inf"))


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

    if ignore_case:
        folded = text.casefold()
        return _Alt(
            "prefix",
            test,
            described,
            why,
            fold=("prefix", folded),
            key=("prefix-ignore-case", folded),
        )
    return _Alt("prefix", test, described, why, fast=("prefix", text), key=("prefix", text))


def _prefix_test(text: str, ignore_case: bool) -> _Test:
    if ignore_case:
        return _fold_test(frozenset(), (text.casefold(),), ())

    def test_exact(canon: object) -> bool:
        return type(canon) is str and canon.startswith(text)

    return test_exact


def _suffix_test(text: str, ignore_case: bool) -> _Test:
    if ignore_case:
        return _fold_test(frozenset(), (), (text.casefold(),))

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

    if ignore_case:
        folded = text.casefold()
        return _Alt(
            "suffix",
            test,
            described,
            why,
            fold=("suffix", folded),
            key=("suffix-ignore-case", folded),
        )
    return _Alt("suffix", test, described, why, fast=("suffix", text), key=("suffix", text))


def _ignore_case_test(texts: Sequence[str]) -> _Test:
    return _fold_test(frozenset(t.casefold() for t in texts), (), ())


def _op_equals_ignore_case(operand: object, path: str) -> _Alt:
    text = _string_operand(operand, path, "equals-ignore-case")
    test = _ignore_case_test([text])

    def why(value: object) -> str:
        if not isinstance(_canon(value), str):
            return f"{_render(value)} is not a string, so it cannot equal {_render(text)} ignoring case"
        return f"{_render(value)} is not {_render(text)}, even ignoring case"

    folded = text.casefold()
    return _Alt(
        "equals-ignore-case",
        test,
        f"{_render(text)} (ignoring case)",
        why,
        fold=("eq", folded),
        key=("equals-ignore-case", folded),
    )


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


def _op_wildcard(operand: object, path: str) -> _Alt:
    text = _string_operand(operand, path, "wildcard")
    segments = _parse_wildcard(text, path)
    test = _wildcard_test(segments)
    # A wildcard with a literal start (end) can only match strings with that prefix (suffix).
    key: tuple[str, object] | None = None
    if len(segments) == 1:
        key = ("exact", segments[0])
    elif segments[0]:
        key = ("prefix", segments[0])
    elif segments[-1]:
        key = ("suffix", segments[-1])

    def why(value: object) -> str:
        if not isinstance(_canon(value), str):
            return (
                f"{_render(value)} is not a string, so it cannot match the wildcard {_render(text)}"
            )
        return f"{_render(value)} does not match the wildcard {_render(text)}"

    return _Alt("wildcard", test, f"wildcard {_render(text)}", why, key=key)


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
            # A single string or, since 2024, an array of them: {"prefix": ["init", "test"]}.
            texts = _string_list(value, here, name, allow_empty=False)
            inner = (
                _affix_test(tuple(texts), ()) if name == "prefix" else _affix_test((), tuple(texts))
            )
            shown = f"{name} {_render(texts[0]) if len(texts) == 1 else _render(texts)}"
        elif name == "equals-ignore-case":
            texts = _string_list(value, here, name)
            inner = _ignore_case_test(texts)
            shown = f"{_render(texts[0]) if len(texts) == 1 else _render(texts)} (ignoring case)"
        elif name == "wildcard":
            texts = _string_list(value, here, name)
            wildcard_tests = [_wildcard_test(_parse_wildcard(t, here)) for t in texts]

            def inner(canon: object) -> bool:
                return any(t(canon) for t in wildcard_tests)

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


def _string_list(value: object, path: str, name: str, *, allow_empty: bool = True) -> list[str]:
    if isinstance(value, str):
        return [_string_operand(value, path, name, allow_empty=allow_empty)]
    if isinstance(value, (list, tuple)) and value:
        texts = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise PatternError(
                    f"{name} takes strings, got {_render(item)}", path=f"{path}[{i}]"
                )
            texts.append(_string_operand(item, f"{path}[{i}]", name, allow_empty=allow_empty))
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
