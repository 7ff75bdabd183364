"""LambdaHandler and `invoke` run functions on every new payload kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eventbus import Batching, Bus, Event
from eventbus.aws import (
    ApiCall,
    CloudWatchLogsEvent,
    CognitoSync,
    LambdaContext,
    LambdaHandler,
    from_lambda_event,
    generate_event,
)
from eventbus.aws.cli import main
from eventbus.http import HttpRequest

_KINDS = [
    (CloudWatchLogsEvent, ("cloudwatch", "logs")),
    (ApiCall, ("eventbridge", "cloudtrail-api-call")),
    (ApiCall, ("cloudtrail", "api-call")),
    (CognitoSync, ("cognito", "sync-trigger")),
    (HttpRequest, ("apigateway", "http-api-proxy")),
]


@pytest.mark.parametrize(("cls", "sample"), _KINDS)
async def test_lambda_function_receives_the_payload(
    cls: type[Event], sample: tuple[str, str]
) -> None:
    """A Lambda function subscribed to the kind receives the payload AWS would send."""
    payloads: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: LambdaContext) -> str:
        payloads.append(event)
        return "done"

    payload = generate_event(*sample)
    (event,) = from_lambda_event(payload)
    async with Bus() as bus:
        bus.subscribe(cls, LambdaHandler(handler), name="fn")
        assert await bus.invoke("fn", event) == "done"
    assert from_lambda_event(payloads[0]) == [event]


async def test_batches_of_single_event_kinds_run_one_by_one() -> None:
    """A batch of API Gateway requests runs the function once per request, as Lambda would."""
    calls: list[str] = []

    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        calls.append(event["rawPath"])
        return {"statusCode": 200}

    requests = [HttpRequest("GET", f"/items/{n}", version="2.0", id=f"r{n}") for n in range(3)]
    async with Bus() as bus:
        bus.subscribe(HttpRequest, LambdaHandler(handler), batch=Batching(3, 1.0))
        for request in requests:
            await bus.publish(request)
        await bus.drain()
    assert sorted(calls) == ["/items/0", "/items/1", "/items/2"]


def test_invoke_runs_an_eventbus_handler_on_an_api_gateway_payload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`invoke` hands an HttpRequest to an eventbus handler and prints its response."""
    app = tmp_path / "api_app.py"
    app.write_text(
        "from eventbus.http import HttpRequest\n\n"
        "def handle(request: HttpRequest):\n"
        "    return {'statusCode': 200, 'body': request.method + ' ' + request.path}\n"
    )
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(generate_event("apigateway", "aws-proxy")))
    code = main(["invoke", f"{app}:handle", "--event", str(event_file)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out) == {"statusCode": 200, "body": "POST /orders/o-1"}
