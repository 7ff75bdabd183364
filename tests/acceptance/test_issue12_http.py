"""Issue 12 as a new user calls it: the HTTP gateway, its error mapping, auth and limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import attrs
import httpx
import pytest

import eventbus
from eventbus import Bus, Event, EventBusError, HttpRequest, NoRetry
from eventbus.http import BearerTokens, Gateway, HmacSignature


@attrs.frozen
class OrderPlaced(Event, type_name="acceptance.i12.OrderPlaced"):
    order_id: str
    quantity: int = 1


async def create_order(event: OrderPlaced) -> dict[str, Any]:
    if event.quantity == 13:
        raise ValueError("[BadRequest] unlucky quantity")
    if event.quantity == 14:
        raise LookupError("no such thing")
    if event.quantity == 15:
        raise RuntimeError("plain failure")
    if event.quantity == 16:
        return {"statusCode": 201, "headers": {"x-made": "yes"}, "body": "made"}
    return {"order_id": event.order_id, "quantity": event.quantity}


async def whole_request(event: HttpRequest) -> dict[str, Any]:
    return {
        "method": event.method,
        "path": event.path,
        "params": dict(event.path_parameters),
        "query": {k: list(v) for k, v in event.query.items()},
        "body": event.body.decode("utf-8", "replace"),
        "request_id": event.request_id,
    }


async def forever(event: OrderPlaced) -> None:
    await anyio.sleep_forever()


def _client(app: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


@pytest.fixture
async def routed(bus: Bus) -> Bus:
    """The testing kit's running bus with the order and whole-request subscriptions."""
    bus.subscribe(OrderPlaced, create_order, name="create_order", retry=NoRetry())
    bus.subscribe(HttpRequest, whole_request, name="whole", retry=NoRetry())
    return bus


@pytest.fixture
async def http(routed: Bus) -> AsyncIterator[httpx.AsyncClient]:
    bus = routed
    gateway = eventbus.http.Gateway(
        bus,
        error_status={r"^\[BadRequest\]": 400, r"LookupError": 404},
        auth=None,
        max_body=1024,
        debug=False,
    )
    gateway.route("POST", "/orders/{order_id}", invoke="create_order", event=OrderPlaced)
    gateway.route("POST", "/orders", publish=OrderPlaced)
    gateway.route("GET", "/raw/{thing}", invoke="whole", event=HttpRequest)
    async with _client(gateway) as c:
        yield c


async def test_invoke_route_builds_the_typed_event_from_body_and_path(
    http: httpx.AsyncClient,
) -> None:
    """The JSON body plus path parameters build the event; the return value is the 200 JSON."""
    r = await http.post("/orders/o-1", json={"quantity": 3})
    assert r.status_code == 200
    assert r.json() == {"order_id": "o-1", "quantity": 3}


async def test_proxy_style_return_sets_status_headers_body(http: httpx.AsyncClient) -> None:
    """A returned statusCode/headers/body dict is the response, API Gateway proxy style."""
    r = await http.post("/orders/o-1", json={"quantity": 16})
    assert (r.status_code, r.headers["x-made"], r.text) == (201, "yes", "made")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity": "three"}, "quantity"),
        ({"quantity": None}, "quantity"),
        ({"quantity": 1.5}, "quantity"),
    ],
)
async def test_mistyped_field_is_400_naming_it(
    http: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    """A mistyped field is a 400 whose message names the field."""
    r = await http.post("/orders/o-1", json=body)
    assert r.status_code == 400
    assert field in r.json()["errorMessage"]


async def test_missing_field_is_400_naming_it(routed: Bus) -> None:
    """A missing required field is a 400 naming it."""
    gateway = Gateway(routed)
    gateway.route("POST", "/orders", invoke="create_order", event=OrderPlaced)
    async with _client(gateway) as c:
        r = await c.post("/orders", json={"quantity": 2})
    assert r.status_code == 400
    assert "order_id" in r.json()["errorMessage"]


async def test_publish_route_answers_202_with_the_receipt(http: httpx.AsyncClient) -> None:
    """A publish route answers 202 with {"id", "subscriptions"}."""
    r = await http.post("/orders", json={"order_id": "o-2"})
    assert r.status_code == 202
    body = r.json()
    assert isinstance(body["id"], str)
    assert body["id"]
    assert body["subscriptions"] == ["create_order"]


async def test_http_request_route_gets_the_whole_request(http: httpx.AsyncClient) -> None:
    """An HttpRequest route hands the handler method, path, params, query and request id."""
    r = await http.get("/raw/th%C3%BCng", params=[("a", "1"), ("a", "2")])
    assert r.status_code == 200
    seen = r.json()
    assert seen["method"] == "GET"
    assert seen["params"] == {"thing": "thüng"}
    assert seen["query"] == {"a": ["1", "2"]}
    assert seen["request_id"]


async def test_error_status_matches_message_then_type(http: httpx.AsyncClient) -> None:
    """error_status tries errorMessage, then errorType; the body is Lambda's error shape."""
    r = await http.post("/orders/o-1", json={"quantity": 13})
    assert r.status_code == 400
    assert r.json() == {"errorType": "ValueError", "errorMessage": "[BadRequest] unlucky quantity"}
    r = await http.post("/orders/o-1", json={"quantity": 14})
    assert r.status_code == 404
    assert r.json()["errorType"] == "LookupError"


async def test_unmatched_error_is_500_without_stack(http: httpx.AsyncClient) -> None:
    """An unmatched error is a 500 with no stackTrace and no traceback text."""
    r = await http.post("/orders/o-1", json={"quantity": 15})
    assert r.status_code == 500
    assert "stackTrace" not in r.json()
    assert "Traceback" not in r.text


async def test_debug_adds_the_stack_trace(routed: Bus) -> None:
    """debug=True adds stackTrace to the error body."""
    gateway = Gateway(routed, debug=True)
    gateway.route("POST", "/orders/{order_id}", invoke="create_order", event=OrderPlaced)
    async with _client(gateway) as c:
        r = await c.post("/orders/o", json={"quantity": 15})
    assert r.status_code == 500
    assert "stackTrace" in r.json()


async def test_handler_timeout_is_504() -> None:
    """An invocation that times out is a 504."""
    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(OrderPlaced, forever, name="slow", timeout=0.01)
        gateway = Gateway(bus)
        gateway.route("POST", "/slow/{order_id}", invoke="slow", event=OrderPlaced)
        async with _client(gateway) as c:
            r = await c.post("/slow/o", json={})
    assert r.status_code == 504
    assert r.json()["errorType"] == "HandlerTimeout"


async def test_full_queue_is_429_with_retry_after() -> None:
    """A publish route whose subscription's queue is full answers 429 with Retry-After."""
    release = anyio.Event()

    async def blocked(event: OrderPlaced) -> None:
        await release.wait()

    async with Bus() as bus:
        bus.subscribe(OrderPlaced, blocked, name="blocked", queue_size=1)
        gateway = Gateway(bus)
        gateway.route("POST", "/orders", publish=OrderPlaced)
        async with _client(gateway) as c:
            statuses = []
            for i in range(4):
                r = await c.post("/orders", json={"order_id": str(i)})
                statuses.append(r.status_code)
                if r.status_code == 429:
                    assert "retry-after" in r.headers
        release.set()
    assert 429 in statuses


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b'{"quantity": 1,}',
        b'{"quantity": NaN}',
        b"\xff\xfe",
        b"[" * 200 + b"]" * 200,
        b"nul\x00l",
        b"1e99999",
    ],
)
async def test_bad_json_is_400_saying_where(http: httpx.AsyncClient, raw: bytes) -> None:
    """Malformed or hostile JSON is a 400 in Lambda's error shape, never a 500."""
    r = await http.post("/orders/o-1", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["errorMessage"]


async def test_non_object_json_is_400(http: httpx.AsyncClient) -> None:
    """A JSON array or string where an object is expected is a 400."""
    for doc in ([1, 2], "text", 5, None):
        raw = json.dumps(doc).encode()
        r = await http.post(
            "/orders/o-1", content=raw, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, (doc, r.text)


@pytest.mark.parametrize("digits", [1500, 5000])
async def test_huge_integer_is_400(routed: Bus, digits: int) -> None:
    """An integer of thousands of digits is refused as a 400, fast."""
    gateway = Gateway(routed)
    gateway.route("POST", "/orders/{order_id}", invoke="create_order", event=OrderPlaced)
    raw = b'{"quantity": ' + b"9" * digits + b"}"
    async with _client(gateway) as http:
        r = await http.post(
            "/orders/o-1", content=raw, headers={"content-type": "application/json"}
        )
    assert r.status_code == 400


async def test_body_over_max_body_is_413(http: httpx.AsyncClient) -> None:
    """A body over max_body is a 413, also when streamed without a length."""
    r = await http.post("/orders/o-1", content=b"x" * 2048)
    assert r.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"y" * 100

    r = await http.post("/orders/o-1", content=chunks())
    assert r.status_code == 413


async def test_unknown_path_404_and_wrong_method_405_with_allow(http: httpx.AsyncClient) -> None:
    """Unknown paths are 404; a known path with the wrong method is 405 with Allow."""
    assert (await http.get("/nope")).status_code == 404
    r = await http.delete("/orders/o-1")
    assert r.status_code == 405
    assert "POST" in r.headers["allow"]


async def test_cloudevents_structured_and_binary(routed: Bus) -> None:
    """POST /events publishes structured and binary CloudEvents."""
    gateway = Gateway(routed)
    async with _client(gateway) as c:
        doc = {
            "specversion": "1.0",
            "id": "e-1",
            "source": "/shop",
            "type": OrderPlaced.event_type(),
            "datacontenttype": "application/json",
            "data": {"order_id": "o-9"},
        }
        r = await c.post(
            "/events",
            content=json.dumps(doc),
            headers={"content-type": "application/cloudevents+json"},
        )
        assert r.status_code in (200, 202), r.text
        r = await c.post(
            "/events",
            json={"order_id": "o-10"},
            headers={
                "ce-specversion": "1.0",
                "ce-id": "e-2",
                "ce-source": "/shop",
                "ce-type": OrderPlaced.event_type(),
            },
        )
        assert r.status_code in (200, 202), r.text
        await routed.drain()
        assert routed.metrics()["create_order"].accepted == 2


@pytest.mark.parametrize(
    "doc",
    [
        {"specversion": "1.0", "id": "x", "source": "/s", "type": "no.such.Type", "data": {}},
        {"specversion": "0.3", "id": "x", "source": "/s", "type": "t"},
        {"id": "x"},
        [],
        {
            "specversion": "1.0",
            "id": "x",
            "source": "/s",
            "type": "acceptance.i12.OrderPlaced",
            "time": "0001-01-01T00:00:00+01:00",
            "data": {"order_id": "o"},
        },
    ],
)
async def test_hostile_cloudevents_are_4xx(routed: Bus, doc: Any) -> None:
    """Unknown types, wrong spec versions and overflowing times are 4xx, never 5xx."""
    gateway = Gateway(routed)
    async with _client(gateway) as c:
        r = await c.post(
            "/events",
            content=json.dumps(doc),
            headers={"content-type": "application/cloudevents+json"},
        )
    assert 400 <= r.status_code < 500, r.text


async def test_bearer_tokens(routed: Bus) -> None:
    """BearerTokens admits a listed token; missing is 401, wrong is 401 or 403."""
    gateway = Gateway(routed, auth=BearerTokens(["s3cret"]))
    gateway.route("POST", "/orders/{order_id}", invoke="create_order", event=OrderPlaced)
    async with _client(gateway) as c:
        assert (await c.post("/orders/o", json={})).status_code == 401
        bad = await c.post("/orders/o", json={}, headers={"authorization": "Bearer nope"})
        assert bad.status_code in (401, 403)
        ok = await c.post("/orders/o", json={}, headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200


async def test_hmac_signature_replay_and_skew(routed: Bus) -> None:
    """HmacSignature(secret, max_skew=300) admits a signed body once; replays and skew are 403."""
    now = [1_700_000_000.0]
    auth = HmacSignature("k3y", max_skew=300, now=lambda: now[0])
    gateway = Gateway(routed, auth=auth)
    gateway.route("POST", "/orders/{order_id}", invoke="create_order", event=OrderPlaced)
    body = b'{"quantity": 2}'
    headers = {**auth.sign(body), "content-type": "application/json"}
    async with _client(gateway) as c:
        assert (await c.post("/orders/o", content=body, headers=headers)).status_code == 200
        assert (await c.post("/orders/o", content=body, headers=headers)).status_code == 403
        assert (await c.post("/orders/o", content=b"{}", headers=headers)).status_code == 403
        old = {**auth.sign(body, timestamp=int(now[0]) - 301), "content-type": "application/json"}
        assert (await c.post("/orders/o", content=body, headers=old)).status_code == 403
        assert (await c.post("/orders/o", content=body)).status_code == 401


async def test_auth_callable_raising_is_not_a_crash(routed: Bus) -> None:
    """An authenticator that raises an unexpected error yields a 5xx JSON, never a crash."""

    def broken(request: HttpRequest) -> None:
        raise KeyError("oops")

    gateway = Gateway(routed, auth=broken)
    gateway.route("POST", "/orders/{order_id}", invoke="create_order", event=OrderPlaced)
    async with _client(gateway) as c:
        r = await c.post("/orders/o", json={})
    assert r.status_code >= 400
    assert "Traceback" not in r.text


async def test_openapi_and_health(http: httpx.AsyncClient) -> None:
    """GET /openapi.json is OpenAPI 3.1 listing the routes; GET /health reports the bus."""
    spec = (await http.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert "/orders/{order_id}" in spec["paths"]
    assert "post" in spec["paths"]["/orders/{order_id}"]
    health = await http.get("/health")
    assert health.status_code == 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_status": {"(unclosed": 400}},
        {"error_status": {"x": 99}},
        {"error_status": {"x": "400"}},
        {"max_body": -1},
        {"max_body": "big"},
    ],
)
def test_gateway_refuses_bad_configuration(kwargs: dict[str, Any]) -> None:
    """Bad error_status regexes/codes or max_body values are named eventbus errors."""
    with pytest.raises((EventBusError, TypeError)):
        Gateway(Bus(), **kwargs)


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/x", {}),
        ("POST", "/x", {"invoke": "a", "publish": OrderPlaced}),
        ("POST", "no-slash", {"publish": OrderPlaced}),
        ("FETCH", "/x", {"publish": OrderPlaced}),
        ("POST", "/x", {"publish": dict}),
    ],
)
def test_route_refuses_bad_routes(method: str, path: str, kwargs: dict[str, Any]) -> None:
    """route() with neither or both targets, a bad path, method or event type is refused."""
    with pytest.raises((EventBusError, TypeError)):
        Gateway(Bus()).route(method, path, **kwargs)


def test_hmac_refuses_empty_secret_and_bad_skew() -> None:
    """HmacSignature refuses an empty secret or a non-positive max_skew."""
    for args in (("",), ("k", 0), ("k", -1), ("k", float("nan"))):
        with pytest.raises(ValueError, match="HmacSignature"):
            HmacSignature(*args)
    with pytest.raises((ValueError, TypeError)):
        BearerTokens([])
