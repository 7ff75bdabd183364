"""Publishing with word back once the event has settled everywhere it went (internal).

The durable sources -- a :class:`~eventbus.Table`'s outbox, an
:class:`~eventbus.ObjectStore`'s journal, a dead-letter redrive -- may
forget a change only once every subscription that accepted its event has
*settled* it: handled it, or dead-lettered it. Accepted is not enough: an
accepted event lives only in memory until then, and a crash would lose it.

:func:`publish_tracked` and :func:`publish_to_tracked` publish like
``bus.publish`` / ``bus.publish_to`` and call ``on_settled()`` (once, on the
event loop, from the subscription's worker) when the last of those
subscriptions settles the event. They use the per-event acknowledgement
hook the subscriptions keep for broker transports, so ordinary publishes
pay nothing. ``on_settled`` must be quick and must not raise.

With a broker transport the event is durable once the broker has stored
it, so ``on_settled`` is called as soon as ``publish`` returns.

``on_settled`` is never called for an event that did not settle: the
publish was cancelled or failed part way, or the bus stopped before the
event was handled (an event left over at shutdown is then neither
dead-lettered nor acknowledged, exactly like an event a broker holds). The
source keeps such a change and publishes it again when it is reopened: at
least once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, final

from ._events import Event

if TYPE_CHECKING:
    from ._bus import Bus, Receipt
    from ._subscription import Subscription

__all__ = ["publish_to_tracked", "publish_tracked"]


@final
class _Countdown:
    """Calls *done* when it has been called *left* times."""

    __slots__ = ("done", "left")

    def __init__(self, left: int, done: Callable[[], None]) -> None:
        self.left = left
        self.done = done

    def __call__(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.done()


def _forget(sub: Subscription, event: Event, ack: Callable[[], None]) -> None:
    """Take back an acknowledgement registered for an event that never reached *sub*."""
    acks = sub._acks
    if acks is None:
        return
    pending = acks.get(event.id)
    if pending is None:
        return
    for index in range(len(pending) - 1, -1, -1):
        if pending[index] is ack:
            del pending[index]
            break
    if not pending:
        del acks[event.id]


async def publish_tracked(bus: Bus, event: Event, on_settled: Callable[[], None]) -> Receipt:
    """``bus.publish(event)``, then ``on_settled()`` once every accepting subscription settled it.

    Raises:
        BusClosed: the bus is not running.
        TypeError: *event* is not an :class:`Event`.
    """
    if bus.transport is not None:
        receipt = await bus.publish(event)
        on_settled()  # stored by the broker, which redelivers until settled
        return receipt
    if not bus.accepting:
        raise bus._closed_error()
    if not isinstance(event, Event):
        raise TypeError(f"publish() takes an Event instance, got {type(event).__name__}")
    from ._bus import Receipt

    subs, names, rejected = bus._route(event)
    total = len(subs) + len(rejected)
    if not total:
        on_settled()
        return Receipt(event.id, names)
    countdown = _Countdown(total, on_settled)
    for sub in subs:
        sub.register_ack(event, countdown)
        if not sub.offer(event):
            try:
                await sub.wait_for_room()
            except BaseException:
                _forget(sub, event, countdown)
                raise
            sub.enqueue(event)
    for sub, exc in rejected:
        sub.register_ack(event, countdown)
        bus._reject(sub, event, exc, "NotRetryable")
    return Receipt(event.id, names)


async def publish_to_tracked(
    bus: Bus, name: str, event: Event, on_settled: Callable[[], None]
) -> Receipt:
    """``bus.publish_to(name, event)``, then ``on_settled()`` once that subscription settled it.

    Raises:
        UnknownSubscription: no subscription has that name.
        BusClosed: the bus is not running or draining.
        TypeError: *event* is not an :class:`Event`.
    """
    sub = bus.subscription(name)
    once = _Countdown(1, on_settled)
    sub.register_ack(event, once)
    try:
        return await bus.publish_to(name, event)
    except BaseException:
        _forget(sub, event, once)
        raise
