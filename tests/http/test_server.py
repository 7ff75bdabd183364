"""The gateway as an ASGI application: lifespan, a real uvicorn server, /health, /metrics."""

from __future__ import annotations

import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from gateway_helpers import OrderPlaced, client, create_order
from prometheus_client.parser import text_string_to_metric_families

from eventbus import Bus
from eventbus.http import Gateway


async def lifespan(app: Gateway, inside: Callable[[], Awaitable[None]]) -> list[str]:
    """Run *app*'s ASGI lifespan around *inside*; return the message types it sent."""
    to_app, app_inbox = anyio.create_memory_object_stream[dict[str, Any]](4)
    app_outbox, from_app = anyio.create_memory_object_stream[dict[str, Any]](4)
    sent: list[str] = []
    async with to_app, app_inbox, app_outbox, from_app, anyio.create_task_group() as tg:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        tg.start_soon(app, scope, app_inbox.receive, app_outbox.send)  # type: ignore[arg-type]
        await to_app.send({"type": "lifespan.startup"})
        sent.append((await from_app.receive())["type"])
        await inside()
        await to_app.send({"type": "lifespan.shutdown"})
        sent.append((await from_app.receive())["type"])
    return sent


async def test_lifespan_runs_a_new_bus() -> None:
    """The ASGI lifespan starts a bus that is not running and drains it on shutdown."""
    bus = Bus()
    app = Gateway(bus)
    states: list[bool] = []

    async def inside() -> None:
        states.append(bus.running)

    sent = await lifespan(app, inside)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert states == [True]
    assert not bus.running


async def test_lifespan_leaves_a_running_bus_alone() -> None:
    """A bus already running is neither started again nor closed by the lifespan."""
    async with Bus() as bus:
        await lifespan(Gateway(bus), anyio.lowlevel.checkpoint)
        assert bus.running


async def test_real_uvicorn_server_on_loopback() -> None:
    """A real uvicorn server on 127.0.0.1 serves the gateway to a real HTTP client."""
    bus = Bus()
    bus.subscribe(OrderPlaced, create_order, name="create_order")
    app = Gateway(bus, error_status={r"^\[BadRequest\]": 400})
    app.route("POST", "/orders/{order_id}", invoke="create_order", event=OrderPlaced)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [listener])
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
                ok = await c.post("/orders/o-1", json={"quantity": 2})
                bad = await c.post("/orders/o-1", json={"quantity": -1})
                health = await c.get("/health")
            server.should_exit = True
    finally:
        listener.close()
    assert ok.status_code == 200
    assert ok.json() == {"order_id": "o-1", "quantity": 2}
    assert bad.status_code == 400
    assert bad.json()["errorType"] == "ValueError"
    assert health.json()["status"] == "running"
    assert not bus.running


async def test_health_reports_a_running_bus(http: httpx.AsyncClient) -> None:
    """GET /health is 200 with the bus's state while it runs."""
    response = await http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["outstanding"]) == ("running", 0)
    assert body["subscriptions"] >= 2


async def test_health_is_503_when_the_bus_is_not_running() -> None:
    """GET /health is 503 before the bus starts."""
    async with client(Gateway(Bus())) as c:
        response = await c.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "stopped"


async def test_metrics_serve_the_prometheus_exposition(http: httpx.AsyncClient) -> None:
    """GET /metrics is the Prometheus text format, parseable by prometheus_client."""
    await http.post("/orders/o-1", json={"quantity": 1})
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(response.text)}
    assert {"eventbus_invocations", "eventbus_queue_depth"} <= names


async def test_metrics_are_404_without_prometheus_client(
    routed_bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without prometheus-client, GET /metrics is 404 naming the extra."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.setitem(sys.modules, "eventbus.prometheus", None)
    async with client(Gateway(routed_bus)) as c:
        response = await c.get("/metrics")
    assert response.status_code == 404
    assert "eventbus[prometheus]" in response.json()["errorMessage"]


def test_import_without_starlette_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Starlette, eventbus.http imports and Gateway raises ImportError naming the extra."""
    import eventbus.http

    monkeypatch.setitem(sys.modules, "starlette.applications", None)
    monkeypatch.delitem(sys.modules, "eventbus.http._gateway", raising=False)
    monkeypatch.delitem(vars(eventbus.http), "Gateway", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'eventbus\[http\]'"):
        eventbus.http.Gateway  # noqa: B018


def test_unknown_attribute_of_eventbus_http() -> None:
    """eventbus.http raises AttributeError for names it does not have."""
    import eventbus.http

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        eventbus.http.Nope  # noqa: B018
