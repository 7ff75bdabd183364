"""What one gateway route does, checked when it is declared (internal).

Nothing here needs Starlette.
"""

from __future__ import annotations

import math
import re
from typing import Final, Literal, final

import attrs

from .._events import Event
from .._flow import RateLimit
from ._codec import event_fields
from ._errors import GatewayConfigError
from ._request import HttpRequest

__all__ = ["RESERVED_PATHS", "RouteSpec", "TokenBucket", "make_route"]

#: Paths the gateway serves itself.
RESERVED_PATHS: Final = frozenset({"/events", "/health", "/metrics", "/openapi.json"})
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PARAM: Final = re.compile(r"\{([^{}]*)\}")
_PARAM_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONVERTORS: Final = frozenset({"str", "path", "int", "float", "uuid"})
_PATH_TEXT: Final = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/{}]*")


@final
@attrs.frozen
class RouteSpec:
    """One declared route (internal)."""

    method: str
    path: str  # the template as declared (Starlette syntax, convertors included)
    openapi_path: str  # the template without convertors: ``/orders/{order_id}``
    params: tuple[str, ...]
    kind: Literal["invoke", "publish"]
    target: str  # the subscription name, or the event type name for publish
    event: type[Event]
    rate_limit: RateLimit | None
    summary: str | None


def make_route(
    method: object,
    path: object,
    *,
    invoke: object,
    publish: object,
    event: object,
    rate_limit: object,
    summary: object,
) -> RouteSpec:
    """Check the arguments of ``Gateway.route`` and describe the route.

    Raises:
        GatewayConfigError: any argument is wrong; the message names it.
    """
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise GatewayConfigError(
            f"route(method=...): expected one of {', '.join(sorted(_METHODS))}, got {method!r:.40}"
        )
    method = method.upper()
    if not isinstance(path, str) or not _PATH_TEXT.fullmatch(path):
        raise GatewayConfigError(
            f"route(path=...): expected a path such as '/orders/{{order_id}}' (starting with "
            f"'/', no query string or spaces), got {path!r:.80}"
        )
    if path in RESERVED_PATHS:
        raise GatewayConfigError(
            f"route(path={path!r}): the gateway serves {path} itself; choose another path"
        )
    params: list[str] = []
    openapi_path = path
    for raw in _PARAM.findall(path):
        name, _, convertor = raw.partition(":")
        if not _PARAM_NAME.fullmatch(name) or (convertor and convertor not in _CONVERTORS):
            raise GatewayConfigError(
                f"route(path={path!r}): {{{raw}}} is not a path parameter; write {{name}} or "
                f"{{name:int}} (convertors: {', '.join(sorted(_CONVERTORS))})"
            )
        if name in params:
            raise GatewayConfigError(f"route(path={path!r}): parameter {name!r} appears twice")
        params.append(name)
        openapi_path = openapi_path.replace("{" + raw + "}", "{" + name + "}")
    if (invoke is None) == (publish is None):
        raise GatewayConfigError(
            "route(): pass exactly one of invoke='<subscription name>' (request/response) "
            "or publish=<Event class> (answered 202 once accepted)"
        )
    cls: object
    if invoke is not None:
        if not isinstance(invoke, str) or not invoke:
            raise GatewayConfigError(
                f"route(invoke=...): expected a subscription name, got {invoke!r:.60}"
            )
        cls = HttpRequest if event is None else event
        kind: Literal["invoke", "publish"] = "invoke"
        target = invoke
    else:
        if event is not None and event is not publish:
            raise GatewayConfigError(
                "route(publish=..., event=...): publish= already names the event class; drop event="
            )
        cls = publish
        kind = "publish"
        target = ""
    if not (isinstance(cls, type) and issubclass(cls, Event)):
        name = "event" if kind == "invoke" else "publish"
        raise GatewayConfigError(
            f"route({name}=...): expected an eventbus.Event subclass (such as an "
            f"@attrs.frozen class OrderPlaced(Event)), got {cls!r:.60}"
        )
    if kind == "publish":
        target = cls.event_type()
    if cls is not HttpRequest:
        fields = event_fields(cls)
        for name in params:
            if name not in fields:
                raise GatewayConfigError(
                    f"route(path={path!r}): path parameter {name!r} is not a field of "
                    f"{cls.__name__} (fields: {', '.join(fields) or 'none'}); rename one of them"
                )
    if rate_limit is not None and not isinstance(rate_limit, RateLimit):
        raise GatewayConfigError(
            f"route(rate_limit=...): expected an eventbus.RateLimit, got {rate_limit!r:.60}"
        )
    if summary is not None and not isinstance(summary, str):
        raise GatewayConfigError(f"route(summary=...): expected text, got {summary!r:.60}")
    return RouteSpec(
        method=method,
        path=path,
        openapi_path=openapi_path,
        params=tuple(params),
        kind=kind,
        target=target,
        event=cls,
        rate_limit=rate_limit,
        summary=summary,
    )


@final
class TokenBucket:
    """A route's :class:`~eventbus.RateLimit`, refusing instead of waiting (internal)."""

    __slots__ = ("_capacity", "_per_token", "_tokens", "_updated")

    def __init__(self, limit: RateLimit) -> None:
        self._capacity = float(limit.burst or limit.rate)
        self._per_token = limit.per / limit.rate
        self._tokens = self._capacity
        self._updated: float | None = None

    def take(self, now: float) -> float:
        """Take a token at time *now*; return 0.0, or the seconds until one is free."""
        if self._updated is not None:
            elapsed = max(0.0, now - self._updated)
            self._tokens = min(self._capacity, self._tokens + elapsed / self._per_token)
        self._updated = now
        if self._tokens >= 1.0 - 1e-9:
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return (1.0 - self._tokens) * self._per_token


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
