"""The body limit: 413 before a large body is read in full."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from gateway_helpers import client

from eventbus import Bus
from eventbus.http import Gateway


@pytest.fixture
async def small(routed_bus: Bus) -> Gateway:
    """A gateway accepting bodies of at most 16 bytes."""
    app = Gateway(routed_bus, max_body=16)
    app.route("POST", "/echo", invoke="echo")
    return app


async def test_body_at_the_limit_is_accepted(small: Gateway) -> None:
    """A body of exactly max_body bytes is served."""
    async with client(small) as c:
        response = await c.post("/echo", content=b"x" * 16)
    assert response.status_code == 201


async def test_declared_length_over_the_limit_is_a_413(small: Gateway) -> None:
    """A Content-Length over max_body answers 413 without reading the body."""
    async with client(small) as c:
        response = await c.post("/echo", content=b"x" * 17)
    assert response.status_code == 413
    assert response.json()["errorType"] == "PayloadTooLarge"
    assert "16 bytes" in response.json()["errorMessage"]


async def test_streamed_body_over_the_limit_is_a_413(small: Gateway) -> None:
    """A chunked body is counted as it streams and stopped once past max_body."""
    pulled: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(1000):
            pulled.append(i)
            yield b"0123456789"

    async with client(small) as c:
        response = await c.post("/echo", content=chunks())
    assert response.status_code == 413
    assert len(pulled) < 1000


async def test_lying_content_length_is_still_bounded(small: Gateway) -> None:
    """A body longer than its declared Content-Length is still cut at max_body."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"0123456789"

    async with client(small) as c:
        response = await c.post("/echo", content=chunks(), headers={"content-length": "5"})
    assert response.status_code == 413


async def test_malformed_content_length_is_a_400(small: Gateway) -> None:
    """A Content-Length that is not a number answers 400."""
    async with client(small) as c:
        response = await c.post("/echo", content=b"", headers={"content-length": "ten"})
    assert response.status_code == 400


async def test_cloudevents_endpoint_has_the_limit_too(small: Gateway) -> None:
    """POST /events refuses bodies over max_body."""
    async with client(small) as c:
        response = await c.post(
            "/events",
            content=b"{" + b" " * 64 + b"}",
            headers={"content-type": "application/cloudevents+json"},
        )
    assert response.status_code == 413
