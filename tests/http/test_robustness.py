"""No request can crash the gateway: arbitrary methods, paths, headers and bodies over ASGI."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import anyio
from gateway_helpers import OrderPlaced, create_order, echo_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventbus import Bus, HttpRequest
from eventbus.http import BearerTokens, Gateway

HEADER_NAMES = st.sampled_from(
    [
        b"content-type",
        b"content-length",
        b"authorization",
        b"cookie",
        b"x-request-id",
        b"traceparent",
        b"ce-specversion",
        b"ce-type",
        b"ce-id",
        b"ce-source",
        b"x-anything",
    ]
)
HEADER_VALUES = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
PATHS = st.sampled_from(
    ["/orders/o-1", "/orders", "/echo/x", "/events", "/health", "/metrics", "/openapi.json", "/"]
) | st.text(max_size=20).map(lambda t: "/" + t)


async def call(
    app: Gateway, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """Send one request to *app* as ASGI messages; return status, body and headers."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogatepass"),
        "query_string": b"a=1&a=%ff&b",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    status = 0
    response_headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await anyio.sleep_forever()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers.extend(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks), response_headers


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "BREW"]),
    path=PATHS,
    headers=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=6),
    body=st.binary(max_size=64) | st.just(b'{"quantity": 2}') | st.just(b"[1]"),
    secured=st.booleans(),
)
def test_no_request_gets_a_5xx_or_a_traceback(
    method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes, secured: bool
) -> None:
    """Whatever arrives, the answer is below 500 and errors are Lambda-shaped JSON."""

    async def main() -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        async with Bus() as bus:
            bus.subscribe(OrderPlaced, create_order, name="create_order")
            bus.subscribe(HttpRequest, echo_request, name="echo")
            app = Gateway(
                bus,
                error_status={r"^\[BadRequest\]": 400, r"^\[NotFound\]": 404},
                auth=BearerTokens("t") if secured else None,
                max_body=48,
            )
            app.route("POST", "/orders/{order_id}", invoke="create_order", event=OrderPlaced)
            app.route("POST", "/orders", publish=OrderPlaced)
            app.route("GET", "/echo/{thing}", invoke="echo")
            app.route("POST", "/echo/{thing}", invoke="echo")
            return await call(app, method, path, headers, body)

    status, content, response_headers = anyio.run(main)
    assert 200 <= status < 500
    assert b"Traceback" not in content
    if status >= 400 and method != "HEAD":
        error = json.loads(content)
        assert set(error) == {"errorType", "errorMessage"}
    if status >= 400:
        assert any(name == b"x-request-id" for name, _ in response_headers)
