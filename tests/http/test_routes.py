"""Gateway routes: invoke with typed events, publish, whole requests, proxy results."""

from __future__ import annotations

import base64
import json
from typing import Any

import attrs
import httpx
import pytest
from gateway_helpers import Counted, OrderPlaced, client

from eventbus import Bus, Event, HttpRequest
from eventbus.http import Gateway, GatewayConfigError


async def test_invoke_builds_the_event_from_body_and_path(http: httpx.AsyncClient) -> None:
    """The JSON body plus the path parameters build the event; the result is the 200 JSON."""
    response = await http.post("/orders/o-1", json={"quantity": 3})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"order_id": "o-1", "quantity": 3}


async def test_path_parameter_wins_over_the_body(http: httpx.AsyncClient) -> None:
    """A field named in the path takes the path's value."""
    response = await http.post("/orders/from-path", json={"order_id": "from-body"})
    assert response.json()["order_id"] == "from-path"


async def test_empty_body_uses_field_defaults(http: httpx.AsyncClient) -> None:
    """An empty body is an empty object: defaults apply."""
    response = await http.post("/orders/o-2")
    assert response.json() == {"order_id": "o-2", "quantity": 1}


async def test_mistyped_field_is_a_400_naming_it(http: httpx.AsyncClient) -> None:
    """A field of the wrong JSON type answers 400 naming the field."""
    response = await http.post("/orders/o-1", json={"quantity": [1]})
    assert response.status_code == 400
    body = response.json()
    assert body["errorType"] == "InvalidField"
    assert "body.quantity" in body["errorMessage"]


async def test_missing_field_is_a_400_naming_it(http: httpx.AsyncClient) -> None:
    """A required field absent from body and path answers 400 naming it."""
    response = await http.post("/orders", json={"quantity": 2})
    assert response.status_code == 400
    assert response.json() == {
        "errorType": "MissingField",
        "errorMessage": "body.order_id: required field of OrderPlaced is missing",
    }


async def test_bad_json_is_a_400_saying_where(http: httpx.AsyncClient) -> None:
    """Malformed JSON answers 400 with the line, column and byte offset."""
    response = await http.post("/orders/o-1", content=b'{"quantity": 3,,}')
    assert response.status_code == 400
    body = response.json()
    assert body["errorType"] == "InvalidJSON"
    assert "line 1 column 16 (byte 15)" in body["errorMessage"]


async def test_non_utf8_body_is_a_400(http: httpx.AsyncClient) -> None:
    """A body that is not UTF-8 text answers 400."""
    response = await http.post("/orders/o-1", content=b'{"note": "\xff"}')
    assert response.status_code == 400
    assert response.json()["errorType"] == "InvalidJSON"


async def test_body_must_be_an_object(http: httpx.AsyncClient) -> None:
    """A JSON array body answers 400 saying an object is expected."""
    response = await http.post("/orders/o-1", json=[1, 2])
    assert response.status_code == 400
    assert "got a JSON array" in response.json()["errorMessage"]


async def test_numeric_path_parameters_are_converted(routed_bus: Bus) -> None:
    """Path text becomes the field's type: int and float."""

    async def handler(event: Counted) -> list[Any]:
        return [event.n, event.ratio]

    routed_bus.subscribe(Counted, handler, name="counted")
    app = Gateway(routed_bus)
    app.route("GET", "/count/{n}/{ratio}", invoke="counted", event=Counted)
    async with client(app) as c:
        good = await c.get("/count/7/0.5")
        bad = await c.get("/count/seven/0.5")
    assert good.json() == [7, 0.5]
    assert bad.status_code == 400
    assert "path.n" in bad.json()["errorMessage"]


async def test_publish_answers_202_with_the_receipt(
    routed_bus: Bus, http: httpx.AsyncClient
) -> None:
    """A publish route answers 202 with the event id and the accepting subscriptions."""
    response = await http.post("/orders", json={"order_id": "o-9", "quantity": 2})
    assert response.status_code == 202
    body = response.json()
    assert body["subscriptions"] == ["create_order"]
    assert len(body["id"]) == 32
    await routed_bus.drain()
    assert routed_bus.metrics()["create_order"].succeeded == 1


async def test_http_request_route_gets_the_whole_request(http: httpx.AsyncClient) -> None:
    """event=HttpRequest hands the handler method, path, route, query, cookies, body and ids."""
    response = await http.post(
        "/echo/widget?a=1&a=2&b=x",
        content=b"raw body",
        headers={"x-custom": "hello", "cookie": "s=1; t=2", "x-request-id": "req-42"},
    )
    assert response.status_code == 201
    assert response.headers["x-handled"] == "yes"
    assert response.headers["x-request-id"] == "req-42"
    seen = response.json()
    assert seen == {
        "method": "POST",
        "path": "/echo/widget",
        "route": "/echo/{thing}",
        "path_parameters": {"thing": "widget"},
        "query": {"a": ["1", "2"], "b": ["x"]},
        "cookies": ["s=1", "t=2"],
        "body": "raw body",
        "source_ip": "127.0.0.1",
        "request_id": "req-42",
        "version": "http",
        "x_custom": "hello",
    }


async def test_head_is_served_by_the_get_route(http: httpx.AsyncClient) -> None:
    """HEAD on a GET route runs it and sends no body."""
    response = await http.head("/echo/x")
    assert response.status_code == 201
    assert response.content == b""


async def test_proxy_response_sets_status_headers_and_cookies(routed_bus: Bus) -> None:
    """A dict with statusCode is an API Gateway proxy response."""

    async def handler(event: HttpRequest) -> dict[str, Any]:
        return {
            "statusCode": 302,
            "headers": {"Location": "/elsewhere"},
            "multiValueHeaders": {"X-Many": ["a", "b"]},
            "cookies": ["a=1", "b=2"],
            "body": "",
        }

    routed_bus.subscribe(HttpRequest, handler, name="redirect")
    app = Gateway(routed_bus)
    app.route("GET", "/go", invoke="redirect")
    async with client(app) as c:
        response = await c.get("/go")
    assert response.status_code == 302
    assert response.headers["location"] == "/elsewhere"
    assert response.headers.get_list("x-many") == ["a", "b"]
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]


async def test_proxy_response_base64_body(routed_bus: Bus) -> None:
    """isBase64Encoded bodies are decoded before they are sent."""

    async def handler(event: HttpRequest) -> dict[str, Any]:
        return {
            "statusCode": 200,
            "headers": {"content-type": "image/png"},
            "body": base64.b64encode(b"\x89PNG").decode(),
            "isBase64Encoded": True,
        }

    routed_bus.subscribe(HttpRequest, handler, name="png")
    app = Gateway(routed_bus)
    app.route("GET", "/img", invoke="png")
    async with client(app) as c:
        response = await c.get("/img")
    assert response.content == b"\x89PNG"
    assert response.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": 99},
        {"statusCode": "abc"},
        {"statusCode": 200, "headers": {"bad name": "x"}},
        {"statusCode": 200, "headers": {"x": "a\r\nInjected: 1"}},
        {"statusCode": 200, "body": "!!", "isBase64Encoded": True},
        {"statusCode": 200, "headers": ["x"]},
    ],
)
async def test_malformed_proxy_response_is_a_502(routed_bus: Bus, result: dict[str, Any]) -> None:
    """A malformed proxy response answers 502, as API Gateway does, never a bad header."""

    async def handler(event: HttpRequest) -> dict[str, Any]:
        return result

    routed_bus.subscribe(HttpRequest, handler, name="bad")
    app = Gateway(routed_bus)
    app.route("GET", "/bad", invoke="bad")
    async with client(app) as c:
        response = await c.get("/bad")
    assert response.status_code == 502
    assert response.json()["errorType"] == "MalformedProxyResponse"
    assert "injected" not in response.headers


async def test_rich_results_are_written_as_json(routed_bus: Bus) -> None:
    """attrs objects, datetimes, bytes, sets and Decimals in a result become JSON."""
    from datetime import UTC, datetime
    from decimal import Decimal

    @attrs.frozen
    class Point:
        x: int
        y: int

    async def handler(event: HttpRequest) -> dict[str, Any]:
        return {
            "p": Point(1, 2),
            "t": datetime(2024, 1, 1, tzinfo=UTC),
            "b": b"hi",
            "s": {3},
            "d": Decimal("1.50"),
        }

    routed_bus.subscribe(HttpRequest, handler, name="rich")
    app = Gateway(routed_bus)
    app.route("GET", "/rich", invoke="rich")
    async with client(app) as c:
        response = await c.get("/rich")
    assert response.json() == {
        "p": {"x": 1, "y": 2},
        "t": "2024-01-01T00:00:00+00:00",
        "b": "aGk=",
        "s": [3],
        "d": "1.50",
    }


async def test_unserializable_result_is_a_500(routed_bus: Bus) -> None:
    """A result JSON cannot carry answers 500 SerializationError."""

    async def handler(event: HttpRequest) -> object:
        return object()

    routed_bus.subscribe(HttpRequest, handler, name="opaque")
    app = Gateway(routed_bus)
    app.route("GET", "/opaque", invoke="opaque")
    async with client(app) as c:
        response = await c.get("/opaque")
    assert response.status_code == 500
    assert response.json()["errorType"] == "SerializationError"


async def test_unknown_path_is_a_404(http: httpx.AsyncClient) -> None:
    """A path no route matches answers 404 in the error shape."""
    response = await http.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["errorType"] == "NotFound"


async def test_wrong_method_is_a_405_with_allow(http: httpx.AsyncClient) -> None:
    """A known path with another method answers 405 listing the allowed methods."""
    response = await http.delete("/echo/x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert response.json()["errorType"] == "MethodNotAllowed"


async def test_invalid_request_id_header_is_replaced(http: httpx.AsyncClient) -> None:
    """An unusable X-Request-Id is replaced by a fresh id."""
    response = await http.post("/orders/o-1", headers={"x-request-id": "bad id/x"})
    assert response.headers["x-request-id"] != "bad id/x"
    assert len(response.headers["x-request-id"]) == 32


async def test_routes_lists_declarations(gateway: Gateway) -> None:
    """Gateway.routes lists (method, path) in declaration order."""
    assert gateway.routes[:2] == (("POST", "/orders/{order_id}"), ("POST", "/orders"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "FETCH", "path": "/x", "invoke": "a"}, "route\\(method"),
        ({"method": "GET", "path": "x", "invoke": "a"}, "route\\(path"),
        ({"method": "GET", "path": "/health", "invoke": "a"}, "serves /health itself"),
        ({"method": "GET", "path": "/x"}, "exactly one of"),
        ({"method": "GET", "path": "/x", "invoke": "a", "publish": OrderPlaced}, "exactly one"),
        ({"method": "GET", "path": "/x", "publish": dict}, "Event subclass"),
        ({"method": "GET", "path": "/x/{nope}", "publish": OrderPlaced}, "not a field"),
        ({"method": "GET", "path": "/x/{1a}", "invoke": "a"}, "not a path parameter"),
        ({"method": "GET", "path": "/x/{a}/{a}", "invoke": "a"}, "appears twice"),
        ({"method": "GET", "path": "/x", "invoke": "a", "rate_limit": 5}, "RateLimit"),
    ],
)
async def test_bad_route_declarations_are_refused(kwargs: dict[str, Any], match: str) -> None:
    """Wrong route() arguments raise GatewayConfigError naming the argument."""
    app = Gateway(Bus())
    with pytest.raises(GatewayConfigError, match=match):
        app.route(**kwargs)


async def test_duplicate_route_is_refused() -> None:
    """The same method and path cannot be declared twice."""
    app = Gateway(Bus())
    app.route("GET", "/x", invoke="a")
    with pytest.raises(GatewayConfigError, match="already declared"):
        app.route("GET", "/x", invoke="b")


async def test_routes_added_after_requests_are_served(routed_bus: Bus) -> None:
    """A route declared after the first request is served too, with its path's other methods."""
    app = Gateway(routed_bus)
    app.route("GET", "/late", invoke="echo")
    async with client(app) as c:
        assert (await c.get("/late")).status_code == 201
        app.route("POST", "/late", invoke="echo")
        assert (await c.post("/late")).status_code == 201
        assert (await c.get("/late")).status_code == 201


def test_gateway_needs_a_bus() -> None:
    """Gateway() refuses something that is not a Bus."""
    with pytest.raises(GatewayConfigError, match=r"expected an eventbus\.Bus"):
        Gateway(object())  # type: ignore[arg-type]


@pytest.mark.parametrize("max_body", [-1, 1.5, True])
def test_gateway_max_body_is_checked(max_body: Any) -> None:
    """max_body must be an int >= 0."""
    with pytest.raises(GatewayConfigError, match="max_body"):
        Gateway(Bus(), max_body=max_body)


@attrs.frozen
class Nested(Event):
    """An event whose field is a list of mappings."""

    items: list[dict[str, int]]


async def test_nested_fields_use_the_codec(routed_bus: Bus) -> None:
    """Nested containers are decoded with the CloudEvents codec's typing."""

    async def handler(event: Nested) -> int:
        return sum(sum(item.values()) for item in event.items)

    routed_bus.subscribe(Nested, handler, name="nested")
    app = Gateway(routed_bus)
    app.route("POST", "/nested", invoke="nested", event=Nested)
    async with client(app) as c:
        good = await c.post("/nested", content=json.dumps({"items": [{"a": 1}, {"b": 2}]}))
        bad = await c.post("/nested", json={"items": [{"a": "x"}]})
    assert good.json() == 3
    assert bad.status_code == 400
    assert "body.items[0].a" in bad.json()["errorMessage"]


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_trace_context_rides_into_typed_events(routed_bus: Bus) -> None:
    """A valid traceparent header becomes the event's trace context, so tracing continues."""

    async def traced(event: OrderPlaced) -> list[str | None]:
        return [event.traceparent, event.tracestate]

    routed_bus.subscribe(OrderPlaced, traced, name="traced")
    app = Gateway(routed_bus)
    app.route("POST", "/t/{order_id}", invoke="traced", event=OrderPlaced)
    async with client(app) as c:
        good = await c.post("/t/o", headers={"traceparent": TRACEPARENT, "tracestate": "k=v"})
        bad = await c.post("/t/o", headers={"traceparent": "not-a-trace"})
        none = await c.post("/t/o")
    assert good.json() == [TRACEPARENT, "k=v"]
    assert bad.json() == [None, None]
    assert none.json() == [None, None]


async def test_trace_context_rides_into_http_requests(routed_bus: Bus) -> None:
    """HttpRequest events carry the request's trace context too."""

    async def traced(event: HttpRequest) -> str | None:
        return event.traceparent

    routed_bus.subscribe(HttpRequest, traced, name="traced_request")
    app = Gateway(routed_bus)
    app.route("GET", "/t", invoke="traced_request")
    async with client(app) as c:
        response = await c.get("/t", headers={"traceparent": TRACEPARENT})
    assert response.json() == TRACEPARENT


async def test_proxy_no_content_sends_no_body(routed_bus: Bus) -> None:
    """A 204 proxy response is sent without a body, whatever the handler put in it."""

    async def handler(event: HttpRequest) -> dict[str, Any]:
        return {"statusCode": 204, "body": "ignored"}

    routed_bus.subscribe(HttpRequest, handler, name="nothing")
    app = Gateway(routed_bus)
    app.route("DELETE", "/thing", invoke="nothing")
    async with client(app) as c:
        response = await c.delete("/thing")
    assert response.status_code == 204
    assert response.content == b""
