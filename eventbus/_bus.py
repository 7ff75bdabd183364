"""The :class:`Bus`: where events are published, routed and delivered."""

from __future__ import annotations

import difflib
import enum
import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Literal, NamedTuple, Protocol, TypeVar, final

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
import attrs

from ._batching import Batching, StartingPosition, StreamOptions
from ._clock import Clock, RealClock
from ._deadletter import DeadLetter, DeadLetterSink, MemoryDeadLetters
from ._destinations import Destination, check_destination
from ._dispatch import Router
from ._events import Event
from ._exceptions import (
    BusClosed,
    BusFull,
    DuplicateSubscription,
    InvocationError,
    LoopDetected,
    UnknownSubscription,
)
from ._flow import CircuitBreaker, RateLimit
from ._metrics import SubscriptionMetrics
from .patterns import Pattern
from ._retry import DeadLetterCondition, ExponentialBackoff, RetryPolicy
from ._subscription import (
    Handler,
    KeyFunction,
    Matcher,
    Subscription,
    default_name,
    handling,
    inspect_handler,
)
from ._transport import Ack, MemoryTransport, Transport
from .sources.logs import LogRecord
from .sources.schedules import ScheduleInfo, Scheduler

__all__ = ["Bus", "Explanation", "Receipt"]

logger = logging.getLogger("eventbus")

H = TypeVar("H", bound=Handler)

DEFAULT_QUEUE_SIZE: Final = 1024
DEFAULT_MAX_CHAIN_DEPTH: Final = 16
_DEPTH_MEMORY: Final = 65_536  # follow-up events whose chain depth we remember
_BROKER_POLL: Final = 0.01  # seconds between broker checks while draining


class StreamSource(Protocol):
    """A partitioned log that streams records to LogRecord subscriptions (internal)."""

    def attach(self, sub: Subscription) -> None:
        """Start (or plan) consuming for *sub*."""
        ...

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Start the consumers' tasks in the bus's task group."""
        ...

    def detach(self, sub: Subscription) -> None:
        """Stop consuming for *sub* (it is being unsubscribed)."""
        ...


class Receipt(NamedTuple):
    """Proof that an event was accepted, returned by :meth:`Bus.publish`.

    Attributes:
        event_id: the event's id.
        subscriptions: names of the subscriptions that accepted it; empty
            when no subscription matched (the event was unrouted).
    """

    event_id: str
    subscriptions: tuple[str, ...]


class Explanation(NamedTuple):
    """Whether an event would reach one subscription, from :meth:`Bus.explain`.

    Attributes:
        subscription: the subscription's name.
        matched: whether the event would be delivered to it.
        reason: why not (the first failing clause), or ``None`` when it matched.
    """

    subscription: str
    matched: bool
    reason: str | None


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


@final
class Bus:
    """An in-process event bus with Lambda's delivery model.

    Use it as an async context manager; leaving the block stops intake and
    drains gracefully (every accepted event is handled or dead-lettered)::

        async with Bus() as bus:
            bus.subscribe(OrderPlaced, send_receipt)
            await bus.publish(OrderPlaced("o-1"))

    If the block exits with an exception (or is cancelled), the bus does not
    wait: queued, in-flight and retrying events are dead-lettered with
    condition ``Shutdown`` and the workers are cancelled.

    Args:
        transport: carries events between processes: ``None`` (the default)
            delivers in memory; a broker :class:`~eventbus.Transport`
            (``eventbus[nats]``, ``eventbus[redis]``) lets several processes
            share subscriptions, each subscription name being a durable
            consumer group.
        dead_letters: the bus-wide :class:`~eventbus.DeadLetterSink`
            (default: a new :class:`~eventbus.MemoryDeadLetters`), available
            as :attr:`dead_letters`.
        retry: the bus-wide default :class:`~eventbus.RetryPolicy`
            (default: ``ExponentialBackoff()``).
        clock: the :class:`~eventbus.Clock` for delays and timeouts
            (default: the real clock; tests use ``eventbus.testing.FakeClock``).
        max_chain_depth: how deep a chain of ``ctx.publish`` follow-ups may
            go before it is cut as a recursive loop.
        grace_period: on a normal close, how many seconds (bus clock) to
            wait for queued and in-flight work; what is left then is
            cancelled and dead-lettered with condition ``Shutdown``.
            ``None`` (default) waits for everything.
    """

    __slots__ = (
        "_consumers",
        "_depths",
        "_drain_waiter",
        "_fallback",
        "_grace_period",
        "_loop_thread",
        "_max_chain_depth",
        "_outstanding",
        "_registered",
        "_registering",
        "_router",
        "_scheduler",
        "_shutting_down",
        "_state",
        "_stream_sources",
        "_subs",
        "_tg",
        "_token",
        "clock",
        "dead_letters",
        "retry",
        "transport",
    )

    def __init__(
        self,
        *,
        transport: Transport | MemoryTransport | None = None,
        dead_letters: DeadLetterSink | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
        grace_period: float | None = None,
    ) -> None:
        if isinstance(transport, MemoryTransport):
            transport = None
        if transport is not None and not isinstance(transport, Transport):
            raise TypeError(
                f"Bus(transport=...) needs a Transport such as eventbus.bridges.nats."
                f"NatsTransport(...) or eventbus.bridges.redis.RedisStreamsTransport(...), "
                f"got {type(transport).__name__}"
            )
        self.transport: Transport | None = transport
        # subscription name -> (the consumer's cancel scope, set once it has stopped)
        self._consumers: dict[str, tuple[anyio.CancelScope, anyio.Event]] = {}
        self._registering = 0
        self._registered: anyio.Event | None = None
        if dead_letters is not None and not isinstance(dead_letters, DeadLetterSink):
            raise TypeError(
                "Bus(dead_letters=...) needs a DeadLetterSink such as MemoryDeadLetters() "
                f"(put, __iter__, __len__ and redrive), got {type(dead_letters).__name__}"
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(
                f"Bus(retry=...) needs a RetryPolicy such as ExponentialBackoff() or NoRetry(), "
                f"got {type(retry).__name__}"
            )
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError(
                f"Bus(clock=...) needs a Clock such as eventbus.testing.FakeClock(), "
                f"got {type(clock).__name__}"
            )
        if (
            isinstance(max_chain_depth, bool)
            or not isinstance(max_chain_depth, int)
            or max_chain_depth < 1
        ):
            raise ValueError(
                f"Bus(max_chain_depth=...) must be an int >= 1, got {max_chain_depth!r}"
            )
        self.dead_letters: DeadLetterSink = (
            dead_letters if dead_letters is not None else MemoryDeadLetters()
        )
        self.retry: RetryPolicy = retry if retry is not None else ExponentialBackoff()
        self.clock: Clock = clock if clock is not None else RealClock()
        if grace_period is not None and (
            isinstance(grace_period, bool)
            or not isinstance(grace_period, int | float)
            or grace_period < 0
        ):
            raise ValueError(
                f"Bus(grace_period=...) must be seconds >= 0 or None, got {grace_period!r}"
            )
        self._grace_period = None if grace_period is None else float(grace_period)
        self._max_chain_depth = max_chain_depth
        self._router = Router()
        self._subs: dict[str, Subscription] = {}
        self._state = _State.NEW
        self._shutting_down = False
        self._outstanding = 0
        self._drain_waiter: anyio.Event | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._loop_thread: int | None = None
        self._depths: OrderedDict[str, int] = OrderedDict()
        self._fallback: MemoryDeadLetters | None = None
        self._scheduler = Scheduler(self)
        self._stream_sources: list[StreamSource] = []

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Bus:
        if self._state is not _State.NEW:
            raise RuntimeError(
                "this Bus was already started; create a new Bus() for each 'async with' block"
            )
        tg = anyio.create_task_group()
        await tg.__aenter__()
        if self.transport is not None:
            try:
                await self.transport.start()
            except BaseException:
                tg.cancel_scope.cancel()
                await tg.__aexit__(None, None, None)
                raise
        self._tg = tg
        self._token = anyio.lowlevel.current_token()
        self._loop_thread = threading.get_ident()
        self._state = _State.RUNNING
        for sub in self._subs.values():
            tg.start_soon(sub.run)
            if self.transport is not None:
                await tg.start(self._consume, sub)
        self._scheduler.start(tg)
        for source in self._stream_sources:
            source.start(tg)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg = self._tg
        if tg is None:  # pragma: no cover - __aenter__ failed
            return None
        try:
            self._scheduler.stop()
            if exc_type is None:
                self._state = _State.CLOSING
                try:
                    if self._grace_period is None:
                        await self.drain()
                    else:
                        deadline = self.clock.now() + self._grace_period
                        with self.clock.deadline_scope(deadline):
                            await self.drain()
                        if self._outstanding:
                            logger.warning(
                                "bus closing: %d event(s) not handled within the grace period "
                                "of %gs are cancelled and dead-lettered (Shutdown)",
                                self._outstanding,
                                self._grace_period,
                            )
                            await self._shutdown()
                except BaseException:
                    await self._shutdown()
                    raise
            else:
                await self._shutdown()
        finally:
            self._state = _State.CLOSED
            tg.cancel_scope.cancel()
        # The workers are cancelled on purpose; an exception from the block
        # propagates as itself, not wrapped in an exception group.
        try:
            await tg.__aexit__(None, None, None)
            if self._shutting_down:
                # Workers cancelled mid-way put back what they held (a batch
                # still filling, say); settle that too.
                await self._shutdown()
        finally:
            if self.transport is not None:
                with anyio.CancelScope(shield=True):
                    await self.transport.aclose()
        return None

    async def _shutdown(self) -> None:
        """Dead-letter everything not yet handled (condition ``Shutdown``)."""
        self._state = _State.CLOSING
        self._shutting_down = True
        with anyio.CancelScope(shield=True):
            for sub in self._subs.values():
                for event in sub.abandon_queued():
                    await sub._give_up(event, None, 0, None, "Shutdown")

    @property
    def running(self) -> bool:
        """Whether the bus is running (started, and not yet closing)."""
        return self._state is _State.RUNNING

    @property
    def accepting(self) -> bool:
        """Whether :meth:`publish` would accept an event from the calling task now.

        True while the bus runs; while it drains on close, only for code
        running in its own handlers (their follow-ups, and writes to sources
        on this bus, complete the chains the drain waits for).
        """
        state = self._state
        return state is _State.RUNNING or (state is _State.CLOSING and handling.get() is self)

    def _closed_error(self) -> BusClosed:
        if self._state is _State.NEW:
            return BusClosed(
                "the bus is not running yet; publish inside 'async with Bus() as bus:' "
                "(or use BlockingBus from non-async code)"
            )
        return BusClosed(
            "the bus is closed (or closing) and accepts no new events; publish before "
            "leaving its 'async with' block"
        )

    # -- subscriptions -------------------------------------------------------------

    def subscribe(
        self,
        event_types: type[Event] | tuple[type[Event], ...],
        handler: Handler,
        *,
        name: str | None = None,
        where: Mapping[str, Any] | Pattern | Callable[[Any], bool] | None = None,
        concurrency: int = 1,
        ordered_by: str | KeyFunction | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        dead_letter: DeadLetterSink | None = None,
        batch: Batching | None = None,
        on_success: Destination | None = None,
        on_failure: Destination | None = None,
        starting_position: StartingPosition | None = None,
        starting_timestamp: datetime | None = None,
        bisect_on_error: bool | None = None,
        max_record_age: float | None = None,
        max_retry_attempts: int | None = None,
        parallelization_factor: int | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        rate_limit: RateLimit | None = None,
    ) -> Subscription:
        """Subscribe *handler* to events of *event_types* (subclasses included).

        Every argument is checked here, so a mistake fails at subscribe time
        with a message saying what to change -- never at delivery time.

        Args:
            event_types: an :class:`~eventbus.Event` subclass or a tuple of them.
            handler: ``async def h(event)`` or ``async def h(event, ctx)``; a
                plain ``def`` runs in a worker thread so it never blocks the loop.
            name: the subscription's identity (unique per bus); default: the
                handler's qualified name.
            where: a content filter: an EventBridge-style pattern (a mapping,
                its JSON text, or a :class:`~eventbus.Pattern`), compiled and
                checked against the event classes here, or a predicate
                ``(event) -> bool``. A predicate that raises dead-letters the
                event for this subscription (``NotRetryable``).
            concurrency: how many events are handled at once (worker count).
            ordered_by: a field name or key function; events with equal keys
                are handled one at a time in publish order (a failing event
                holds its key while it waits to be retried).
            queue_size: accepted events that may wait; beyond it ``publish``
                waits and ``publish_nowait`` raises :class:`~eventbus.BusFull`.
            timeout: seconds an attempt may run before it fails with
                :class:`~eventbus.HandlerTimeout`.
            retry: this subscription's retry policy (default: the bus's).
            dead_letter: this subscription's sink (default: the bus's).
            batch: deliver ``list[E]`` batches (:class:`~eventbus.Batching`);
                the handler may return :class:`~eventbus.BatchResult` to fail
                only some events.
            on_success: a destination for a record of each success: a
                callable taking an :class:`~eventbus.InvocationRecord`, a
                :class:`~eventbus.Topic` or another :class:`Bus`.
            on_failure: the same for each event given up on.
            circuit_breaker: a :class:`~eventbus.CircuitBreaker`: after
                repeated failures, events wait (they do not fail) until a
                probe succeeds.
            rate_limit: a :class:`~eventbus.RateLimit` on invocations.
            starting_position, starting_timestamp, bisect_on_error,
                max_record_age, max_retry_attempts, parallelization_factor:
                stream options for subscriptions to
                :class:`~eventbus.LogRecord` consuming a :class:`~eventbus.Log`
                (see :class:`~eventbus.StreamOptions`); refused on others.

        Returns:
            The :class:`~eventbus.Subscription`.

        Raises:
            TypeError, ValueError: an argument is invalid (the message says which).
            PatternError: the ``where`` pattern is invalid or names a field
                the event classes do not have (the message gives its path).
            DuplicateSubscription: *name* is taken on this bus.
            BusClosed: the bus is closing or closed.
        """
        if self._state in (_State.CLOSING, _State.CLOSED):
            raise BusClosed("cannot subscribe: the bus is closing or closed")
        types = _check_event_types(event_types)
        inspect_handler(handler)
        if name is None:
            name = default_name(handler)
        elif not isinstance(name, str) or not name:
            raise TypeError(f"subscribe(name=...) must be a non-empty string, got {name!r}")
        if name in self._subs:
            raise DuplicateSubscription(
                f"a subscription named {name!r} already exists on this bus; "
                "pass a different name=... (names default to the handler's qualified name)"
            )
        _check_int("concurrency", concurrency)
        _check_int("queue_size", queue_size)
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            raise ValueError(
                f"subscribe(timeout=...) must be a number of seconds > 0 or None, got {timeout!r}"
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(
                "subscribe(retry=...) needs a RetryPolicy such as ExponentialBackoff() or "
                f"NoRetry(), got {type(retry).__name__}"
            )
        if dead_letter is not None and not isinstance(dead_letter, DeadLetterSink):
            raise TypeError(
                "subscribe(dead_letter=...) needs a DeadLetterSink such as MemoryDeadLetters() "
                f"(put, __iter__, __len__ and redrive), got {type(dead_letter).__name__}"
            )
        if ordered_by is not None:
            _check_ordered_by(ordered_by, types)
        where_obj, matcher = _compile_where(where, types)
        if batch is not None and not isinstance(batch, Batching):
            raise TypeError(
                f"subscribe(batch=...) takes Batching(size, window), got {type(batch).__name__}"
            )
        if batch is not None and ordered_by is not None:
            raise ValueError(
                "subscribe(batch=..., ordered_by=...): a batch mixes keys, so per-key order "
                "cannot be kept across concurrent batches; drop ordered_by and use "
                "concurrency=1 for batches in publish order"
            )
        if circuit_breaker is not None and not isinstance(circuit_breaker, CircuitBreaker):
            raise TypeError(
                "subscribe(circuit_breaker=...) takes CircuitBreaker(failure_threshold, "
                f"reset_timeout), got {type(circuit_breaker).__name__}"
            )
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError(
                f"subscribe(rate_limit=...) takes RateLimit(rate, per), got {type(rate_limit).__name__}"
            )
        check_destination(on_success, "on_success")
        check_destination(on_failure, "on_failure")
        stream = _stream_options(
            types,
            starting_position=starting_position,
            starting_timestamp=starting_timestamp,
            bisect_on_error=bisect_on_error,
            max_record_age=max_record_age,
            max_retry_attempts=max_retry_attempts,
            parallelization_factor=parallelization_factor,
        )
        sub = Subscription(
            self,
            name=name,
            event_types=types,
            handler=handler,
            where=where_obj,
            matcher=matcher,
            concurrency=concurrency,
            ordered_by=ordered_by,
            queue_size=queue_size,
            timeout=None if timeout is None else float(timeout),
            retry=retry if retry is not None else self.retry,
            dead_letter=dead_letter if dead_letter is not None else self.dead_letters,
            batch=batch,
            stream=stream,
            on_success=on_success,
            on_failure=on_failure,
            circuit_breaker=circuit_breaker,
            rate_limit=rate_limit,
        )
        self._subs[name] = sub
        self._router.add(sub)
        if self._tg is not None and self._state is _State.RUNNING:
            self._tg.start_soon(sub.run)
            if self.transport is not None:
                self._registering += 1
                self._tg.start_soon(self._register_consumer, sub)
        if _is_stream_subscription(types):
            for source in self._stream_sources:
                source.attach(sub)
        return sub

    def _add_stream_source(self, source: StreamSource) -> None:
        """Register a partitioned log whose records stream to LogRecord subscriptions."""
        self._stream_sources.append(source)
        for sub in self._subs.values():
            if _is_stream_subscription(sub.event_types):
                source.attach(sub)
        if self._tg is not None and self._state is _State.RUNNING:
            source.start(self._tg)

    def on(
        self,
        event_types: type[Event] | tuple[type[Event], ...],
        *,
        name: str | None = None,
        where: Mapping[str, Any] | Pattern | Callable[[Any], bool] | None = None,
        concurrency: int = 1,
        ordered_by: str | KeyFunction | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        dead_letter: DeadLetterSink | None = None,
        batch: Batching | None = None,
        on_success: Destination | None = None,
        on_failure: Destination | None = None,
        **stream_options: Any,
    ) -> Callable[[H], H]:
        """Decorator form of :meth:`subscribe`; returns the handler unchanged::

        @bus.on(OrderPlaced, concurrency=4)
        async def send_receipt(event: OrderPlaced) -> None: ...
        """

        def decorate(handler: H) -> H:
            self.subscribe(
                event_types,
                handler,
                name=name,
                where=where,
                concurrency=concurrency,
                ordered_by=ordered_by,
                queue_size=queue_size,
                timeout=timeout,
                retry=retry,
                dead_letter=dead_letter,
                batch=batch,
                on_success=on_success,
                on_failure=on_failure,
                **stream_options,
            )
            return handler

        return decorate

    async def unsubscribe(self, name: str) -> None:
        """Remove subscription *name*: stop routing to it, let it finish, stop its workers.

        Events it already accepted are still handled or dead-lettered (with
        retries) before this returns; new events no longer reach it. Its
        metrics leave ``bus.metrics()`` once it is gone.

        Raises:
            UnknownSubscription: there is no such subscription.
        """
        sub = self.subscription(name)
        self._router.remove(sub)
        for source in self._stream_sources:
            source.detach(sub)
        consumer = self._consumers.pop(name, None)
        if consumer is not None:
            scope, stopped = consumer
            scope.cancel()
            await stopped.wait()  # the broker consumer has given back what it held
        try:
            await sub.wait_idle()
        finally:
            del self._subs[name]
            sub.stop()

    def subscription(self, name: str) -> Subscription:
        """The subscription called *name*.

        Raises:
            UnknownSubscription: there is none (the message suggests close names).
        """
        try:
            return self._subs[name]
        except KeyError:
            raise _unknown(name, self._subs) from None

    def has_subscription(self, name: str) -> bool:
        """Whether a subscription called *name* exists."""
        return name in self._subs

    def subscriptions(self) -> tuple[Subscription, ...]:
        """Every subscription, in the order they were made."""
        return tuple(self._subs.values())

    # -- publishing ----------------------------------------------------------------

    async def publish(self, event: Event) -> Receipt:
        """Publish *event* (asynchronous invocation of every matching subscription).

        Returns once every matching subscription has accepted the event,
        waiting -- in FIFO order with other publishers -- while a queue is
        full (backpressure; counted as ``throttled``). Acceptance is a
        promise: the event will be handled or dead-lettered.

        Raises:
            BusClosed: the bus is not running.
            TypeError: *event* is not an :class:`~eventbus.Event`.

        If cancelled while waiting for room, the subscriptions that had
        already accepted the event keep it; the others never see it.
        """
        if not self.accepting:
            raise self._closed_error()
        if self.transport is not None:
            return await self._send(event)
        return await self._publish(event)

    def publish_nowait(self, event: Event) -> Receipt:
        """Publish *event* without waiting: all matching subscriptions accept it, or none.

        Raises:
            BusFull: a matching subscription's queue is full; nothing was enqueued.
            BusClosed: the bus is not running.
            TypeError: *event* is not an :class:`~eventbus.Event`.
        """
        if not self.accepting:
            raise self._closed_error()
        if not isinstance(event, Event):
            raise _not_an_event(event)
        if self.transport is not None:
            raise BusFull(
                "publish_nowait() cannot wait for the broker to store the event; "
                "use 'await bus.publish(event)' (or BlockingBus.publish from a thread)"
            )
        subs, names, rejected = self._route(event)
        for sub in subs:
            if not sub.has_room():
                sub._counters.throttled += 1
                raise BusFull(
                    f"subscription {sub.name!r} has {sub.queue_size} events queued "
                    f"(queue_size={sub.queue_size}); event {event.id} was not published. "
                    "Use 'await bus.publish(event)' to wait for room, or raise queue_size"
                )
        for sub in subs:
            sub.enqueue(event)
        for sub, exc in rejected:
            self._reject(sub, event, exc, "NotRetryable")
        return Receipt(event.id, names)

    def publish_from_thread(self, event: Event) -> Receipt:
        """Publish from a thread that is not the bus's event-loop thread.

        Blocks that thread (never the loop) until the event is accepted; for
        GUI callbacks, hardware interrupts and plain scripts.

        Raises:
            RuntimeError: called from the event-loop thread itself (use
                ``await bus.publish(event)`` there).
            BusClosed: the bus is not running.
        """
        if self._token is None:
            raise self._closed_error()
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError(
                "publish_from_thread() was called on the bus's own event-loop thread; "
                "use 'await bus.publish(event)' there"
            )
        return anyio.from_thread.run(self.publish, event, token=self._token)

    async def publish_to(self, name: str, event: Event) -> Receipt:
        """Deliver *event* to the one subscription called *name*, bypassing routing.

        Used to redrive dead letters: only that subscription sees the event,
        and its ``where`` filter is not applied. Waits for room like
        :meth:`publish`. Allowed while the bus drains on close.

        Raises:
            UnknownSubscription: no subscription has that name.
            BusClosed: the bus is not running or draining.
        """
        if self._state not in (_State.RUNNING, _State.CLOSING):
            raise self._closed_error()
        sub = self.subscription(name)
        if not isinstance(event, Event):
            raise _not_an_event(event)
        if sub.has_room():
            sub.enqueue(event)
        else:
            await sub.wait_for_room()
            sub.enqueue(event)
        return Receipt(event.id, (name,))

    async def _publish(self, event: Event) -> Receipt:
        if not isinstance(event, Event):
            raise _not_an_event(event)
        subs, names, rejected = self._route(event)
        for sub in subs:
            if not sub.offer(event):
                await sub.wait_for_room()
                sub.enqueue(event)
        if rejected:
            for sub, exc in rejected:
                self._reject(sub, event, exc, "NotRetryable")
        return Receipt(event.id, names)

    async def _send(self, event: Event) -> Receipt:
        """Publish through the broker: stored there, then delivered by the consumers."""
        assert self.transport is not None
        while self._registering:  # subscriptions made while running: their groups first
            if self._registered is None:
                self._registered = anyio.Event()
            await self._registered.wait()
        await self.transport.send(event)
        plan = self._router.plan(type(event))
        names = plan.names + tuple(s.name for s in plan.filtered if _matches_quietly(s, event))
        return Receipt(event.id, names)

    async def _register_consumer(self, sub: Subscription) -> None:
        assert self._tg is not None
        try:
            await self._tg.start(self._consume, sub)
        finally:
            self._registering -= 1
            if not self._registering and self._registered is not None:
                self._registered.set()
                self._registered = None

    async def _consume(
        self,
        sub: Subscription,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the broker consumer of *sub* (its name is the consumer group)."""
        assert self.transport is not None
        stopped = anyio.Event()
        try:
            with anyio.CancelScope() as scope:
                self._consumers[sub.name] = (scope, stopped)
                await self.transport.consume(
                    sub.name, functools.partial(self._deliver_remote, sub), task_status=task_status
                )
        finally:
            stopped.set()

    async def _deliver_remote(self, sub: Subscription, event: Event, ack: Ack) -> None:
        """Accept an event the broker delivered to *sub*'s group; ack once it settles."""
        if not isinstance(event, sub.event_types):
            ack()  # the group sees every event; this one is not for the subscription
            return
        try:
            matched = sub.contains(event)
        except Exception as exc:
            sub.register_ack(event, ack)
            self._reject(sub, event, exc, "NotRetryable")
            return
        if not matched:
            ack()
            return
        sub.register_ack(event, ack)
        if not sub.offer(event):
            await sub.wait_for_room()
            sub.enqueue(event)

    def _route(
        self, event: Event
    ) -> tuple[
        tuple[Subscription, ...] | list[Subscription],
        tuple[str, ...],
        list[tuple[Subscription, BaseException]],
    ]:
        plan = self._router.plan(type(event))
        if not plan.filtered:
            return plan.unfiltered, plan.names, []
        subs = list(plan.unfiltered)
        if plan.index is not None:
            subs.extend(plan.index.match(event))
        rejected: list[tuple[Subscription, BaseException]] = []
        for sub in plan.predicates:
            try:
                if sub.contains(event):
                    subs.append(sub)
            except Exception as exc:
                rejected.append((sub, exc))
        names = tuple(s.name for s in subs) + tuple(s.name for s, _ in rejected)
        return subs, names, rejected

    def _reject(
        self, sub: Subscription, event: Event, exc: BaseException, condition: DeadLetterCondition
    ) -> None:
        """Accept *event* for *sub* and dead-letter it without running the handler."""
        c = sub._counters
        c.accepted += 1
        c.in_flight += 1
        self._outstanding += 1
        self._spawn(sub._give_up, event, exc, 0, None, condition)

    async def _publish_followup(self, event: Event, parent: Event) -> Receipt:
        """``Context.publish``: publish with chain-depth accounting (loop cutting)."""
        if self._state not in (_State.RUNNING, _State.CLOSING):
            raise self._closed_error()
        if not isinstance(event, Event):
            raise _not_an_event(event)
        depth = self._depths.get(parent.id, 0) + 1
        if depth > self._max_chain_depth:
            subs, names, rejected = self._route(event)
            error = LoopDetected(
                f"event {event.id} ({type(event).event_type()}) would be chain depth {depth}, "
                f"past max_chain_depth={self._max_chain_depth}: handlers keep publishing "
                "follow-ups that route back to themselves. It was dead-lettered, not "
                "delivered; break the loop, or raise Bus(max_chain_depth=...) for deep chains"
            )
            logger.error("recursive loop cut: %s", error)
            for sub in subs:
                self._reject(sub, event, error, "RecursiveLoop")
            for sub, _ in rejected:
                self._reject(sub, event, error, "RecursiveLoop")
            return Receipt(event.id, names)
        depths = self._depths
        depths[event.id] = depth
        if len(depths) > _DEPTH_MEMORY:
            depths.popitem(last=False)
        if self.transport is not None:
            return await self._send(event)
        return await self._publish(event)

    def explain(self, event: Event) -> dict[str, Explanation]:
        """Say, for every subscription, whether *event* would reach it, and if not why.

        For a subscription whose ``where`` pattern does not match, the reason
        names the first clause that failed, e.g. ``where.size: 0 is not > 0``;
        for one whose event types do not include the event's class, it says
        so. Nothing is published. Use it when "my handler never runs".

        Returns:
            An :class:`~eventbus.Explanation` per subscription name, in
            subscription order.
        """
        if not isinstance(event, Event):
            raise _not_an_event(event)
        out: dict[str, Explanation] = {}
        cls = type(event)
        for name, sub in self._subs.items():
            if not isinstance(event, sub.event_types):
                expected = ", ".join(t.__name__ for t in sub.event_types)
                out[name] = Explanation(
                    name, False, f"{cls.__name__} is not one of its event types ({expected})"
                )
                continue
            where = sub.where
            if where is None:
                out[name] = Explanation(name, True, None)
            elif isinstance(where, Pattern):
                reason = where.explain(event)
                out[name] = Explanation(name, reason is None, reason)
            else:
                predicate: Callable[[Any], object] = where  # type: ignore[assignment]
                try:
                    ok = bool(predicate(event))
                except Exception as exc:
                    out[name] = Explanation(
                        name, False, f"where predicate raised {type(exc).__name__}: {exc}"
                    )
                    continue
                out[name] = Explanation(name, ok, None if ok else "where predicate returned False")
        return out

    # -- schedules -------------------------------------------------------------------

    def schedule(
        self,
        expression: str,
        *,
        name: str,
        timezone: str = "UTC",
        event: Event | Callable[[datetime], Event] | None = None,
        flexible_window: float | None = None,
        catch_up: Literal["none", "one", "all"] = "one",
    ) -> ScheduleInfo:
        """Publish an event on a schedule, as an EventBridge rule or Scheduler schedule does.

        Args:
            expression: ``cron(Minutes Hours Day-of-month Month Day-of-week Year)``,
                ``rate(N unit)`` or ``at(yyyy-mm-ddThh:mm:ss)``; see
                :func:`~eventbus.parse_schedule`. A rate counts from now.
            name: the schedule's name, unique on this bus; the ``rule`` of
                the :class:`~eventbus.ScheduledEvent`s it publishes.
            timezone: the IANA zone the expression's wall-clock times are in.
            event: what to publish on each fire: ``None`` for a
                ``ScheduledEvent(rule=name, scheduled_time=...)``; an event
                to publish a copy of (new ``id``, ``time`` = the fire time); or
                a function ``(scheduled_time) -> Event``.
            flexible_window: seconds within which each fire may be delayed at
                random (EventBridge Scheduler's flexible time window), to
                spread load.
            catch_up: what to do with fires missed while the process was
                paused (laptop sleep, a long GC): ``"none"`` skips them,
                ``"one"`` (default) publishes the latest one, ``"all"``
                publishes every one, in order. Skipped fires are counted in
                ``ScheduleInfo.missed``.

        Times follow the bus clock, so ``FakeClock.advance`` fires schedules
        in virtual time. Schedules stop when the bus starts closing.

        Returns:
            The schedule's :class:`~eventbus.ScheduleInfo`, with its next fire time.

        Raises:
            ScheduleError: the expression, time zone, name or an option is
                invalid (the message says which and why).
        """
        if self._state in (_State.CLOSING, _State.CLOSED):
            raise BusClosed("cannot schedule: the bus is closing or closed")
        return self._scheduler.add(
            expression,
            name=name,
            timezone=timezone,
            event=event,
            flexible_window=flexible_window,
            catch_up=catch_up,
        )

    def unschedule(self, name: str) -> None:
        """Stop and remove the schedule called *name*.

        Raises:
            ScheduleError: there is no such schedule.
        """
        self._scheduler.remove(name)

    def schedules(self) -> list[ScheduleInfo]:
        """Every schedule on this bus with its next fire time, in creation order."""
        return self._scheduler.infos()

    # -- request/response ----------------------------------------------------------

    async def invoke(self, name: str, event: Event) -> Any:
        """Run subscription *name*'s handler once on *event* and return its result.

        Synchronous invocation, as Lambda's ``RequestResponse``: no queue, no
        ``where`` filter, no retries; the subscription's ``timeout`` applies.
        Errors and durations count in the subscription's metrics; the event
        is not counted as accepted.

        Raises:
            InvocationError: the handler raised or timed out; it carries
                Lambda's ``errorType``/``errorMessage``/``stackTrace``.
            UnknownSubscription: no subscription has that name.
            TypeError: the subscription does not take this event's type.
            BusClosed: the bus is not running.
        """
        if self._state not in (_State.RUNNING, _State.CLOSING):
            raise self._closed_error()
        sub = self.subscription(name)
        if not isinstance(event, sub.event_types):
            expected = ", ".join(t.__name__ for t in sub.event_types)
            raise TypeError(f"subscription {name!r} handles {expected}, not {type(event).__name__}")
        try:
            return await sub.invoke(event)
        except Exception as exc:
            raise InvocationError.from_exception(name, exc) from exc

    # -- completion and introspection ------------------------------------------------

    async def drain(self) -> None:
        """Wait until every accepted event is handled or dead-lettered, retries included.

        Events published while waiting (follow-ups included) are waited for too.
        """
        while True:
            while self._registering:  # consumers of new subscriptions: their groups first
                if self._registered is None:
                    self._registered = anyio.Event()
                await self._registered.wait()
            while self._outstanding:
                waiter = self._drain_waiter
                if waiter is None:
                    waiter = self._drain_waiter = anyio.Event()
                await waiter.wait()
            if self.transport is None or not await self._broker_pending():
                return
            await anyio.sleep(
                _BROKER_POLL
            )  # the broker has events our consumers have not taken yet

    async def _broker_pending(self) -> int:
        assert self.transport is not None
        total = 0
        for name in self._consumers:
            total += await self.transport.pending(name)
        return total

    def _settle(self) -> None:
        self._outstanding -= 1
        if not self._outstanding and self._drain_waiter is not None:
            self._settle_idle()

    def _settle_idle(self) -> None:
        """Wake ``drain()`` waiters: nothing is outstanding any more."""
        if self._drain_waiter is not None:
            self._drain_waiter.set()
            self._drain_waiter = None

    def metrics(self) -> dict[str, SubscriptionMetrics]:
        """A snapshot of every subscription's metrics, keyed by subscription name."""
        return {name: sub.metrics() for name, sub in self._subs.items()}

    @property
    def outstanding(self) -> int:
        """Accepted events not yet handled or dead-lettered, over all subscriptions."""
        return self._outstanding

    # -- internals -------------------------------------------------------------------

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._tg is None:  # pragma: no cover - guarded by the state checks
            raise self._closed_error()
        self._tg.start_soon(fn, *args)

    async def _store_dead_letter(self, sink: DeadLetterSink, letter: DeadLetter) -> None:
        exc = letter.exception
        logger.error(
            "subscription %r dead-lettered event %s (%s) after %d attempt(s) [%s]: %s: %s",
            letter.subscription,
            letter.event.id,
            type(letter.event).event_type(),
            letter.attempts,
            letter.condition,
            letter.error.error_type,
            letter.error.error_message,
            exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None,
        )
        try:
            await sink.put(letter)
        except Exception:
            logger.exception(
                "dead-letter sink %r failed to store letter %s; keeping it in memory instead",
                sink,
                letter.id,
            )
            fallback = self.dead_letters
            if fallback is sink or not isinstance(fallback, MemoryDeadLetters):
                fallback = self._fallback_sink()
            fallback.append(letter)

    def _fallback_sink(self) -> MemoryDeadLetters:
        if self._fallback is None:
            self._fallback = MemoryDeadLetters()
        return self._fallback

    def __repr__(self) -> str:
        return f"<Bus {self._state.value} subscriptions={len(self._subs)} outstanding={self._outstanding}>"


def _check_event_types(event_types: object) -> tuple[type[Event], ...]:
    types = event_types if isinstance(event_types, tuple) else (event_types,)
    if not types:
        raise TypeError("subscribe() needs at least one event type, got an empty tuple")
    for t in types:
        if not (isinstance(t, type) and issubclass(t, Event)):
            raise TypeError(
                f"event_types must be Event subclasses (or a tuple of them), got {t!r}; "
                "define events as '@attrs.frozen class MyEvent(eventbus.Event): ...'"
            )
    return types


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"subscribe({name}=...) must be an int >= 1, got {value!r}")


def _check_ordered_by(ordered_by: object, types: tuple[type[Event], ...]) -> None:
    if callable(ordered_by) and not isinstance(ordered_by, str):
        return
    if not isinstance(ordered_by, str) or not ordered_by:
        raise TypeError(f"ordered_by must be a field name or a key function, got {ordered_by!r}")
    for t in types:
        fields = attrs.fields_dict(t)
        if ordered_by not in fields:
            hint = difflib.get_close_matches(ordered_by, list(fields), n=1)
            suggestion = (
                f'; did you mean "{hint[0]}"?' if hint else f"; fields are {', '.join(fields)}"
            )
            raise ValueError(f'ordered_by: {t.__name__} has no field "{ordered_by}"{suggestion}')


def _compile_where(
    where: object, types: tuple[type[Event], ...]
) -> tuple[Pattern | Callable[[Any], bool] | None, Matcher | None]:
    """Turn ``where=`` into (what the subscription keeps, the matching function)."""
    if where is None:
        return None, None
    if isinstance(where, Mapping | str | Pattern):
        pattern = where if isinstance(where, Pattern) else Pattern(where)
        pattern.bind(types)
        return pattern, pattern.matches
    if callable(where):
        return where, where
    raise TypeError(
        f"where= must be an EventBridge-style pattern (a dict) or a predicate "
        f"(event) -> bool, got {type(where).__name__}"
    )


def _is_stream_subscription(types: tuple[type[Event], ...]) -> bool:
    return all(issubclass(t, LogRecord) for t in types)


def _stream_options(types: tuple[type[Event], ...], **options: Any) -> StreamOptions | None:
    given = {k: v for k, v in options.items() if v is not None}
    if not given:
        return StreamOptions() if _is_stream_subscription(types) else None
    if not _is_stream_subscription(types):
        names = ", ".join(sorted(given))
        raise TypeError(
            f"subscribe({names}=...): stream options apply only to subscriptions to "
            "LogRecord (consumers of a Log); remove them or subscribe to LogRecord"
        )
    return StreamOptions(**given)


def _matches_quietly(sub: Subscription, event: Event) -> bool:
    try:
        return sub.contains(event)
    except Exception:
        return True  # it will be dead-lettered there, so it does reach the subscription


def _not_an_event(value: object) -> TypeError:
    return TypeError(
        f"publish() takes an eventbus.Event instance, got {type(value).__name__}; "
        "define '@attrs.frozen class MyEvent(Event): ...', or convert AWS payloads with "
        "eventbus.aws.from_lambda_event()"
    )


def _unknown(name: str, known: Mapping[str, object]) -> UnknownSubscription:
    hint = difflib.get_close_matches(name, list(known), n=1)
    if hint:
        return UnknownSubscription(f'no subscription named "{name}"; did you mean "{hint[0]}"?')
    listing = ", ".join(repr(n) for n in known) or "none yet"
    return UnknownSubscription(f'no subscription named "{name}"; subscriptions: {listing}')
