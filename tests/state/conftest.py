"""Fixtures for the state tests: one ``store`` per kind, Redis only when it runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from bridges.conftest import nats_url as nats_url
from bridges.conftest import redis_url as redis_url

from eventbus.state import MemoryState, SqliteState, StateStore

KINDS = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.integration),
]


async def _redis_cleanup(url: str, prefix: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[..., StateStore]]:
    """A factory of stores of the kind under test; stores of one test share their data."""
    kind = request.param
    made: list[Any] = []
    prefix = f"eventbus-test:state:{uuid.uuid4().hex}"
    url = request.getfixturevalue("redis_url") if kind == "redis" else ""
    shared = MemoryState() if kind == "memory" else None

    def make(**options: Any) -> StateStore:
        store: Any
        if kind == "memory":
            store = MemoryState(**options) if options else shared
        elif kind == "sqlite":
            store = SqliteState(tmp_path / "state.db", **options)
        else:
            from eventbus.bridges.redis import RedisState

            store = RedisState(url, prefix=prefix, **options)
        made.append(store)
        return store  # type: ignore[no-any-return]

    yield make
    for store in made:
        if kind == "sqlite":
            store.close()
        elif kind == "redis":
            await store.aclose()
    if kind == "redis":
        await _redis_cleanup(url, prefix)


@pytest.fixture
def store(make_store: Callable[..., StateStore]) -> StateStore:
    """One store of the kind under test."""
    return make_store()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "make_store" in metafunc.fixturenames and "kind" not in metafunc.fixturenames:
        metafunc.parametrize("make_store", KINDS, indirect=True)
