"""A discrimination index over many patterns: :class:`PatternIndex`.

Most subscription patterns pin some field to a few exact values
(``{"bucket": ["photos"]}``, ``{"detail": {"state": ["running"]}}``). The
index files each pattern under one such field -- its *anchor*: the shallowest
field, outside ``$or``, whose array holds only exact values -- in a hash table
from value to patterns. To match a document it reads each anchored field
once, looks its values up, and evaluates only the patterns found there, plus
the patterns that have no anchor. So with 1,000 patterns ``{"key": ["k<i>"]}``
a lookup evaluates one pattern, not 1,000 (the spirit of AWS event-ruler,
without its state machine).

It is exactly equivalent to evaluating every pattern: a pattern can only
match a document that holds, at its anchor, one of the anchor's values
(compared the way the matcher compares them), and those are precisely the
patterns the lookup finds.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Generic, TypeVar, final

from ._pattern import Pattern, exact_anchor, leaf_values

__all__ = ["PatternIndex"]

K = TypeVar("K", bound=Hashable)


@final
class _Entry(Generic[K]):
    __slots__ = ("anchor", "key", "pattern", "seq")

    def __init__(
        self,
        seq: int,
        key: K,
        pattern: Pattern,
        anchor: tuple[tuple[str, ...], frozenset[object]] | None,
    ) -> None:
        self.seq = seq  # insertion order, to return keys in it
        self.key = key
        self.pattern = pattern
        self.anchor = anchor


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

    __slots__ = ("_entries", "_seq", "_tables", "_unindexed")

    def __init__(self) -> None:
        self._entries: dict[K, _Entry[K]] = {}
        # anchor path -> canonical value -> the entries anchored there, in insertion order
        # (tuples: match() reads them without copying; add and remove replace them)
        self._tables: dict[tuple[str, ...], dict[object, tuple[_Entry[K], ...]]] = {}
        # entries without an anchor, evaluated for every document, in insertion order
        self._unindexed: tuple[_Entry[K], ...] = ()
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
        anchor = exact_anchor(compiled)
        entry = _Entry(self._seq, key, compiled, anchor)
        self._seq += 1
        if anchor is None:
            self._unindexed = (*self._unindexed, entry)
        else:
            path, values = anchor
            table = self._tables.setdefault(path, {})
            for value in values:
                table[value] = (*table.get(value, ()), entry)
        self._entries[key] = entry
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
        if entry.anchor is None:
            self._unindexed = tuple(e for e in self._unindexed if e is not entry)
            return
        path, values = entry.anchor
        table = self._tables[path]
        for value in values:
            bucket = tuple(e for e in table[value] if e is not entry)
            if bucket:
                table[value] = bucket
            else:
                del table[value]
        if not table:
            del self._tables[path]

    def match(self, value: object) -> list[K]:
        """The keys of every pattern matching *value*, in the order they were added.

        Args:
            value: an event or a JSON-like mapping, as for :meth:`Pattern.matches`.

        Returns:
            A new list of keys (empty when nothing matches).
        """
        found: tuple[_Entry[K], ...] = ()
        several = False
        for path, table in self._tables.items():
            for leaf in leaf_values(value, path):
                bucket = table.get(leaf)
                if bucket is not None:
                    several = bool(found)
                    found = found + bucket if found else bucket
        if self._unindexed:
            several = bool(found)
            found = found + self._unindexed if found else self._unindexed
        keys: list[K] = []
        if several:
            # Several fields or values may find the same pattern; keep each once, in order.
            found = tuple(sorted({entry.seq: entry for entry in found}.values(), key=_seq))
        for entry in found:
            if entry.pattern.matches(value):
                keys.append(entry.key)
        return keys


def _seq(entry: _Entry[Any]) -> int:
    return entry.seq
