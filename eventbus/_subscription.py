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
import functools
import inspect
import logging
import operator
from collections import deque
from collections.abc import Callable, Hashable
from datetime import datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, TypeAlias, final

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._context import Context
from ._deadletter import DeadLetter, DeadLetterSink, ErrorInfo
from ._events import Event
from ._exceptions import HandlerTimeout
from ._metrics import DURATION_WINDOW, Counters, SubscriptionMetrics
from ._retry import DeadLetterCondition, GiveUp, RetryPolicy

if TYPE_CHECKING:
    from ._bus import Bus

__all__ = ["Handler", "Subscription"]

logger = logging.getLogger("eventbus")

Handler: TypeAlias = Callable[..., Any]
"""A handler: ``async def h(event)``, ``async def h(event, ctx)``, or a plain ``def``
of either shape (run in a worker thread)."""

KeyFunction: TypeAlias = Callable[[Any], Hashable]
Matcher: TypeAlias = Callable[[Any], bool]

_YIELD_EVERY: Final = 16  # events a worker handles back to back before yielding


@final
class _Retry:
    """A failed event waiting for, or ready for, its next attempt."""

    __slots__ = ("attempt", "event", "first_failure")

    def __init__(self, event: Event, attempt: int, first_failure: datetime) -> None:
        self.event = event
        self.attempt = attempt
        self.first_failure = first_failure


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
    """

    __slots__ = (
        "_active_keys",
        "_async",
        "_bus",
        "_counters",
        "_item_waiters",
        "_key",
        "_loop",
        "_matcher",
        "_queue",
        "_reserved",
        "_scope",
        "_space_waiters",
        "_wants_ctx",
        "concurrency",
        "dead_letter",
        "event_types",
        "handler",
        "name",
        "ordered_by",
        "queue_size",
        "retry",
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
    ) -> None:
        self._bus = bus
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

    # -- introspection -------------------------------------------------------------

    def metrics(self) -> SubscriptionMetrics:
        """A snapshot of this subscription's counters and gauges."""
        return self._counters.snapshot()

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
        with anyio.CancelScope() as scope:
            self._scope = scope
            async with anyio.create_task_group() as tg:
                for _ in range(self.concurrency):
                    tg.start_soon(self._worker)
                task_status.started()

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
        queue = self._queue
        key_fn = self._key
        active = self._active_keys
        c = self._counters
        bus = self._bus
        name = self.name
        handler = self.handler
        wants_ctx = self._wants_ctx
        fast = self._async and self.timeout is None
        streak = 0
        while True:
            if queue:
                item = queue.popleft()
                streak += 1
                if streak >= _YIELD_EVERY:
                    streak = 0
                    await anyio.lowlevel.checkpoint()
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
                            await handler(item, Context(bus, name, item, 1, None))
                        else:
                            await handler(item)
                    except BaseException as exc:
                        retry = await self._on_failure(item, exc, 1, None, start)
                        if (
                            retry is not None
                        ):  # pragma: no cover - only ordered retries run in place
                            await self._deliver(retry)
                        continue
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
                await self._attempt(event, attempt)
            except BaseException as exc:
                retry = await self._on_failure(event, exc, attempt, first_failure, start)
                if retry is None:
                    return
                attempt, first_failure = retry.attempt, retry.first_failure
                continue
            c.record_duration(perf_counter() - start)
            c.in_flight -= 1
            c.succeeded += 1
            self._bus._settle()
            return

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
        c.record_duration(perf_counter() - start)
        c.errors += 1
        if isinstance(exc, HandlerTimeout):
            c.timeouts += 1
        now = bus.clock.wall()
        if first_failure is None:
            first_failure = now
        age = (now - event.time).total_seconds()
        decision = self.retry.next_delay(exc, attempt, age)
        if decision is None or isinstance(decision, GiveUp):
            condition: DeadLetterCondition = (
                decision.condition if decision is not None else "RetriesExhausted"
            )
            if condition == "RetriesExhausted" and isinstance(exc, HandlerTimeout):
                condition = "Timeout"
            await self._give_up(event, exc, attempt, first_failure, condition)
            return None
        c.retries += 1
        c.in_flight -= 1
        c.waiting_retry += 1
        attempt += 1
        due = bus.clock.now() + max(0.0, float(decision))
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
        try:
            await self._bus.clock.sleep_until(due)
        except anyio.get_cancelled_exc_class():
            if self._bus._shutting_down:
                c.waiting_retry -= 1
                c.in_flight += 1
                with anyio.CancelScope(shield=True):
                    await self._give_up(
                        item.event, None, item.attempt - 1, item.first_failure, "Shutdown"
                    )
            raise
        c.waiting_retry -= 1
        c.queued += 1
        self._queue.append(item)
        if self._item_waiters:
            self._wake_worker()

    async def _attempt(self, event: Event, attempt: int) -> Any:
        """Run the handler once; raise :class:`HandlerTimeout` past the deadline."""
        timeout = self.timeout
        if timeout is None:
            if self._async:
                if self._wants_ctx:
                    return await self.handler(
                        event, Context(self._bus, self.name, event, attempt, None)
                    )
                return await self.handler(event)
            return await self._run_sync(event, attempt, None)
        clock = self._bus.clock
        deadline = clock.now() + timeout
        result: Any = None
        with clock.deadline_scope(deadline) as scope:
            if self._async:
                if self._wants_ctx:
                    result = await self.handler(
                        event, Context(self._bus, self.name, event, attempt, deadline)
                    )
                else:
                    result = await self.handler(event)
            else:
                result = await self._run_sync(event, attempt, deadline)
        if scope.cancel_called:
            raise HandlerTimeout(
                f"subscription {self.name!r}: handler did not finish within its timeout of "
                f"{timeout:g}s (attempt {attempt}, event {event.id}); make it faster, raise "
                "timeout=..., or check ctx.remaining_time() in long handlers"
            )
        return result

    async def _run_sync(self, event: Event, attempt: int, deadline: float | None) -> Any:
        call: Callable[[], Any]
        if self._wants_ctx:
            call = functools.partial(
                self.handler, event, Context(self._bus, self.name, event, attempt, deadline)
            )
        else:
            call = functools.partial(self.handler, event)
        # A thread cannot be interrupted: on timeout we stop waiting for it.
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=deadline is not None)

    async def invoke(self, event: Event) -> Any:
        """Run the handler once on *event*, outside the queue (``Bus.invoke``)."""
        c = self._counters
        start = perf_counter()
        try:
            result = await self._attempt(event, 1)
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
        """Send *event* (currently in flight) to the dead letters and settle it."""
        bus = self._bus
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
        await bus._store_dead_letter(self.dead_letter, letter)
        c = self._counters
        c.in_flight -= 1
        c.dead_lettered += 1
        bus._settle()

    async def dead_letter_now(
        self, event: Event, exc: BaseException, condition: DeadLetterCondition
    ) -> None:
        """Accept *event* and dead-letter it at once, without running the handler."""
        c = self._counters
        c.accepted += 1
        c.in_flight += 1
        self._bus._outstanding += 1
        await self._give_up(event, exc, 0, None, condition)

    def abandon_queued(self) -> list[Event]:
        """Remove every queued event (for shutdown); the caller dead-letters them."""
        items = list(self._queue)
        for backlog in self._active_keys.values():
            items.extend(backlog)
            backlog.clear()
        self._queue.clear()
        c = self._counters
        c.queued -= len(items)
        c.in_flight += len(items)
        return [i.event if isinstance(i, _Retry) else i for i in items]


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
