"""Checking ``subscribe()``'s arguments, so a mistake fails at subscribe time.

Each check raises a ``TypeError``/``ValueError`` (or ``PatternError``) whose
message says which argument was wrong and what to pass instead.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._attempts import Handler, Matcher
from ._events import Event
from ._exceptions import UnknownSubscription
from .patterns import Pattern

__all__ = [
    "check_event_types",
    "check_int",
    "check_ordered_by",
    "compile_where",
    "default_name",
    "inspect_handler",
    "unknown",
]


def check_event_types(event_types: object) -> tuple[type[Event], ...]:
    types = event_types if isinstance(event_types, tuple) else (event_types,)
    if not types:
        raise TypeError("subscribe() needs at least one event type, got an empty tuple")
    for t in types:
        if not (isinstance(t, type) and issubclass(t, Event)):
            raise TypeError(
                f"event_types must be Event subclasses (or a tuple of them), got {t!r}; "
                "define events as '@attrs.frozen class MyEvent(eventbus.Event): ...'"
            )
    return types


def check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"subscribe({name}=...) must be an int >= 1, got {value!r}")


def check_ordered_by(ordered_by: object, types: tuple[type[Event], ...]) -> None:
    if callable(ordered_by) and not isinstance(ordered_by, str):
        return
    if not isinstance(ordered_by, str) or not ordered_by:
        raise TypeError(f"ordered_by must be a field name or a key function, got {ordered_by!r}")
    for t in types:
        fields = attrs.fields_dict(t)
        if ordered_by not in fields:
            hint = difflib.get_close_matches(ordered_by, list(fields), n=1)
            suggestion = (
                f'; did you mean "{hint[0]}"?' if hint else f"; fields are {', '.join(fields)}"
            )
            raise ValueError(f'ordered_by: {t.__name__} has no field "{ordered_by}"{suggestion}')


def compile_where(
    where: object, types: tuple[type[Event], ...]
) -> tuple[Pattern | Callable[[Any], bool] | None, Matcher | None]:
    """Turn ``where=`` into (what the subscription keeps, the matching function)."""
    if where is None:
        return None, None
    if isinstance(where, Mapping | str | Pattern):
        pattern = where if isinstance(where, Pattern) else Pattern(where)
        pattern.bind(types)
        return pattern, pattern.matches
    if callable(where):
        return where, where
    raise TypeError(
        f"where= must be an EventBridge-style pattern (a dict) or a predicate "
        f"(event) -> bool, got {type(where).__name__}"
    )


def inspect_handler(handler: Handler) -> tuple[bool, bool]:
    """Return ``(is_async, wants_context)`` for *handler*, or raise a clear TypeError."""
    if not callable(handler):
        raise TypeError(
            f"handler must be a callable such as 'async def handler(event)' or "
            f"'async def handler(event, ctx)', got {type(handler).__name__} {handler!r:.80}"
        )
    target: Any = handler
    is_async = inspect.iscoroutinefunction(target) or (
        not inspect.isfunction(target)
        and not inspect.ismethod(target)
        and inspect.iscoroutinefunction(getattr(target, "__call__", None))  # noqa: B004
    )
    if inspect.isasyncgenfunction(target):
        raise TypeError(
            f"handler {_callable_name(handler)} is an async generator function; "
            "handlers must be 'async def' functions that return (not yield)"
        )
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return is_async, False  # a builtin without a signature: give it the event only
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    has_varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    required = [p for p in positional if p.default is p.empty]
    if has_varargs or len(positional) >= 2:
        if len(required) > 2:
            raise _arity_error(handler, len(required))
        return is_async, True
    if len(positional) == 1:
        return is_async, False
    raise _arity_error(handler, len(required))


def _arity_error(handler: Handler, count: int) -> TypeError:
    return TypeError(
        f"handler {_callable_name(handler)} takes {count} required positional "
        "argument(s); a handler takes (event) or (event, ctx)"
    )


def _callable_name(handler: Handler) -> str:
    target: Any = handler
    while isinstance(target, functools.partial):
        target = target.func
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    module = getattr(target, "__module__", None)
    return f"{module}.{name}" if module and module != "builtins" else str(name)


def default_name(handler: Handler) -> str:
    """The default subscription name: the handler function's name.

    A function defined inside another is named ``index``, not
    ``main.<locals>.index``; a method keeps its class (``Mailer.send``).
    For a ``functools.partial`` it is the wrapped function's; for a callable
    object, its class's.
    """
    target: Any = handler
    while isinstance(target, functools.partial):
        target = target.func
    name = getattr(target, "__qualname__", None)
    if not isinstance(name, str):
        name = type(target).__qualname__
    return name.rpartition("<locals>.")[2]


def unknown(name: object, known: Mapping[str, object]) -> UnknownSubscription:
    if not isinstance(name, str):  # a caller's mistake: say so rather than fail in difflib
        listing = ", ".join(repr(n) for n in known) or "none yet"
        return UnknownSubscription(
            f"no subscription named {name!r:.80}: names are str, got {type(name).__name__}; "
            f"subscriptions: {listing}"
        )
    hint = difflib.get_close_matches(name, list(known), n=1)
    if hint:
        return UnknownSubscription(f'no subscription named "{name}"; did you mean "{hint[0]}"?')
    listing = ", ".join(repr(n) for n in known) or "none yet"
    return UnknownSubscription(f'no subscription named "{name}"; subscriptions: {listing}')
