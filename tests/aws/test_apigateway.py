"""API Gateway proxy payloads (REST API 1.0, HTTP API 2.0) <-> eventbus.http.HttpRequest."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from eventbus import Bus, SerializationError
from eventbus.aws import (
    LambdaContext,
    LambdaHandler,
    from_lambda_event,
    generate_event,
    to_lambda_event,
)
from eventbus.http import HttpRequest

from ._payloads import DATA, load


def _one(payload: Any) -> HttpRequest:
    (event,) = from_lambda_event(payload)
    assert isinstance(event, HttpRequest)
    return event


def test_rest_api_request_fields() -> None:
    """A REST API request reads method, path, resource, parameters, stage, id and source IP."""
    event = _one(load(DATA / "aws-lambda-go" / "apigw-request.json"))
    assert (event.method, event.path, event.route) == ("POST", "/hello/world", "/{proxy+}")
    assert event.path_parameters == {"proxy": "hello/world"}
    assert event.query == {"name": ("me",)}
    assert event.header("content-type") == "application/json"
    assert event.stage == "testStage"
    assert event.request_id == "deef4878-7910-11e6-8f14-25afc3e9ae33"
    assert event.source_ip == "192.168.196.186"
    assert event.version == "1.0"
    assert event.json() == {"a": 1}


def test_rest_api_multi_values() -> None:
    """multiValueHeaders and multiValueQueryStringParameters keep every value, in order."""
    event = _one(
        load(DATA / "aws-lambda-rust-runtime" / "example-apigw-request-multi-value-parameters.json")
    )
    assert all(isinstance(values, tuple) for values in event.query.values())
    assert any(len(values) > 1 for values in event.query.values())
    assert all(name == name.lower() for name in event.headers)


def test_http_api_jwt_request() -> None:
    """An HTTP API request keeps JWT claims, cookies and repeated query parameters."""
    event = _one(load(DATA / "aws-lambda-go" / "apigw-v2-request-jwt-authorizer.json"))
    assert event.version == "2.0"
    assert (event.method, event.path, event.route) == ("GET", "/my/path", None)
    assert event.query == {"parameter1": ("value1", "value2"), "parameter2": ("value",)}
    assert event.cookies == ("cookie1", "cookie2")
    assert event.authorizer["jwt"]["claims"] == {"claim1": "value1", "claim2": "value2"}
    assert event.header("HEADER1") == "value1"
    assert event.stage == "$default"


def test_http_api_iam_and_no_authorizer() -> None:
    """IAM identities are kept; a request without authorizer has none."""
    iam = _one(load(DATA / "aws-lambda-go" / "apigw-v2-request-iam.json"))
    assert "iam" in iam.authorizer
    plain = _one(load(DATA / "aws-lambda-go" / "apigw-v2-request-no-authorizer.json"))
    assert plain.authorizer == {}


def test_base64_body_is_decoded() -> None:
    """A body flagged isBase64Encoded reads as its bytes, and renders back as base64."""
    payload = generate_event("apigateway", "http-api-proxy")
    payload["body"] = base64.b64encode(b"\x00\xffbinary").decode()
    payload["isBase64Encoded"] = True
    event = _one(payload)
    assert event.body == b"\x00\xffbinary"
    rendered = to_lambda_event([event])
    assert rendered["isBase64Encoded"] is True
    assert _one(rendered).body == b"\x00\xffbinary"


def test_version_selects_the_rendered_format() -> None:
    """1.0 renders a REST API payload; 2.0 and the gateway's 'http' render an HTTP API payload."""
    v1 = HttpRequest("GET", "/a", version="1.0")
    assert to_lambda_event([v1])["httpMethod"] == "GET"
    for version in ("2.0", "http"):
        rendered = to_lambda_event([HttpRequest("GET", "/a", version=version)])
        assert rendered["version"] == "2.0"
        assert rendered["requestContext"]["http"]["method"] == "GET"


def test_route_key_round_trips() -> None:
    """A route renders as the routeKey 'METHOD /route' and reads back as the route."""
    event = HttpRequest("PUT", "/orders/7", route="/orders/{id}", version="2.0")
    rendered = to_lambda_event([event])
    assert rendered["routeKey"] == "PUT /orders/{id}"
    assert _one(rendered).route == "/orders/{id}"


def test_unknown_version_is_refused() -> None:
    """An HttpRequest whose version names no payload format cannot be rendered."""
    with pytest.raises(SerializationError, match=r"events\[0\]\.version"):
        to_lambda_event([HttpRequest("GET", "/", version="3")])


def test_bad_base64_flag_keeps_the_text() -> None:
    """A body flagged base64 that is not base64 (a published sample does this) is kept as text."""
    event = _one(load(DATA / "aws-lambda-dotnet" / "http-api-v2-request.json"))
    assert event.body == b"Hello from Lambda"


async def test_lambda_handler_gets_the_proxy_payload_and_returns_its_response() -> None:
    """A LambdaHandler on HttpRequest receives the proxy payload; invoke returns its response."""
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 201, "headers": {"x": "1"}, "body": "ok", "isBase64Encoded": False}

    (request,) = from_lambda_event(generate_event("apigateway", "aws-proxy"))
    async with Bus() as bus:
        bus.subscribe(HttpRequest, LambdaHandler(handler), name="api")
        result = await bus.invoke("api", request)
    assert result == {
        "statusCode": 201,
        "headers": {"x": "1"},
        "body": "ok",
        "isBase64Encoded": False,
    }
    assert seen[0]["httpMethod"] == "POST"
    assert seen[0]["path"] == "/orders/o-1"


def test_requests_without_a_request_id_get_ids_from_their_content() -> None:
    """Without requestId, equal requests read with equal ids and different ones with different ids."""
    payload = generate_event("apigateway", "http-api-proxy")
    del payload["requestContext"]["requestId"]
    other = {**payload, "rawPath": "/orders/o-2"}
    other["requestContext"] = {
        **payload["requestContext"],
        "http": {**payload["requestContext"]["http"], "path": "/orders/o-2"},
    }
    assert _one(payload).id == _one(payload).id
    assert _one(payload).id != _one(other).id


@pytest.mark.parametrize("version", ["http", "2.0", "1.0"])
def test_locally_built_requests_render_what_powertools_accepts(version: str) -> None:
    """A request built locally (as the gateway does) renders a payload Powertools accepts."""
    from ._payloads import powertools_model, validates

    request = HttpRequest(
        "POST",
        "/a b/c",
        query={"x": ("1", "2")},
        headers={"Content-Type": "text/plain"},
        cookies=("a=1", "b=2"),
        body=b"\xff\x00",
        source_ip=None if version == "http" else "203.0.113.7",
        version=version,
    )
    payload = to_lambda_event([request])
    assert validates(powertools_model(from_lambda_event(payload)[0]), payload)
    back = _one(payload)
    assert (back.method, back.path, back.query, back.body) == (
        "POST",
        "/a b/c",
        {"x": ("1", "2")},
        b"\xff\x00",
    )
