"""GET /openapi.json: an OpenAPI 3.1 document from the routes and their events."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any, Literal

import attrs
import httpx
import pytest

from eventbus import Event
from eventbus.http import BearerTokens, Gateway, HmacSignature
from eventbus.http._openapi import schema_for


async def test_document_lists_routes_and_builtins(http: httpx.AsyncClient) -> None:
    """The document is OpenAPI 3.1 with every route and the built-in endpoints."""
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {
        "/orders/{order_id}",
        "/orders",
        "/echo/{thing}",
        "/events",
        "/health",
        "/metrics",
        "/openapi.json",
    }
    assert set(doc["paths"]["/echo/{thing}"]) == {"get", "post"}


async def test_request_body_comes_from_attrs_fields(http: httpx.AsyncClient) -> None:
    """A typed route's body schema lists the event's fields; path fields are parameters."""
    doc = (await http.get("/openapi.json")).json()
    op = doc["paths"]["/orders/{order_id}"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {
        "type": "object",
        "properties": {
            "quantity": {"type": "integer"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
    }
    assert op["parameters"] == [
        {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    publish = doc["paths"]["/orders"]["post"]
    body = publish["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["order_id"]
    assert "202" in publish["responses"]


async def test_errors_are_documented_in_lambda_shape(http: httpx.AsyncClient) -> None:
    """Error responses point at the Error schema with errorType and errorMessage."""
    doc = (await http.get("/openapi.json")).json()
    responses = doc["paths"]["/orders/{order_id}"]["post"]["responses"]
    assert responses["504"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert doc["components"]["schemas"]["Error"]["required"] == ["errorType", "errorMessage"]


class Colour(enum.Enum):
    """An enum field type."""

    RED = "red"


@attrs.frozen
class Inner:
    """A nested attrs value."""

    x: int


@pytest.mark.parametrize(
    ("hint", "schema"),
    [
        (str, {"type": "string"}),
        (bool, {"type": "boolean"}),
        (float, {"type": "number"}),
        (dt.datetime, {"type": "string", "format": "date-time"}),
        (bytes, {"type": "string", "contentEncoding": "base64"}),
        (Decimal, {"type": ["string", "number"]}),
        (Literal["a", "b"], {"enum": ["a", "b"]}),
        (Colour, {"enum": ["red"]}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (dict[str, bool], {"type": "object", "additionalProperties": {"type": "boolean"}}),
        (Inner, {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}),
        (Any, {}),
    ],
)
def test_field_schemas_follow_the_codec(hint: Any, schema: dict[str, Any]) -> None:
    """Each declared type maps to the JSON Schema of what the codec accepts."""
    assert schema_for(hint) == schema


def test_security_schemes_follow_the_authenticator() -> None:
    """BearerTokens and HmacSignature are described as security schemes."""
    from eventbus import Bus

    bearer = Gateway(Bus(), auth=BearerTokens("t")).openapi()
    assert bearer["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer"}
    }
    hmac = Gateway(Bus(), auth=HmacSignature("k")).openapi()
    assert set(hmac["components"]["securitySchemes"]) == {"hmacSignature", "hmacTimestamp"}


@attrs.frozen
class Tagged(Event):
    """An event for the summary test."""

    tag: str


def test_route_summary_is_used() -> None:
    """route(summary=...) becomes the operation summary."""
    from eventbus import Bus

    app = Gateway(Bus())
    app.route("PUT", "/tags/{tag}", publish=Tagged, summary="tag something")
    assert app.openapi()["paths"]["/tags/{tag}"]["put"]["summary"] == "tag something"
