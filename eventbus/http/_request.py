"""The typed event for one HTTP request, whichever way it arrived.

:class:`HttpRequest` is what the HTTP gateway (:mod:`eventbus.http`) builds
from a live request, and what :func:`eventbus.aws.from_lambda_event` builds
from an API Gateway proxy payload (REST API v1, HTTP API v2), so a handler
written for one runs unchanged on the other. It needs no HTTP library.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from .._events import Event
from .._exceptions import SerializationError

__all__ = ["HttpRequest"]


def _lower_keys(value: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for name, values in value.items():
        key = str(name).lower()
        got = (values,) if isinstance(values, str) else tuple(str(v) for v in values)
        out[key] = out.get(key, ()) + got
    return out


def _multi(value: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    return {
        str(name): (values,) if isinstance(values, str) else tuple(str(v) for v in values)
        for name, values in value.items()
    }


@attrs.frozen
class HttpRequest(Event, type_name="eventbus.HttpRequest"):
    """One HTTP request: from the gateway, or from an API Gateway proxy payload.

    Header names are lower-cased; headers and query parameters keep every
    value (``Mapping[str, tuple[str, ...]]``), in the order they came.
    :meth:`header` and :meth:`query_param` read one value.

    Attributes:
        method: the HTTP method, upper case (``"GET"``).
        path: the request path as the client sent it, URL-decoded.
        route: the route template that matched (``"/orders/{order_id}"``),
            API Gateway's ``resource`` (v1) or the path of its ``routeKey``
            (v2); ``None`` when unknown.
        path_parameters: the values of the route's ``{placeholders}``.
        query: query-string parameters, each with all its values.
        headers: request headers by lower-case name, each with all its values.
        cookies: the ``Cookie`` pairs as sent (``"name=value"``).
        body: the raw body (base64 already decoded).
        stage: the API Gateway stage (``"$default"``, ``"prod"``), if any.
        request_id: the request id (API Gateway's ``requestContext.requestId``,
            the gateway's own id otherwise).
        source_ip: the client address, if known.
        authorizer: what an authorizer established: JWT claims, IAM identity
            or a Lambda authorizer's context, as plain values.
        version: where it came from: ``"1.0"`` (REST API), ``"2.0"`` (HTTP
            API) or ``"http"`` (the eventbus gateway).

    .. versionadded:: 0.2
    """

    method: str
    path: str
    route: str | None = None
    path_parameters: Mapping[str, str] = attrs.field(factory=dict)
    query: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, converter=_multi)
    headers: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, converter=_lower_keys)
    cookies: tuple[str, ...] = ()
    body: bytes = b""
    stage: str | None = None
    request_id: str = ""
    source_ip: str | None = None
    authorizer: Mapping[str, Any] = attrs.field(factory=dict)
    version: str = "http"

    def header(self, name: str, default: str | None = None) -> str | None:
        """The header *name* (any case); several values are joined with ``", "``."""
        values = self.headers.get(name.lower())
        return ", ".join(values) if values else default

    def query_param(self, name: str, default: str | None = None) -> str | None:
        """The last value of query parameter *name*, as API Gateway v1 reads it."""
        values = self.query.get(name)
        return values[-1] if values else default

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            SerializationError: the body is not valid JSON (the message says where).
        """
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError) as exc:
            raise SerializationError(
                f"HttpRequest.json(): the body of {self.method} {self.path} is not valid JSON: "
                f"{exc}; send a JSON body or read request.body / request.text instead"
            ) from None
