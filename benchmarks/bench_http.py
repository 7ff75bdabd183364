"""The HTTP gateway under load: an ``invoke`` route beside a bare Starlette endpoint.

Run it from the repository root (needs the ``http`` and ``test`` extras)::

    python benchmarks/bench_http.py             # about half a minute
    python benchmarks/bench_http.py --quick     # a smoke test
    python benchmarks/bench_http.py --json out.json

What is measured, for ``POST /orders/{order_id}`` with a small JSON body
answered with a small JSON object: requests per second over loopback, and
the server's own time per request with the app called in process (ASGI
messages handed to it directly, no network and no HTTP client).

* ``eventbus.http.Gateway``: the route ``invoke="create_order",
  event=OrderPlaced`` -- the body and path build the attrs event with the
  CloudEvents codec, ``bus.invoke`` runs the handler, its dict is the 200
  JSON response;
* ``bare Starlette``: one endpoint doing the same work by hand -- read the
  body, parse the JSON, check the two fields, call the same handler
  function directly, answer ``JSONResponse``.

Both apps are served by uvicorn (same settings) in one child process, each
on its own ephemeral port on 127.0.0.1; this process is the load generator:
``--concurrency`` ``httpx.AsyncClient`` connections together sending
``--requests`` requests per round. Rounds alternate between the two apps
(gateway, bare, gateway, bare, ...) and the table reports the median of
each, so a noisy machine slows both alike. Over loopback the HTTP client
costs far more CPU per request than either server, so the in-process column
is the one that shows what the gateway adds. The figure is a ratio of two
measurements on the same machine in the same run, not an absolute speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, "") and str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import attrs

from eventbus import Bus, Event


@attrs.frozen
class OrderPlaced(Event):
    """The benchmark's request body, as an event."""

    order_id: str
    quantity: int = 1


async def create_order(event: OrderPlaced) -> dict[str, Any]:
    """The work both apps do: answer with the order."""
    return {"order_id": event.order_id, "quantity": event.quantity, "accepted": True}


# -- the server side (child process) ----------------------------------------------------


def gateway_app() -> Any:
    """The gateway under test; its lifespan starts the bus."""
    from eventbus.http import Gateway

    bus = Bus()
    bus.subscribe(OrderPlaced, create_order, name="create_order")
    app = Gateway(bus)
    app.route("POST", "/orders/{order_id}", invoke="create_order", event=OrderPlaced)
    return app


def bare_app() -> Any:
    """The same work on a bare Starlette endpoint, no bus."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def endpoint(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return JSONResponse({"errorType": "InvalidJSON", "errorMessage": str(exc)}, 400)
        quantity = body.get("quantity", 1) if isinstance(body, dict) else None
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            return JSONResponse({"errorType": "InvalidField", "errorMessage": "quantity"}, 400)
        event = OrderPlaced(request.path_params["order_id"], quantity=quantity)
        return JSONResponse(await create_order(event))

    return Starlette(routes=[Route("/orders/{order_id}", endpoint, methods=["POST"])])


async def serve_both() -> None:
    """Serve both apps on ephemeral loopback ports; print the ports; run until stdin closes."""
    import uvicorn

    servers = []
    ports = []
    for app in (gateway_app(), bare_app()):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Accepted connections inherit this; without it each small response
        # waits on Nagle's algorithm and the client's delayed ACK (~40 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        ports.append(sock.getsockname()[1])
        config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
        servers.append((uvicorn.Server(config), sock))
    print(json.dumps(ports), flush=True)
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(server.serve([sock])) for server, sock in servers]
    await loop.run_in_executor(None, sys.stdin.read)  # the parent closes stdin to stop us
    for server, _ in servers:
        server.should_exit = True
    await asyncio.gather(*tasks)


# -- the load generator (this process) ---------------------------------------------------


async def one_round(port: int, requests: int, concurrency: int) -> float:
    """Send *requests* requests over *concurrency* connections; return requests per second.

    Each connection has a client of its own (one keep-alive connection): a
    shared pool's bookkeeping would be what gets measured.
    """
    import httpx

    body = json.dumps({"quantity": 3}).encode()
    headers = {"content-type": "application/json"}
    remaining = requests
    failures = 0
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits)
        for _ in range(concurrency)
    ]
    try:
        # open the connections, untimed
        await asyncio.gather(
            *(c.post("/orders/warm", content=body, headers=headers) for c in clients)
        )

        async def worker(index: int, client: httpx.AsyncClient) -> None:
            nonlocal remaining, failures
            while remaining > 0:
                remaining -= 1
                response = await client.post(f"/orders/o-{index}", content=body, headers=headers)
                if response.status_code != 200:
                    failures += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(i, c) for i, c in enumerate(clients)))
        elapsed = time.perf_counter() - start
    finally:
        for client in clients:
            await client.aclose()
    if failures:
        raise RuntimeError(f"{failures} requests failed on port {port}")
    return requests / elapsed


async def asgi_round(app: Any, requests: int) -> float:
    """Call *app* directly as ASGI *requests* times; return microseconds per request."""
    body = json.dumps({"quantity": 3}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/orders/o-1",
        "raw_path": b"/orders/o-1",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    message = {"type": "http.request", "body": body, "more_body": False}
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return message

    async def send(reply: dict[str, Any]) -> None:
        if reply["type"] == "http.response.start":
            statuses.add(reply["status"])

    start = time.perf_counter()
    for _ in range(requests):
        await app(dict(scope), receive, send)
    elapsed = time.perf_counter() - start
    if statuses != {200}:
        raise RuntimeError(f"unexpected statuses {sorted(statuses)}")
    return elapsed / requests * 1e6


async def measure_asgi(rounds: int, requests: int) -> dict[str, list[float]]:
    """Interleaved in-process rounds: the server's own cost per request, no network."""
    gateway = gateway_app()
    bare = bare_app()
    figures: dict[str, list[float]] = {"gateway": [], "bare": []}
    async with gateway.bus:
        await asgi_round(gateway, 200)  # warm up
        await asgi_round(bare, 200)
        for _ in range(rounds):
            figures["gateway"].append(await asgi_round(gateway, requests))
            figures["bare"].append(await asgi_round(bare, requests))
    return figures


async def measure(rounds: int, requests: int, concurrency: int) -> dict[str, list[float]]:
    """Start the servers, run interleaved rounds, stop the servers."""
    child = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is timed
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if child.stdout is None:
            raise RuntimeError("the server process has no stdout")
        gateway_port, bare_port = json.loads(child.stdout.readline())
        figures: dict[str, list[float]] = {"gateway": [], "bare": []}
        for _ in range(rounds):
            figures["gateway"].append(await one_round(gateway_port, requests, concurrency))
            figures["bare"].append(await one_round(bare_port, requests, concurrency))
        return figures
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small sizes, two rounds")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per app (default 5)")
    parser.add_argument("--requests", type=int, default=3000, help="requests per round")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (default 16)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve_both())
        return 0
    rounds, requests = (2, 300) if args.quick else (args.rounds, args.requests)
    loopback = asyncio.run(measure(rounds, requests, args.concurrency))
    in_process = asyncio.run(measure_asgi(rounds, requests * 3))
    medians = {
        "loopback_req_per_s": {k: statistics.median(v) for k, v in loopback.items()},
        "asgi_us_per_req": {k: statistics.median(v) for k, v in in_process.items()},
    }
    rps = medians["loopback_req_per_s"]
    cost = medians["asgi_us_per_req"]
    print(
        f"POST /orders/{{order_id}}: {rounds} interleaved rounds per app, medians "
        f"(Python {platform.python_version()}, {platform.machine()})"
    )
    print(f"{'':<26} {'loopback req/s':>15} {'in-process us/req':>18}")
    print(f"{'eventbus.http.Gateway':<26} {rps['gateway']:>15,.0f} {cost['gateway']:>18,.1f}")
    print(f"{'bare Starlette endpoint':<26} {rps['bare']:>15,.0f} {cost['bare']:>18,.1f}")
    print(
        f"gateway / bare: {rps['gateway'] / rps['bare']:.2f} of the requests per second; "
        f"{cost['gateway'] - cost['bare']:+.1f} us of server time per request"
    )
    print(
        f"(loopback: {requests} requests per round over {args.concurrency} connections; "
        f"in process: {requests * 3} ASGI calls per round)"
    )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"loopback": loopback, "in_process": in_process, "median": medians}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
