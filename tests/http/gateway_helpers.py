"""Events, handlers and a client shared by the HTTP gateway tests."""

from __future__ import annotations

from typing import Any

import anyio
import attrs
import httpx

from eventbus import Event, HttpRequest
from eventbus.http import Gateway


@attrs.frozen
class OrderPlaced(Event):
    """The order event the gateway tests route."""

    order_id: str
    quantity: int = 1
    note: str | None = None


@attrs.frozen
class Counted(Event):
    """An event with numeric path parameters."""

    n: int
    ratio: float


async def create_order(event: OrderPlaced) -> dict[str, Any]:
    """Echo the order; fail the way an API Gateway backend signals client errors."""
    if event.quantity < 0:
        raise ValueError(f"[BadRequest] quantity must be >= 0, got {event.quantity}")
    if event.quantity == 0:
        raise LookupError("[NotFound] no stock")
    return {"order_id": event.order_id, "quantity": event.quantity}


async def echo_request(event: HttpRequest) -> dict[str, Any]:
    """Answer API Gateway proxy style with what the handler saw."""
    seen = {
        "method": event.method,
        "path": event.path,
        "route": event.route,
        "path_parameters": dict(event.path_parameters),
        "query": {k: list(v) for k, v in event.query.items()},
        "cookies": list(event.cookies),
        "body": event.text,
        "source_ip": event.source_ip,
        "request_id": event.request_id,
        "version": event.version,
        "x_custom": event.header("x-custom"),
    }
    import json

    return {"statusCode": 201, "headers": {"x-handled": "yes"}, "body": json.dumps(seen)}


def client(app: Gateway) -> httpx.AsyncClient:
    """An httpx client that calls *app* in process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def never() -> None:
    """Wait forever (until cancelled)."""
    await anyio.Event().wait()
