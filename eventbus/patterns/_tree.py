"""The compiled form of a pattern: a tree of nodes, each holding a small closure.

A :class:`_Body` is an object pattern: every one of its clauses must match
the same object. A clause is a :class:`_Field`, naming either a
:class:`_Leaf` (the field's array of :class:`_Alt` alternatives) or a
:class:`_Nested` body, or an :class:`_Or` (``$or``). Each node builds its
matcher once, at compile time, and can say why a value fails it (what
:meth:`~eventbus._pattern.Pattern.explain` reports).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, final

from ._values import (
    _ARRAY,
    _MISSING,
    _OBJECT,
    _SCALAR,
    _canon,
    _containers,
    _get,
    _join,
    _kind,
    _objects,
    _render,
    _scalars,
)

_Test = Callable[[object], bool]


@final
class _Alt:
    """One alternative in a field's array: an exact value or an operator."""

    __slots__ = ("describe", "exact", "fast", "fold", "key", "kind", "test", "why")

    def __init__(
        self,
        kind: str,
        test: _Test,
        describe: str,
        why: Callable[[object], str],
        *,
        exact: object = _MISSING,
        fast: tuple[Any, ...] | None = None,
        fold: tuple[str, str] | None = None,
        key: tuple[str, object] | None = None,
    ) -> None:
        self.kind = kind  # "exact", "exists-true", "exists-false", or the operator name
        self.test = test  # canonical leaf -> bool
        self.describe = describe  # e.g. 'prefix "us-"'
        self.why = why  # raw leaf -> "why this leaf does not match"
        self.exact = exact  # the canonical value of an exact alternative
        self.fast = fast  # an inlinable form, see _fast_code()
        # ("eq" | "prefix" | "suffix", casefolded text): a case-insensitive test, which
        # _Leaf runs together with the others of its array on a value casefolded once
        self.fold = fold
        # (kind, key) under which PatternIndex may file it: a value can only pass the
        # test if looking it up finds this key (see eventbus.patterns._index)
        self.key = key


@final
class _Leaf:
    """A field's array of alternatives."""

    __slots__ = ("absent_ok", "alts", "match", "path", "test")

    def __init__(self, alts: tuple[_Alt, ...], path: str = "") -> None:
        self.alts = alts
        self.path = path  # where it is in the spec, for errors about the event
        self.absent_ok = any(a.kind == "exists-false" for a in alts)
        present = [a for a in alts if a.kind != "exists-false"]
        exact = [a for a in present if a.kind == "exact"]
        test: _Test
        if len(exact) > 1 and len(exact) == len(present):
            test = frozenset(a.exact for a in exact).__contains__
        elif len(present) == 1:
            test = present[0].test
        elif present:
            test = _grouped_test(present)
        else:
            test = _never
        self.test = test
        self.match = self._build_match()

    def _build_match(self) -> _Test:
        test = self.test
        absent_ok = self.absent_ok
        path = self.path.replace("where", "event", 1)

        def match(value: object) -> bool:
            if value is _MISSING:
                return absent_ok
            kind = _kind(value)
            if kind == _SCALAR:
                return test(_canon(value))
            if kind == _ARRAY:
                found = False
                for item in _scalars(value, path):  # type: ignore[arg-type]
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
        if len(present) == 1 and present[0].fast is not None:
            return present[0].fast
        # A plain string is its own canonical leaf: the leaf's test decides it directly.
        return ("str-test", self.test)

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
            leaves = list(_scalars(value, path.replace("where", "event", 1)))  # type: ignore[arg-type]
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


def _grouped_test(alts: Sequence[_Alt]) -> _Test:
    """Any of *alts*, with like tests run together: one set lookup for the exact
    values, one ``startswith``/``endswith`` for the prefixes and suffixes, one
    casefold of the value for every case-insensitive test."""
    exact = frozenset(a.exact for a in alts if a.kind == "exact")
    prefixes = tuple(a.fast[1] for a in alts if a.fast is not None and a.fast[0] == "prefix")
    suffixes = tuple(a.fast[1] for a in alts if a.fast is not None and a.fast[0] == "suffix")
    folds = [a.fold for a in alts if a.fold is not None]
    grouped = {id(a) for a in alts if a.kind == "exact" or a.fold is not None}
    grouped |= {id(a) for a in alts if a.fast is not None and a.fast[0] in ("prefix", "suffix")}
    tests = [a.test for a in alts if id(a) not in grouped]
    if exact:
        tests.insert(0, exact.__contains__)
    if prefixes or suffixes:
        tests.append(_affix_test(prefixes, suffixes))
    if folds:
        tests.append(
            _fold_test(
                frozenset(t for k, t in folds if k == "eq"),
                tuple(t for k, t in folds if k == "prefix"),
                tuple(t for k, t in folds if k == "suffix"),
            )
        )
    return _any_test(tests)


def _affix_test(prefixes: tuple[str, ...], suffixes: tuple[str, ...]) -> _Test:
    """Whether a string starts with one of *prefixes* or ends with one of *suffixes*."""

    def test(canon: object) -> bool:
        if type(canon) is not str:
            return False
        return (bool(prefixes) and canon.startswith(prefixes)) or (
            bool(suffixes) and canon.endswith(suffixes)
        )

    return test


def _fold_test(
    equal: frozenset[str], prefixes: tuple[str, ...], suffixes: tuple[str, ...]
) -> _Test:
    """Case-insensitive tests on casefolded operands, in time linear in the value.

    Casefolding maps each character to one or more, never to none, so a
    value longer than every folded operand cannot equal one, and only its
    first (last) *n* characters decide whether it starts (ends) with folded
    operands of at most *n* characters: a value is folded at most once per
    kind, and only as much of it as can matter.
    """
    equal_max = max(map(len, equal), default=-1)
    prefix_max = max(map(len, prefixes), default=0)
    suffix_max = max(map(len, suffixes), default=0)

    def test(canon: object) -> bool:
        if type(canon) is not str:
            return False
        if len(canon) <= equal_max and canon.casefold() in equal:
            return True
        if prefixes and canon[:prefix_max].casefold().startswith(prefixes):
            return True
        return bool(suffixes) and canon[max(0, len(canon) - suffix_max) :].casefold().endswith(
            suffixes
        )

    return test


def _any_test(tests: Sequence[_Test]) -> _Test:
    if len(tests) == 1:
        return tests[0]
    frozen = tuple(tests)

    def test(canon: object) -> bool:
        return any(t(canon) for t in frozen)

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
        path = body.path.replace("where", "event", 1)

        def match(value: object) -> bool:
            if type(value) is dict:
                return check(value)
            for container in _containers(value, path):  # noqa: SIM110 - no generator object per call
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
