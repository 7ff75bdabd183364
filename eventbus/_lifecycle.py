"""A bus's life: starting, draining, closing, and shutting down with dead letters.

``async with Bus() as bus:`` starts the task group (and the transport, the
schedules and the stream sources); leaving the block stops intake and drains
(within ``grace_period`` when one is set). A block left by an exception, or
a grace period run out, shuts down: everything not yet handled is
dead-lettered with condition ``Shutdown`` and the workers are cancelled.
``drain()`` and the outstanding-event count it waits on live here too.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio
import anyio.abc
import anyio.lowlevel

from ._attempts import handling
from ._exceptions import BusClosed

if TYPE_CHECKING:
    from collections import OrderedDict

    from ._clock import Clock
    from ._deadletter import DeadLetterSink, MemoryDeadLetters
    from ._dispatch import Router
    from ._events import Event
    from ._hooks import HookSet
    from ._metering import Metering
    from ._publish_buffer import PublishBuffer
    from ._publishing import Receipt
    from ._retry import DeadLetterCondition, RetryPolicy
    from ._scheduler import Scheduler
    from ._streams import StreamSource
    from ._subscription import Subscription
    from ._transport import Transport

__all__ = ["BusLifecycle"]

logger = logging.getLogger("eventbus")

_BROKER_POLL = 0.01  # seconds between broker checks while draining


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


class BusLifecycle:
    """Starting, draining and closing a :class:`~eventbus.Bus` (a part of it)."""

    __slots__ = (
        "_consumers",
        "_depths",
        "_drain_waiter",
        "_fallback",
        "_grace_period",
        "_hooks",
        "_loop_thread",
        "_max_chain_depth",
        "_metering",
        "_outstanding",
        "_publish_buffer",
        "_registered",
        "_registering",
        "_router",
        "_scheduler",
        "_shutting_down",
        "_sources",
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

    # The state every part of the Bus shares (assigned in Bus.__init__).
    _consumers: dict[str, tuple[anyio.CancelScope, anyio.Event]]
    _depths: OrderedDict[str, int]
    _drain_waiter: anyio.Event | None
    _fallback: MemoryDeadLetters | None
    _grace_period: float | None
    _hooks: HookSet | None  # None when no hook is installed: one falsy check per call site
    _loop_thread: int | None
    _max_chain_depth: int
    _metering: Metering | None
    _outstanding: int
    _publish_buffer: PublishBuffer | None
    _registered: anyio.Event | None
    _registering: int
    _router: Router
    _scheduler: Scheduler
    _shutting_down: bool
    _sources: list[object]  # ObjectStores, Tables, Topics made on this bus (for topology())
    _state: _State
    _stream_sources: list[StreamSource]
    _subs: dict[str, Subscription]
    _tg: anyio.abc.TaskGroup | None
    _token: anyio.lowlevel.EventLoopToken | None
    clock: Clock
    dead_letters: DeadLetterSink
    retry: RetryPolicy
    transport: Transport | None

    if TYPE_CHECKING:
        # Defined by the other parts of the Bus.
        def subscription(self, name: str) -> Subscription: ...
        async def _send(self, event: Event) -> Receipt: ...
        async def _send_many(self, events: Sequence[Event]) -> list[Receipt] | None: ...
        def _reject(
            self,
            sub: Subscription,
            event: Event,
            exc: BaseException,
            condition: DeadLetterCondition,
        ) -> None: ...
        async def _consume(
            self,
            sub: Subscription,
            *,
            task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
        ) -> None: ...

    async def __aenter__(self) -> Self:
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
        if self._publish_buffer is not None and self.transport is not None:
            tg.start_soon(self._publish_buffer.run, self.transport)
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
        failure: BaseException | None = None  # raised while draining (e.g. cancelled)
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
        except BaseException as error:  # the task group must still be exited, below
            failure = error
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
            if self._publish_buffer is not None and len(self._publish_buffer):
                lost = self._publish_buffer.abandon()
                logger.error(
                    "bus closing: %d published event(s) waited in the publish buffer and never "
                    "reached the broker; they are lost (their publishers got a Receipt with "
                    "buffered=True): %s",
                    len(lost),
                    ", ".join(event.id for event in lost[:20])
                    + (", ..." if len(lost) > 20 else ""),
                )
            if self.transport is not None:
                with anyio.CancelScope(shield=True):
                    await self.transport.aclose()
        if failure is not None:
            raise failure
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
            if self._publish_buffer is not None and len(self._publish_buffer):
                await self._publish_buffer.wait_empty()  # not on the broker yet
                continue
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

    @property
    def outstanding(self) -> int:
        """Accepted events not yet handled or dead-lettered, over all subscriptions."""
        return self._outstanding

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._tg is None:  # pragma: no cover - guarded by the state checks
            raise self._closed_error()
        self._tg.start_soon(fn, *args)
