"""A :class:`Bus` run on a background event-loop thread, for non-async code."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, final

import anyio.from_thread

from ._bus import Bus, Explanation, Receipt
from ._clock import Clock
from ._deadletter import DeadLetterSink
from ._events import Event
from ._exceptions import BusClosed, EventBusError
from ._metrics import MetricsSnapshot
from ._retry import RetryPolicy
from ._subscription import Handler, Subscription
from ._transport import MemoryTransport, Transport

if TYPE_CHECKING:
    from . import ScheduleInfo

__all__ = ["BlockingBus"]

H = TypeVar("H", bound=Handler)
T = TypeVar("T")

# Hints in the async bus's messages, and how blocking code says the same thing.
_BLOCKING_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"'await bus\.publish\(event\)'"),
        "'bus.publish(event)' (it blocks until there is room)",
    ),
    (re.compile(r"\bawait bus\.(\w+)\("), r"bus.\1("),
    (re.compile(r"'async with Bus\(\) as bus:'"), "'with BlockingBus() as bus:'"),
    (re.compile(r"\(or use BlockingBus from non-async code\)"), "(or call start())"),
    (re.compile(r"\(or BlockingBus\.publish from a thread\)"), ""),
)


def _for_blocking_code(exc: EventBusError) -> None:
    """Rewrite the hints of *exc*'s message (made for async code) for a :class:`BlockingBus` user."""
    if len(exc.args) != 1 or not isinstance(exc.args[0], str):
        return
    message = exc.args[0]
    for pattern, replacement in _BLOCKING_HINTS:
        message = pattern.sub(replacement, message)
    exc.args = (message,)


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
            bus.schedule("rate(1 minute)", name="autosave")
            bus.publish(ButtonPressed("ok"))     # from any thread
            bus.drain()

    Takes every keyword argument of :class:`Bus` (``transport``,
    ``dead_letters``, ``retry``, ``clock``, ``grace_period``, ...) plus
    ``backend`` (``"asyncio"`` or ``"trio"``). Closing (leaving the ``with``
    block, or :meth:`close`) drains gracefully, then stops the thread.

    Errors carry hints written for blocking code (``bus.publish(event)``,
    not ``await bus.publish(event)``).

    Do not call its methods from the bus's own loop thread (inside an
    ``async def`` handler): they would wait for themselves. Use the async
    :attr:`bus` there.

    .. versionchanged:: 0.2
       Schedules (:meth:`schedule`, :meth:`unschedule`, :meth:`schedules`),
       :meth:`call`, and every :class:`Bus` keyword argument.
    """

    __slots__ = ("_bus", "_cm", "_loop_thread", "_portal", "_portal_cm")

    def __init__(
        self,
        *,
        transport: Transport | MemoryTransport | None = None,
        dead_letters: DeadLetterSink | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        grace_period: float | None = None,
        backend: str = "asyncio",
        **bus_options: Any,
    ) -> None:
        """Create the bus; :meth:`start` (or ``with``) starts its thread.

        Args:
            transport, dead_letters, retry, clock, grace_period: as for :class:`Bus`.
            backend: the event loop the thread runs: ``"asyncio"`` or ``"trio"``.
            bus_options: any other keyword argument of :class:`Bus`.

        Raises:
            TypeError, ValueError: an argument :class:`Bus` refuses (its message says which).
        """
        if backend not in ("asyncio", "trio"):
            raise ValueError(
                f"BlockingBus(backend=...) must be 'asyncio' or 'trio', got {backend!r}"
            )
        try:
            self._bus = Bus(
                transport=transport,
                dead_letters=dead_letters,
                retry=retry,
                clock=clock,
                grace_period=grace_period,
                **bus_options,
            )
        except TypeError as exc:
            if "unexpected keyword argument" in str(exc):
                unknown = sorted(set(bus_options))
                raise TypeError(
                    f"BlockingBus() got keyword argument(s) {', '.join(unknown)} that Bus() "
                    f"does not take ({exc}); see help(eventbus.Bus) for its options"
                ) from None
            raise
        self._portal_cm = anyio.from_thread.start_blocking_portal(backend)
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._cm: Any = None
        self._loop_thread: int | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> BlockingBus:
        """Start the loop thread and the bus (``__enter__`` does this).

        Raises:
            RuntimeError: it was already started.
        """
        if self._portal is not None:
            raise RuntimeError("this BlockingBus is already started")
        portal = self._portal_cm.__enter__()
        try:
            self._loop_thread = portal.call(threading.get_ident)
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
        self.__exit__(None, None, None)

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
        self._check_thread("close")
        try:
            self._cm.__exit__(exc_type, exc, tb)
        finally:
            self._portal = None
            self._portal_cm.__exit__(None, None, None)

    # -- properties ------------------------------------------------------------------

    @property
    def bus(self) -> Bus:
        """The underlying async :class:`Bus` (use it from ``async def`` handlers)."""
        return self._bus

    @property
    def running(self) -> bool:
        """Whether the bus is started and not closed."""
        return self._portal is not None and self._bus.running

    @property
    def dead_letters(self) -> DeadLetterSink:
        """The bus-wide dead-letter sink."""
        return self._bus.dead_letters

    @property
    def clock(self) -> Clock:
        """The bus's clock."""
        return self._bus.clock

    @property
    def outstanding(self) -> int:
        """Accepted events not yet handled or dead-lettered, over all subscriptions."""
        return self._bus.outstanding

    # -- plumbing --------------------------------------------------------------------

    def _check_thread(self, method: str) -> None:
        if self._loop_thread is not None and threading.get_ident() == self._loop_thread:
            raise RuntimeError(
                f"BlockingBus.{method}() was called on the bus's own event-loop thread (from an "
                "async handler?), where it would wait for itself; use the async bus there: "
                f"'await blocking_bus.bus.{method}(...)' or 'blocking_bus.bus.{method}(...)'"
            )

    def _call(self, method: str, fn: Callable[..., Any], *args: Any) -> Any:
        portal = self._portal
        if portal is None:
            raise BusClosed(
                f"BlockingBus.{method}(): the bus is not running; use 'with BlockingBus() as "
                "bus:' or call start() first (a closed BlockingBus cannot be restarted)"
            )
        self._check_thread(method)
        try:
            return portal.call(fn, *args)
        except EventBusError as exc:
            _for_blocking_code(exc)
            raise

    def _sync(self, method: str, fn: Callable[[], T]) -> T:
        """Run a synchronous bus method: directly before start, on the loop thread after."""
        if self._portal is None and self._cm is None:
            try:
                return fn()
            except EventBusError as exc:
                _for_blocking_code(exc)
                raise
        result: T = self._call(method, fn)
        return result

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` on the bus's loop thread and return its result.

        The way to drive anything async from plain threads, e.g. virtual
        time: ``bus.call(clock.advance, 60)`` with a
        :class:`~eventbus.testing.FakeClock`.

        Raises:
            BusClosed: the bus is not running.
            RuntimeError: called from the loop thread itself.

        .. versionadded:: 0.2
        """
        result: T = self._call("call", fn, *args)
        return result

    # -- subscriptions ---------------------------------------------------------------

    def subscribe(
        self,
        event_types: type[Event] | tuple[type[Event], ...],
        handler: Handler,
        **options: Any,
    ) -> Subscription:
        """:meth:`Bus.subscribe` (same options), callable from any thread, also before :meth:`start`."""
        return self._sync(
            "subscribe", functools.partial(self._bus.subscribe, event_types, handler, **options)
        )

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
        self._call("unsubscribe", self._bus.unsubscribe, name)

    def subscription(self, name: str) -> Subscription:
        """The subscription called *name* (:meth:`Bus.subscription`)."""
        return self._bus.subscription(name)

    def subscriptions(self) -> tuple[Subscription, ...]:
        """Every subscription, in creation order."""
        return self._bus.subscriptions()

    # -- publishing ------------------------------------------------------------------

    def publish(self, event: Event) -> Receipt:
        """Block until every matching subscription accepted *event* (see :meth:`Bus.publish`)."""
        result: Receipt = self._call("publish", self._bus.publish, event)
        return result

    def publish_nowait(self, event: Event) -> Receipt:
        """:meth:`Bus.publish_nowait`: raise :class:`~eventbus.BusFull` instead of waiting."""
        result: Receipt = self._call("publish_nowait", self._bus.publish_nowait, event)
        return result

    def publish_to(self, name: str, event: Event) -> Receipt:
        """:meth:`Bus.publish_to`: deliver *event* to the subscription *name* only."""
        result: Receipt = self._call("publish_to", self._bus.publish_to, name, event)
        return result

    def explain(self, event: Event) -> dict[str, Explanation]:
        """:meth:`Bus.explain`: whether *event* would reach each subscription, and why not."""
        return self._sync("explain", functools.partial(self._bus.explain, event))

    def invoke(self, name: str, event: Event) -> Any:
        """Run subscription *name*'s handler once and return its result (see :meth:`Bus.invoke`)."""
        return self._call("invoke", self._bus.invoke, name, event)

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
        allow_seconds: bool = False,
    ) -> ScheduleInfo:
        """:meth:`Bus.schedule`: publish an event on a schedule; from any thread, also before :meth:`start`.

        Takes the options of :meth:`Bus.schedule`. Handlers of the scheduled
        events run as for any other event (an ``async def`` on the loop
        thread, a plain ``def`` in a worker thread).

        Returns:
            The schedule's :class:`~eventbus.ScheduleInfo`, with its next fire time.

        Raises:
            ScheduleError: the expression, time zone, name or an option is invalid.
            BusClosed: the bus is closing or closed.

        .. versionadded:: 0.2
        """
        return self._sync(
            "schedule",
            functools.partial(
                self._bus.schedule,
                expression,
                name=name,
                timezone=timezone,
                event=event,
                flexible_window=flexible_window,
                catch_up=catch_up,
                allow_seconds=allow_seconds,
            ),
        )

    def unschedule(self, name: str) -> None:
        """:meth:`Bus.unschedule`: stop and remove the schedule called *name*.

        Raises:
            ScheduleError: there is no such schedule.

        .. versionadded:: 0.2
        """
        self._sync("unschedule", functools.partial(self._bus.unschedule, name))

    def schedules(self) -> list[ScheduleInfo]:
        """Every schedule with its next fire time, in creation order.

        .. versionadded:: 0.2
        """
        return self._sync("schedules", self._bus.schedules)

    # -- completion and introspection ------------------------------------------------

    def drain(self) -> None:
        """Block until every accepted event is handled or dead-lettered."""
        self._call("drain", self._bus.drain)

    def redrive(self, **options: Any) -> int:
        """Deliver the bus's dead letters again (``dead_letters.redrive(bus, **options)``).

        Returns:
            How many letters were redriven.

        .. versionadded:: 0.2
        """
        sink = self._bus.dead_letters
        result: int = self._call("redrive", functools.partial(sink.redrive, self._bus, **options))
        return result

    def metrics(self) -> MetricsSnapshot:
        """A snapshot of every subscription's metrics (taken on the loop thread).

        Keyed by subscription name; a handler works as a key too.
        """
        return self._sync("metrics", self._bus.metrics)

    def __repr__(self) -> str:
        state = "running" if self._portal is not None else "stopped"
        return f"<BlockingBus {state} {self._bus!r}>"
