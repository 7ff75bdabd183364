"""The HTTP gateway: an ASGI application on Starlette that fronts a bus.

Requests become invocations (``invoke=``) or publications (``publish=``);
results become responses, and failed invocations become statuses through
the ``error_status`` mapping, API Gateway's integration-response pattern.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import re
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, final

try:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import Response
    from starlette.routing import Route
    from starlette.types import Message, Receive, Scope, Send
except ImportError as _exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "eventbus.http.Gateway needs Starlette and uvicorn: pip install 'eventbus[http]'"
    ) from _exc

from .._bus import Bus, Receipt
from .._events import Event, _new_id
from .._exceptions import (
    BusClosed,
    BusFull,
    HandlerTimeout,
    InvocationError,
    UnknownSubscription,
)
from .._serialization import _trace_context
from ._auth import Authenticator, Denied
from ._cloudevents import decode_cloudevents
from ._codec import build_event, encode_json, is_proxy_response, proxy_response
from ._errors import ErrorStatus, GatewayConfigError, HttpError
from ._openapi import openapi_document
from ._request import HttpRequest
from ._routes import RouteSpec, TokenBucket, make_route, retry_after

__all__ = ["Gateway"]

logger = logging.getLogger("eventbus.http")

_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_JSON: Final = "application/json"
_STATUS_TYPES: Final = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    503: "ServiceUnavailable",
}


@final
class _Bound:
    """A route and its runtime state."""

    __slots__ = ("bucket", "spec")

    def __init__(self, spec: RouteSpec) -> None:
        self.spec = spec
        self.bucket = TokenBucket(spec.rate_limit) if spec.rate_limit is not None else None


@final
class Gateway:
    """An ASGI application that exposes a :class:`~eventbus.Bus` over HTTP.

    Declare routes with :meth:`route`; the gateway also serves ``POST
    /events`` (CloudEvents), ``GET /health``, ``GET /metrics`` (with
    ``eventbus[prometheus]``) and ``GET /openapi.json``. Serve it with any
    ASGI server (``python -m eventbus serve module:gateway`` runs uvicorn).
    In the ASGI lifespan it starts the bus (``async with bus``) unless the
    bus is already running, and closes it on shutdown.

    Every answer that is not a success is JSON in Lambda's error shape,
    ``{"errorType", "errorMessage"}`` (with ``stackTrace`` when *debug*); no
    request can crash the application or see a traceback.

    Args:
        bus: the bus to front.
        error_status: regular expression -> status, in order: a failed
            invocation takes the status of the first pattern found
            (:func:`re.search`) in its ``errorMessage``, else of the first
            found in its ``errorType``. Unmatched: 504 for
            :class:`~eventbus.HandlerTimeout`, 429 for
            :class:`~eventbus.BusFull`, else 500.
        auth: an :class:`~eventbus.http.Authenticator` (any callable taking
            the :class:`~eventbus.HttpRequest`; see
            :class:`~eventbus.http.BearerTokens` and
            :class:`~eventbus.http.HmacSignature`), applied to every route,
            ``/events`` and ``/metrics``; ``/health`` and ``/openapi.json``
            stay open.
        max_body: the largest request body accepted, in bytes; larger ones
            are refused with 413 before they are read in full.
        debug: add ``stackTrace`` to error bodies (never in production).
        cloudevents: serve ``POST /events``.
        title: the API title in ``/openapi.json``.

    Raises:
        GatewayConfigError: an argument is invalid (an ``error_status``
            pattern that does not compile, a status outside 200-599, ...).

    .. versionadded:: 0.2
    """

    __slots__ = (
        "_app",
        "_auth",
        "_cloudevents",
        "_errors",
        "_openapi",
        "_paths",
        "_registry",
        "_routes",
        "bus",
        "debug",
        "max_body",
        "title",
    )

    def __init__(
        self,
        bus: Bus,
        *,
        error_status: Mapping[str, int]
        | Mapping[re.Pattern[str], int]
        | Mapping[str | re.Pattern[str], int]
        | Iterable[tuple[str | re.Pattern[str], int]]
        | None = None,
        auth: Authenticator | Callable[[HttpRequest], Any] | None = None,
        max_body: int = 1_048_576,
        debug: bool = False,
        cloudevents: bool = True,
        title: str = "eventbus",
    ) -> None:
        if not isinstance(bus, Bus):
            raise GatewayConfigError(
                f"Gateway(bus): expected an eventbus.Bus, got {type(bus).__name__}"
            )
        if auth is not None and not callable(auth):
            raise GatewayConfigError(
                "Gateway(auth=...): expected a callable taking the HttpRequest "
                f"(such as BearerTokens([...])), got {type(auth).__name__}"
            )
        if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 0:
            raise GatewayConfigError(
                f"Gateway(max_body=...): expected a number of bytes >= 0, got {max_body!r:.40}"
            )
        self.bus = bus
        self._errors = ErrorStatus(error_status)
        self._auth = auth
        self.max_body = max_body
        self.debug = bool(debug)
        self._cloudevents = bool(cloudevents)
        self.title = str(title)
        self._routes: list[RouteSpec] = []
        self._paths: dict[str, dict[str, _Bound]] = {}
        self._openapi: bytes | None = None
        self._registry: Any = None
        builtin = [
            Route("/health", self._health, methods=["GET"]),
            Route("/openapi.json", self._openapi_endpoint, methods=["GET"]),
            Route("/metrics", self._metrics, methods=["GET"]),
        ]
        if self._cloudevents:
            builtin.append(Route("/events", self._events, methods=["POST"]))
        self._app = Starlette(
            routes=builtin,
            exception_handlers={HTTPException: self._http_exception},
            lifespan=self._lifespan,
        )

    def __repr__(self) -> str:
        return f"<Gateway routes={len(self._routes)} bus={self.bus!r}>"

    # -- configuration -----------------------------------------------------------

    def route(
        self,
        method: str,
        path: str,
        *,
        invoke: str | None = None,
        publish: type[Event] | None = None,
        event: type[Event] | None = None,
        rate_limit: Any = None,
        summary: str | None = None,
    ) -> None:
        """Declare a route.

        Args:
            method: the HTTP method (``"POST"``, ``"GET"``, ...).
            path: the path template, Starlette style: ``"/orders/{order_id}"``
                (convertors such as ``{n:int}`` allowed).
            invoke: the name of the subscription to run with
                :meth:`Bus.invoke <eventbus.Bus.invoke>`; its return value is
                the 200 JSON response, or, when it is a dict with
                ``statusCode``, an API Gateway proxy response (``headers``,
                ``multiValueHeaders``, ``cookies``, ``body``,
                ``isBase64Encoded``).
            publish: an event class to build and publish; the answer is 202
                with ``{"id", "subscriptions"}``.
            event: with *invoke*, the event class built from the request:
                an attrs event filled from the JSON body's fields and the
                path parameters (default), or :class:`~eventbus.HttpRequest`
                for the whole request (the default when omitted).
            rate_limit: an :class:`~eventbus.RateLimit` for this route
                (counted on the bus clock); over it, 429 with ``Retry-After``.
            summary: the operation's summary in ``/openapi.json``.

        Raises:
            GatewayConfigError: a wrong argument, a path parameter that is
                not a field of the event, a reserved path, or a method and
                path declared twice.
        """
        spec = make_route(
            method,
            path,
            invoke=invoke,
            publish=publish,
            event=event,
            rate_limit=rate_limit,
            summary=summary,
        )
        table = self._paths.get(spec.path)
        if table is not None and spec.method in table:
            raise GatewayConfigError(
                f"route({spec.method!r}, {spec.path!r}) is already declared; each method and "
                "path pair routes to one target"
            )
        if table is None:
            table = self._paths[spec.path] = {}
        table[spec.method] = _Bound(spec)
        self._routes.append(spec)
        self._openapi = None
        endpoint = self._path_endpoint(table)
        routes = self._app.router.routes
        replacement = Route(spec.path, endpoint, methods=sorted(table))
        for index, existing in enumerate(routes):
            if isinstance(existing, Route) and existing.path == spec.path:
                routes[index] = replacement
                break
        else:
            routes.append(replacement)

    @property
    def routes(self) -> tuple[tuple[str, str], ...]:
        """The declared routes, as ``(method, path)`` pairs in declaration order."""
        return tuple((spec.method, spec.path) for spec in self._routes)

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document served at ``/openapi.json``."""
        return openapi_document(
            self._routes,
            title=self.title,
            version="0.2",
            auth=self._auth,
            cloudevents=self._cloudevents,
            metrics=True,
        )

    # -- ASGI ----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (HTTP or lifespan)."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, receive, tracked)
        except Exception:
            # Starlette answered already (500, no traceback); this only keeps
            # the server from seeing the error a second time.
            logger.exception(
                "gateway: unhandled error on %s %s", scope.get("method"), scope.get("path")
            )
            if not started:
                await _error_response(
                    HttpError(500, "InternalError", "internal error"), debug=False
                )(scope, receive, send)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: object) -> AsyncIterator[None]:
        if self.bus.running:
            yield
            return
        async with self.bus:
            yield

    # -- endpoints -----------------------------------------------------------------

    def _path_endpoint(self, table: dict[str, _Bound]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" and "HEAD" not in table else request.method
            bound = table[method]
            return await self._guarded(request, lambda rid: self._serve_route(request, bound, rid))

        return endpoint

    async def _guarded(
        self, request: Request, serve: Callable[[str], Awaitable[Response]]
    ) -> Response:
        rid = _request_id(request)
        try:
            response = await serve(rid)
        except HttpError as err:
            response = _error_response(err, debug=self.debug)
        except Exception as exc:
            logger.exception(
                "gateway: %s %s failed (request id %s)", request.method, request.url.path, rid
            )
            response = _error_response(
                HttpError(
                    500,
                    "InternalError",
                    f"internal error; the server log has the details (request id {rid})",
                    stack_trace=_stack(exc),
                ),
                debug=self.debug,
            )
        response.headers["x-request-id"] = rid
        return response

    async def _serve_route(self, request: Request, bound: _Bound, rid: str) -> Response:
        spec = bound.spec
        body = await self._read_body(request)
        whole: HttpRequest | None = None
        trace = _trace(request)
        if self._auth is not None or spec.event is HttpRequest:
            whole = _http_request(request, body, rid, spec.openapi_path, trace)
        await self._authenticate(whole)
        if bound.bucket is not None:
            wait = bound.bucket.take(self.bus.clock.now())
            if wait:
                raise HttpError(
                    429,
                    "TooManyRequests",
                    f"{spec.method} {spec.path} is rate limited to {_describe(spec)}; retry later",
                    headers={"retry-after": retry_after(wait)},
                )
        event: Event
        if whole is not None and spec.event is HttpRequest:
            event = whole
        else:
            params = {k: str(v) for k, v in request.path_params.items()}
            event = build_event(
                spec.event,
                body,
                params,
                request_id=_new_id(),
                source=spec.openapi_path,
                envelope=trace,
            )
        if spec.kind == "publish":
            receipt = await self._publish(event)
            return _json(_receipt(receipt), 202)
        result = await self._invoke(spec.target, event)
        if is_proxy_response(result):
            proxied = proxy_response(result)
            response = Response(proxied.body, status_code=proxied.status)
            response.raw_headers.extend(
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in proxied.headers
                if name != "content-length"
            )
            return response
        return Response(encode_json(result), status_code=200, media_type=_JSON)

    async def _events(self, request: Request) -> Response:
        async def serve(rid: str) -> Response:
            body = await self._read_body(request)
            if self._auth is not None:
                await self._authenticate(_http_request(request, body, rid, "/events"))
            headers = [
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.headers.raw
            ]
            events, batch = decode_cloudevents(headers, body)
            receipts = [_receipt(await self._publish(event)) for event in events]
            return _json({"events": receipts} if batch else receipts[0], 202)

        return await self._guarded(request, serve)

    async def _health(self, request: Request) -> Response:
        bus = self.bus
        running = bus.running
        document = {
            "status": "running" if running else "stopped",
            "subscriptions": len(bus.subscriptions()),
            "outstanding": bus.outstanding,
        }
        return _json(document, 200 if running else 503)

    async def _openapi_endpoint(self, request: Request) -> Response:
        if self._openapi is None:
            self._openapi = encode_json(self.openapi())
        return Response(self._openapi, media_type=_JSON)

    async def _metrics(self, request: Request) -> Response:
        async def serve(rid: str) -> Response:
            if self._auth is not None:
                await self._authenticate(_http_request(request, b"", rid, "/metrics"))
            registry = self._prometheus_registry()
            if registry is None:
                raise HttpError(
                    404,
                    "NotFound",
                    "/metrics needs prometheus-client: pip install 'eventbus[prometheus]'",
                )
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

        return await self._guarded(request, serve)

    def _prometheus_registry(self) -> Any:
        if self._registry is None:
            try:
                from prometheus_client import CollectorRegistry

                from ..prometheus import EventbusCollector
            except ImportError:
                return None
            registry = CollectorRegistry(auto_describe=False)
            registry.register(EventbusCollector(self.bus))
            self._registry = registry
        return self._registry

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        headers = dict(getattr(exc, "headers", None) or {})
        if status == 404:
            message = f"no route for {request.method} {request.url.path}; see /openapi.json"
        elif status == 405:
            allowed = sorted({m.strip() for m in headers.pop("Allow", "").split(",") if m.strip()})
            headers["allow"] = ", ".join(allowed)
            message = (
                f"{request.method} is not allowed on {request.url.path}; use {headers['allow']}"
            )
        else:
            message = str(getattr(exc, "detail", "error"))
        response = _error_response(
            HttpError(status, _STATUS_TYPES.get(status, "HttpError"), message, headers=headers),
            debug=False,
        )
        response.headers["x-request-id"] = _request_id(request)
        return response

    # -- steps -----------------------------------------------------------------------

    async def _read_body(self, request: Request) -> bytes:
        limit = self.max_body
        declared = request.headers.get("content-length")
        if declared is not None:
            declared = declared.strip()
            if not (declared.isascii() and declared.isdigit()):
                raise HttpError(400, "BadRequest", "Content-Length must be a number of bytes")
            if int(declared) > limit:
                raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
        except ClientDisconnect:
            raise HttpError(400, "BadRequest", "the client went away mid-body") from None
        return b"".join(chunks)

    async def _authenticate(self, request: HttpRequest | None) -> None:
        auth = self._auth
        if auth is None or request is None:
            return
        try:
            verdict = auth(request)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except Denied as denied:
            verdict = denied
        except PermissionError as exc:  # a plain refusal: forbidden
            verdict = Denied(str(exc) or "forbidden", status=403)
        if verdict is None:
            return
        if not isinstance(verdict, Denied):
            raise TypeError(
                f"the gateway's auth callable returned {type(verdict).__name__}; "
                "return None to admit the request or an eventbus.http.Denied to refuse it"
            )
        headers = {"www-authenticate": verdict.challenge} if verdict.challenge else {}
        raise HttpError(
            verdict.status,
            "Unauthorized" if verdict.status == 401 else "Forbidden",
            verdict.message,
            headers=headers,
        )

    async def _invoke(self, name: str, event: Event) -> Any:
        try:
            return await self.bus.invoke(name, event)
        except InvocationError as exc:
            raise self._invocation_error(exc) from None
        except UnknownSubscription:
            raise HttpError(
                500,
                "UnknownSubscription",
                f"this route invokes subscription {name!r}, which the bus does not have",
            ) from None
        except BusClosed:
            raise _unavailable() from None
        except BusFull:
            raise _busy() from None
        except TypeError as exc:
            raise HttpError(500, "InvalidRoute", str(exc)) from None

    def _invocation_error(self, exc: InvocationError) -> HttpError:
        status = self._errors.status_for(exc.error_type, exc.error_message)
        cause = exc.__cause__
        if status is None:
            if isinstance(cause, HandlerTimeout) or exc.error_type == "HandlerTimeout":
                status = 504
            elif isinstance(cause, BusFull) or exc.error_type == "BusFull":
                status = 429
            else:
                status = 500
        headers = {"retry-after": "1"} if status in (429, 503) else {}
        return HttpError(
            status, exc.error_type, exc.error_message, headers=headers, stack_trace=exc.stack_trace
        )

    async def _publish(self, event: Event) -> Receipt:
        bus = self.bus
        try:
            if bus.transport is None:
                return bus.publish_nowait(event)
            return await bus.publish(event)
        except BusFull:
            raise _busy() from None
        except BusClosed:
            raise _unavailable() from None


# -- helpers ---------------------------------------------------------------------------


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given
    return _new_id()


def _trace(request: Request) -> dict[str, str]:
    """The request's valid W3C trace context, as envelope fields (else nothing)."""
    headers = request.headers
    if "traceparent" not in headers:
        return {}
    return _trace_context(
        {"traceparent": headers.get("traceparent"), "tracestate": headers.get("tracestate")}
    )


def _http_request(
    request: Request,
    body: bytes,
    rid: str,
    route: str,
    trace: Mapping[str, str] | None = None,
) -> HttpRequest:
    headers: dict[str, list[str]] = {}
    for raw_name, raw_value in request.headers.raw:
        headers.setdefault(raw_name.decode("latin-1").lower(), []).append(
            raw_value.decode("latin-1")
        )
    query: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        query.setdefault(name, []).append(value)
    cookies = tuple(
        part.strip()
        for line in headers.get("cookie", ())
        for part in line.split(";")
        if part.strip()
    )
    client = request.client
    return HttpRequest(
        method=request.method,
        path=request.url.path,
        route=route,
        path_parameters={k: str(v) for k, v in request.path_params.items()},
        query=query,
        headers=headers,
        cookies=cookies,
        body=body,
        request_id=rid,
        source_ip=client.host if client is not None else None,
        version="http",
        traceparent=(trace or {}).get("traceparent"),
        tracestate=(trace or {}).get("tracestate"),
    )


def _receipt(receipt: Receipt) -> dict[str, Any]:
    return {"id": receipt.event_id, "subscriptions": list(receipt.subscriptions)}


def _json(document: Any, status: int) -> Response:
    return Response(encode_json(document), status_code=status, media_type=_JSON)


def _error_response(err: HttpError, *, debug: bool) -> Response:
    return Response(
        encode_json(err.body(debug=debug)),
        status_code=err.status,
        headers=err.headers,
        media_type=_JSON,
    )


def _stack(exc: BaseException) -> list[str]:
    return [line.rstrip("\n") for line in traceback.format_tb(exc.__traceback__)]


def _too_large(limit: int) -> HttpError:
    return HttpError(
        413,
        "PayloadTooLarge",
        f"the body is larger than this gateway's max_body of {limit} bytes; send less",
    )


def _busy() -> HttpError:
    return HttpError(
        429,
        "TooManyRequests",
        "the bus is full (a subscription's queue has no room); retry later",
        headers={"retry-after": "1"},
    )


def _unavailable() -> HttpError:
    return HttpError(
        503,
        "ServiceUnavailable",
        "the bus is not running; retry later",
        headers={"retry-after": "1"},
    )


def _describe(spec: RouteSpec) -> str:
    limit = spec.rate_limit
    if limit is None:
        return "no limit"
    return f"{limit.rate} per {limit.per:g}s"
