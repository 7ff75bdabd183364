"""A route invoking an existing Lambda function: it receives the API Gateway proxy payload."""

from __future__ import annotations

import json
from typing import Any

from gateway_helpers import client

from eventbus import Bus, HttpRequest
from eventbus.aws import LambdaHandler
from eventbus.http import Gateway


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An API Gateway (HTTP API) function, written for AWS Lambda."""
    name = event["pathParameters"]["name"]
    greeting = json.loads(event["body"])["greeting"]
    return {
        "statusCode": 200,
        "headers": {"content-type": "text/plain"},
        "body": f"{greeting}, {name} ({event['requestContext']['http']['method']})",
    }


async def test_lambda_handler_gets_the_proxy_payload(bus: Bus) -> None:
    """The function sees a v2 proxy payload and its proxy result becomes the response."""
    bus.subscribe(HttpRequest, LambdaHandler(lambda_handler), name="hello")
    app = Gateway(bus)
    app.route("POST", "/hello/{name}", invoke="hello")
    async with client(app) as c:
        response = await c.post("/hello/ada", json={"greeting": "hi"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain"
    assert response.text == "hi, ada (POST)"
