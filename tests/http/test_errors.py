"""Failed invocations become statuses: error_status, timeouts, full and closed buses."""

from __future__ import annotations

import re
from typing import Any

import anyio
import httpx
import pytest
from gateway_helpers import OrderPlaced, client, never

from eventbus import Bus, BusFull, HttpRequest
from eventbus.http import Gateway, GatewayConfigError
from eventbus.testing import FakeClock


async def test_mission_example_maps_bad_request_to_400(http: httpx.AsyncClient) -> None:
    """ValueError("[BadRequest] ...") with {r"^\\[BadRequest\\]": 400} answers 400 in Lambda's shape."""
    response = await http.post("/orders/o-1", json={"quantity": -2})
    assert response.status_code == 400
    assert response.json() == {
        "errorType": "ValueError",
        "errorMessage": "[BadRequest] quantity must be >= 0, got -2",
    }


async def test_second_pattern_maps_not_found(http: httpx.AsyncClient) -> None:
    """Patterns are tried in order; the second one matches here."""
    response = await http.post("/orders/o-1", json={"quantity": 0})
    assert response.status_code == 404
    assert response.json()["errorType"] == "LookupError"


async def test_unmatched_error_is_a_500_without_stack_trace(routed_bus: Bus) -> None:
    """An error no pattern matches answers 500 with errorType and errorMessage only."""

    async def boom(event: HttpRequest) -> None:
        raise KeyError("secret internals")

    routed_bus.subscribe(HttpRequest, boom, name="boom")
    app = Gateway(routed_bus, error_status={r"^\[BadRequest\]": 400})
    app.route("GET", "/boom", invoke="boom")
    async with client(app) as c:
        response = await c.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"errorType": "KeyError", "errorMessage": "'secret internals'"}


async def test_debug_adds_the_stack_trace(routed_bus: Bus) -> None:
    """debug=True adds Lambda's stackTrace to the error body."""

    async def boom(event: HttpRequest) -> None:
        raise RuntimeError("x")

    routed_bus.subscribe(HttpRequest, boom, name="boom")
    app = Gateway(routed_bus, debug=True)
    app.route("GET", "/boom", invoke="boom")
    async with client(app) as c:
        body = (await c.get("/boom")).json()
    assert body["errorType"] == "RuntimeError"
    assert any("boom" in line for line in body["stackTrace"])


async def test_message_matches_win_over_type_matches(routed_bus: Bus) -> None:
    """Every pattern is searched in errorMessage before any is searched in errorType."""

    async def missing(event: HttpRequest) -> None:
        raise LookupError("[NotFound] order o-1")

    routed_bus.subscribe(HttpRequest, missing, name="missing")
    app = Gateway(routed_bus, error_status={r"Error": 502, r"^\[NotFound\]": 404})
    app.route("GET", "/m", invoke="missing")
    async with client(app) as c:
        assert (await c.get("/m")).status_code == 404


async def test_type_is_matched_when_the_message_is_not(routed_bus: Bus) -> None:
    """A pattern found only in errorType still selects its status."""

    async def conflict(event: HttpRequest) -> None:
        raise FileExistsError("already there")

    routed_bus.subscribe(HttpRequest, conflict, name="conflict")
    app = Gateway(routed_bus, error_status=[(re.compile(r"^FileExistsError$"), 409)])
    app.route("GET", "/c", invoke="conflict")
    async with client(app) as c:
        response = await c.get("/c")
    assert response.status_code == 409
    assert response.json()["errorMessage"] == "already there"


async def test_handler_timeout_is_a_504() -> None:
    """A handler running past its timeout answers 504."""
    clock = FakeClock()
    started = anyio.Event()

    async def slow(event: HttpRequest) -> None:
        started.set()
        await never()

    responses: list[httpx.Response] = []
    async with Bus(clock=clock) as bus:
        bus.subscribe(HttpRequest, slow, name="slow", timeout=1.0)
        app = Gateway(bus)
        app.route("GET", "/slow", invoke="slow")
        async with client(app) as c, anyio.create_task_group() as tg:

            async def call() -> None:
                responses.append(await c.get("/slow"))

            tg.start_soon(call)
            await started.wait()
            await clock.advance(1.5)
    assert responses[0].status_code == 504
    assert responses[0].json()["errorType"] == "HandlerTimeout"


async def test_full_bus_is_a_429_with_retry_after() -> None:
    """A publish route whose subscription's queue is full answers 429 with Retry-After."""
    started = anyio.Event()
    release = anyio.Event()

    async def hold(event: OrderPlaced) -> None:
        started.set()
        await release.wait()

    async with Bus() as bus:
        bus.subscribe(OrderPlaced, hold, name="hold", queue_size=1, concurrency=1)
        app = Gateway(bus)
        app.route("POST", "/orders", publish=OrderPlaced)
        async with client(app) as c:
            first = await c.post("/orders", json={"order_id": "a"})
            await started.wait()
            second = await c.post("/orders", json={"order_id": "b"})
            third = await c.post("/orders", json={"order_id": "c"})
        release.set()
    assert [first.status_code, second.status_code, third.status_code] == [202, 202, 429]
    assert third.headers["retry-after"] == "1"
    assert third.json()["errorType"] == "TooManyRequests"


async def test_handler_raising_bus_full_is_a_429(routed_bus: Bus) -> None:
    """A handler that was refused by a full bus answers 429 with Retry-After."""

    async def refused(event: HttpRequest) -> None:
        raise BusFull("queue full")

    routed_bus.subscribe(HttpRequest, refused, name="refused")
    app = Gateway(routed_bus)
    app.route("GET", "/r", invoke="refused")
    async with client(app) as c:
        response = await c.get("/r")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize(("method", "path"), [("GET", "/i"), ("POST", "/p")])
async def test_bus_not_running_is_a_503(method: str, path: str) -> None:
    """Invoking or publishing on a bus that is not running answers 503."""
    app = Gateway(Bus())
    app.route("GET", "/i", invoke="anything")
    app.route("POST", "/p", publish=OrderPlaced)
    async with client(app) as c:
        response = await c.request(method, path, json={"order_id": "x"})
    assert response.status_code == 503
    assert response.json()["errorType"] == "ServiceUnavailable"


async def test_unknown_subscription_is_a_500(routed_bus: Bus) -> None:
    """A route invoking a subscription the bus lacks answers 500 naming it."""
    app = Gateway(routed_bus)
    app.route("GET", "/ghost", invoke="ghost")
    async with client(app) as c:
        response = await c.get("/ghost")
    assert response.status_code == 500
    assert response.json()["errorType"] == "UnknownSubscription"
    assert "'ghost'" in response.json()["errorMessage"]


async def test_event_type_the_subscription_does_not_take_is_a_500(routed_bus: Bus) -> None:
    """A route building an event its subscription does not handle answers 500."""
    app = Gateway(routed_bus)
    app.route("GET", "/wrong", invoke="create_order", event=HttpRequest)
    async with client(app) as c:
        response = await c.get("/wrong")
    assert response.status_code == 500
    assert response.json()["errorType"] == "InvalidRoute"


async def test_crashing_auth_leaks_no_traceback(routed_bus: Bus, caplog: Any) -> None:
    """An exception in the gateway answers 500 in the error shape, logged, with no traceback."""

    def broken(request: HttpRequest) -> None:
        raise RuntimeError("database password is hunter2")

    app = Gateway(routed_bus, auth=broken)
    app.route("GET", "/x", invoke="echo")
    async with client(app) as c:
        response = await c.get("/x")
    assert response.status_code == 500
    body = response.json()
    assert body["errorType"] == "InternalError"
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert "hunter2" in caplog.text


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"[unclosed": 400}, r"item 0: '\[unclosed' is not a valid regular expression"),
        ({"ok": 700}, r"item 0 \('ok'\): the status must be an int from 200 to 599"),
        ({"ok": "400"}, "the status must be an int"),
        ({"ok": True}, "the status must be an int"),
        ({re.compile(b"x"): 400}, "must match text"),
        ({42: 400}, "a pattern must be a regular expression string"),
        ([("a", 400, 1)], r"expected a \(pattern, status\) pair"),
        ("^x", "takes a mapping"),
    ],
)
def test_invalid_error_status_fails_at_construction(spec: Any, match: str) -> None:
    """Bad patterns or statuses in error_status raise GatewayConfigError naming the item."""
    with pytest.raises(GatewayConfigError, match=match):
        Gateway(Bus(), error_status=spec)


def test_gateway_config_error_is_a_value_error() -> None:
    """GatewayConfigError is also a ValueError."""
    assert issubclass(GatewayConfigError, ValueError)
