"""A subscription: a handler, its bounded queue, and the workers that run it.

The delivery state machine of one subscription, with the counters each
transition moves (every move keeps ``accepted == succeeded + dead_lettered +
in_flight + queued + waiting_retry``)::

    accept ──▶ queued ──▶ in_flight ──▶ succeeded
                 ▲           │
                 │           ├──▶ waiting_retry ──┐ (delay elapsed)
                 └───────────┼────────────────────┘
                             └──▶ dead_lettered

Workers are long-lived tasks (``concurrency`` of them) that pull from the
queue, not a task per event. A worker that finds the queue non-empty keeps
going without suspending, but yields to the loop every few events so that no
other subscription starves.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import operator
from collections import deque
from collections.abc import Callable, Hashable
from datetime import datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, final

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._batching import Batching, BatchResult, StreamOptions
from ._context import Context
from ._deadletter import DeadLetter, DeadLetterSink, ErrorInfo
from ._destinations import InvocationRecord, deliver_record
from ._events import Event
from ._exceptions import BatchItemFailure, HandlerTimeout
from ._flow import CircuitBreaker, Gate, RateLimit
from ._metrics import DURATION_WINDOW, Counters, SubscriptionMetrics
from ._retry import DeadLetterCondition, GiveUp, RetryPolicy

if TYPE_CHECKING:
    from ._bus import Bus

__all__ = ["Handler", "Subscription", "handling"]

logger = logging.getLogger("eventbus")

Handler: TypeAlias = Callable[..., Any]
"""A handler: ``async def h(event)``, ``async def h(event, ctx)``, or a plain ``def``
of either shape (run in a worker thread)."""

KeyFunction: TypeAlias = Callable[[Any], Hashable]
Matcher: TypeAlias = Callable[[Any], bool]

handling: contextvars.ContextVar[Bus | None] = contextvars.ContextVar(
    "eventbus_handling", default=None
)
"""The bus whose handler runs in the current task: it may publish while that bus drains."""

_YIELD_EVERY: Final = 16  # events a worker handles back to back before yielding


@final
class _Retry:
    """A failed event (or batch of events) waiting for, or ready for, its next attempt."""

    __slots__ = ("attempt", "event", "events", "first_failure")

    def __init__(
        self,
        event: Event,
        attempt: int,
        first_failure: datetime,
        events: list[Event] | None = None,
    ) -> None:
        self.event = event
        self.attempt = attempt
        self.first_failure = first_failure
        self.events = events

    def all_events(self) -> list[Event]:
        return self.events if self.events is not None else [self.event]


@final
class Subscription:
    """A handler subscribed to event types on a bus; made by :meth:`Bus.subscribe`.

    Attributes:
        name: the subscription's identity on its bus (metrics key, ``invoke``
            name, broker consumer name).
        event_types: the event classes it receives (subclasses included).
        handler: the callable it runs.
        concurrency: how many events it handles at once.
        queue_size: how many accepted events may wait before publishers wait.
        timeout: seconds an attempt may run, or ``None``.
        ordered_by: the field name or key function that orders events, or ``None``.
        retry: its :class:`~eventbus.RetryPolicy`.
        dead_letter: its :class:`~eventbus.DeadLetterSink`.
        batch: its :class:`~eventbus.Batching`, or ``None`` for one event at a time.
        stream: its :class:`~eventbus.StreamOptions` (subscriptions to
            ``LogRecord`` consuming a :class:`~eventbus.Log`), or ``None``.
        on_success, on_failure: its destinations, or ``None``.
        circuit_breaker: its :class:`~eventbus.CircuitBreaker`, or ``None``.
        rate_limit: its :class:`~eventbus.RateLimit`, or ``None``.
    """

    __slots__ = (
        "_acks",
        "_active_keys",
        "_async",
        "_bus",
        "_counters",
        "_gate",
        "_idle",
        "_item_waiters",
        "_key",
        "_loop",
        "_matcher",
        "_queue",
        "_reserved",
        "_scope",
        "_space_waiters",
        "_wants_ctx",
        "batch",
        "circuit_breaker",
        "concurrency",
        "dead_letter",
        "event_types",
        "handler",
        "name",
        "on_failure",
        "on_success",
        "ordered_by",
        "queue_size",
        "rate_limit",
        "retry",
        "stream",
        "timeout",
        "where",
    )

    def __init__(
        self,
        bus: Bus,
        *,
        name: str,
        event_types: tuple[type[Event], ...],
        handler: Handler,
        where: object,
        matcher: Matcher | None,
        concurrency: int,
        ordered_by: str | KeyFunction | None,
        queue_size: int,
        timeout: float | None,
        retry: RetryPolicy,
        dead_letter: DeadLetterSink,
        batch: Batching | None = None,
        stream: StreamOptions | None = None,
        on_success: object = None,
        on_failure: object = None,
        circuit_breaker: CircuitBreaker | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self._bus = bus
        self.circuit_breaker = circuit_breaker
        self.rate_limit = rate_limit
        self._gate = (
            Gate(name, bus.clock, circuit_breaker, rate_limit)
            if circuit_breaker is not None or rate_limit is not None
            else None
        )
        self.batch = batch
        self.stream = stream
        self.on_success = on_success
        self.on_failure = on_failure
        self.name = name
        self.event_types = event_types
        self.handler = handler
        self.where = where
        self._matcher = matcher
        self.concurrency = concurrency
        self.ordered_by = ordered_by
        self.queue_size = queue_size
        self.timeout = timeout
        self.retry = retry
        self.dead_letter = dead_letter
        self._async, self._wants_ctx = inspect_handler(handler)
        self._key: KeyFunction | None
        if ordered_by is None:
            self._key = None
        elif isinstance(ordered_by, str):
            self._key = operator.attrgetter(ordered_by)
        else:
            self._key = ordered_by
        self._queue: deque[Event | _Retry] = deque()
        self._counters = Counters()
        self._item_waiters: deque[Any] = deque()  # anyio.Event, or asyncio futures
        self._loop: asyncio.AbstractEventLoop | None = None
        self._space_waiters: deque[anyio.Event] = deque()
        self._reserved = 0  # slots freed for woken publishers that have not enqueued yet
        self._active_keys: dict[Hashable, deque[Event | _Retry]] = {}
        self._scope: anyio.CancelScope | None = None
        self._idle: anyio.Event | None = None
        self._acks: dict[str, list[Callable[[], None]]] | None = None

    # -- introspection -------------------------------------------------------------

    def metrics(self) -> SubscriptionMetrics:
        """A snapshot of this subscription's counters and gauges."""
        return self._counters.snapshot(self._gate.state if self._gate is not None else "closed")

    def __repr__(self) -> str:
        types = ", ".join(t.__name__ for t in self.event_types)
        return f"<Subscription {self.name!r} ({types}) concurrency={self.concurrency}>"

    # -- accepting -----------------------------------------------------------------

    def has_room(self) -> bool:
        return self._counters.queued + self._reserved < self.queue_size and not self._space_waiters

    def offer(self, event: Event) -> bool:
        """Accept *event* if the queue has room now; return whether it did."""
        c = self._counters
        if c.queued + self._reserved >= self.queue_size or self._space_waiters:
            return False
        c.accepted += 1
        c.queued += 1
        self._bus._outstanding += 1
        self._queue.append(event)
        if self._item_waiters:
            self._wake_worker()
        return True

    def enqueue(self, item: Event | _Retry) -> None:
        """Accept *item* (capacity is the caller's concern)."""
        c = self._counters
        c.accepted += 1
        c.queued += 1
        self._bus._outstanding += 1
        self._queue.append(item)
        if self._item_waiters:
            self._wake_worker()

    def _wake_worker(self) -> None:
        """Wake one idle worker (skipping waiters already cancelled)."""
        waiters = self._item_waiters
        if self._loop is None:
            waiters.popleft().set()
            return
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def wait_for_room(self) -> None:
        """Wait (in FIFO order with other publishers) until the queue has room.

        The slot is held for the caller from its wake-up until this returns,
        so the caller must enqueue without awaiting in between.
        """
        self._counters.throttled += 1
        waiter = anyio.Event()
        self._space_waiters.append(waiter)
        try:
            await waiter.wait()
        except BaseException:
            if waiter in self._space_waiters:
                self._space_waiters.remove(waiter)
            else:  # woken, then cancelled: pass on the slot held for us
                self._reserved -= 1
                self._wake_publisher()
            raise
        self._reserved -= 1

    def _wake_publisher(self) -> None:
        if self._space_waiters and self._counters.queued + self._reserved < self.queue_size:
            self._reserved += 1  # held for the woken publisher until it enqueues
            self._space_waiters.popleft().set()

    def contains(self, event: Event) -> bool:
        """Whether *event* passes this subscription's ``where`` filter."""
        matcher = self._matcher
        return matcher is None or matcher(event)

    # -- running -------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the worker pool until cancelled (started by the bus)."""
        try:
            # On asyncio, idle workers wait on bare futures: a third of the
            # cost of an anyio.Event per wake-up, on the latency-critical path.
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # another backend (trio)
            self._loop = None
        # Code in this subscription's tasks (handlers, retries) may publish
        # while the bus drains on close: it completes the chains drain waits for.
        handling.set(self._bus)
        with anyio.CancelScope() as scope:
            self._scope = scope
            async with anyio.create_task_group() as tg:
                for _ in range(self.concurrency):
                    tg.start_soon(self._worker)
                task_status.started()

    def _settled(self, event: Event | None = None) -> None:
        """*event* was handled or dead-lettered by this subscription."""
        self._bus._settle()
        if self._acks is not None and event is not None:
            self._ack(event)
        if self._idle is not None:
            self._check_idle()

    def register_ack(self, event: Event, ack: Callable[[], None]) -> None:
        """Call *ack* once *event* settles here (broker transports)."""
        if self._acks is None:
            self._acks = {}
        self._acks.setdefault(event.id, []).append(ack)

    def _ack(self, event: Event) -> None:
        assert self._acks is not None
        pending = self._acks.get(event.id)
        if not pending:
            return
        ack = pending.pop(0)
        if not pending:
            del self._acks[event.id]
        try:
            ack()
        except Exception:
            logger.exception("subscription %r: acknowledging event %s failed", self.name, event.id)

    def _check_idle(self) -> None:
        c = self._counters
        if self._idle is not None and not (c.in_flight or c.queued or c.waiting_retry):
            self._idle.set()
            self._idle = None

    async def wait_idle(self) -> None:
        """Wait until nothing of this subscription is queued, in flight or waiting to retry."""
        c = self._counters
        while c.in_flight or c.queued or c.waiting_retry:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def _next_item(self) -> Event | _Retry:
        queue = self._queue
        waiters = self._item_waiters
        loop = self._loop
        while not queue:
            waiter: Any = anyio.Event() if loop is None else loop.create_future()
            waiters.append(waiter)
            try:
                await (waiter.wait() if loop is None else waiter)
            except BaseException:
                if waiter in waiters:
                    waiters.remove(waiter)
                elif queue and waiters:
                    self._wake_worker()  # pass on the wake-up this worker consumed
                raise
        return queue.popleft()

    async def _worker(self) -> None:
        if self.batch is not None:
            await self._batch_worker(self.batch)
            return
        queue = self._queue
        key_fn = self._key
        active = self._active_keys
        c = self._counters
        bus = self._bus
        name = self.name
        handler = self.handler
        wants_ctx = self._wants_ctx
        fast = self._async and self.timeout is None
        gate = self._gate
        streak = 0
        while True:
            if streak >= _YIELD_EVERY:
                # Yield *before* taking the next event: an event taken and then
                # held across a yield could be overtaken by a later one of its key
                # (taken by another worker), and would be invisible to shutdown.
                # And before the gate: an admission (the breaker's one probe)
                # must lead straight to an event, never back to the gate.
                streak = 0
                await anyio.lowlevel.checkpoint()
            if gate is not None and not await self._admitted(gate):
                continue
            if queue:
                streak += 1
                item = queue.popleft()
            else:
                streak = 0
                item = await self._next_item()
            if key_fn is None:
                c.queued -= 1
                c.in_flight += 1
                if self._space_waiters:
                    self._wake_publisher()
                if fast and type(item) is not _Retry:
                    # The common case, inlined: first attempt of an async
                    # handler without a timeout.
                    start = perf_counter()
                    try:
                        if wants_ctx:
                            result = await handler(item, Context(bus, name, item, 1, None))
                        else:
                            result = await handler(item)
                    except BaseException as exc:
                        retry = await self._on_failure(item, exc, 1, None, start)
                        if (
                            retry is not None
                        ):  # pragma: no cover - only ordered retries run in place
                            await self._deliver(retry)
                        continue
                    if gate is not None:
                        gate.record(True)
                    if self.on_success is not None:
                        await self._report_success(item, result, 1, start)
                    c.in_flight -= 1
                    c.succeeded += 1
                    durations = c._durations
                    if len(durations) < DURATION_WINDOW:
                        durations.append(perf_counter() - start)
                    else:
                        c.record_duration(perf_counter() - start)
                    bus._outstanding -= 1
                    if not bus._outstanding and bus._drain_waiter is not None:
                        bus._settle_idle()
                    if self._acks is not None:
                        self._ack(item)
                    if self._idle is not None:
                        self._check_idle()
                    continue
                await self._deliver(item)
                continue
            event = item.event if isinstance(item, _Retry) else item
            try:
                key = key_fn(event)
                backlog = active.get(key)
            except Exception as exc:  # a key function that fails is the handler's failure
                self._take()
                await self._give_up(event, exc, 0, None, "NotRetryable")
                continue
            if backlog is not None:
                backlog.append(item)  # stays counted as queued, behind its key
                continue
            backlog = active[key] = deque()
            try:
                self._take()
                await self._deliver(item)
                while backlog:
                    self._take()
                    await self._deliver(backlog.popleft())
            finally:
                del active[key]

    async def _admitted(self, gate: Gate) -> bool:
        """Wait for an event and for the breaker/limiter; False if the event went elsewhere."""
        queue = self._queue
        if not queue:
            item = await self._next_item()
            queue.appendleft(item)  # still counted as queued: only peeked at
        await gate.admit()
        if queue:
            return True
        gate.withdraw()
        return False

    def _take(self) -> None:
        c = self._counters
        c.queued -= 1
        c.in_flight += 1
        if self._space_waiters:
            self._wake_publisher()

    async def _deliver(self, item: Event | _Retry) -> None:
        """Run the handler on an in-flight item until it settles or waits for a retry."""
        if isinstance(item, _Retry):
            event, attempt, first_failure = item.event, item.attempt, item.first_failure
        else:
            event, attempt, first_failure = item, 1, None
        c = self._counters
        while True:
            start = perf_counter()
            try:
                result = await self._attempt(event, attempt)
            except BaseException as exc:
                retry = await self._on_failure(event, exc, attempt, first_failure, start)
                if retry is None:
                    return
                attempt, first_failure = retry.attempt, retry.first_failure
                continue
            if self._gate is not None:
                self._gate.record(True)
            if self.on_success is not None:
                await self._report_success(event, result, attempt, start)
            c.record_duration(perf_counter() - start)
            c.in_flight -= 1
            c.succeeded += 1
            self._settled(event)
            return

    async def _report_success(self, event: Event, result: Any, attempt: int, start: float) -> None:
        """Send the on_success record; if cancelled meanwhile, still settle *event* as handled.

        The handler succeeded: a shutdown that cuts the record's delivery must
        not leave the event in flight forever (the caller settles it otherwise).
        """
        try:
            await self._report(event, "Success", result, None, None, attempt, start)
        except BaseException:
            c = self._counters
            c.in_flight -= 1
            c.succeeded += 1
            self._settled(event)
            raise

    def _decide(self, exc: BaseException, attempt: int, age: float) -> float | DeadLetterCondition:
        """Ask the retry policy: a delay in seconds, or the condition to give up with."""
        decision = self.retry.next_delay(exc, attempt, age)
        if decision is not None and not isinstance(decision, GiveUp):
            return max(0.0, float(decision))
        condition: DeadLetterCondition = (
            decision.condition if decision is not None else "RetriesExhausted"
        )
        if condition == "RetriesExhausted" and isinstance(exc, HandlerTimeout):
            return "Timeout"
        return condition

    async def _on_failure(
        self,
        event: Event,
        exc: BaseException,
        attempt: int,
        first_failure: datetime | None,
        start: float,
    ) -> _Retry | None:
        """Handle attempt *attempt* of *event* having raised *exc*.

        Returns the next attempt when it must run in place now (ordered
        subscriptions hold their key while they wait); otherwise ``None``:
        the event was dead-lettered, or handed to a retry timer.
        Cancellation and other non-``Exception`` errors propagate.
        """
        c = self._counters
        bus = self._bus
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            if bus._shutting_down:
                with anyio.CancelScope(shield=True):
                    await self._give_up(event, None, attempt, first_failure, "Shutdown")
            raise exc
        if not isinstance(exc, Exception):
            raise exc
        if self._gate is not None:
            self._gate.record(False)
        c.record_duration(perf_counter() - start)
        c.errors += 1
        if isinstance(exc, HandlerTimeout):
            c.timeouts += 1
        now = bus.clock.wall()
        if first_failure is None:
            first_failure = now
        age = (now - event.time).total_seconds()
        decision = self._decide(exc, attempt, age)
        if isinstance(decision, str):
            await self._give_up(event, exc, attempt, first_failure, decision)
            return None
        c.retries += 1
        c.in_flight -= 1
        c.waiting_retry += 1
        attempt += 1
        due = bus.clock.now() + decision
        if self._key is None:
            bus._spawn(self._retry_later, _Retry(event, attempt, first_failure), due)
            return None
        # Ordered: hold the key (and this worker) so nothing overtakes.
        try:
            await bus.clock.sleep_until(due)
        except anyio.get_cancelled_exc_class():
            if bus._shutting_down:
                c.waiting_retry -= 1
                c.in_flight += 1
                with anyio.CancelScope(shield=True):
                    await self._give_up(event, None, attempt - 1, first_failure, "Shutdown")
            raise
        c.waiting_retry -= 1
        c.in_flight += 1
        return _Retry(event, attempt, first_failure)

    async def _retry_later(self, item: _Retry, due: float) -> None:
        c = self._counters
        n = len(item.all_events())
        try:
            await self._bus.clock.sleep_until(due)
        except anyio.get_cancelled_exc_class():
            if self._bus._shutting_down:
                c.waiting_retry -= n
                c.in_flight += n
                with anyio.CancelScope(shield=True):
                    for event in item.all_events():
                        await self._give_up(
                            event, None, item.attempt - 1, item.first_failure, "Shutdown"
                        )
            raise
        c.waiting_retry -= n
        c.queued += n
        self._queue.append(item)
        if self._item_waiters:
            self._wake_worker()

    async def _attempt(self, event: Event, attempt: int, payload: Any = None) -> Any:
        """Run the handler once on *event* (or on *payload*, a batch, when given).

        Raises :class:`HandlerTimeout` past the deadline.
        """
        arg: Any = event if payload is None else payload
        if handling.get() is not self._bus:  # a stream consumer's task, or invoke()
            handling.set(self._bus)
        timeout = self.timeout
        if timeout is None:
            if self._async:
                if self._wants_ctx:
                    return await self.handler(
                        arg, Context(self._bus, self.name, event, attempt, None)
                    )
                return await self.handler(arg)
            return await self._run_sync(arg, event, attempt, None)
        clock = self._bus.clock
        deadline = clock.now() + timeout
        result: Any = None
        with clock.deadline_scope(deadline) as scope:
            if self._async:
                if self._wants_ctx:
                    result = await self.handler(
                        arg, Context(self._bus, self.name, event, attempt, deadline)
                    )
                else:
                    result = await self.handler(arg)
            else:
                result = await self._run_sync(arg, event, attempt, deadline)
        if scope.cancel_called:
            raise HandlerTimeout(
                f"subscription {self.name!r}: handler did not finish within its timeout of "
                f"{timeout:g}s (attempt {attempt}, event {event.id}); make it faster, raise "
                "timeout=..., or check ctx.remaining_time() in long handlers"
            )
        return result

    async def _run_sync(self, arg: Any, event: Event, attempt: int, deadline: float | None) -> Any:
        call: Callable[[], Any]
        if self._wants_ctx:
            call = functools.partial(
                self.handler, arg, Context(self._bus, self.name, event, attempt, deadline)
            )
        else:
            call = functools.partial(self.handler, arg)
        # A thread cannot be interrupted: on timeout or shutdown we stop
        # waiting for it, and count it as abandoned.
        try:
            return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            self._counters.abandoned_threads += 1
            raise

    async def invoke(self, event: Event) -> Any:
        """Run the handler once on *event*, outside the queue (``Bus.invoke``)."""
        c = self._counters
        start = perf_counter()
        try:
            result = await self._attempt(event, 1, [event] if self.batch is not None else None)
        except Exception as exc:
            c.errors += 1
            if isinstance(exc, HandlerTimeout):
                c.timeouts += 1
            raise
        finally:
            c.record_duration(perf_counter() - start)
        return result

    async def _give_up(
        self,
        event: Event,
        exc: BaseException | None,
        attempts: int,
        first_failure: datetime | None,
        condition: DeadLetterCondition,
    ) -> None:
        """Send *event* (currently in flight) to the dead letters and settle it.

        At shutdown, an event a broker transport still holds for this
        subscription is not dead-lettered: it is left unacknowledged, so the
        broker delivers it again (to another process of the group, or after a
        restart). It stays counted as in flight: it is still pending.
        """
        bus = self._bus
        if condition == "Shutdown" and self._acks is not None and event.id in self._acks:
            del self._acks[event.id]
            logger.warning(
                "subscription %r: event %s left unacknowledged on the broker at shutdown; "
                "it will be delivered again",
                self.name,
                event.id,
            )
            return
        now = bus.clock.wall()
        if exc is None:
            error = ErrorInfo(
                condition,
                f"the bus shut down before subscription {self.name!r} handled the event",
            )
        else:
            error = ErrorInfo.from_exception(exc)
        letter = DeadLetter(
            event=event,
            subscription=self.name,
            error=error,
            attempts=attempts,
            first_failure=first_failure or now,
            last_failure=now,
            condition=condition,
            exception=exc,
        )
        # Shielded: once the bus has given up on the event, recording that must
        # finish even if a shutdown cancels this task, or the event would be
        # left in flight forever.
        with anyio.CancelScope(shield=True):
            await bus._store_dead_letter(self.dead_letter, letter)
            if self.on_failure is not None:
                await deliver_record(
                    self.on_failure,
                    InvocationRecord(
                        event,
                        self.name,
                        "Failure",
                        error=error,
                        condition=condition,
                        attempts=attempts,
                    ),
                )
        c = self._counters
        c.in_flight -= 1
        c.dead_lettered += 1
        self._settled(event)

    async def _report(
        self,
        event: Event,
        outcome: Literal["Success", "Failure"],
        result: Any,
        error: ErrorInfo | None,
        condition: DeadLetterCondition | None,
        attempts: int,
        start: float,
    ) -> None:
        destination = self.on_success if outcome == "Success" else self.on_failure
        record = InvocationRecord(
            event,
            self.name,
            outcome,
            result=result,
            error=error,
            condition=condition,
            attempts=attempts,
            duration=perf_counter() - start,
        )
        await deliver_record(destination, record)

    async def dead_letter_now(
        self, event: Event, exc: BaseException, condition: DeadLetterCondition
    ) -> None:
        """Accept *event* and dead-letter it at once, without running the handler."""
        c = self._counters
        c.accepted += 1
        c.in_flight += 1
        self._bus._outstanding += 1
        await self._give_up(event, exc, 0, None, condition)

    # -- batches -------------------------------------------------------------------------

    async def _batch_worker(self, config: Batching) -> None:
        """Collect up to ``size`` events (waiting at most ``window``) and deliver them at once."""
        queue = self._queue
        clock = self._bus.clock
        gate = self._gate
        while True:
            if gate is not None and not await self._admitted(gate):
                continue
            first = queue.popleft() if queue else await self._next_item()
            if isinstance(first, _Retry):
                events = first.all_events()
                self._take_n(len(events))
                await self._deliver_batch(events, first.attempt, first.first_failure)
                continue
            batch = [first]
            size = config.size
            while len(batch) < size and queue and not isinstance(queue[0], _Retry):
                batch.append(queue.popleft())  # type: ignore[arg-type]
            if len(batch) < size and config.window > 0:
                try:
                    with clock.deadline_scope(clock.now() + config.window):
                        while len(batch) < size:
                            item = await self._next_item()
                            if isinstance(item, _Retry):
                                queue.appendleft(item)
                                break
                            batch.append(item)
                            while len(batch) < size and queue and not isinstance(queue[0], _Retry):
                                batch.append(queue.popleft())  # type: ignore[arg-type]
                except BaseException:
                    # Cancelled while the batch filled (shutdown): put its events
                    # back, still queued, so shutdown sees and settles them.
                    queue.extendleft(reversed(batch))
                    raise
            self._take_n(len(batch))
            await self._deliver_batch(batch, 1, None)
            await anyio.lowlevel.checkpoint()

    def _take_n(self, n: int) -> None:
        c = self._counters
        c.queued -= n
        c.in_flight += n
        for _ in range(n):
            if not self._space_waiters:
                break
            self._wake_publisher()

    async def _deliver_batch(
        self, events: list[Event], attempt: int, first_failure: datetime | None
    ) -> None:
        """Run the handler on a batch until every event in it settles or waits for a retry."""
        c = self._counters
        bus = self._bus
        while True:
            start = perf_counter()
            failed: list[Event]
            error: BaseException | None = None
            try:
                result = await self._attempt(events[0], attempt, list(events))
            except anyio.get_cancelled_exc_class():
                if bus._shutting_down:
                    with anyio.CancelScope(shield=True):
                        for event in events:
                            await self._give_up(event, None, attempt, first_failure, "Shutdown")
                raise
            except Exception as exc:
                failed, error, result = events, exc, None
            else:
                failed, error = self._failed_items(events, result)
            c.record_duration(perf_counter() - start)
            if self._gate is not None:
                self._gate.record(not failed)
            failed_ids = {id(e) for e in failed}
            handled = [e for e in events if id(e) not in failed_ids]
            for i, event in enumerate(handled):
                if self.on_success is not None:
                    try:
                        await self._report(event, "Success", result, None, None, attempt, start)
                    except BaseException:
                        # Cut short (shutdown): the handler did succeed for these,
                        # and the failed ones must not be left in flight either.
                        for done in handled[i:]:
                            c.in_flight -= 1
                            c.succeeded += 1
                            self._settled(done)
                        if bus._shutting_down:
                            with anyio.CancelScope(shield=True):
                                for event_failed in failed:
                                    await self._give_up(
                                        event_failed, error, attempt, first_failure, "Shutdown"
                                    )
                        raise
                c.in_flight -= 1
                c.succeeded += 1
                self._settled(event)
            if not failed or error is None:
                return
            retry = await self._on_batch_failure(failed, error, attempt, first_failure)
            if retry is None:
                return
            events, attempt, first_failure = retry.all_events(), retry.attempt, retry.first_failure

    def _failed_items(
        self, events: list[Event], result: object
    ) -> tuple[list[Event], BaseException | None]:
        """Read a handler's :class:`BatchResult` (Lambda's ReportBatchItemFailures)."""
        if not isinstance(result, BatchResult) or not result.failed:
            return [], None
        by_id = {e.id: e for e in events}
        unknown = [i for i in result.failed if i not in by_id]
        if unknown:
            # As Lambda does: an id that is not in the batch fails the whole batch.
            return events, BatchItemFailure(
                f"subscription {self.name!r}: BatchResult.failed names ids not in the batch "
                f"({', '.join(unknown[:3])}); the whole batch is treated as failed"
            )
        failed_ids = set(result.failed)
        failed = [e for e in events if e.id in failed_ids]
        return failed, BatchItemFailure(
            f"subscription {self.name!r}: the handler reported {len(failed)} of "
            f"{len(events)} events as failed (BatchResult)"
        )

    async def _on_batch_failure(
        self,
        failed: list[Event],
        exc: BaseException,
        attempt: int,
        first_failure: datetime | None,
    ) -> _Retry | None:
        """The failed part of a batch: retry it later (as a batch) or dead-letter each event."""
        c = self._counters
        bus = self._bus
        n = len(failed)
        c.errors += n
        if isinstance(exc, HandlerTimeout):
            c.timeouts += n
        now = bus.clock.wall()
        if first_failure is None:
            first_failure = now
        age = max((now - e.time).total_seconds() for e in failed)
        decision = self._decide(exc, attempt, age)
        if isinstance(decision, str):
            for event in failed:
                await self._give_up(event, exc, attempt, first_failure, decision)
            return None
        c.retries += n
        c.in_flight -= n
        c.waiting_retry += n
        due = bus.clock.now() + decision
        bus._spawn(self._retry_later, _Retry(failed[0], attempt + 1, first_failure, failed), due)
        return None

    def abandon_queued(self) -> list[Event]:
        """Remove every queued event (for shutdown); the caller dead-letters them."""
        items = list(self._queue)
        for backlog in self._active_keys.values():
            items.extend(backlog)
            backlog.clear()
        self._queue.clear()
        c = self._counters
        events: list[Event] = []
        for item in items:
            events.extend(item.all_events() if isinstance(item, _Retry) else [item])
        c.queued -= len(events)
        c.in_flight += len(events)
        return events


def inspect_handler(handler: Handler) -> tuple[bool, bool]:
    """Return ``(is_async, wants_context)`` for *handler*, or raise a clear TypeError."""
    if not callable(handler):
        raise TypeError(
            f"handler must be a callable such as 'async def handler(event)' or "
            f"'async def handler(event, ctx)', got {type(handler).__name__} {handler!r:.80}"
        )
    target: Any = handler
    is_async = inspect.iscoroutinefunction(target) or (
        not inspect.isfunction(target)
        and not inspect.ismethod(target)
        and inspect.iscoroutinefunction(getattr(target, "__call__", None))  # noqa: B004
    )
    if inspect.isasyncgenfunction(target):
        raise TypeError(
            f"handler {_callable_name(handler)} is an async generator function; "
            "handlers must be 'async def' functions that return (not yield)"
        )
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return is_async, False  # a builtin without a signature: give it the event only
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    has_varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    required = [p for p in positional if p.default is p.empty]
    if has_varargs or len(positional) >= 2:
        if len(required) > 2:
            raise _arity_error(handler, len(required))
        return is_async, True
    if len(positional) == 1:
        return is_async, False
    raise _arity_error(handler, len(required))


def _arity_error(handler: Handler, count: int) -> TypeError:
    return TypeError(
        f"handler {_callable_name(handler)} takes {count} required positional "
        "argument(s); a handler takes (event) or (event, ctx)"
    )


def _callable_name(handler: Handler) -> str:
    target: Any = handler
    while isinstance(target, functools.partial):
        target = target.func
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    module = getattr(target, "__module__", None)
    return f"{module}.{name}" if module and module != "builtins" else str(name)


def default_name(handler: Handler) -> str:
    """The default subscription name: the handler's ``__qualname__``.

    For a ``functools.partial`` it is the wrapped function's; for a callable
    object, its class's.
    """
    target: Any = handler
    while isinstance(target, functools.partial):
        target = target.func
    name = getattr(target, "__qualname__", None)
    return name if isinstance(name, str) else type(target).__qualname__
