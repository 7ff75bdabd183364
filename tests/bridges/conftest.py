"""Broker detection for the bridge tests: NATS (JetStream) and Redis on loopback.

A test that needs a broker takes the ``nats_url`` or ``redis_url`` fixture.
When the service (or its client library) is missing the test is skipped,
with the reason -- unless ``EVENTBUS_REQUIRE_SERVICES=1`` (as in CI), where
it fails instead, so the broker tests cannot be skipped there unnoticed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
from typing import Final, NoReturn

import pytest

NATS_HOST: Final = "127.0.0.1"
NATS_PORT: Final = 4222
REDIS_HOST: Final = "127.0.0.1"
REDIS_PORT: Final = 6379
_PROBE_TIMEOUT: Final = 1.0


def services_required() -> bool:
    """Whether a missing broker fails the tests (``EVENTBUS_REQUIRE_SERVICES=1``)."""
    return os.environ.get("EVENTBUS_REQUIRE_SERVICES", "") == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip the test for *reason*, or fail it when the services are required."""
    if services_required():
        pytest.fail(f"{reason} (EVENTBUS_REQUIRE_SERVICES=1: the broker tests must run)")
    pytest.skip(reason)


def _probe_nats() -> str | None:
    """None when a NATS server with JetStream answers on loopback, else why not."""
    try:
        with socket.create_connection((NATS_HOST, NATS_PORT), timeout=_PROBE_TIMEOUT) as sock:
            sock.settimeout(_PROBE_TIMEOUT)
            line = sock.makefile("rb").readline(64 * 1024)
    except OSError as exc:
        return f"no NATS server at {NATS_HOST}:{NATS_PORT} ({exc})"
    if not line.startswith(b"INFO "):
        return f"the server at {NATS_HOST}:{NATS_PORT} does not speak NATS"
    try:
        info = json.loads(line[5:])
    except ValueError:
        return f"the server at {NATS_HOST}:{NATS_PORT} sent an unreadable INFO line"
    if not info.get("jetstream"):
        return f"the NATS server at {NATS_HOST}:{NATS_PORT} runs without JetStream (-js)"
    return None


def _probe_redis() -> str | None:
    """None when Redis answers PING on loopback, else why not."""
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=_PROBE_TIMEOUT) as sock:
            sock.settimeout(_PROBE_TIMEOUT)
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return f"no Redis server at {REDIS_HOST}:{REDIS_PORT} ({exc})"
    if not reply.startswith(b"+PONG"):
        return f"the server at {REDIS_HOST}:{REDIS_PORT} did not answer PING like Redis: {reply!r}"
    return None


def _require_client(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        unavailable(f"the {module!r} client is not installed: pip install 'eventbus[{extra}]'")


def live_nats_url() -> str:
    """The loopback NATS URL, once a JetStream server answers there (else skip or fail)."""
    _require_client("nats", "nats")
    reason = _probe_nats()
    if reason is not None:
        unavailable(reason)
    return f"nats://{NATS_HOST}:{NATS_PORT}"


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The loopback NATS URL, once a JetStream server answers there."""
    return live_nats_url()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The loopback Redis URL (database 0), once Redis answers there."""
    _require_client("redis", "redis")
    reason = _probe_redis()
    if reason is not None:
        unavailable(reason)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
