"""RedisState: keyed state in Redis, shared by every process of a subscription.

Layout, under ``prefix`` (``{p}`` below stands for ``prefix:len(sub):sub``, so
no subscription name or key can collide with another)::

    {p}:s:<key>   hash    v = version, d = the state's JSON text
    {p}:a:<key>   zset    applied event ids, scored by the version they made
    {p}:keys      set     keys whose state is not empty
    {p}:r         hash    reminder id -> {"key", "due_us", "event"} JSON

A commit is one Lua script: it refuses an applied event id, checks the
version (optimistic concurrency), writes the state, records the event id,
trims the applied ids to the latest ``applied_ids`` and stores reminders --
atomically, as Redis runs a script without interleaving.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, final

try:
    import redis.asyncio
    import redis.exceptions
except ImportError as exc:
    raise ImportError(
        "eventbus.bridges.redis needs the Redis client library (redis-py); "
        "install it with: pip install 'eventbus[redis]'",
        name=exc.name,
    ) from exc

from .._exceptions import TransportError
from .._state import (
    DEFAULT_APPLIED_IDS,
    EMPTY_STATE,
    Reminder,
    StateChange,
    StateConflict,
    StateError,
    StoredState,
    check_applied_ids,
)

__all__ = ["RedisState"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DUPLICATE: Final = -1
_CONFLICT: Final = -2

# KEYS: state hash, applied zset, keys set, reminders hash
# ARGV: expected version, state text, key, keep, n, then n event ids,
#       then (reminder id, reminder json) pairs
_COMMIT: Final = """
local n = tonumber(ARGV[5])
for i = 6, 5 + n do
    if redis.call('ZSCORE', KEYS[2], ARGV[i]) then
        return {-1, 0}
    end
end
local found = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if found ~= tonumber(ARGV[1]) then
    return {-2, found}
end
local version = found + 1
redis.call('HSET', KEYS[1], 'v', version, 'd', ARGV[2])
for i = 6, 5 + n do
    redis.call('ZADD', KEYS[2], version, ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', version - tonumber(ARGV[4]))
if ARGV[2] == '{}' then
    redis.call('SREM', KEYS[3], ARGV[3])
else
    redis.call('SADD', KEYS[3], ARGV[3])
end
for i = 6 + n, #ARGV, 2 do
    redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
end
return {version, 0}
"""

_CONNECTION_ERRORS: Final = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _to_us(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@final
class RedisState:
    """Keyed state of stateful subscriptions in Redis (``pip install 'eventbus[redis]'``).

    Several processes that run the same subscription over a broker
    transport (``RedisStreamsTransport``, ``NatsTransport``) share one
    authoritative state per key through it. Commits use optimistic
    concurrency per key: a commit from a stale version raises
    :class:`~eventbus.StateConflict`, and the bus handles the event again on
    the new state -- an update is never lost. An event id already applied
    to a key is refused (those of the latest ``applied_ids`` commits per key are kept).

    The client connects on first use; :meth:`aclose` (or ``async with``)
    closes it.

    Args:
        url: the Redis URL (``redis://``, ``rediss://``, ``unix://``).
        prefix: the prefix of every Redis key the store writes.
        applied_ids: each key remembers the event ids of its latest
            *applied_ids* commits, to refuse applying one twice.
        client_options: more keyword arguments for
            ``redis.asyncio.Redis.from_url`` (password, TLS, timeouts).

    Raises:
        StateError: *url*, *prefix* or *applied_ids* is invalid.

    .. versionadded:: 0.2
    """

    __slots__ = ("_applied_ids", "_client", "_client_options", "_prefix", "_script", "_url")

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "eventbus:state",
        applied_ids: int = DEFAULT_APPLIED_IDS,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise StateError(
                f"RedisState(url=...) takes a Redis URL such as 'redis://host:6379/0', got {url!r:.80}"
            )
        if not isinstance(prefix, str) or not prefix:
            raise StateError(f"RedisState(prefix=...) must be a non-empty str, got {prefix!r:.80}")
        if client_options is not None and not isinstance(client_options, Mapping):
            raise StateError(
                "RedisState(client_options=...) takes a mapping of "
                f"redis.asyncio.Redis.from_url() keyword arguments, got {type(client_options).__name__}"
            )
        self._url = url
        self._prefix = prefix
        self._applied_ids = check_applied_ids("RedisState", applied_ids)
        self._client_options = dict(client_options or {})
        self._client: redis.asyncio.Redis | None = None
        self._script: Any = None

    def __repr__(self) -> str:
        return f"RedisState({self._url!r}, prefix={self._prefix!r})"

    async def __aenter__(self) -> RedisState:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection; the store connects again if used afterwards."""
        client, self._client, self._script = self._client, None, None
        if client is not None:
            await client.aclose()

    def _base(self, subscription: str) -> str:
        return f"{self._prefix}:{len(subscription)}:{subscription}"

    def _redis(self) -> redis.asyncio.Redis:
        if self._client is None:
            self._client = redis.asyncio.Redis.from_url(self._url, **self._client_options)
            self._script = self._client.register_script(_COMMIT)
        return self._client

    def _unreachable(self, exc: BaseException, doing: str) -> TransportError:
        error = TransportError(
            f"RedisState at {self._url!r} could not {doing}: {exc}; check that Redis is "
            "running and reachable (the attempt is retried by the bus)"
        )
        error.__cause__ = exc
        return error

    async def load(self, subscription: str, key: str, event_id: str | None = None) -> StoredState:
        """Read *key*'s state and version, and whether *event_id* was applied to it.

        Raises:
            TransportError: Redis could not be reached.
        """
        base = self._base(subscription)
        try:
            async with self._redis().pipeline(transaction=True) as pipe:
                pipe.hmget(f"{base}:s:{key}", "v", "d")
                if event_id is not None:
                    pipe.zscore(f"{base}:a:{key}", event_id)
                replies = await pipe.execute()
        except _CONNECTION_ERRORS as exc:
            raise self._unreachable(exc, f"load key {key!r}") from exc
        version, text = replies[0]
        applied = event_id is not None and replies[1] is not None
        if version is None:
            return StoredState(applied=applied)
        return StoredState(_text(text) if text is not None else EMPTY_STATE, int(version), applied)

    async def commit(self, subscription: str, key: str, change: StateChange) -> bool:
        """Write *change* (state, event id, reminders) atomically.

        Returns:
            ``False`` (and writes nothing) when the event id was already applied.

        Raises:
            StateConflict: another process committed the key first.
            TransportError: Redis could not be reached (whether the commit
                happened is then unknown; the bus's retry finds out: a
                commit that did happen makes the retry a duplicate).
        """
        base = self._base(subscription)
        ids = change.event_ids
        args: list[Any] = [change.version, change.text, key, self._applied_ids, len(ids), *ids]
        for r in change.reminders:
            args.append(r.id)
            args.append(
                json.dumps(
                    {"key": r.key, "due_us": _to_us(r.due), "event": r.event},
                    separators=(",", ":"),
                )
            )
        self._redis()
        try:
            outcome, found = await self._script(
                keys=[f"{base}:s:{key}", f"{base}:a:{key}", f"{base}:keys", f"{base}:r"],
                args=args,
            )
        except _CONNECTION_ERRORS as exc:
            raise self._unreachable(exc, f"commit key {key!r}") from exc
        if outcome == _DUPLICATE:
            return False
        if outcome == _CONFLICT:
            raise StateConflict(subscription, key, change.version, int(found))
        return True

    async def keys(self, subscription: str) -> AsyncIterator[str]:
        """Iterate *subscription*'s keys whose state is not empty (``SSCAN``; any order)."""
        client = self._redis()
        try:
            async for member in client.sscan_iter(f"{self._base(subscription)}:keys", count=500):
                yield _text(member)
        except _CONNECTION_ERRORS as exc:
            raise self._unreachable(exc, "list keys") from exc

    async def reminders(self, subscription: str) -> list[Reminder]:
        """*subscription*'s pending reminders, earliest due first."""
        try:
            raw = await self._redis().hgetall(f"{self._base(subscription)}:r")
        except _CONNECTION_ERRORS as exc:
            raise self._unreachable(exc, "list reminders") from exc
        found: list[Reminder] = []
        for rid, value in raw.items():
            document = json.loads(value)
            due = _EPOCH + timedelta(microseconds=int(document["due_us"]))
            found.append(
                Reminder(subscription, document["key"], due, document["event"], id=_text(rid))
            )
        found.sort(key=lambda r: (r.due, r.id))
        return found

    async def forget(self, reminder: Reminder) -> None:
        """Remove *reminder*; unknown ones are ignored."""
        try:
            await self._redis().hdel(f"{self._base(reminder.subscription)}:r", reminder.id)
        except _CONNECTION_ERRORS as exc:
            raise self._unreachable(exc, "remove a reminder") from exc
