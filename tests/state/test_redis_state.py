"""RedisState specifics, against a real Redis (the contract runs in test_stores)."""

from __future__ import annotations

import os
import socket

import pytest

try:
    from eventbus.bridges.redis import RedisState
except ImportError:  # pragma: no cover - depends on what is installed
    if os.environ.get("EVENTBUS_REQUIRE_SERVICES", "") == "1":
        raise
    pytest.skip("redis is not installed: pip install 'eventbus[redis]'", allow_module_level=True)

from eventbus import TransportError
from eventbus.state import StateError, StateStore


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_redis_state_is_a_state_store() -> None:
    """RedisState implements the StateStore Protocol and is re-exported by the bridge."""
    assert isinstance(RedisState("redis://127.0.0.1:1/0"), StateStore)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"url": ""}, r"RedisState\(url=...\) takes a Redis URL"),
        ({"prefix": ""}, r"RedisState\(prefix=...\) must be a non-empty str"),
        ({"applied_ids": 0}, r"RedisState\(applied_ids=...\) must be an int >= 1"),
    ],
)
def test_bad_arguments_raise_state_error(options: dict[str, object], match: str) -> None:
    """Invalid arguments raise StateError naming the argument."""
    with pytest.raises(StateError, match=match):
        RedisState(**options)  # type: ignore[arg-type]


async def test_an_unreachable_redis_raises_transport_error() -> None:
    """Loading from a Redis that is not there raises TransportError naming the URL."""
    url = f"redis://127.0.0.1:{_free_port()}/0"
    async with RedisState(url) as store:
        with pytest.raises(TransportError, match=r"RedisState at .* could not load key 'k'"):
            await store.load("sub", "k")


@pytest.mark.integration
async def test_two_stores_share_one_state(redis_url: str) -> None:
    """What one RedisState commits, another (another process) loads."""
    from eventbus.state import StateChange

    prefix = f"eventbus-test:state:share:{os.getpid()}"
    async with (
        RedisState(redis_url, prefix=prefix) as first,
        RedisState(redis_url, prefix=prefix) as second,
    ):
        try:
            await first.commit("sub", "k", StateChange('{"n":1}', 0, "e1"))
            loaded = await second.load("sub", "k", "e1")
            assert (loaded.text, loaded.version, loaded.applied) == ('{"n":1}', 1, True)
        finally:
            client = second._redis()
            keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
            await client.delete(*keys)
