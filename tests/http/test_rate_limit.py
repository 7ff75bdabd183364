"""Per-route rate limits: 429 with Retry-After, counted on the bus clock."""

from __future__ import annotations

import pytest
from gateway_helpers import client, echo_request

from eventbus import Bus, HttpRequest, RateLimit
from eventbus.http import Gateway
from eventbus.http._routes import TokenBucket, retry_after
from eventbus.testing import FakeClock


async def test_route_over_its_rate_answers_429_until_time_passes() -> None:
    """Past the burst, requests get 429 with Retry-After; a token later, one passes again."""
    clock = FakeClock()
    async with Bus(clock=clock) as bus:
        bus.subscribe(HttpRequest, echo_request, name="echo")
        app = Gateway(bus)
        app.route("GET", "/limited", invoke="echo", rate_limit=RateLimit(2, per=10.0))
        app.route("GET", "/free", invoke="echo")
        async with client(app) as c:
            statuses = [(await c.get("/limited")).status_code for _ in range(3)]
            refused = await c.get("/limited")
            free = await c.get("/free")
            await clock.advance(5.0)
            again = await c.get("/limited")
    assert statuses == [201, 201, 429]
    assert refused.headers["retry-after"] == "5"
    assert refused.json()["errorType"] == "TooManyRequests"
    assert free.status_code == 201
    assert again.status_code == 201


def test_bucket_refills_at_rate_and_caps_at_burst() -> None:
    """The bucket refills one token per per/rate seconds, up to burst."""
    bucket = TokenBucket(RateLimit(1, per=2.0, burst=2))
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(2.0)
    assert bucket.take(100.0) == 0.0
    assert bucket.take(100.0) == 0.0
    assert bucket.take(100.0) > 0.0


@pytest.mark.parametrize(("seconds", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2")])
def test_retry_after_rounds_up_to_whole_seconds(seconds: float, header: str) -> None:
    """Retry-After is whole seconds, rounded up, at least one."""
    assert retry_after(seconds) == header
