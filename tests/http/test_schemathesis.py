"""Property-based API tests of the gateway from its own /openapi.json (schemathesis).

schemathesis runs the gateway over ASGI in an event loop of its own and
enters the ASGI lifespan there, which starts the gateway's bus.
"""

from __future__ import annotations

from typing import Any

import attrs
import schemathesis
from hypothesis import HealthCheck, settings

from eventbus import Bus, Event, HttpRequest
from eventbus.http import Gateway


@attrs.frozen
class Reading(Event):
    """A sensor reading with fields of several types."""

    sensor: str
    value: float
    count: int = 0
    unit: str | None = None
    tags: list[str] = attrs.field(factory=list)


async def record(event: Reading) -> dict[str, Any]:
    """Answer with the reading."""
    return {"sensor": event.sensor, "value": event.value, "count": event.count}


async def inspect_request(event: HttpRequest) -> dict[str, Any]:
    """Answer proxy style with the request's size."""
    return {"statusCode": 200, "body": str(len(event.body))}


def make_gateway() -> Gateway:
    """A gateway over a bus that its lifespan starts."""
    bus = Bus()
    bus.subscribe(Reading, record, name="record")
    bus.subscribe(HttpRequest, inspect_request, name="inspect")
    app = Gateway(bus, error_status={r"^\[BadRequest\]": 400})
    app.route("POST", "/sensors/{sensor}", invoke="record", event=Reading)
    app.route("PUT", "/readings", publish=Reading)
    app.route("GET", "/raw/{key}", invoke="inspect")
    app.route("POST", "/raw/{key}", invoke="inspect")
    return app


class FreshGateway:
    """The ASGI app under test: a new bus and gateway for each ASGI lifespan.

    schemathesis ends the app's lifespan after each test and starts it again
    for the next; a bus runs once, so each lifespan gets a gateway of its own.
    """

    def __init__(self) -> None:
        self.current = make_gateway()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and not self.current.bus.running:
            self.current = make_gateway()
        await self.current(scope, receive, send)


schema = schemathesis.openapi.from_asgi("/openapi.json", FreshGateway())


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_gateway_honours_its_openapi_document(case: schemathesis.Case[Any]) -> None:
    """Generated requests (valid and malformed) get documented answers and never a 5xx."""
    excluded = []
    if case.path == "/events":
        # A schema-valid CloudEvent of a type no class registers is rightly refused (400).
        excluded.append(schemathesis.checks.positive_data_acceptance)
    case.call_and_validate(excluded_checks=excluded)
