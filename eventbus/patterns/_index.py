"""A discrimination index over many patterns: :class:`PatternIndex`.

Most subscription patterns pin some field to a few values or shapes of
value (``{"bucket": ["photos"]}``, ``{"key": [{"prefix": "logs/"}]}``,
``{"user": [{"equals-ignore-case": "alice"}]}``). The index files each
pattern under one such field -- its *anchor*: the field, outside ``$or``,
whose array holds only alternatives with an index key (exact values,
prefixes, suffixes, ``equals-ignore-case``, prefixes and suffixes ignoring
case, and wildcards with a literal start or end), preferring exact values,
then the shallowest field. Per anchored field it keeps hash tables: exact
values; prefixes by length (a value of length *n* is looked up once per
distinct prefix length up to *n*: ``value[:k]``); suffixes the same way
from the end; casefolded values and affixes (the value is casefolded once,
and only as far as the longest key). To match a document it reads each
anchored field once, looks its values up, and evaluates only the patterns
found there, plus the patterns that have no anchor. So with 1,000 patterns
``{"key": [{"prefix": "k<i>/"}]}`` a lookup evaluates one pattern, not
1,000 (the spirit of AWS event-ruler, without its state machine).

It is exactly equivalent to evaluating every pattern: a pattern can only
match a document that holds, at its anchor, a leaf passing one of the
anchor's alternatives, and any such leaf finds that alternative's key
(exact values compared the way the matcher compares them; a string with a
prefix has it as its first characters; a wildcard ``"a*b"`` only matches
strings starting with ``"a"``), so the lookup finds every pattern that can
match; each is then evaluated in full.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, Final, Generic, TypeVar, final

from ._pattern import Anchor, Pattern, anchor, leaf_values

__all__ = ["PatternIndex"]

K = TypeVar("K", bound=Hashable)

#: With this many patterns or fewer, match() evaluates each one: cheaper than a lookup.
_DIRECT: Final = 2


@final
class _Entry(Generic[K]):
    __slots__ = ("anchor", "key", "pattern", "seq")

    def __init__(self, seq: int, key: K, pattern: Pattern, anchor: Anchor | None) -> None:
        self.seq = seq  # insertion order, to return keys in it
        self.key = key
        self.pattern = pattern
        self.anchor = anchor


_Bucket = tuple[_Entry[Any], ...]
_STRING_KINDS: Final = (
    "prefix",
    "suffix",
    "equals-ignore-case",
    "prefix-ignore-case",
    "suffix-ignore-case",
)


_Finder = Callable[[str, list[_Bucket]], None]


@final
class _Table:
    """The entries anchored at one field: a hash table per kind of index key."""

    __slots__ = ("exact", "finders", "tables")

    def __init__(self) -> None:
        self.exact: dict[object, _Bucket] = {}
        # kind -> key -> entries, for the string kinds
        self.tables: dict[str, dict[str, _Bucket]] = {kind: {} for kind in _STRING_KINDS}
        # the lookups of the string kinds that hold keys: what a string leaf runs
        self.finders: tuple[_Finder, ...] = ()

    def add(self, kind: str, key: object, entry: _Entry[Any]) -> None:
        table: dict[Any, _Bucket] = self.exact if kind == "exact" else self.tables[kind]
        table[key] = (*table.get(key, ()), entry)
        self._changed(kind)

    def remove(self, kind: str, key: object, entry: _Entry[Any]) -> None:
        table: dict[Any, _Bucket] = self.exact if kind == "exact" else self.tables[kind]
        bucket = tuple(e for e in table[key] if e is not entry)
        if bucket:
            table[key] = bucket
        else:
            del table[key]
        self._changed(kind)

    def _changed(self, kind: str) -> None:
        if kind != "exact":
            self.finders = tuple(
                _FINDERS[kind](table, tuple(sorted({len(k) for k in table})))
                for kind, table in self.tables.items()
                if table
            )

    def __bool__(self) -> bool:
        return bool(self.exact) or bool(self.finders)


def _find_prefix(table: dict[str, _Bucket], lengths: tuple[int, ...]) -> _Finder:
    def find(text: str, found: list[_Bucket]) -> None:
        n = len(text)
        for k in lengths:
            if k > n:
                break
            bucket = table.get(text[:k])
            if bucket is not None:
                found.append(bucket)

    return find


def _find_suffix(table: dict[str, _Bucket], lengths: tuple[int, ...]) -> _Finder:
    def find(text: str, found: list[_Bucket]) -> None:
        n = len(text)
        for k in lengths:
            if k > n:
                break
            bucket = table.get(text[n - k :])
            if bucket is not None:
                found.append(bucket)

    return find


# Casefolding never shortens a string: a text longer than every folded key cannot
# equal one, and only its first (last) k characters can fold into a folded prefix
# (suffix) of k characters.


def _find_folded(table: dict[str, _Bucket], lengths: tuple[int, ...]) -> _Finder:
    longest = lengths[-1]

    def find(text: str, found: list[_Bucket]) -> None:
        if len(text) <= longest:
            bucket = table.get(text.casefold())
            if bucket is not None:
                found.append(bucket)

    return find


def _find_folded_prefix(table: dict[str, _Bucket], lengths: tuple[int, ...]) -> _Finder:
    longest = lengths[-1]

    def find(text: str, found: list[_Bucket]) -> None:
        folded = text[:longest].casefold()
        n = len(folded)
        for k in lengths:
            if k > n:
                break
            bucket = table.get(folded[:k])
            if bucket is not None:
                found.append(bucket)

    return find


def _find_folded_suffix(table: dict[str, _Bucket], lengths: tuple[int, ...]) -> _Finder:
    longest = lengths[-1]

    def find(text: str, found: list[_Bucket]) -> None:
        folded = text[max(0, len(text) - longest) :].casefold()
        n = len(folded)
        for k in lengths:
            if k > n:
                break
            bucket = table.get(folded[n - k :])
            if bucket is not None:
                found.append(bucket)

    return find


_FINDERS: Final[dict[str, Callable[[dict[str, _Bucket], tuple[int, ...]], _Finder]]] = {
    "prefix": _find_prefix,
    "suffix": _find_suffix,
    "equals-ignore-case": _find_folded,
    "prefix-ignore-case": _find_folded_prefix,
    "suffix-ignore-case": _find_folded_suffix,
}


@final
class PatternIndex(Generic[K]):
    """Patterns under keys, matched together against one document.

    ``match(document)`` returns the keys of every pattern that matches, in the
    order they were added -- the same list as
    ``[k for k, p in patterns if p.matches(document)]``, computed without
    evaluating the patterns that cannot match::

        index: PatternIndex[str] = PatternIndex()
        index.add("thumbnails", {"bucket": ["photos"], "key": [{"suffix": ".png"}]})
        index.add("audit", {"bucket": ["photos", "docs"]})
        index.match(ObjectCreated("photos", "a.png", 10, "etag"))  # ["thumbnails", "audit"]

    Keys are any hashable values (the bus uses subscriptions). Adding and
    removing are not thread-safe with respect to each other or to
    :meth:`match`; guard them with a lock if threads share the index.

    .. versionadded:: 0.1
    """

    __slots__ = ("_direct", "_entries", "_seq", "_tables", "_unindexed")

    def __init__(self) -> None:
        self._entries: dict[K, _Entry[K]] = {}
        # anchor path -> the entries anchored there, by index key (buckets are tuples:
        # match() reads them without copying; add and remove replace them)
        self._tables: dict[tuple[str, ...], _Table] = {}
        # entries without an anchor, evaluated for every document, in insertion order
        self._unindexed: tuple[_Entry[K], ...] = ()
        # every pattern and key, in insertion order, while there are few enough to
        # evaluate them all (cheaper than looking anything up)
        self._direct: tuple[tuple[Pattern, K], ...] | None = ()
        self._seq = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __repr__(self) -> str:
        return (
            f"<PatternIndex: {len(self._entries)} patterns, "
            f"{len(self._entries) - len(self._unindexed)} indexed on {len(self._tables)} fields>"
        )

    def add(self, key: K, pattern: Pattern | Mapping[str, Any] | str) -> Pattern:
        """Add *pattern* under *key*.

        Args:
            key: the name to return from :meth:`match`; unique in the index.
            pattern: a :class:`Pattern`, or a spec to compile into one.

        Returns:
            The compiled pattern.

        Raises:
            ValueError: *key* is already in the index (remove it first).
            PatternError: *pattern* is a spec, and invalid.
        """
        if key in self._entries:
            raise ValueError(f"{key!r} is already in the index; remove it before adding it again")
        compiled = pattern if isinstance(pattern, Pattern) else Pattern(pattern)
        found = anchor(compiled)
        entry = _Entry(self._seq, key, compiled, found)
        self._seq += 1
        if found is None:
            self._unindexed = (*self._unindexed, entry)
        else:
            path, keys = found
            table = self._tables.get(path)
            if table is None:
                table = self._tables[path] = _Table()
            for kind, value in keys:
                table.add(kind, value, entry)
        self._entries[key] = entry
        self._direct = self._all() if len(self._entries) <= _DIRECT else None
        return compiled

    def remove(self, key: K) -> None:
        """Remove the pattern under *key*.

        Raises:
            KeyError: *key* is not in the index.
        """
        try:
            entry = self._entries.pop(key)
        except KeyError:
            raise KeyError(f"{key!r} is not in the index") from None
        self._direct = self._all() if len(self._entries) <= _DIRECT else None
        if entry.anchor is None:
            self._unindexed = tuple(e for e in self._unindexed if e is not entry)
            return
        path, keys = entry.anchor
        table = self._tables[path]
        for kind, value in keys:
            table.remove(kind, value, entry)
        if not table:
            del self._tables[path]

    def _all(self) -> tuple[tuple[Pattern, K], ...]:
        return tuple((e.pattern, e.key) for e in sorted(self._entries.values(), key=_seq))

    def match(self, value: object) -> list[K]:
        """The keys of every pattern matching *value*, in the order they were added.

        Args:
            value: an event or a JSON-like mapping, as for :meth:`Pattern.matches`.

        Returns:
            A new list of keys (empty when nothing matches).

        Raises:
            SerializationError: the patterns read arrays nested more than
                :data:`~eventbus.patterns.MAX_ARRAY_DEPTH` deep in *value*.
        """
        direct = self._direct
        if direct is not None:
            keys: list[K] = []
            for pattern, key in direct:
                if pattern.matches(value):
                    keys.append(key)
            return keys
        found: list[_Bucket] = []
        for path, table in self._tables.items():
            exact, finders = table.exact, table.finders
            for leaf in leaf_values(value, path):
                bucket = exact.get(leaf)
                if bucket is not None:
                    found.append(bucket)
                if finders and type(leaf) is str:
                    for find in finders:
                        find(leaf, found)
        if self._unindexed:
            found.append(self._unindexed)
        if not found:
            return []
        candidates: _Bucket
        if len(found) == 1:
            candidates = found[0]
        else:
            # Several fields or keys may find the same pattern; keep each once, in order.
            unique = {entry.seq: entry for bucket in found for entry in bucket}
            candidates = tuple(unique[seq] for seq in sorted(unique))
        return [entry.key for entry in candidates if entry.pattern.matches(value)]


def _seq(entry: _Entry[Any]) -> int:
    return entry.seq
