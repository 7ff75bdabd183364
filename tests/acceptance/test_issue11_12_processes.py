"""Issues 11 and 12 end to end: a served gateway, Lambda handlers behind it, hooks, the demo bill."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from eventbus import Bus, Event, Hook, HttpRequest, NoRetry
from eventbus.aws import LambdaHandler, from_lambda_event, generate_event
from eventbus.http import Gateway


@attrs.frozen
class Ping(Event, type_name="acceptance.i12b.Ping"):
    n: int = 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_cli_answers_real_http(tmp_path: Path) -> None:
    """python -m eventbus serve module:gateway serves routes over a real socket, stops on SIGTERM."""
    (tmp_path / "acc_gw_app.py").write_text(
        textwrap.dedent(
            """
            import attrs
            from eventbus import Bus, Event
            from eventbus.http import Gateway

            @attrs.frozen
            class Hello(Event):
                name: str

            bus = Bus()

            @bus.on(Hello)
            async def hello(event):
                return {"hello": event.name}

            gateway = Gateway(bus)
            gateway.route("POST", "/hello/{name}", invoke="hello", event=Hello)
            """
        )
    )
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eventbus",
            "serve",
            "acc_gw_app:gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        response = None
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    response = client.post("/hello/ada", json={})
                    break
                except httpx.TransportError:
                    continue
            assert response is not None, "the server never answered"
            assert response.status_code == 200
            assert response.json() == {"hello": "ada"}
            assert client.get("/health").status_code == 200
            assert client.get("/nope").status_code == 404
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("kind", ["aws-proxy", "http-api-proxy"])
async def test_lambda_handler_route_gets_a_proxy_payload(kind: str) -> None:
    """A LambdaHandler behind a route receives an API Gateway proxy payload and answers with it."""
    seen: list[dict[str, Any]] = []

    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 201, "headers": {"x-a": "1"}, "body": "made"}

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(HttpRequest, LambdaHandler(lambda_handler), name="legacy")
        gateway = Gateway(bus)
        gateway.route("POST", "/legacy/{id}", invoke="legacy")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gateway), base_url="http://gw"
        ) as client:
            r = await client.post("/legacy/7?x=1", content=b"payload")
        # the same handler runs on a real API Gateway payload too
        (request,) = from_lambda_event(generate_event("apigateway", kind))
        assert isinstance(request, HttpRequest)
        await bus.invoke("legacy", request)
    assert (r.status_code, r.headers["x-a"], r.text) == (201, "1", "made")
    assert seen[0]["pathParameters"] == {"id": "7"}
    assert len(seen) == 2


async def test_a_user_hook_sees_publish_start_end_and_dead_letter() -> None:
    """A user's own Hook subclass gets publish, delivery start/end and dead-letter calls."""
    calls: list[str] = []

    class Recorder(Hook):
        def on_publish(self, event: Event) -> None:
            calls.append("publish")

        def on_delivery_start(self, delivery: Any) -> object:
            calls.append("start")
            return None

        def on_delivery_end(
            self, delivery: Any, token: object, outcome: Any, duration_s: float, error: Any
        ) -> None:
            calls.append(f"end:{outcome}")

        def on_dead_letter(self, letter: Any) -> None:
            calls.append("dead")

    async def fail(event: Ping) -> None:
        raise RuntimeError("x")

    async with Bus(hooks=[Recorder()], retry=NoRetry()) as bus:
        bus.subscribe(Ping, fail, name="f")
        await bus.publish(Ping())
        await bus.drain()
    assert calls[0] == "publish"
    assert "start" in calls
    assert any(c.startswith("end:") and "success" not in c for c in calls)
    assert calls[-1] == "dead" or "dead" in calls


def test_hooks_must_be_a_list_of_hooks() -> None:
    """Bus(hooks=<one hook>) tells the user to wrap it in a list."""

    class Mine(Hook):
        pass

    with pytest.raises(TypeError, match=r"\["):
        Bus(hooks=Mine())  # type: ignore[arg-type]


def test_demo_ends_with_the_bill() -> None:
    """python -m eventbus demo runs and ends with the Lambda bill."""
    proc = subprocess.run(
        [sys.executable, "-m", "eventbus", "demo"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    tail = proc.stdout.strip().splitlines()[-6:]
    assert any("$" in line for line in tail), tail
