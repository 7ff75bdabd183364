"""Publishing: routing an event to the subscriptions it matches, and invoking one.

``publish`` routes through the :class:`~eventbus._dispatch.Router` (a type
index, then the compiled ``where`` patterns) and enqueues on every matching
subscription, waiting for room in FIFO order when a queue is full;
``publish_nowait`` enqueues on all or none. ``Context.publish`` comes in
through ``_publish_followup``, which counts chain depth and cuts loops.
``invoke`` runs one subscription's handler synchronously (Lambda's
``RequestResponse``); ``explain`` says why an event would or would not
reach each subscription.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple, SupportsIndex

import anyio
import anyio.from_thread

from ._events import Event
from ._exceptions import BusFull, InvocationError, LoopDetected
from ._lifecycle import BusLifecycle, _State

if TYPE_CHECKING:
    from ._dispatch import _Plan
from ._retry import DeadLetterCondition
from ._subscription import Subscription
from .patterns import Pattern

__all__ = ["BufferedReceipt", "BusPublishing", "Explanation", "Receipt", "not_an_event"]

logger = logging.getLogger("eventbus")

_DEPTH_MEMORY: Final = 65_536  # follow-up events whose chain depth we remember
_RUNNING: Final = _State.RUNNING
# Shared by every routing that no filter raised in: never appended to.
_NONE_REJECTED: Final[list[Any]] = []
_PUBLISH_WINDOW: Final = 256  # publish_many's publishes in flight on a broker at most


class Receipt(NamedTuple):
    """Proof that an event was accepted, returned by :meth:`Bus.publish`.

    Attributes:
        event_id: the event's id.
        subscriptions: names of the subscriptions that accepted it; empty
            when no subscription matched (the event was unrouted).
    """

    event_id: str
    subscriptions: tuple[str, ...]

    @property
    def buffered(self) -> bool:
        """Whether the event waits in the bus's publish buffer instead of being on the broker.

        Always false without ``Bus(publish_buffer=...)``. When true, the
        broker did not have the event when ``publish`` returned: it is held
        in this process's memory and sent once the broker takes events
        again (lost if the process dies first).

        .. versionadded:: 0.2
        """
        return False


class BufferedReceipt(Receipt):
    """A :class:`Receipt` for an event held in the publish buffer (``buffered`` is true)."""

    __slots__ = ()

    @property
    def buffered(self) -> bool:
        return True


# Receipt(...) runs the namedtuple's Python __new__; the hot path builds it directly.
_new_receipt: Final = tuple.__new__
_item: Final[Callable[[tuple[Any, ...], int], Any]] = tuple.__getitem__


class _LazyReceipt(Receipt):
    """The Receipt of the publish fast path: the event's id is read only when asked for.

    An event's id is made when first read (see ``eventbus._events``); most
    receipts are dropped unread, so this one holds the event and reads its id
    on demand. It behaves as ``Receipt(event.id, subscriptions)`` in every
    Python-level use: attributes, indexing, unpacking, equality, hashing,
    repr and pickling (which makes a plain Receipt).
    """

    __slots__ = ()

    @property
    def event_id(self) -> str:
        event_id: str = _item(self, 0).id
        return event_id

    def _plain(self) -> tuple[str, tuple[str, ...]]:
        return (_item(self, 0).id, _item(self, 1))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._plain())

    def __getitem__(self, index: Any) -> Any:
        return self._plain()[index]

    def __contains__(self, value: object) -> bool:
        return value in self._plain()

    def __eq__(self, other: object) -> bool:
        return self._plain() == other

    def __ne__(self, other: object) -> bool:
        return self._plain() != other

    def __lt__(self, other: tuple[Any, ...]) -> bool:
        return self._plain() < other

    def __le__(self, other: tuple[Any, ...]) -> bool:
        return self._plain() <= other

    def __gt__(self, other: tuple[Any, ...]) -> bool:
        return self._plain() > other

    def __ge__(self, other: tuple[Any, ...]) -> bool:
        return self._plain() >= other

    def __hash__(self) -> int:
        return hash(self._plain())

    def __add__(self, other: tuple[Any, ...]) -> tuple[Any, ...]:
        return self._plain() + other

    def __mul__(self, count: SupportsIndex) -> tuple[Any, ...]:
        return self._plain() * count

    __rmul__ = __mul__

    def count(self, value: Any) -> int:
        return self._plain().count(value)

    def index(self, value: Any, *args: Any) -> int:
        return self._plain().index(value, *args)

    def __repr__(self) -> str:
        return repr(Receipt(*self._plain()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Receipt, self._plain())

    def __getnewargs__(self) -> tuple[str, tuple[str, ...]]:
        return self._plain()

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Receipt:  # type: ignore[override]
        return Receipt._make(iterable)

    def _replace(self, **changes: Any) -> Receipt:  # type: ignore[override]
        return Receipt(*self._plain())._replace(**changes)


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


class BusPublishing(BusLifecycle):
    """Publishing, routing and invoking on a :class:`~eventbus.Bus` (a part of it)."""

    __slots__ = ()

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
        # The common case first, straight to the queues with no other call or
        # coroutine: a running bus with no hook and no broker, and an event
        # class already routed, to subscriptions without a where filter.
        if self._state is _RUNNING and self._hooks is None and self.transport is None:
            plan = self._router._plans.get(event.__class__)
            if plan is not None:
                subs: Sequence[Subscription]
                rejected: list[tuple[Subscription, BaseException]] | None
                if plan.filtered:
                    one = plan.one
                    if one is not None:  # one where= pattern: no index, no new list
                        rejected = None
                        if one.matches(event):
                            subs, names = plan.one_subs, plan.one_names
                        else:
                            subs, names = plan.unfiltered, plan.names
                    else:
                        subs, names, rejected = _filter(plan, event)
                else:
                    subs, names, rejected = plan.unfiltered, plan.names, None
                for sub in subs:
                    # Subscription.offer, inlined.
                    c = sub._counters
                    if c.queued + sub._reserved >= sub.queue_size or sub._space_waiters:
                        await sub.wait_for_room()
                        sub.enqueue(event)
                        continue
                    c.accepted += 1
                    c.queued += 1
                    self._outstanding += 1
                    sub._queue.append(event)
                    if sub._item_waiters:
                        sub._wake_worker()
                if rejected:
                    for sub, exc in rejected:
                        self._reject(sub, event, exc, "NotRetryable")
                return _new_receipt(_LazyReceipt, (event, names))
        if not self.accepting:
            raise self._closed_error()
        hooks = self._hooks
        if hooks is not None and isinstance(event, Event):
            event = hooks.publish(event)
        if self.transport is not None:
            return await self._send(event)
        return await self._publish(event)

    async def publish_many(self, events: Iterable[Event]) -> list[Receipt]:
        """Publish several events; return their receipts, in the same order.

        In memory this is ``publish`` for each event in turn. With a broker
        transport, many publishes are in flight at once -- sent in order,
        the receipts returned only once the broker has stored every event
        -- so a batch costs a few round trips rather than one per event. A
        transport that sends batches (:class:`~eventbus.SendsMany`: NATS,
        Redis) gets the events in chunks from this one task; others get up
        to 256 concurrent ``send`` calls.

        Raises:
            BusClosed: the bus is not running.
            TypeError: an item is not an :class:`~eventbus.Event` (checked
                before anything is published).
            TransportError: the broker did not store an event (others of
                the batch may have been stored; publishing the batch again
                is safe with idempotent handlers).

        .. versionadded:: 0.2
        """
        batch = list(events)
        for event in batch:
            if not isinstance(event, Event):
                raise not_an_event(event)
        if not self.accepting:
            raise self._closed_error()
        if self.transport is None or len(batch) < 2:
            return [await self.publish(event) for event in batch]
        if self._hooks is not None:
            batch = [self._hooks.publish(event) for event in batch]
        sent = await self._send_many(batch)  # one task, whole chunks per round trip
        if sent is not None:
            return sent
        receipts: list[Receipt | None] = [None] * len(batch)
        pending = iter(enumerate(batch))
        failure: Exception | None = None

        async def sender() -> None:
            # Each sender takes the next event and starts sending it at once: the sends
            # start in batch order, and up to _PUBLISH_WINDOW are in flight.
            nonlocal failure
            for index, event in pending:
                if failure is not None:
                    return
                try:
                    receipts[index] = await self._send(event)
                except Exception as exc:  # the first failure stops the batch, raised as itself
                    if failure is None:
                        failure = exc
                    tg.cancel_scope.cancel()
                    return

        async with anyio.create_task_group() as tg:
            for _ in range(min(_PUBLISH_WINDOW, len(batch))):
                tg.start_soon(sender)
        if failure is not None:
            raise failure
        return [receipt for receipt in receipts if receipt is not None]

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
            raise not_an_event(event, "publish_nowait")
        if self.transport is not None:
            raise BusFull(
                "publish_nowait() cannot wait for the broker to store the event; "
                "use 'await bus.publish(event)' (or BlockingBus.publish from a thread)"
            )
        if self._hooks is not None:
            event = self._hooks.publish(event)
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

    async def _publish(self, event: Event) -> Receipt:
        if not isinstance(event, Event):
            raise not_an_event(event)
        subs, names, rejected = self._route(event)
        for sub in subs:
            if not sub.offer(event):
                await sub.wait_for_room()
                sub.enqueue(event)
        if rejected:
            for sub, exc in rejected:
                self._reject(sub, event, exc, "NotRetryable")
        return _new_receipt(Receipt, (event.id, names))

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
        return _filter(plan, event)

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
            raise not_an_event(event)
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
        if self._hooks is not None:
            event = self._hooks.publish(event)
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
            raise not_an_event(event, "explain")
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


def _filter(
    plan: _Plan, event: Event
) -> tuple[list[Subscription], tuple[str, ...], list[tuple[Subscription, BaseException]]]:
    """The subscriptions of *plan* that *event* passes, their names, and the filters that raised."""
    index = plan.index
    subs: list[Subscription] = index.match(event) if index is not None else []  # a new list
    if plan.unfiltered:
        subs[:0] = plan.unfiltered
    rejected: list[tuple[Subscription, BaseException]] = _NONE_REJECTED
    for sub in plan.predicates:
        try:
            if sub._matcher(event):  # type: ignore[misc]  # a predicate always has one
                subs.append(sub)
        except Exception as exc:
            if not rejected:
                rejected = []
            rejected.append((sub, exc))
    names = tuple([s.name for s in subs])
    if rejected:
        names += tuple([s.name for s, _ in rejected])
    return subs, names, rejected


def not_an_event(value: object, method: str = "publish") -> TypeError:
    """The error for a non-event given to *method* (``publish``, ``explain``, ...)."""
    if method == "explain":
        return TypeError(
            f"explain() takes the eventbus.Event you would publish, got "
            f"{type(value).__name__}; build the event, e.g. bus.explain(OrderPlaced('o-1')). "
            "To try a pattern on a plain mapping, use eventbus.Pattern(spec).explain(mapping)"
        )
    return TypeError(
        f"{method}() takes an eventbus.Event instance, got {type(value).__name__}; "
        "define '@attrs.frozen class MyEvent(Event): ...', or convert AWS payloads with "
        "eventbus.aws.from_lambda_event()"
    )
