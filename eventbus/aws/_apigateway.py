"""API Gateway proxy payloads (REST API v1, HTTP API v2) <-> :class:`~eventbus.http.HttpRequest`.

A REST API (payload format 1.0) sends ``httpMethod``, ``resource``, single-
and multi-value headers and query parameters; an HTTP API (format 2.0) sends
``routeKey``, ``rawPath``, ``rawQueryString``, comma-joined headers and a
separate ``cookies`` list. Both read into the same :class:`HttpRequest`;
:func:`render` writes the format the event's ``version`` names (``"http"``,
a request from the eventbus gateway, renders as 2.0).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

import attrs

from ..http._request import HttpRequest
from ._common import (
    RenderOptions,
    as_list,
    as_object,
    as_str,
    b64encode,
    digest,
    epoch_millis,
    fail,
    join,
    json_copy,
    opt_obj,
    opt_str,
    parse_epoch_millis,
    req_obj,
    req_str,
)

__all__ = ["is_v1", "is_v2", "parse_v1", "parse_v2", "render"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_TEXT = "%d/%b/%Y:%H:%M:%S +0000"
_PATH_SAFE = "/!$&'()*+,;=:@~-._"
_DEFAULT_ROUTE = "$default"


def is_v1(payload: Mapping[str, Any]) -> bool:
    """Whether *payload* looks like a REST API (format 1.0) proxy request."""
    return "httpMethod" in payload and "requestContext" in payload


def is_v2(payload: Mapping[str, Any]) -> bool:
    """Whether *payload* looks like an HTTP API (format 2.0) proxy request."""
    context = payload.get("requestContext")
    return (
        payload.get("version") == "2.0"
        and "routeKey" in payload
        and isinstance(context, Mapping)
        and "http" in context
    )


# -- reading --------------------------------------------------------------------------


def _str_map(value: object, path: str) -> dict[str, str]:
    if value is None:
        return {}
    obj = as_object(value, path)
    return {key: as_str(item, join(path, key)) for key, item in obj.items() if item is not None}


def _multi_map(value: object, path: str) -> dict[str, list[str]]:
    if value is None:
        return {}
    obj = as_object(value, path)
    out: dict[str, list[str]] = {}
    for key, items in obj.items():
        if items is None:
            continue
        here = join(path, key)
        out[key] = [as_str(item, f"{here}[{i}]") for i, item in enumerate(as_list(items, here))]
    return out


def _method(text: str, path: str) -> str:
    if not text.strip():
        fail(path, "must not be empty")
    return text.upper()


def _lowered(headers: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Headers by lower-case name, values of names differing only in case merged, in linear time."""
    out: dict[str, list[str]] = {}
    for name, values in headers.items():
        out.setdefault(name.lower(), []).extend(values)
    return out


def _body(payload: Mapping[str, Any]) -> bytes:
    raw = payload.get("body")
    if raw is None:
        return b""
    text = as_str(raw, "body")
    encoded = payload.get("isBase64Encoded")
    if encoded is not None and not isinstance(encoded, bool):
        fail("isBase64Encoded", f"expected true or false, got {encoded!r:.40}")
    if encoded:
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            # Published samples flag plain text as base64 (aws-lambda-dotnet's
            # HTTP API request): the text is kept as it is, as for SNS Binary.
            pass
    return text.encode("utf-8", "surrogatepass")


def _time(context: Mapping[str, Any], key: str) -> datetime | None:
    raw = context.get(key)
    return None if raw is None else parse_epoch_millis(raw, join("requestContext", key))


def _with_envelope(request: HttpRequest, context: Mapping[str, Any], key: str) -> HttpRequest:
    """*request* with the envelope API Gateway's request context gives it."""
    time = _time(context, key)
    content = json.dumps(
        [request.method, request.path, request.query, request.headers, request.cookies],
        sort_keys=True,
        ensure_ascii=False,
    )
    return attrs.evolve(
        request,
        # No request id: one derived from the request, so that equal payloads
        # read as equal events.
        id=request.request_id
        or digest("apigateway", request.version, content, request.body.decode("latin-1")),
        source=opt_str(context, "apiId", "requestContext") or "",
        # No request time: the epoch, for the same reason.
        time=_EPOCH if time is None else time,
    )


def _cookie_pairs(headers: Mapping[str, list[str]]) -> tuple[str, ...]:
    pairs: list[str] = []
    for name, values in headers.items():
        if name.lower() == "cookie":
            for value in values:
                pairs.extend(part.strip() for part in value.split(";") if part.strip())
    return tuple(pairs)


def parse_v1(payload: Mapping[str, Any]) -> HttpRequest:
    """Read a REST API (format 1.0) proxy request."""
    context = req_obj(payload, "requestContext", "")
    headers = _multi_map(payload.get("multiValueHeaders"), "multiValueHeaders")
    seen = {name.lower() for name in headers}
    for name, value in _str_map(payload.get("headers"), "headers").items():
        if name.lower() not in seen:
            headers[name] = [value]
    query = _multi_map(
        payload.get("multiValueQueryStringParameters"), "multiValueQueryStringParameters"
    )
    for name, value in _str_map(
        payload.get("queryStringParameters"), "queryStringParameters"
    ).items():
        query.setdefault(name, [value])
    identity = opt_obj(context, "identity", "requestContext")
    request = HttpRequest(
        _method(req_str(payload, "httpMethod", ""), "httpMethod"),
        opt_str(payload, "path", "") or opt_str(context, "path", "requestContext") or "/",
        route=opt_str(payload, "resource", "") or None,
        path_parameters=_str_map(payload.get("pathParameters"), "pathParameters"),
        query=query,
        headers=_lowered(headers),
        cookies=_cookie_pairs(headers),
        body=_body(payload),
        stage=opt_str(context, "stage", "requestContext") or None,
        request_id=opt_str(context, "requestId", "requestContext") or "",
        source_ip=opt_str(identity, "sourceIp", "requestContext.identity") or None,
        authorizer=json_copy(
            opt_obj(context, "authorizer", "requestContext"), "requestContext.authorizer"
        ),
        version="1.0",
    )
    return _with_envelope(request, context, "requestTimeEpoch")


def parse_v2(payload: Mapping[str, Any]) -> HttpRequest:
    """Read an HTTP API (format 2.0) proxy request."""
    context = req_obj(payload, "requestContext", "")
    http = req_obj(context, "http", "requestContext")
    route_key = req_str(payload, "routeKey", "")
    route: str | None = None
    if route_key != _DEFAULT_ROUTE:
        _, _, route = route_key.partition(" ")
        route = route or route_key or None
    raw_query = opt_str(payload, "rawQueryString", "")
    query: dict[str, list[str]] = {}
    if raw_query:
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            query.setdefault(name, []).append(value)
    else:
        for name, value in _str_map(
            payload.get("queryStringParameters"), "queryStringParameters"
        ).items():
            query[name] = [value]
    raw_path = opt_str(payload, "rawPath", "")
    path = opt_str(http, "path", "requestContext.http") or unquote(raw_path or "/")
    raw_cookies = payload.get("cookies")
    cookies = (
        ()
        if raw_cookies is None
        else tuple(
            as_str(item, f"cookies[{i}]") for i, item in enumerate(as_list(raw_cookies, "cookies"))
        )
    )
    request = HttpRequest(
        _method(req_str(http, "method", "requestContext.http"), "requestContext.http.method"),
        path,
        route=route,
        path_parameters=_str_map(payload.get("pathParameters"), "pathParameters"),
        query=query,
        headers=_lowered({k: [v] for k, v in _str_map(payload.get("headers"), "headers").items()}),
        cookies=cookies,
        body=_body(payload),
        stage=opt_str(context, "stage", "requestContext") or None,
        request_id=opt_str(context, "requestId", "requestContext") or "",
        source_ip=opt_str(http, "sourceIp", "requestContext.http") or None,
        authorizer=json_copy(
            opt_obj(context, "authorizer", "requestContext"), "requestContext.authorizer"
        ),
        version="2.0",
    )
    return _with_envelope(request, context, "timeEpoch")


# -- rendering ------------------------------------------------------------------------


def _body_fields(body: bytes) -> tuple[str | None, bool]:
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return b64encode(body), True


def _domain(event: HttpRequest, options: RenderOptions) -> tuple[str, str]:
    """The API's default domain name and its id (the event's ``source``)."""
    api_id = event.source if event.version != "http" else ""
    if not api_id:
        return "", ""
    return f"{api_id}.execute-api.{options.region}.amazonaws.com", api_id


def _source_ip(event: HttpRequest) -> str:
    # A request read from a payload without a source IP (an ALB request)
    # renders none, so that it reads back the same; one built locally gets
    # the loopback address, which the strict models of handlers accept.
    if event.source_ip:
        return event.source_ip
    return "127.0.0.1" if event.version == "http" else ""


def _request_id(event: HttpRequest) -> str:
    # A request from the eventbus gateway is known by its event id.
    return event.request_id or (event.id if event.version == "http" else "")


def _first(event: HttpRequest, name: str, default: str) -> str:
    values = event.headers.get(name)
    return values[-1] if values else default


def render(event: HttpRequest, path: str, options: RenderOptions) -> dict[str, Any]:
    """Render an :class:`HttpRequest` as a proxy payload of its ``version``."""
    if not event.method:
        fail(join(path, "method"), "must not be empty")
    if event.version == "1.0":
        return _render_v1(event, options)
    if event.version in ("2.0", "http"):
        return _render_v2(event, options)
    fail(join(path, "version"), f"expected '1.0', '2.0' or 'http', got {event.version!r:.40}")


def _render_v1(event: HttpRequest, options: RenderOptions) -> dict[str, Any]:
    domain, api_id = _domain(event, options)
    body, encoded = _body_fields(bytes(event.body))
    headers = {name: list(values) for name, values in event.headers.items()}
    query = {name: list(values) for name, values in event.query.items()}
    # No route (an ALB request, which has no resource) renders as "" and reads back as None.
    route = event.route or ""
    context: dict[str, Any] = {
        "accountId": options.account,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": api_id,
        "extendedRequestId": _request_id(event),
        "httpMethod": event.method,
        "identity": {
            "accessKey": None,
            "accountId": None,
            "caller": None,
            "cognitoAuthenticationProvider": None,
            "cognitoAuthenticationType": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "principalOrgId": None,
            "sourceIp": _source_ip(event),
            "user": None,
            "userAgent": _first(event, "user-agent", ""),
            "userArn": None,
        },
        "path": event.path,
        "protocol": "HTTP/1.1",
        "requestId": _request_id(event),
        "requestTime": event.time.strftime(_EPOCH_TEXT),
        "requestTimeEpoch": epoch_millis(event.time),
        "resourceId": digest("resource", route)[:6],
        "resourcePath": route,
        "stage": event.stage or "",
    }
    if event.authorizer:
        context["authorizer"] = json_copy(dict(event.authorizer), "authorizer")
    return {
        "resource": route,
        "path": event.path,
        "httpMethod": event.method,
        "headers": {name: values[-1] for name, values in headers.items() if values},
        "multiValueHeaders": headers,
        "queryStringParameters": {name: values[-1] for name, values in query.items() if values}
        or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": dict(event.path_parameters) or None,
        "stageVariables": None,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": encoded,
    }


def _render_v2(event: HttpRequest, options: RenderOptions) -> dict[str, Any]:
    domain, api_id = _domain(event, options)
    body, encoded = _body_fields(bytes(event.body))
    route_key = (
        f"{event.method} {event.route}"
        if event.route and event.route != _DEFAULT_ROUTE
        else _DEFAULT_ROUTE
    )
    pairs = [(name, value) for name, values in event.query.items() for value in values]
    payload: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": quote(event.path, safe=_PATH_SAFE),
        "rawQueryString": urlencode(pairs),
    }
    if event.cookies:
        payload["cookies"] = list(event.cookies)
    payload["headers"] = {name: ",".join(values) for name, values in event.headers.items()}
    if event.query:
        payload["queryStringParameters"] = {
            name: ",".join(values) for name, values in event.query.items()
        }
    if event.path_parameters:
        payload["pathParameters"] = dict(event.path_parameters)
    context: dict[str, Any] = {
        "accountId": options.account,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": api_id,
        "http": {
            "method": event.method,
            "path": event.path,
            "protocol": "HTTP/1.1",
            "sourceIp": _source_ip(event),
            "userAgent": _first(event, "user-agent", ""),
        },
        "requestId": _request_id(event),
        "routeKey": route_key,
        "stage": event.stage or "",
        "time": event.time.strftime(_EPOCH_TEXT),
        "timeEpoch": epoch_millis(event.time),
    }
    if event.authorizer:
        context["authorizer"] = json_copy(dict(event.authorizer), "authorizer")
    payload["requestContext"] = context
    if body is not None:
        payload["body"] = body
    payload["isBase64Encoded"] = encoded
    return payload
