"""A :class:`Bus` run on a background event-loop thread, for non-async code."""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, final

import anyio.from_thread

from ._bus import Bus, Explanation, Receipt
from ._clock import Clock
from ._deadletter import DeadLetterSink
from ._events import Event
from ._exceptions import BusClosed
from ._metrics import SubscriptionMetrics
from ._retry import RetryPolicy
from ._subscription import Handler, Subscription

__all__ = ["BlockingBus"]

H = TypeVar("H", bound=Handler)


@final
class BlockingBus:
    """The same :class:`Bus`, run on its own event-loop thread, with blocking methods.

    For GUI callbacks, embedded main loops, scripts and other code that is
    not async. Methods block the *calling* thread until the bus has done the
    work (accepted the event, drained, ...); the event loop itself is never
    blocked by the caller. Handlers may be ``async def`` (they run on the
    bus's loop) or plain ``def`` (they run in worker threads)::

        with BlockingBus() as bus:
            bus.subscribe(ButtonPressed, on_press)
            bus.publish(ButtonPressed("ok"))     # from any thread
            bus.drain()

    Takes the same keyword arguments as :class:`Bus`. Closing (leaving the
    ``with`` block, or :meth:`close`) drains gracefully, then stops the thread.

    Do not call its methods from the bus's own loop thread (inside an async
    handler): they would wait for themselves. Use the async :attr:`bus` there.
    """

    __slots__ = ("_bus", "_cm", "_portal", "_portal_cm")

    def __init__(
        self,
        *,
        dead_letters: DeadLetterSink | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        max_chain_depth: int = 16,
        backend: str = "asyncio",
    ) -> None:
        self._bus = Bus(
            dead_letters=dead_letters, retry=retry, clock=clock, max_chain_depth=max_chain_depth
        )
        self._portal_cm = anyio.from_thread.start_blocking_portal(backend)
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._cm: Any = None

    def start(self) -> BlockingBus:
        """Start the loop thread and the bus (``__enter__`` does this)."""
        if self._portal is not None:
            raise RuntimeError("this BlockingBus is already started")
        portal = self._portal_cm.__enter__()
        try:
            cm = portal.wrap_async_context_manager(self._bus)
            cm.__enter__()
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise
        self._portal = portal
        self._cm = cm
        return self

    def close(self) -> None:
        """Drain, stop the bus and join its thread. Idempotent."""
        if self._portal is None:
            return
        try:
            self._cm.__exit__(None, None, None)
        finally:
            self._portal = None
            self._portal_cm.__exit__(None, None, None)

    def __enter__(self) -> BlockingBus:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._portal is None:
            return
        try:
            self._cm.__exit__(exc_type, exc, tb)
        finally:
            self._portal = None
            self._portal_cm.__exit__(None, None, None)

    @property
    def bus(self) -> Bus:
        """The underlying async :class:`Bus` (use it from async handlers)."""
        return self._bus

    @property
    def dead_letters(self) -> DeadLetterSink:
        """The bus-wide dead-letter sink."""
        return self._bus.dead_letters

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        portal = self._portal
        if portal is None:
            raise BusClosed(
                "the BlockingBus is not running; use 'with BlockingBus() as bus:' or call start()"
            )
        return portal.call(fn, *args)

    def subscribe(
        self,
        event_types: type[Event] | tuple[type[Event], ...],
        handler: Handler,
        **options: Any,
    ) -> Subscription:
        """:meth:`Bus.subscribe` (same options), callable from any thread, also before :meth:`start`."""
        call = functools.partial(self._bus.subscribe, event_types, handler, **options)
        if self._portal is None:
            return call()
        result: Subscription = self._call(call)
        return result

    def on(
        self, event_types: type[Event] | tuple[type[Event], ...], **options: Any
    ) -> Callable[[H], H]:
        """Decorator form of :meth:`subscribe`."""

        def decorate(handler: H) -> H:
            self.subscribe(event_types, handler, **options)
            return handler

        return decorate

    def unsubscribe(self, name: str) -> None:
        """:meth:`Bus.unsubscribe`: block until the subscription finished and is gone."""
        self._call(self._bus.unsubscribe, name)

    def publish(self, event: Event) -> Receipt:
        """Block until every matching subscription accepted *event* (see :meth:`Bus.publish`)."""
        result: Receipt = self._call(self._bus.publish, event)
        return result

    def publish_nowait(self, event: Event) -> Receipt:
        """:meth:`Bus.publish_nowait`: raise :class:`~eventbus.BusFull` instead of waiting."""
        result: Receipt = self._call(self._bus.publish_nowait, event)
        return result

    def explain(self, event: Event) -> dict[str, Explanation]:
        """:meth:`Bus.explain`: whether *event* would reach each subscription, and why not."""
        result: dict[str, Explanation] = self._call(self._bus.explain, event)
        return result

    def invoke(self, name: str, event: Event) -> Any:
        """Run subscription *name*'s handler once and return its result (see :meth:`Bus.invoke`)."""
        return self._call(self._bus.invoke, name, event)

    def drain(self) -> None:
        """Block until every accepted event is handled or dead-lettered."""
        self._call(self._bus.drain)

    def metrics(self) -> dict[str, SubscriptionMetrics]:
        """A snapshot of every subscription's metrics (taken on the loop thread)."""
        result: dict[str, SubscriptionMetrics] = self._call(self._bus.metrics)
        return result

    def __repr__(self) -> str:
        state = "running" if self._portal is not None else "stopped"
        return f"<BlockingBus {state} {self._bus!r}>"
