"""Fixtures of the HTTP gateway tests: a running bus, a gateway, a client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from gateway_helpers import OrderPlaced, client, create_order, echo_request

from eventbus import Bus, HttpRequest
from eventbus.http import Gateway


@pytest.fixture
async def routed_bus(bus: Bus) -> Bus:
    """The testing kit's running bus, with the order and echo subscriptions."""
    bus.subscribe(OrderPlaced, create_order, name="create_order")
    bus.subscribe(HttpRequest, echo_request, name="echo")
    return bus


@pytest.fixture
async def gateway(routed_bus: Bus) -> Gateway:
    """A gateway with one route of each kind."""
    app = Gateway(routed_bus, error_status={r"^\[BadRequest\]": 400, r"^\[NotFound\]": 404})
    app.route("POST", "/orders/{order_id}", invoke="create_order", event=OrderPlaced)
    app.route("POST", "/orders", publish=OrderPlaced)
    app.route("GET", "/echo/{thing}", invoke="echo", event=HttpRequest)
    app.route("POST", "/echo/{thing}", invoke="echo", event=HttpRequest)
    return app


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway fixture."""
    async with client(gateway) as c:
        yield c
