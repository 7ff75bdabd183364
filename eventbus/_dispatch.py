"""Routing: which subscriptions receive an event.

Routing is two steps. The *type index* maps each concrete event class to the
subscriptions whose ``event_types`` it is a subclass of; it is computed once
per class and cached, so publishing costs O(matching subscriptions), not
O(all subscriptions). Then content filters apply: subscriptions with a
``where`` pattern go through a :class:`~eventbus.PatternIndex` (exact-value
clauses are looked up, not evaluated one by one), and predicate filters are
called.
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, final

from .patterns import Pattern, PatternIndex

if TYPE_CHECKING:
    from ._events import Event
    from ._subscription import Subscription

__all__ = ["Router"]


@final
class _Plan:
    """The routing plan for one concrete event class."""

    __slots__ = (
        "filtered",
        "index",
        "names",
        "one",
        "one_names",
        "one_subs",
        "predicates",
        "unfiltered",
    )

    def __init__(self, subs: list[Subscription]) -> None:
        self.unfiltered = tuple(s for s in subs if s.where is None)
        self.names = tuple(s.name for s in self.unfiltered)
        self.filtered = tuple(s for s in subs if s.where is not None)
        self.predicates = tuple(s for s in self.filtered if not isinstance(s.where, Pattern))
        index: PatternIndex[Subscription] | None = None
        for s in self.filtered:
            if isinstance(s.where, Pattern):
                if index is None:
                    index = PatternIndex()
                index.add(s, s.where)
        self.index = index
        # Exactly one filtered subscription, with a where= pattern: publish tests that
        # pattern itself and takes one of two precomputed outcomes (in the order the
        # index path gives: the unfiltered subscriptions, then the matching ones).
        self.one: Pattern | None = None
        self.one_subs: tuple[Subscription, ...] = self.unfiltered
        self.one_names: tuple[str, ...] = self.names
        if len(self.filtered) == 1 and not self.predicates:
            (sub,) = self.filtered
            self.one = typing.cast("Pattern", sub.where)
            self.one_subs = (*self.unfiltered, sub)
            self.one_names = (*self.names, sub.name)


@final
class Router:
    """The type index over a bus's subscriptions (internal)."""

    __slots__ = ("_plans", "_subs")

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._plans: dict[type[Event], _Plan] = {}

    def add(self, sub: Subscription) -> None:
        self._subs.append(sub)
        self._plans.clear()

    def remove(self, sub: Subscription) -> None:
        self._subs.remove(sub)
        self._plans.clear()

    def plan(self, cls: type[Event]) -> _Plan:
        plan = self._plans.get(cls)
        if plan is None:
            plan = self._plans[cls] = _Plan(
                [s for s in self._subs if issubclass(cls, s.event_types)]
            )
        return plan
