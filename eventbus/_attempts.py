"""One delivery attempt, and what follows it: success, retry, or dead letter.

An attempt runs the handler once (in a worker thread for a plain ``def``),
under the subscription's timeout, with a :class:`~eventbus.Context` when the
handler takes one. A failure asks the :class:`~eventbus.RetryPolicy`: retry
after a delay (the event waits in ``waiting_retry``), or give up and send a
:class:`~eventbus.DeadLetter` to the sink and the ``on_failure`` destination.
Cancellation is never retried: at shutdown it dead-letters with condition
``Shutdown``.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from datetime import datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, final

import anyio
import anyio.to_thread

from ._clock import RealClock
from ._context import Context
from ._deadletter import DeadLetter, ErrorInfo
from ._destinations import InvocationRecord, deliver_record
from ._events import Event, _new_id
from ._exceptions import HandlerTimeout
from ._hooks import Delivery, log_extra, outcome_of
from ._retry import DeadLetterCondition, GiveUp

if TYPE_CHECKING:
    from ._batching import Batching
    from ._bus import Bus
    from ._deadletter import DeadLetterSink
    from ._flow import Gate
    from ._hooks import HookSet
    from ._metrics import Counters
    from ._retry import RetryPolicy
    from ._stateful import StateRunner

__all__ = ["Handler", "KeyFunction", "Matcher", "SubscriptionAttempts", "handling"]

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


class SubscriptionAttempts:
    """Attempts, retries and dead letters of a :class:`~eventbus.Subscription` (a part of it)."""

    __slots__ = ()

    if TYPE_CHECKING:
        # The state every part of a Subscription shares; the Subscription class
        # holds the slots.
        _acks: dict[str, list[Callable[[], None]]] | None
        _active_keys: dict[Hashable, deque[Event | _Retry]]
        _async: bool
        _bus: Bus
        _counters: Counters
        _gate: Gate | None
        _idle: anyio.Event | None
        _item_waiters: deque[Any]
        _key: KeyFunction | None
        _queue: deque[Event | _Retry]
        _space_waiters: OrderedDict[Any, None]
        _state: StateRunner | None
        _wants_ctx: bool
        batch: Batching | None
        dead_letter: DeadLetterSink
        handler: Handler
        memory_mb: int
        name: str
        on_failure: object
        on_success: object
        retry: RetryPolicy
        timeout: float | None

        # Defined by the other parts of the Subscription.
        def _settled(self, event: Event | None = None) -> None: ...
        def _wake_worker(self) -> None: ...
        def _wake_publisher(self) -> None: ...
        def _take(self) -> None: ...
        async def _next_item(self) -> Event | _Retry: ...
        async def _admitted(self, gate: Gate) -> bool: ...
        async def _retry_in_place(
            self, event: Event, attempt: int, first_failure: datetime, due: float
        ) -> _Retry: ...

    async def _attempt(
        self, event: Event, attempt: int, payload: Any = None, invocation_id: str | None = None
    ) -> Any:
        """Run the handler once on *event* (or on *payload*, a batch, when given).

        Raises :class:`HandlerTimeout` past the deadline.
        """
        hooks = self._bus._hooks
        if hooks is not None and invocation_id is None:
            return await self._observed_attempt(hooks, event, attempt, payload)
        arg: Any = event if payload is None else payload
        if handling.get() is not self._bus:  # a stream consumer's task, or invoke()
            handling.set(self._bus)
        timeout = self.timeout
        if timeout is None:
            if self._async:
                if self._wants_ctx:
                    return await self.handler(
                        arg, Context(self._bus, self.name, event, attempt, None, invocation_id)
                    )
                return await self.handler(arg)
            return await self._run_sync(arg, event, attempt, None, invocation_id)
        clock = self._bus.clock
        deadline = clock.now() + timeout
        result: Any = None
        with clock.deadline_scope(deadline) as scope:
            if self._async:
                if self._wants_ctx:
                    result = await self.handler(
                        arg,
                        Context(self._bus, self.name, event, attempt, deadline, invocation_id),
                    )
                else:
                    result = await self.handler(arg)
            else:
                result = await self._run_sync(arg, event, attempt, deadline, invocation_id)
        if scope.cancel_called:
            raise HandlerTimeout(
                f"subscription {self.name!r}: handler did not finish within its timeout of "
                f"{timeout:g}s (attempt {attempt}, event {event.id}); make it faster, raise "
                "timeout=..., or check ctx.remaining_time() in long handlers"
            )
        return result

    async def _observed_attempt(
        self, hooks: HookSet, event: Event, attempt: int, payload: Any
    ) -> Any:
        """:meth:`_attempt` between the hooks' ``on_delivery_start`` and ``on_delivery_end``."""
        delivery = Delivery(
            self.name,
            event,
            attempt,
            _new_id(),
            self.memory_mb,
            1 if payload is None else len(payload),
        )
        clock = self._bus.clock
        # The real clock's differences are perf_counter's, which is cheaper to read.
        now = perf_counter if type(clock) is RealClock else clock.now
        tokens = hooks.start(delivery)
        start = now()
        error: BaseException | None = None
        try:
            return await self._attempt(event, attempt, payload, delivery.invocation_id)
        except BaseException as exc:
            error = exc
            raise
        finally:
            outcome = outcome_of(error, anyio.get_cancelled_exc_class())
            hooks.end(delivery, tokens, outcome, now() - start, error)

    async def _run_sync(
        self,
        arg: Any,
        event: Event,
        attempt: int,
        deadline: float | None,
        invocation_id: str | None = None,
    ) -> Any:
        call: Callable[[], Any]
        if self._wants_ctx:
            call = functools.partial(
                self.handler,
                arg,
                Context(self._bus, self.name, event, attempt, deadline, invocation_id),
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
                if self._state is None:
                    result = await self._attempt(event, attempt)
                else:  # a stateful subscription: the attempt runs in a state transaction
                    run = functools.partial(self._attempt, event, attempt)
                    result = await self._state.attempt(run, event)
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
        if bus._hooks is not None:
            bus._hooks.retry(self.name, event, attempt, decision)
        if self._key is None:
            bus._spawn(self._retry_later, _Retry(event, attempt, first_failure), due)
            return None
        # Ordered: hold the key (and this worker) so nothing overtakes.
        return await self._retry_in_place(event, attempt, first_failure, due)

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

    async def invoke(self, event: Event) -> Any:
        """Run the handler once on *event*, outside the queue (``Bus.invoke``)."""
        c = self._counters
        start = perf_counter()
        try:
            if self._state is None:
                result = await self._attempt(event, 1, [event] if self.batch is not None else None)
            else:
                result = await self._state.attempt(
                    functools.partial(self._attempt, event, 1), event
                )
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

        At shutdown, an event a broker transport or a durable source (a
        table's outbox, an object store's journal, a redrive) still holds for
        this subscription is not dead-lettered: it is left unsettled, so its
        holder delivers it again (another process of the group, or the next
        run). It stays counted as in flight: it is still pending.
        """
        bus = self._bus
        if condition == "Shutdown" and self._acks is not None and event.id in self._acks:
            del self._acks[event.id]
            logger.warning(
                "subscription %r: event %s left unsettled at shutdown; the broker or "
                "durable source that holds it will deliver it again",
                self.name,
                event.id,
                extra=log_extra(self.name, event, attempts),
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
