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

The pieces live in private modules of this package, each importing only
those before it: ``_values`` (reading, classifying and canonicalising
document values; rendering them in messages), ``_tree`` (the compiled tree
and its explanations), ``_operators`` (one compiler per operator),
``_compile`` (a spec into a tree), ``_limits`` (how large a pattern may be,
checked before compiling), ``_complexity`` (EventBridge's limit on
wildcards), ``_codegen`` (the generated code) and ``_bind`` (the field
checks of :meth:`Pattern.bind`). This module holds :class:`Pattern` itself
and the two helpers :mod:`eventbus.patterns._index` relies on.
"""

from __future__ import annotations

import copy
import threading
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeAlias, final

from .._exceptions import PatternError
from ._bind import _check_body, _ObjectShape, _shape_of
from ._codegen import _dispatcher
from ._compile import _compile_body, _parse_json, _plain
from ._complexity import check_wildcard_complexity
from ._limits import DEFAULT_LIMITS, PatternLimits, check_limits, check_text
from ._operators import NUMERIC_LIMIT as NUMERIC_LIMIT
from ._operators import NUMERIC_PLACES as NUMERIC_PLACES
from ._operators import OPERATORS as OPERATORS
from ._tree import _Body, _explain_containers, _Nested, _Or, _Test
from ._values import (
    _ARRAY,
    _EMPTY,
    _MISSING,
    _OBJECT,
    _ROOT,
    _SCALAR,
    _canon,
    _containers,
    _get,
    _join,
    _kind,
    _object_fields,
    _scalars,
)

__all__ = ["Pattern"]


#: The most alternatives ``$or`` may multiply out to in one pattern, by default.
MAX_COMBINATIONS: Final = DEFAULT_LIMITS.max_combinations

#: How many document types one pattern inlines in its dispatcher; more go through a dict.
_MAX_INLINED: Final = 8


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
        limits: how large the pattern may be (:class:`PatternLimits`);
            EventBridge's quotas by default. Checked before anything is
            built.

    Raises:
        PatternError: the pattern is invalid, or over one of *limits*; the
            message names the JSON path of the offending part
            (``where.key[0]: ...``), what is wrong and how to fix it.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       The *limits* argument; patterns over EventBridge's size quota are refused.
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
    #: arrays. Values that are not JSON-like (bytes, other objects) only
    #: satisfy ``exists`` and ``anything-but``. Never raises for JSON-like
    #: documents, except :class:`~eventbus.SerializationError` where the
    #: pattern reads arrays nested more than
    #: :data:`~eventbus.patterns.MAX_ARRAY_DEPTH` deep.
    matches: Callable[[object], bool]
    _spec: dict[str, Any]
    _body: _Body
    _generic: _Test
    _inlined: tuple[type, ...]  # the document types the generated matches() has code for
    _overflow: dict[type, _Test]  # code for further types, once _inlined is full
    _lock: threading.Lock  # serialises code generation

    def __init__(
        self, spec: Mapping[str, Any] | str | Pattern, *, limits: PatternLimits | None = None
    ) -> None:
        self.matches = self._slow
        self._inlined = ()
        self._overflow = {}
        self._lock = threading.Lock()
        if isinstance(spec, Pattern):
            self._spec = spec._spec
            self._body = spec._body
            self._generic = spec._generic
            return
        if limits is None:
            limits = DEFAULT_LIMITS
        elif not isinstance(limits, PatternLimits):
            raise TypeError(f"limits must be a PatternLimits, got {type(limits).__name__}")
        parsed: object = spec
        if isinstance(spec, str):
            check_text(spec, limits)
            parsed = _parse_json(spec)
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
        check_limits(parsed, limits)
        body = _compile_body(parsed, _ROOT)
        if body.combinations > limits.max_combinations:
            raise PatternError(
                f"the $or alternatives multiply out to {body.combinations:,} combinations, "
                f"more than the limit of {limits.max_combinations:,} "
                "(PatternLimits.max_combinations); factor shared fields out of $or, "
                "or split the pattern into several subscriptions",
                path=_ROOT,
            )
        check_wildcard_complexity(parsed)
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

        Raises:
            SerializationError: as :attr:`matches` does, for arrays nested
                too deeply.
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


# --------------------------------------------------------------------------- for the index


#: An anchor: the path of keys to a field, and the (kind, key) pairs filed for it.
Anchor: TypeAlias = tuple[tuple[str, ...], frozenset[tuple[str, object]]]


def anchor(pattern: Pattern) -> Anchor | None:
    """A field the pattern requires to pass one of a few indexable tests, if there is one.

    Returns the path of keys to the field (through nested objects, never
    through ``$or``) and the index keys of the alternatives in its array
    (:attr:`_Alt.key`: exact values, prefixes, suffixes, casefolded values
    and affixes), or None when no field has only such alternatives. Any
    document the pattern matches has, at that path, a leaf that one of
    these keys finds; :class:`~eventbus.patterns.PatternIndex` relies on it.
    Fields with only exact values are preferred (the cheapest lookups),
    then the shallowest, then the first.
    """
    found: list[tuple[bool, int, int, Anchor]] = []
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
            elif not node.absent_ok and all(a.key is not None for a in node.alts):
                keys = frozenset(a.key for a in node.alts if a.key is not None)
                exact_only = all(kind == "exact" for kind, _ in keys)
                found.append((not exact_only, len(path), len(found), (path, keys)))
    return min(found)[3] if found else None


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
    where = "event"
    containers = [c for c in _containers(doc, where) if c is not _EMPTY]
    for key in path[:-1]:
        where = _join(where, key)
        deeper: list[object] = []
        for container in containers:
            deeper += [c for c in _containers(_get(container, key), where) if c is not _EMPTY]
        containers = deeper
    where = _join(where, path[-1])
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
            found += [_canon(item) for item in _scalars(value, where)]  # type: ignore[arg-type]
    return found
