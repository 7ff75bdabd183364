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

This module holds the queue (acceptance, backpressure, accounting) and the
workers; one attempt and its retries and dead letters are in ``_attempts``,
batches in ``_batches``, per-key ordering in ``_ordering``.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import sys
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, final

import anyio
import anyio.lowlevel

from ._attempts import Handler, KeyFunction, Matcher, _Retry, handling
from ._batches import SubscriptionBatches
from ._batching import Batching, StreamOptions
from ._context import Context
from ._deadletter import DeadLetterSink
from ._events import Event
from ._flow import CircuitBreaker, Gate, RateLimit
from ._hooks import log_extra
from ._metering import DEFAULT_MEMORY_MB
from ._metrics import Counters, SubscriptionMetrics
from ._ordering import SubscriptionOrdering
from ._retry import RetryPolicy
from ._state import StateStore
from ._stateful import StateRunner
from ._subscribe import inspect_handler

if TYPE_CHECKING:
    import asyncio

    from ._bus import Bus

__all__ = ["Handler", "Subscription", "handling"]

logger = logging.getLogger("eventbus")

# Events a worker handles back to back before yielding to the loop, so that no
# other subscription starves: enough that a waiting publisher refills many
# slots per turn (each turn costs it a wait), few enough that other tasks do
# not wait long. The bare asyncio.Queue worker never yields while it has items.
_YIELD_EVERY: Final = 256
_refcount: Final = sys.getrefcount


@final
class Subscription(SubscriptionBatches, SubscriptionOrdering):
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
        memory_mb: the memory size metering bills it at (Lambda's ``MemorySize``).
    """

    __slots__ = (
        "_acks",
        "_active_keys",
        "_async",
        "_bus",
        "_counters",
        "_gate",
        "_handover",
        "_idle",
        "_item_waiters",
        "_key",
        "_loop",
        "_matcher",
        "_queue",
        "_reserved",
        "_scope",
        "_space_waiters",
        "_state",
        "_stopped",
        "_wants_ctx",
        "batch",
        "circuit_breaker",
        "concurrency",
        "dead_letter",
        "event_types",
        "handler",
        "memory_mb",
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
        state: StateStore | None = None,
        memory_mb: int = DEFAULT_MEMORY_MB,
    ) -> None:
        self._bus = bus
        self.memory_mb = memory_mb
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
        self._state = (
            None
            if state is None
            else StateRunner(bus, name, state, self._key or operator.attrgetter("partition_key"))
        )
        self._queue: deque[Event | _Retry] = deque()
        self._counters = Counters()
        self._item_waiters: deque[Any] = deque()  # anyio.Event, or asyncio futures
        self._loop: asyncio.AbstractEventLoop | None = None
        # Publishers waiting for room, oldest first: an OrderedDict so that a
        # cancelled one leaves in O(1) (cancelling N waiters is linear).
        self._space_waiters: OrderedDict[Any, None] = OrderedDict()
        # Free slots handed over at once when many publishers wait.
        self._handover = max(1, queue_size // 8)
        self._reserved = 0  # slots freed for woken publishers that have not enqueued yet
        self._active_keys: dict[Hashable, deque[Event | _Retry]] = {}
        self._scope: anyio.CancelScope | None = None
        self._stopped = False  # stop() came, perhaps before run() started
        self._idle: anyio.Event | None = None
        self._acks: dict[str, list[Callable[[], None]]] | None = None

    def metrics(self) -> SubscriptionMetrics:
        """A snapshot of this subscription's counters and gauges."""
        return self._counters.snapshot(self._gate.state if self._gate is not None else "closed")

    def __repr__(self) -> str:
        types = ", ".join(t.__name__ for t in self.event_types)
        return f"<Subscription {self.name!r} ({types}) concurrency={self.concurrency}>"

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
        waiters = self._space_waiters
        waiter = anyio.Event()
        waiters[waiter] = None
        try:
            await waiter.wait()
        except BaseException:
            if waiter in waiters:
                del waiters[waiter]
            else:  # woken, then cancelled: pass on the slot held for us
                self._reserved -= 1
                self._wake_publisher()
            raise
        self._reserved -= 1

    def _wake_publisher(self) -> None:
        """Hand free slots to waiting publishers, oldest first, several at once.

        While more publishers wait than slots are free, slots are handed over
        in batches (``_handover`` at a time, or all once the queue is empty)
        rather than one per event taken: fewer, larger turns for publishers.
        """
        waiters = self._space_waiters
        queued = self._counters.queued
        free = self.queue_size - queued - self._reserved
        if free < len(waiters) and free < self._handover and queued:
            return  # more publishers than room: wait for a batch of room
        while free > 0 and waiters:
            waiter = waiters.popitem(last=False)[0]
            self._reserved += 1  # held for the woken publisher until it enqueues
            free -= 1
            waiter.set()

    def contains(self, event: Event) -> bool:
        """Whether *event* passes this subscription's ``where`` filter."""
        matcher = self._matcher
        return matcher is None or matcher(event)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the worker pool until cancelled (started by the bus); not at all once stopped."""
        if self._stopped:  # removed before this task got to run: start no workers
            task_status.started()
            return
        # On asyncio, idle workers wait on bare futures: a third of the cost
        # of an anyio.Event per wake-up, on the latency-critical path. (Not
        # imported here: a program that never imported asyncio is not on it.)
        asyncio = sys.modules.get("asyncio")
        self._loop = None
        if asyncio is not None:
            with contextlib.suppress(RuntimeError):  # another backend (trio)
                self._loop = asyncio.get_running_loop()
        # Code in this subscription's tasks (handlers, retries) may publish
        # while the bus drains on close: it completes the chains drain waits for.
        handling.set(self._bus)
        with anyio.CancelScope() as scope:
            self._scope = scope
            async with anyio.create_task_group() as tg:
                if self._state is not None:
                    tg.start_soon(self._state.serve)  # reminders
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
            logger.exception(
                "subscription %r: acknowledging event %s failed",
                self.name,
                event.id,
                extra=log_extra(self.name, event, None),
            )

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
        self._stopped = True
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
        c = self._counters
        bus = self._bus
        name = self.name
        handler = self.handler
        wants_ctx = self._wants_ctx
        fast = self._async and self.timeout is None
        gate = self._gate
        space_waiters = self._space_waiters
        durations = c._durations
        streak = 0
        ctx: Context | None = None
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
                if space_waiters:
                    self._wake_publisher()
                if fast and type(item) is not _Retry and bus._hooks is None:
                    # The common case, inlined: first attempt of an async
                    # handler without a timeout.
                    start = perf_counter()
                    try:
                        if wants_ctx:
                            # The last delivery's Context is reused when nothing
                            # but this frame holds it (the handler kept none).
                            if ctx is None or _refcount(ctx) > 2:
                                ctx = Context(bus, name, item, 1, None)
                            else:  # Context._renew, inlined
                                ctx.event = item
                                ctx._invocation_id = None
                                ctx._logger = None
                            result = await handler(item, ctx)
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
                    durations.append(perf_counter() - start)
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
            await self._deliver_in_order(item, key_fn)

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
