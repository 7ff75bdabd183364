"""EventBridge's limit on wildcard complexity, checked when a pattern is compiled.

EventBridge refuses a pattern whose wildcards could keep too many partial
matches alive at once ("Rule is too complex - try using fewer wildcard
characters or fewer repeating character sequences after a wildcard
character"). Our matcher is linear whatever the wildcard, but a pattern that
EventBridge refuses is refused here too, so patterns move between the two.

The measure is the one of AWS's event-ruler: the wildcard values of one field
(``wildcard`` and ``anything-but``/``wildcard`` alternatives) are laid out as
one byte automaton, values sharing the states of their common literal start
and of the first ``*`` after it; for every set of states some input can reach
together, each state counts the distinct values that pass through it (and a
``*`` state one step away counts too). More than :data:`MAX_WILDCARD_COMPLEXITY`
for some input is too complex. For instance ``"*:*:*:*:*:event-bus/*"`` is, and
``"arn:aws:events:us-east-1:*:event-bus/*"`` is not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from .._exceptions import PatternError
from ._compile import _expand_dotted
from ._operators import _parse_wildcard
from ._values import _ROOT, _join

__all__ = ["MAX_WILDCARD_COMPLEXITY", "check_wildcard_complexity"]

#: The most partial wildcard matches one input may keep alive in a field.
MAX_WILDCARD_COMPLEXITY: Final = 10

_ANY: Final = -1  # the token of an unescaped "*"
_QUOTE: Final = 0x22  # event-ruler matches the value with its enclosing quotes

#: A wildcard term of a field: its identity and the wildcard values it holds.
_Term = tuple[tuple[str, tuple[str, ...]], tuple[str, ...]]


def check_wildcard_complexity(spec: Mapping[Any, Any]) -> None:
    """Raise :class:`PatternError` when a field's wildcards are too complex for EventBridge.

    Args:
        spec: a pattern that has already been validated.
    """
    fields: dict[str, list[_Term]] = {}
    for path, term in _terms(spec, _ROOT):
        terms = fields.setdefault(path, [])
        if term not in terms:
            terms.append(term)
    for path, terms in fields.items():
        if _complexity(terms) > MAX_WILDCARD_COMPLEXITY:
            raise PatternError(
                "the wildcards are too complex for EventBridge (which refuses the rule: "
                '"Rule is too complex"); use fewer "*" characters, or fewer repeated '
                'character sequences after a "*"',
                path=path,
            )


def _terms(spec: Mapping[Any, Any], path: str) -> Iterator[tuple[str, _Term]]:
    if any(isinstance(key, str) and "." in key for key in spec):
        spec = _expand_dotted(spec)
    for key, value in spec.items():
        if key == "$or" and isinstance(value, Sequence) and not isinstance(value, str):
            for branch in value:
                if isinstance(branch, Mapping):
                    yield from _terms(branch, path)
            continue
        here = _join(path, str(key))
        if isinstance(value, Mapping):
            yield from _terms(value, here)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            for item in value:
                term = _term(item, here)
                if term is not None:
                    yield here, term


def _term(item: object, path: str) -> _Term | None:
    if not isinstance(item, Mapping) or len(item) != 1:
        return None
    ((name, operand),) = item.items()
    if name == "wildcard" and isinstance(operand, str):
        return ("wildcard", (operand,)), (operand,)
    if name == "anything-but" and isinstance(operand, Mapping) and len(operand) == 1:
        ((inner, values),) = operand.items()
        if inner != "wildcard":
            return None
        texts = (values,) if isinstance(values, str) else tuple(values)
        unique = tuple(sorted(set(texts)))
        return ("anything-but:wildcard", unique), unique
    return None


def _tokens(text: str) -> list[int]:
    segments = _parse_wildcard(text, "")
    tokens = [_QUOTE]
    for i, segment in enumerate(segments):
        if i:
            tokens.append(_ANY)
        tokens.extend(segment.encode("utf-8"))
    tokens.append(_QUOTE)
    return tokens


class _State:
    __slots__ = ("any", "literal", "prefix", "star", "weight")

    def __init__(self) -> None:
        self.literal: dict[int, list[int]] = {}
        self.any: list[int] = []
        self.weight: set[tuple[str, tuple[str, ...]]] = set()
        self.prefix: dict[int, int] = {}
        self.star = 0


def _complexity(terms: list[_Term]) -> int:
    """The largest weighted number of states one input keeps alive (capped past the limit)."""
    states = [_State()]
    ends: dict[tuple[str, tuple[str, ...]], int] = {}
    alphabet: set[int] = set()
    for identity, texts in terms:
        for text in texts:
            tokens = _tokens(text)
            current, previous = 0, -1
            determinate = True
            for i, token in enumerate(tokens):
                last = i == len(tokens) - 1
                target = 0
                if last:
                    target = ends.get(identity, 0)
                elif token == _ANY:
                    if determinate:
                        target = states[current].star
                        if not target:
                            states[current].star = len(states)
                    determinate = False
                elif determinate:
                    target = states[current].prefix.get(token, 0)
                created = not target
                if created:
                    target = len(states)
                    states.append(_State())
                    if last:
                        ends[identity] = target
                    elif determinate:
                        states[current].prefix[token] = target
                if token == _ANY:
                    if not states[target].any:
                        states[current].any.append(target)
                        states[target].any = [target]
                elif last or created:
                    alphabet.add(token)
                    states[current].literal.setdefault(token, []).append(target)
                    if i and tokens[i - 1] == _ANY:
                        states[previous].literal.setdefault(token, []).append(target)
                states[target].weight.add(identity)
                previous, current = current, target
    if len(states) == 1:
        return 0
    inputs = [_ANY, *sorted(alphabet)]  # _ANY stands for every byte with no literal step
    pending: list[frozenset[int]] = [frozenset({0})]
    seen: set[frozenset[int]] = set()
    highest = 0
    while pending:
        active = pending.pop()
        for byte in inputs:
            reached: set[int] = set()
            for index in active:
                state = states[index]
                reached.update(state.any)
                if byte != _ANY:
                    reached.update(state.literal.get(byte, ()))
            if not reached:
                continue
            size = 0
            for index in reached:
                size += len(states[index].weight)
                for star in states[index].any:
                    if star not in reached:
                        size += len(states[star].weight)
            if size > MAX_WILDCARD_COMPLEXITY:
                return size
            highest = max(highest, size)
            key = frozenset(reached)
            if key not in seen:
                seen.add(key)
                pending.append(key)
    return highest
