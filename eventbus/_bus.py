"""The :class:`Bus`: where events are published, routed and delivered.

The class is assembled from parts, each in the module a reader would look in:

* ``_lifecycle``: ``async with``, draining, closing and shutdown;
* ``_publishing``: ``publish``, routing, ``invoke``, ``explain``;
* ``_broker``: publishing through and consuming from a broker transport;
* ``_redrive``: ``publish_to``, the way dead letters come back;
* ``_scheduler``: ``schedule``/``unschedule``/``schedules``;
* here: construction, subscriptions (``subscribe``, ``on``,
  ``unsubscribe``), metrics and dead-letter storage.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar, cast, final

import anyio
import anyio.abc
import anyio.lowlevel

from ._attempts import Handler, KeyFunction
from ._batching import Batching, StartingPosition
from ._broker import BusBroker
from ._clock import Clock, RealClock
from ._deadletter import DeadLetter, DeadLetterSink, MemoryDeadLetters
from ._destinations import Destination, check_destination
from ._dispatch import Router
from ._events import Event
from ._exceptions import BusClosed, DuplicateSubscription, MeteringError
from ._flow import CircuitBreaker, RateLimit
from ._hooks import Hook, HookSet, check_hook, log_extra
from ._lifecycle import _State
from ._metering import DEFAULT_MEMORY_MB, Metering, UsageReport, check_memory_mb
from ._metrics import MetricsSnapshot
from ._publish_buffer import PublishBuffer
from ._publishing import BusPublishing, Explanation, Receipt
from ._redrive import BusRedrive
from ._retry import ExponentialBackoff, RetryPolicy
from ._scheduler import BusSchedules, Scheduler
from ._state import StateError, StateStore
from ._stateful import StateRunner, check_state
from ._streams import StreamSource, is_stream_subscription, stream_options
from ._subscribe import (
    check_event_types,
    check_int,
    check_ordered_by,
    compile_where,
    default_name,
    inspect_handler,
    unknown,
)
from ._subscription import Subscription
from ._topology import render as render_topology
from ._transport import MemoryTransport, Transport
from .patterns import Pattern

__all__ = ["Bus", "Explanation", "Receipt"]

logger = logging.getLogger("eventbus")

H = TypeVar("H", bound=Handler)

DEFAULT_QUEUE_SIZE: Final = 1024
DEFAULT_MAX_CHAIN_DEPTH: Final = 16


@final
class Bus(BusPublishing, BusBroker, BusRedrive, BusSchedules):
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
        publish_buffer: with a broker transport, how many events may wait
            in memory while the broker is unreachable: ``publish`` then
            returns a :class:`~eventbus.Receipt` whose ``buffered`` is true
            -- the event is *not* on the broker yet, and is lost if this
            process dies before the broker comes back -- and the bus sends
            the waiting events, in order, once it can. When the buffer is
            full, ``publish`` raises :class:`~eventbus.BusFull`. ``None``
            (default): no buffer, ``publish`` raises
            :class:`~eventbus.TransportError` during an outage.
            *Added in 0.2.*
        hooks: observers of every publish, delivery attempt, retry and dead
            letter (:class:`~eventbus.Hook`); see also :meth:`add_hook`.
            *Added in 0.2.*
        metering: a :class:`~eventbus.Metering` to meter attempts as Lambda
            bills them; read it with :meth:`usage`. *Added in 0.2.*
    """

    __slots__ = ()  # the state's slots are declared in BusLifecycle

    def __init__(
        self,
        *,
        transport: Transport | MemoryTransport | None = None,
        dead_letters: DeadLetterSink | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        max_chain_depth: int = DEFAULT_MAX_CHAIN_DEPTH,
        grace_period: float | None = None,
        hooks: Iterable[Hook] = (),
        metering: Metering | None = None,
        publish_buffer: int | None = None,
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
        if publish_buffer is not None and (
            isinstance(publish_buffer, bool)
            or not isinstance(publish_buffer, int)
            or publish_buffer < 1
        ):
            raise ValueError(
                f"Bus(publish_buffer=...) must be an int >= 1 (events) or None, got {publish_buffer!r}"
            )
        if publish_buffer is not None and transport is None:
            raise ValueError(
                "Bus(publish_buffer=...) buffers publishes while a broker is unreachable; it "
                "needs a broker transport: Bus(transport=..., publish_buffer=...)"
            )
        self._publish_buffer = None if publish_buffer is None else PublishBuffer(publish_buffer)
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
        self._sources: list[object] = []
        if metering is not None and not isinstance(metering, Metering):
            raise TypeError(
                f"Bus(metering=...) takes a Metering(granularity_ms=...), got {type(metering).__name__}"
            )
        self._metering = metering
        if not isinstance(hooks, Iterable):
            raise TypeError(
                f"Bus(hooks=...) takes a list of hooks, got {type(hooks).__name__}; "
                "wrap a single hook in a list: Bus(hooks=[hook])"
            )
        installed = list(hooks)
        for hook in installed:
            check_hook(hook, "Bus(hooks=[...])")
        if metering is not None:
            installed.insert(0, metering)
        self._hooks = HookSet(installed) if installed else None

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
        memory_mb: int = DEFAULT_MEMORY_MB,
        state: StateStore | None = None,
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
            memory_mb: the memory size metering bills the handler at, in MB
                (Lambda's range, 128 to 10,240; default 128); see
                :class:`~eventbus.Metering`. *Added in 0.2.*
            state: a state store (:class:`~eventbus.MemoryState`,
                :class:`~eventbus.SqliteState`, ``RedisState``): the handler
                gets its event's key's state as ``ctx.state``, committed
                with the event id iff the attempt succeeds; an event id
                already applied is skipped. Needs ``ordered_by``
                (docs/state.md). *Added in 0.2.*
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
        types = check_event_types(event_types)
        inspect_handler(handler)
        if name is None:
            name = default_name(handler)
        elif not isinstance(name, str) or not name:
            raise TypeError(f"subscribe(name=...) must be a non-empty string, got {name!r}")
        if name in self._subs:
            raise DuplicateSubscription(
                f"a subscription named {name!r} already exists on this bus; "
                f"pass a name of its own: subscribe(..., name={name + '-2'!r}) or "
                "@bus.on(..., name=...) (without name=, a subscription is named after its "
                "handler function)"
            )
        check_int("concurrency", concurrency)
        check_int("queue_size", queue_size)
        check_memory_mb(memory_mb)
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
            check_ordered_by(ordered_by, types)
        check_state(state, ordered_by, name, is_stream_subscription(types))
        where_obj, matcher = compile_where(where, types)
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
        stream = stream_options(
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
            memory_mb=memory_mb,
            state=state,
        )
        self._subs[name] = sub
        self._router.add(sub)
        if self._tg is not None and self._state is _State.RUNNING:
            self._tg.start_soon(sub.run)
            if self.transport is not None:
                self._registering += 1
                self._tg.start_soon(self._register_consumer, sub)
        if is_stream_subscription(types):
            for source in self._stream_sources:
                source.attach(sub)
        return sub

    def _add_source(self, source: object) -> None:
        """Note a source (ObjectStore, Table, Topic) made on this bus, for :meth:`topology`."""
        self._sources.append(source)

    def _add_stream_source(self, source: StreamSource) -> None:
        """Register a partitioned log whose records stream to LogRecord subscriptions."""
        self._stream_sources.append(source)
        for sub in self._subs.values():
            if is_stream_subscription(sub.event_types):
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
        state: StateStore | None = None,
        **stream_options: Any,
    ) -> Callable[[H], H]:
        """Decorator form of :meth:`subscribe`; returns the handler, which carries its subscription::

        @bus.on(OrderPlaced, concurrency=4)
        async def send_receipt(event: OrderPlaced) -> None: ...

        send_receipt.subscription.name      # 'send_receipt'
        bus.metrics()[send_receipt]         # its metrics

        .. versionchanged:: 0.2
           The handler gets a ``subscription`` attribute (when it takes
           attributes, as functions do).
        """

        def decorate(handler: H) -> H:
            sub = self.subscribe(
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
                state=state,
                **stream_options,
            )
            with contextlib.suppress(AttributeError, TypeError):  # e.g. a bound method
                cast("Any", handler).subscription = sub
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
        if self._registering:
            # A broker consumer still starting (subscribed a moment ago) registers itself
            # only once running: without this wait it would be missed, and would go on
            # taking the group's events for a subscription that is gone.
            await self._subscriptions_registered()
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
            raise unknown(name, self._subs) from None

    async def state_of(self, name: str, key: object) -> Mapping[str, Any]:
        """A read-only snapshot of *key*'s committed state in subscription *name*.

        Returns:
            A read-only mapping holding a copy (later commits do not change
            it); empty for a key never written.

        Raises:
            UnknownSubscription: there is no such subscription.
            StateError: it has no ``state=``, or *key* is not a str, int or UUID.

        .. versionadded:: 0.2
        """
        return await self._state_runner(name).snapshot(key)

    def state_keys(self, name: str) -> AsyncIterator[str]:
        """The keys of subscription *name* whose state is not empty.

        Read them with ``async for key in bus.state_keys(name)``, or all at
        once with ``keys = await bus.state_keys(name)``; with a local store
        (``MemoryState``, ``SqliteState``) a plain ``for`` works too.
        Asynchronous, as the store may hold many keys across a network.

        Raises:
            UnknownSubscription: there is no such subscription.
            StateError: it has no ``state=``, or its store cannot list keys.

        .. versionadded:: 0.2
        """
        return self._state_runner(name).keys()

    def _state_runner(self, name: str) -> StateRunner:
        runner = self.subscription(name)._state
        if runner is None:
            raise StateError(
                f"subscription {name!r} has no state=...; subscribe with ordered_by=... and "
                "state=MemoryState() (or another store) to keep state per key"
            )
        return runner

    def has_subscription(self, name: str) -> bool:
        """Whether a subscription called *name* exists."""
        return name in self._subs

    def subscriptions(self) -> tuple[Subscription, ...]:
        """Every subscription, in the order they were made."""
        return tuple(self._subs.values())

    def metrics(self) -> MetricsSnapshot:
        """A snapshot of every subscription's metrics, keyed by subscription name.

        It is a ``dict``; a handler works as a key too: ``bus.metrics()[send_receipt]``.
        Its ``transport`` attribute is :meth:`transport_status` (``None`` in memory);
        if the transport raises while reporting, ``metrics()`` still answers, with
        ``connected=False`` and the error as ``last_error``.

        .. versionchanged:: 0.2
           The snapshot carries the broker connection's state as ``transport``.
        """
        return MetricsSnapshot(
            {name: sub.metrics() for name, sub in self._subs.items()},
            [(sub.handler, name) for name, sub in self._subs.items()],
            transport=self._reported_status(),
        )

    # -- hooks, metering and topology -------------------------------------------------

    @property
    def hooks(self) -> tuple[Hook, ...]:
        """The installed hooks, in the order they run (a :class:`~eventbus.Metering` first).

        .. versionadded:: 0.2
        """
        return () if self._hooks is None else self._hooks.hooks

    def add_hook(self, hook: Hook) -> None:
        """Install *hook* (a :class:`~eventbus.Hook`): it observes from the next call site on.

        Raises:
            TypeError: *hook* has none of the hook methods.

        .. versionadded:: 0.2
        """
        check_hook(hook, "add_hook()")
        if isinstance(hook, Metering) and self._metering is None:
            self._metering = hook  # what usage() reads
        self._hooks = HookSet((*self.hooks, hook))

    def remove_hook(self, hook: Hook) -> None:
        """Uninstall *hook*; attempts already started still end in it.

        Raises:
            ValueError: *hook* is not installed.

        .. versionadded:: 0.2
        """
        hooks = list(self.hooks)
        for i, installed in enumerate(hooks):
            if installed is hook:
                del hooks[i]
                break
        else:
            raise ValueError(f"remove_hook(): {hook!r} is not installed on this bus")
        if hook is self._metering:
            self._metering = None
        self._hooks = HookSet(hooks) if hooks else None

    @property
    def metering(self) -> Metering | None:
        """The bus's :class:`~eventbus.Metering` (``Bus(metering=...)``), or ``None``.

        .. versionadded:: 0.2
        """
        return self._metering

    def usage(self) -> UsageReport:
        """What the subscriptions used so far, as AWS Lambda would bill it.

        Returns:
            A :class:`~eventbus.UsageReport`: ``report[name]`` is the
            :class:`~eventbus.Usage` of subscription *name*, ``report.total``
            the sum, ``report.estimate(pricing)`` the price.

        Raises:
            MeteringError: the bus was made without ``metering=Metering(...)``.

        .. versionadded:: 0.2
        """
        if self._metering is None:
            raise MeteringError(
                "bus.usage() needs a meter: create the bus with "
                "Bus(metering=Metering(granularity_ms=1))"
            )
        return self._metering.report(self)

    def topology(self, direction: str = "LR") -> str:
        """A Mermaid ``flowchart`` of this bus: sources, event types, subscriptions, sinks.

        Sources are those the bus knows (schedules, and the logs, object
        stores, tables and topics made on it); each subscription
        shows its ``where`` filter, concurrency and ordering, and points at
        its ``on_success``/``on_failure`` destinations and (dashed) its
        dead-letter sink. User strings are escaped.

        Args:
            direction: ``"LR"`` (default), ``"RL"``, ``"TB"``, ``"TD"`` or ``"BT"``.

        Raises:
            ValueError: *direction* is not one of those.

        .. versionadded:: 0.2
        """
        return render_topology(self, direction)

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
            extra=log_extra(letter.subscription, letter.event, letter.attempts),
        )
        if self._hooks is not None:
            self._hooks.dead_letter(letter)
        try:
            await sink.put(letter)
        except Exception:
            logger.exception(
                "dead-letter sink %r failed to store letter %s; keeping it in memory instead",
                sink,
                letter.id,
                extra=log_extra(letter.subscription, letter.event, letter.attempts),
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
