"""Idempotent handlers: apply an event's effect once, however often it is delivered.

The bus delivers at least once: a retry after a timeout, a redriven dead
letter, a table outbox replayed after a crash can each hand a handler an
event it has already handled. :func:`idempotent` makes such repeats
harmless. The first successful call for a key stores its result; a repeat
within ``ttl`` returns that result without running the handler again. A
failed call stores nothing, so a retry runs the handler again. Repeats that
arrive while the first call is still running wait for it.

Two stores keep the results: :class:`MemoryIdempotencyStore` (this process
only) and :class:`SqliteIdempotencyStore` (a file that survives restarts and
may be shared by several processes).
"""

from __future__ import annotations

import functools
import heapq
import inspect
import json
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, Literal, ParamSpec, Protocol, TypeAlias, TypeVar, final, overload

import anyio
import anyio.to_thread
import attrs

from ._clock import Clock
from ._exceptions import EventBusError, SerializationError
from ._sqlite import PRIVATE_FILE_MODE, ClosingFile, SqliteFile, transaction

__all__ = [
    "IdempotencyInProgress",
    "MemoryIdempotencyStore",
    "SqliteIdempotencyStore",
    "idempotent",
]

logger = logging.getLogger("eventbus.idempotency")

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_TTL: Final = 3600.0
DEFAULT_LEASE: Final = 60.0
_SWEEP_EVERY: Final = 256  # claims between sweeps of expired SQLite rows


class IdempotencyInProgress(EventBusError, RuntimeError):
    """Another process is handling the same idempotency key right now.

    Raised by an :func:`idempotent` handler backed by a
    :class:`SqliteIdempotencyStore` when a different process holds an
    unexpired claim on the key. Let the bus retry the event later (the
    default retry policy does): by then the other process has stored its
    result, or its claim has expired because it crashed.

    .. versionadded:: 0.1
    """


# -- claims ----------------------------------------------------------------------------


@final
@attrs.frozen
class _Claim:
    """What a store says about a key: run the handler, use a result, or wait."""

    kind: Literal["run", "done", "busy"]
    token: str = ""
    result: Any = None
    until: float = 0.0


class _Backend(Protocol):
    """How a store keeps results (internal)."""

    async def _claim(self, key: str, token: str, lease: float) -> _Claim: ...

    async def _save(self, key: str, token: str, result: Any, ttl: float) -> None: ...

    async def _drop(self, key: str, token: str) -> None: ...


def _time_source(clock: object, owner: str) -> Callable[[], float]:
    if clock is None:
        return time.time
    if isinstance(clock, Clock):
        wall = clock.wall
        return lambda: wall().timestamp()
    if callable(clock):
        return clock
    raise TypeError(
        f"{owner}(clock=...) takes an eventbus Clock (such as FakeClock()) or a function "
        f"returning epoch seconds (such as time.time), got {type(clock).__name__}"
    )


class _Coordinator:
    """The in-process half of a store: one call per key at a time, others wait."""

    __slots__ = ("_running",)

    def __init__(self) -> None:
        self._running: dict[str, anyio.Event] = {}

    async def acquire(self, backend: _Backend, key: str, lease: float) -> _Claim:
        """Wait for this process's call on *key* (if any), then ask *backend*."""
        while True:
            running = self._running.get(key)
            if running is None:
                break
            await running.wait()
        marker = self._running[key] = anyio.Event()
        token = uuid.uuid4().hex
        try:
            # Shielded: a claim made in a thread must not be left behind unseen.
            with anyio.CancelScope(shield=True):
                claim = await backend._claim(key, token, lease)
        except BaseException:
            self.finish(key, marker)
            raise
        if claim.kind != "run":
            self.finish(key, marker)
        return claim

    def finish(self, key: str, marker: anyio.Event | None = None) -> None:
        """Let waiters for *key* go on."""
        current = self._running.get(key)
        if current is not None and (marker is None or current is marker):
            del self._running[key]
            current.set()


# -- in memory -------------------------------------------------------------------------


@final
class MemoryIdempotencyStore:
    """Results of idempotent handlers, kept in this process.

    Results are kept as the objects the handler returned (not copied, not
    serialised): a repeat gets the very same object. Expired results are
    dropped as new calls come in. Everything is lost with the process; use
    :class:`SqliteIdempotencyStore` to remember across restarts.

    Args:
        clock: where to read the time for ``ttl``: an eventbus
            :class:`~eventbus.Clock` such as ``FakeClock()`` (its ``wall()``),
            or a function returning epoch seconds. Default: :func:`time.time`.

    Raises:
        TypeError: *clock* is neither.

    .. versionadded:: 0.1
    """

    __slots__ = ("_coordinator", "_expiry", "_now", "_results")

    def __init__(self, *, clock: Clock | Callable[[], float] | None = None) -> None:
        self._now = _time_source(clock, "MemoryIdempotencyStore")
        self._coordinator = _Coordinator()
        self._results: dict[str, tuple[Any, float]] = {}
        self._expiry: list[tuple[float, str]] = []

    def __len__(self) -> int:
        """How many unexpired results the store holds."""
        now = self._now()
        return sum(1 for _, expires in self._results.values() if expires > now)

    def clear(self) -> None:
        """Forget every stored result."""
        self._results.clear()
        self._expiry.clear()

    def _sweep(self, now: float) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            _, key = heapq.heappop(expiry)
            stored = self._results.get(key)
            if stored is not None and stored[1] <= now:
                del self._results[key]

    async def _claim(self, key: str, token: str, lease: float) -> _Claim:
        now = self._now()
        self._sweep(now)
        stored = self._results.get(key)
        if stored is not None and stored[1] > now:
            return _Claim("done", result=stored[0])
        return _Claim("run", token=token)

    async def _save(self, key: str, token: str, result: Any, ttl: float) -> None:
        expires = self._now() + ttl
        self._results[key] = (result, expires)
        heapq.heappush(self._expiry, (expires, key))

    async def _drop(self, key: str, token: str) -> None:
        return None

    def __repr__(self) -> str:
        return f"MemoryIdempotencyStore(<{len(self._results)} results>)"


# -- SQLite ----------------------------------------------------------------------------

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS eventbus_idempotency (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    result TEXT,
    expires_at REAL NOT NULL,
    token TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS eventbus_idempotency_expires_at
    ON eventbus_idempotency (expires_at);
"""


@final
class SqliteIdempotencyStore(ClosingFile):
    """Results of idempotent handlers, in an SQLite file that survives restarts.

    Results are stored as JSON: a handler must return ``None``, a bool,
    number, string, or lists and dicts (string keys) of those. A repeat gets
    the decoded JSON (tuples come back as lists). A result that is not JSON
    fails the call with :class:`~eventbus.SerializationError` and is not
    stored -- the effect has happened, so the retry runs it again; return
    JSON-friendly values (or use :class:`MemoryIdempotencyStore`).

    Each call first writes an in-progress claim on its key, valid for the
    decorator's ``lease``. Repeats in this process wait for the call to
    finish. A repeat in another process sharing the file raises
    :class:`IdempotencyInProgress` (so the bus retries it later); if the
    claiming process crashed, its claim expires after ``lease`` and the next
    attempt runs the handler. Every write commits (WAL journal,
    ``synchronous=FULL``) in a worker thread, off the event loop.

    Args:
        path: the database file (created if missing); results live in the
            table ``eventbus_idempotency``. It may be the file of a
            :class:`~eventbus.SqliteDeadLetters`.
        clock: where to read the time for ``ttl`` and ``lease``: an eventbus
            :class:`~eventbus.Clock` (its ``wall()``) or a function returning
            epoch seconds. Default: :func:`time.time`. Processes sharing a
            file should share a time source.

    Raises:
        TypeError: *path*, *clock* or *mode* is of the wrong kind.
        ValueError: *mode* has bits outside ``0o777``.
        sqlite3.Error: the file cannot be opened or is not an SQLite database.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       A new file is created with *mode*, ``0o600`` (owner only) unless told
       otherwise; an existing file keeps its mode.
    """

    __slots__ = ("_claims", "_coordinator", "_file", "_now")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock | Callable[[], float] | None = None,
        mode: int = PRIVATE_FILE_MODE,
    ) -> None:
        self._now = _time_source(clock, "SqliteIdempotencyStore")
        self._file = SqliteFile(path, _SCHEMA, "SqliteIdempotencyStore", mode)
        self._coordinator = _Coordinator()
        self._claims = 0

    @property
    def path(self) -> str:
        """The database file."""
        return self._file.path

    def __len__(self) -> int:
        """How many unexpired results the file holds (claims in progress excluded)."""
        now = self._now()

        def count(db: sqlite3.Connection) -> int:
            (n,) = db.execute(
                "SELECT COUNT(*) FROM eventbus_idempotency WHERE state = 'done' AND expires_at > ?",
                (now,),
            ).fetchone()
            return int(n)

        return self._file.run(count)

    async def _claim(self, key: str, token: str, lease: float) -> _Claim:
        now = self._now()
        self._claims += 1
        sweep = self._claims % _SWEEP_EVERY == 0

        def claim(db: sqlite3.Connection) -> tuple[str, str | None, float]:
            def body() -> tuple[str, str | None, float]:
                if sweep:
                    db.execute("DELETE FROM eventbus_idempotency WHERE expires_at <= ?", (now,))
                row = db.execute(
                    "SELECT state, result, expires_at FROM eventbus_idempotency WHERE key = ?",
                    (key,),
                ).fetchone()
                if row is not None and row[2] > now:
                    return row[0], row[1], row[2]
                db.execute(
                    "INSERT OR REPLACE INTO eventbus_idempotency "
                    "(key, state, result, expires_at, token) VALUES (?, 'running', NULL, ?, ?)",
                    (key, now + lease, token),
                )
                return "run", None, now + lease

            return transaction(db, body)

        state, text, until = await self._file.call(claim)
        if state == "run":
            return _Claim("run", token=token)
        if state == "done":
            try:
                return _Claim("done", result=json.loads(text) if text is not None else None)
            except ValueError as exc:
                raise SerializationError(
                    f"idempotency key {key!r} in {self.path!r}: the stored result is not "
                    f"valid JSON ({exc}); delete its row to run the handler again"
                ) from exc
        return _Claim("busy", until=until)

    async def _save(self, key: str, token: str, result: Any, ttl: float) -> None:
        try:
            text = json.dumps(result, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"idempotency key {key!r}: the handler's result ({type(result).__name__}) "
                f"cannot be stored as JSON: {exc}. The handler did run, and will run again "
                "on retry; return JSON values (None, bool, numbers, str, lists, dicts with "
                "string keys) or use MemoryIdempotencyStore"
            ) from exc
        expires = self._now() + ttl

        def save(db: sqlite3.Connection) -> bool:
            def body() -> bool:
                updated = db.execute(
                    "UPDATE eventbus_idempotency SET state = 'done', result = ?, expires_at = ? "
                    "WHERE key = ? AND token = ?",
                    (text, expires, key, token),
                ).rowcount
                if updated:
                    return True
                db.execute(
                    "INSERT OR IGNORE INTO eventbus_idempotency "
                    "(key, state, result, expires_at, token) VALUES (?, 'done', ?, ?, ?)",
                    (key, text, expires, token),
                )
                return False

            return transaction(db, body)

        if not await self._file.call(save):
            logger.warning(
                "idempotency key %r: the claim expired before the handler finished, so another "
                "call may also have run it; give @idempotent(lease=...) more than the "
                "handler's longest run",
                key,
            )

    async def _drop(self, key: str, token: str) -> None:
        def drop(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM eventbus_idempotency WHERE key = ? AND token = ?", (key, token))

        await self._file.call(drop)

    async def purge_expired(self) -> int:
        """Delete expired results and claims now (they are also swept as calls come in).

        Returns:
            How many rows were deleted.
        """
        now = self._now()

        def delete(db: sqlite3.Connection) -> int:
            return db.execute(
                "DELETE FROM eventbus_idempotency WHERE expires_at <= ?", (now,)
            ).rowcount

        return await self._file.call(delete)

    def close(self) -> None:
        """Close the file, after any write in progress; closing twice is harmless."""
        self._file.close()

    def __repr__(self) -> str:
        state = " closed" if self._file.closed else ""
        return f"SqliteIdempotencyStore({self.path!r}{state})"


# -- the decorator ---------------------------------------------------------------------

_Store: TypeAlias = "MemoryIdempotencyStore | SqliteIdempotencyStore"
_KeySpec: TypeAlias = "str | Callable[[Any], object] | None"


@overload
def idempotent(
    handler: Callable[P, Awaitable[R]], /
) -> Callable[P, Coroutine[Any, Any, R]]: ...  # pragma: no cover


@overload
def idempotent(
    handler: Callable[P, R], /
) -> Callable[P, Coroutine[Any, Any, R]]: ...  # pragma: no cover


@overload
def idempotent(
    *,
    key: str | Callable[[Any], object] | None = None,
    store: MemoryIdempotencyStore | SqliteIdempotencyStore | None = None,
    ttl: float = DEFAULT_TTL,
    lease: float = DEFAULT_LEASE,
    scope: str | None = None,
) -> Callable[[Callable[P, Any]], Callable[P, Coroutine[Any, Any, Any]]]: ...  # pragma: no cover


def idempotent(
    handler: Callable[..., Any] | None = None,
    /,
    *,
    key: str | Callable[[Any], object] | None = None,
    store: MemoryIdempotencyStore | SqliteIdempotencyStore | None = None,
    ttl: float = DEFAULT_TTL,
    lease: float = DEFAULT_LEASE,
    scope: str | None = None,
) -> Any:
    """Make a handler apply each event's effect once, however often the event comes.

    Decorate the handler, before subscribing it::

        @idempotent(key="order_id", store=SqliteIdempotencyStore("done.db"))
        async def charge(event: OrderPlaced, ctx: Context) -> dict[str, str]:
            return await payments.charge(event.order_id, event.total)

    The first call for a key that returns stores the result; a later call
    with the same key, within ``ttl`` seconds, returns the stored result
    without running the handler. A call that raises (or is cancelled, or
    times out) stores nothing, so the bus's retry runs the handler again.
    A call that comes while another with the same key is running in this
    process waits for it, then returns its result (or, if it failed, runs).

    The wrapper keeps the handler's parameters, so the bus still passes
    ``ctx`` to ``(event, ctx)`` handlers. It is always a coroutine function:
    a plain ``def`` handler runs in a worker thread, and because a thread
    cannot be stopped, the wrapper waits for it even past the subscription's
    ``timeout`` and records its result, so the retry that follows the
    timeout does not run it twice. Batch handlers (``list[E]``) are not
    supported: decorate a per-event function and call it for each item.

    Args:
        handler: the handler, when used as a bare ``@idempotent``.
        key: what identifies "the same event": a field name (dots reach into
            nested fields, ``"order.id"``) or a function ``(event) -> value``.
            Default: the event's ``id``, which a redelivered event keeps.
            Values other than strings are written as JSON (sorted keys).
        store: where results are kept (default: a new
            :class:`MemoryIdempotencyStore` for this handler).
        ttl: how many seconds a stored result is honoured (default 3600).
        lease: how many seconds an in-progress claim holds off calls from
            other processes (:class:`SqliteIdempotencyStore` only); make it
            longer than the handler's longest run (default 60).
        scope: the namespace of this handler's keys in the store (default:
            the handler's ``module.qualname``). Handlers sharing a store and a
            scope share results.

    Returns:
        The wrapped handler (or, without *handler*, a decorator).

    Raises:
        TypeError, ValueError: an option is invalid (at decoration time).

    The wrapped handler raises what the handler raises, and:
        TypeError: the key cannot be computed (no such field, a batch, an
            unsupported key value).
        ValueError: the key is ``None``.
        IdempotencyInProgress: another process holds the key (SQLite store).
        SerializationError: the SQLite store cannot store the result as JSON.

    .. versionadded:: 0.1
    """
    decorator = _Decorator(key, store, ttl, lease, scope)
    if handler is None:
        return decorator
    return decorator(handler)


@final
class _Decorator:
    """``idempotent(...)`` with its options checked, waiting for the handler."""

    __slots__ = ("_key", "_lease", "_scope", "_store", "_ttl")

    def __init__(
        self, key: _KeySpec, store: _Store | None, ttl: float, lease: float, scope: str | None
    ) -> None:
        if key is not None and not (isinstance(key, str) and key) and not callable(key):
            raise TypeError(
                f"idempotent(key=...) takes a field name or a function (event) -> value, "
                f"got {key!r}"
            )
        if store is not None and not isinstance(
            store, MemoryIdempotencyStore | SqliteIdempotencyStore
        ):
            raise TypeError(
                "idempotent(store=...) takes MemoryIdempotencyStore() or "
                f"SqliteIdempotencyStore(path), got {type(store).__name__}"
            )
        for name, value in (("ttl", ttl), ("lease", lease)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"idempotent({name}=...) must be seconds > 0, got {value!r}")
        if scope is not None and (not isinstance(scope, str) or not scope):
            raise TypeError(f"idempotent(scope=...) must be a non-empty string, got {scope!r}")
        self._key = key
        self._store = store
        self._ttl = float(ttl)
        self._lease = float(lease)
        self._scope = scope

    def __call__(self, handler: Callable[P, Any]) -> Callable[P, Coroutine[Any, Any, Any]]:
        if not callable(handler):
            raise TypeError(
                f"@idempotent decorates a handler function, got {type(handler).__name__}"
            )
        if inspect.isasyncgenfunction(handler):
            raise TypeError("@idempotent cannot decorate an async generator function")
        target: Any = handler
        is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
            getattr(target, "__call__", None)  # noqa: B004
        )
        store: _Store = self._store if self._store is not None else MemoryIdempotencyStore()
        scope = self._scope or _qualified_name(handler)
        make_key = _key_function(self._key)
        ttl, lease = self._ttl, self._lease
        coordinator = store._coordinator

        async def call(*args: P.args, **kwargs: P.kwargs) -> Any:
            if not args:
                raise TypeError(
                    f"idempotent handler {scope} must get the event as its first positional "
                    "argument"
                )
            key = f"{scope}#{_key_text(make_key(args[0]), args[0], scope)}"
            claim = await coordinator.acquire(store, key, lease)
            if claim.kind == "done":
                return claim.result
            if claim.kind == "busy":
                raise IdempotencyInProgress(
                    f"idempotency key {key!r} is being handled by another process (its claim "
                    f"holds for {max(0.0, claim.until - store._now()):.0f}s more). Retry the "
                    "event later (the default retry policy does; with NoRetry, redrive its dead "
                    "letter): it then gets that call's result. If that process crashed, its "
                    "claim expires after lease=... seconds"
                )
            token = claim.token
            try:
                if is_async:
                    result = await handler(*args, **kwargs)
                else:
                    bound = functools.partial(handler, *args, **kwargs)
                    result = await anyio.to_thread.run_sync(bound)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    try:
                        await store._drop(key, token)
                    except Exception:
                        logger.exception("idempotency key %r: could not release its claim", key)
                    finally:
                        coordinator.finish(key)
                raise
            with anyio.CancelScope(shield=True):
                try:
                    await store._save(key, token, result, ttl)
                except BaseException:
                    try:
                        await store._drop(key, token)
                    except Exception:
                        logger.exception("idempotency key %r: could not release its claim", key)
                    raise
                finally:
                    coordinator.finish(key)
            return result

        wrapper = functools.wraps(handler)(call)
        if not hasattr(handler, "__qualname__"):  # a callable object: name it after its class
            wrapper.__name__ = type(handler).__name__
            wrapper.__qualname__ = type(handler).__qualname__
        return wrapper


def _qualified_name(handler: Callable[..., Any]) -> str:
    target: Any = handler
    while isinstance(target, functools.partial):
        target = target.func
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    module = getattr(target, "__module__", None)
    return f"{module}.{name}" if module else str(name)


def _key_function(key: _KeySpec) -> Callable[[Any], object]:
    if key is None:
        return _event_id
    if callable(key):
        return key
    path = key.split(".")

    def by_field(event: Any) -> object:
        value = event
        for i, part in enumerate(path):
            try:
                value = value[part] if isinstance(value, dict) else getattr(value, part)
            except (AttributeError, KeyError):
                where = ".".join(path[: i + 1])
                raise TypeError(
                    f"idempotent(key={key!r}): {type(event).__name__} has no field {where!r}; "
                    "pass a field the event has, or a function (event) -> value"
                ) from None
        return value

    return by_field


def _event_id(event: Any) -> object:
    try:
        return event.id
    except AttributeError:
        raise TypeError(
            f"an idempotent handler got {type(event).__name__}, not an Event; batch handlers "
            "(lists of events) are not supported: decorate a per-event function instead"
        ) from None


def _key_text(value: object, event: Any, scope: str) -> str:
    if value is None:
        raise ValueError(
            f"idempotent handler {scope}: the idempotency key of event "
            f"{getattr(event, 'id', event)!r} is None, so repeats could not be recognised; "
            "pick a key that always has a value"
        )
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_key_default)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"idempotent handler {scope}: cannot use {type(value).__name__} as an idempotency "
            f"key ({exc}); use strings, numbers, or tuples/lists/dicts of them"
        ) from exc


def _key_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not a JSON value")
