"""How large a pattern may be: :class:`PatternLimits`, checked before anything is built.

EventBridge bounds a pattern's size (2,048 characters by default) and the
number of combinations its ``$or`` multiply out to (1,000). eventbus applies
the same bounds, plus a nesting depth and a count of array elements, so that
building a pattern takes time and memory proportional to a small text, and
matching stays linear in the event: a pattern over the limits is refused
with a :class:`~eventbus.PatternError` naming the limit and the path where
it was crossed, having looked at no more of the spec than the limit allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, final

import attrs

from .._exceptions import PatternError
from ._values import _ROOT, _join

__all__ = ["DEFAULT_LIMITS", "MAX_LIMIT_DEPTH", "PatternLimits", "check_limits"]

#: The deepest ``max_depth`` may be set: compiling recurses once per level.
MAX_LIMIT_DEPTH: Final = 200


def _positive(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"PatternLimits.{attribute.name} must be a positive int, got {value!r}")


def _depth(inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    _positive(inst, attribute, value)
    if value > MAX_LIMIT_DEPTH:
        raise ValueError(
            f"PatternLimits.max_depth may be at most {MAX_LIMIT_DEPTH}, got {value!r}; "
            "flatten the pattern with dotted field names instead"
        )


@final
@attrs.frozen(kw_only=True)
class PatternLimits:
    """The bounds a pattern must stay within; pass one as ``Pattern(spec, limits=...)``.

    The defaults are EventBridge's quotas where it has one, so a pattern
    accepted here is accepted there. Raise them for larger in-process
    patterns: building a pattern costs time and memory in proportion to its
    size, and matching an event costs time linear in the event's size, in
    proportion to the pattern's size.

    Args:
        max_size: the most characters the pattern may have, written as
            compact JSON (``{"a":["x"]}`` is 11); pattern text given as a
            ``str`` counts as written. EventBridge's default quota is 2,048.
        max_depth: how deeply objects and arrays may nest in the pattern
            (``{"a": ["x"]}`` is 2 deep); at most :data:`MAX_LIMIT_DEPTH`.
        max_alternatives: the most elements all the pattern's arrays may
            hold together: values and operators in fields' arrays, ``$or``
            branches, and the items of operator operands.
        max_combinations: the most alternatives all ``$or`` in the pattern
            may multiply out to, as on EventBridge.

    Raises:
        ValueError: a limit is not a positive int.

    .. versionadded:: 0.2
    """

    max_size: int = attrs.field(default=2048, validator=_positive)
    max_depth: int = attrs.field(default=32, validator=_depth)
    max_alternatives: int = attrs.field(default=1000, validator=_positive)
    max_combinations: int = attrs.field(default=1000, validator=_positive)


#: The limits of ``Pattern(spec)`` when none are given.
DEFAULT_LIMITS: Final = PatternLimits()

_ATOM_SIZES: Final = {type(None): 4, bool: 5}


def check_text(text: str, limits: PatternLimits) -> None:
    """Refuse pattern text longer than ``limits.max_size`` before parsing it."""
    if len(text) > limits.max_size:
        raise PatternError(
            f"the pattern is {len(text):,} characters long, more than the limit of "
            f"{limits.max_size:,} (PatternLimits.max_size); split it into several "
            "subscriptions, or pass Pattern(spec, limits=PatternLimits(max_size=...))",
            path=_ROOT,
        )


def check_limits(spec: Mapping[object, object], limits: PatternLimits) -> None:
    """Refuse *spec* if it is larger, deeper or has more array elements than *limits* allow.

    The walk is iterative and stops as soon as a limit is crossed, so it
    costs at most time proportional to the limits, whatever the spec (even
    one that refers to itself).

    Raises:
        PatternError: naming the limit and the path where it was crossed.
    """
    max_size, max_depth = limits.max_size, limits.max_depth
    max_alternatives = limits.max_alternatives
    size = 0
    alternatives = 0
    stack: list[tuple[object, int, str]] = [(spec, 1, _ROOT)]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, Mapping):
            if depth > max_depth:
                raise _too_deep(max_depth, path)
            size += 1 + max(len(value), 1)  # the braces and the commas
            if size > max_size:
                raise _too_large(max_size, path)
            children: list[tuple[object, int, str]] = []
            for key, item in value.items():
                if isinstance(key, str):
                    # "a.b.c" is three levels: the compiler expands it into nested objects.
                    size += len(key) + 3  # the quotes and the colon
                    here, below = _join(path, key), depth + 1 + key.count(".")
                else:
                    size += 2
                    here, below = path, depth + 1
                if size > max_size:
                    raise _too_large(max_size, here)
                children.append((item, below, here))
            stack.extend(reversed(children))  # visited in order, first to last
        elif isinstance(value, (list, tuple)):
            if depth > max_depth:
                raise _too_deep(max_depth, path)
            size += 1 + max(len(value), 1)
            if size > max_size:
                raise _too_large(max_size, path)
            alternatives += len(value)
            if alternatives > max_alternatives:
                raise PatternError(
                    f"the pattern's arrays hold more than {max_alternatives:,} elements in all "
                    "(PatternLimits.max_alternatives); split it into several subscriptions, or "
                    "pass Pattern(spec, limits=PatternLimits(max_alternatives=...))",
                    path=path,
                )
            stack.extend(
                (value[i], depth + 1, f"{path}[{i}]") for i in range(len(value) - 1, -1, -1)
            )
        else:
            if isinstance(value, str):
                size += len(value) + 2
            elif isinstance(value, int) and not isinstance(value, bool):
                size += max(1, value.bit_length() * 3 // 10)  # about its decimal digits
            else:
                size += _ATOM_SIZES.get(type(value), 8)
            if size > max_size:
                raise _too_large(max_size, path)


def _too_large(max_size: int, path: str) -> PatternError:
    return PatternError(
        f"the pattern is more than {max_size:,} characters long as JSON "
        "(PatternLimits.max_size; it reached the limit here); split it into several "
        "subscriptions, or pass Pattern(spec, limits=PatternLimits(max_size=...))",
        path=path,
    )


def _too_deep(max_depth: int, path: str) -> PatternError:
    return PatternError(
        f"the pattern nests objects and arrays more than {max_depth} deep "
        "(PatternLimits.max_depth; each part of a dotted name such as "
        '"detail.state" is a level); flatten it, or pass '
        "Pattern(spec, limits=PatternLimits(max_depth=...))",
        path=path,
    )
