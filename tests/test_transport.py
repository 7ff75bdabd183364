"""The bus over a broker transport, against an in-memory fake broker (a test double).

``FakeBroker`` and ``FakeTransport`` below exist only for these tests: they
model what the bus relies on in NATS JetStream and Redis Streams -- streams
shared by several transports ("processes"), consumer groups that start at
new messages, acknowledgements, and redelivery of a stopped consumer's
unacknowledged messages after a delay -- without a server, so the bus-level
behaviour is tested on every run. They are not a transport for programs.
"""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import attrs
import pytest

from eventbus import (
    Bus,
    BusFull,
    Event,
    Transport,
    to_cloudevent,
)
from eventbus._transport import Ack, Deliver
from eventbus.bridges._common import decode_message
from eventbus.testing import (
    TRANSPORT_CASES,
    TransportFactory,
    TransportFeatures,
    Wire,
    check_transport,
)

ALL_FEATURES = (
    TransportFeatures.REDELIVERY | TransportFeatures.DEDUPLICATION | TransportFeatures.ORDERED
)


@attrs.frozen
class OrderPlaced(Event, type_name="tests.transport.OrderPlaced"):
    order_id: str
    total: int = 0


@attrs.frozen
class OrderShipped(Event, type_name="tests.transport.OrderShipped"):
    order_id: str


# -- the test double ----------------------------------------------------------------------


@attrs.define
class _Lease:
    """A message delivered to a consumer and not acknowledged yet."""

    owner: object | None  # the live consumer holding it; None once that consumer stopped
    orphaned_at: float = 0.0


@attrs.define
class _Group:
    next: int  # index of the first message never delivered to the group
    leases: dict[int, _Lease] = attrs.Factory(dict)
    live: int = 0  # consumers running


@attrs.define
class _Stream:
    messages: list[bytes] = attrs.Factory(list)
    ids: set[str] = attrs.Factory(set)
    groups: dict[str, _Group] = attrs.Factory(dict)
    changed: anyio.Event | None = None

    def notify(self) -> None:
        if self.changed is not None:
            self.changed.set()
            self.changed = None


class FakeBroker:
    """In-memory stand-in for a broker (test double): named streams with consumer groups.

    A group starts at the messages sent after it is created; each message
    goes to one consumer of the group; an unacknowledged message of a
    consumer that stopped is delivered again after ``redelivery_delay``.
    A consumer that runs keeps its messages (as heartbeats do on a real
    broker). Sending an event id already stored is ignored (deduplication).
    """

    def __init__(self, *, redelivery_delay: float = 0.05) -> None:
        self.redelivery_delay = redelivery_delay
        self.streams: dict[str, _Stream] = {}

    def stream(self, namespace: str) -> _Stream:
        return self.streams.setdefault(namespace, _Stream())

    def put(self, namespace: str, payload: bytes) -> None:
        stream = self.stream(namespace)
        stream.messages.append(payload)
        stream.notify()


class FakeTransport:
    """A :class:`~eventbus.Transport` over a :class:`FakeBroker` (test double)."""

    def __init__(self, broker: FakeBroker, namespace: str = "default") -> None:
        self.broker = broker
        self.namespace = namespace
        self.started = False
        self.closed = False
        self.ack_on_delivery = False  # break the contract on purpose (suite self-test)
        self.deliver_twice = False  # break the contract on purpose (suite self-test)
        self.warned: set[tuple[str, str]] = set()

    async def start(self) -> None:
        self.started = True

    async def send(self, event: Event) -> None:
        stream = self.broker.stream(self.namespace)
        if event.id in stream.ids:
            return
        stream.ids.add(event.id)
        self.broker.put(self.namespace, json.dumps(to_cloudevent(event)).encode())

    async def consume(
        self,
        group: str,
        deliver: Deliver,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        stream = self.broker.stream(self.namespace)
        state = stream.groups.setdefault(group, _Group(next=len(stream.messages)))
        me = object()
        state.live += 1
        task_status.started()
        try:
            while True:
                index, wait = self._next(stream, state)
                if index is None:
                    changed = stream.changed = stream.changed or anyio.Event()
                    with anyio.move_on_after(wait):
                        await changed.wait()
                    continue
                lease = state.leases[index] = _Lease(owner=me)
                ack = self._ack(stream, state, index, lease)
                event = decode_message(
                    self.warned, group, stream.messages[index], f"fake stream {self.namespace!r}"
                )
                if event is None:  # an event type not registered here: skipped
                    ack()
                    continue
                if self.ack_on_delivery:
                    ack()
                await deliver(event, ack)
                if self.deliver_twice:
                    await deliver(event, lambda: None)
        finally:
            state.live -= 1
            for held in state.leases.values():
                if held.owner is me:
                    held.owner = None
                    held.orphaned_at = anyio.current_time()
            stream.notify()

    def _next(self, stream: _Stream, state: _Group) -> tuple[int | None, float]:
        now = anyio.current_time()
        wait = float("inf")
        for index, lease in sorted(state.leases.items()):
            if lease.owner is None:
                due = lease.orphaned_at + self.broker.redelivery_delay
                if due <= now:
                    return index, 0.0
                wait = min(wait, due - now)
        if state.next < len(stream.messages):
            state.next += 1
            return state.next - 1, 0.0
        return None, wait

    @staticmethod
    def _ack(stream: _Stream, state: _Group, index: int, lease: _Lease) -> Ack:
        def ack() -> None:
            if state.leases.get(index) is lease:
                del state.leases[index]
                stream.notify()

        return ack

    async def pending(self, group: str) -> int:
        stream = self.broker.stream(self.namespace)
        state = stream.groups.get(group)
        if state is None:
            return 0
        return len(stream.messages) - state.next + len(state.leases)

    async def aclose(self) -> None:
        self.closed = True

    def live_consumers(self, group: str) -> int:
        state = self.broker.stream(self.namespace).groups.get(group)
        return 0 if state is None else state.live


def fake_factory(broker: FakeBroker) -> TransportFactory:
    @asynccontextmanager
    async def make(namespace: str) -> AsyncIterator[Transport]:
        yield FakeTransport(broker, namespace)

    return make


def fake_wire(broker: FakeBroker) -> Wire:
    async def put(namespace: str, payload: bytes) -> None:
        broker.put(namespace, payload)

    async def read(namespace: str) -> Sequence[bytes]:
        return list(broker.stream(namespace).messages)

    return Wire(put=put, read=read)


@pytest.fixture
def broker() -> FakeBroker:
    """A fresh fake broker."""
    return FakeBroker()


# -- the conformance suite against the fake --------------------------------------------------


def test_fake_transport_is_a_transport(broker: FakeBroker) -> None:
    """The test double implements the Transport protocol."""
    assert isinstance(FakeTransport(broker), Transport)


@pytest.mark.parametrize(
    "case", [c for c in TRANSPORT_CASES if c != "ordered_across_processes"]
)  # the fake has no consume_ordered: per-key order holds within one process only
async def test_conformance_suite_on_the_fake(broker: FakeBroker, case: str) -> None:
    """Each conformance case passes on the fake broker."""
    report = await check_transport(
        fake_factory(broker), ALL_FEATURES, wire=fake_wire(broker), cases=[case], case_timeout=10
    )
    assert report.passed == (case,)
    assert report.skipped == ()


async def test_check_transport_reports_what_it_skipped(broker: FakeBroker) -> None:
    """Cases needing a missing feature or a Wire are skipped and reported, with the reason."""
    report = await check_transport(
        fake_factory(broker),
        cases=["publish_handled_once", "redelivery_after_crash", "cloudevents_on_the_wire"],
    )
    assert report.passed == ("publish_handled_once",)
    assert report.skipped == (
        ("redelivery_after_crash", "needs TransportFeatures.REDELIVERY"),
        ("cloudevents_on_the_wire", "needs wire=Wire(put, read)"),
    )


async def test_check_transport_rejects_unknown_case_names(broker: FakeBroker) -> None:
    """A misspelt case name is an error naming it, not a silent no-op."""
    with pytest.raises(ValueError, match="no case named 'publish_once'"):
        await check_transport(fake_factory(broker), cases=["publish_once"])


async def test_check_transport_catches_early_acknowledgement(broker: FakeBroker) -> None:
    """A transport that acks on delivery (before the event settles) fails ack_after_settle."""

    @asynccontextmanager
    async def make(namespace: str) -> AsyncIterator[Transport]:
        transport = FakeTransport(broker, namespace)
        transport.ack_on_delivery = True
        yield transport

    with pytest.raises(AssertionError, match=r"'ack_after_settle'.*must not be acknowledged"):
        await check_transport(make, cases=["ack_after_settle"])


async def test_check_transport_catches_duplicate_delivery(broker: FakeBroker) -> None:
    """A transport that delivers each event twice fails publish_handled_once."""

    @asynccontextmanager
    async def make(namespace: str) -> AsyncIterator[Transport]:
        transport = FakeTransport(broker, namespace)
        transport.deliver_twice = True
        yield transport

    with pytest.raises(AssertionError, match=r"'publish_handled_once'.*handled more than once"):
        await check_transport(make, cases=["publish_handled_once"])


async def test_check_transport_catches_a_factory_that_is_no_transport() -> None:
    """A factory yielding something that is not a Transport fails with a clear message."""

    @asynccontextmanager
    async def make(namespace: str) -> AsyncIterator[Transport]:
        yield object()  # type: ignore[misc]

    with pytest.raises(AssertionError, match=r"does not implement eventbus\.Transport"):
        await check_transport(make, cases=["publish_handled_once"])


async def test_check_transport_fails_a_case_that_hangs(broker: FakeBroker) -> None:
    """A case that never finishes fails after case_timeout, naming the case."""

    class Silent(FakeTransport):
        async def consume(
            self,
            group: str,
            deliver: Deliver,
            *,
            task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
        ) -> None:
            self.broker.stream(self.namespace).groups.setdefault(group, _Group(next=0))
            task_status.started()
            await anyio.sleep_forever()

    @asynccontextmanager
    async def make(namespace: str) -> AsyncIterator[Transport]:
        yield Silent(broker, namespace)

    with pytest.raises(AssertionError, match="'drain_waits_for_broker': did not finish within"):
        await check_transport(make, cases=["drain_waits_for_broker"], case_timeout=0.3)


# -- bus-level behaviour over a broker transport -------------------------------------------------


async def test_bus_starts_and_closes_its_transport(broker: FakeBroker) -> None:
    """The bus starts the transport on entry and closes it on exit."""
    transport = FakeTransport(broker)
    async with Bus(transport=transport):
        assert transport.started
        assert not transport.closed
    assert transport.closed


async def test_receipt_names_the_matching_subscriptions(broker: FakeBroker) -> None:
    """A broker publish's receipt names this bus's subscriptions that match the event."""
    async with Bus(transport=FakeTransport(broker)) as bus:

        async def handle(event: Event) -> None:
            pass

        bus.subscribe(OrderPlaced, handle, name="all-orders")
        bus.subscribe(
            OrderPlaced, handle, name="big-orders", where={"total": [{"numeric": [">", 100]}]}
        )
        bus.subscribe(OrderShipped, handle, name="shipping")
        small = OrderPlaced("o-1", total=5)
        big = OrderPlaced("o-2", total=500)
        assert await bus.publish(small) == (small.id, ("all-orders",))
        assert await bus.publish(big) == (big.id, ("all-orders", "big-orders"))


async def test_publish_nowait_is_refused_with_a_broker(broker: FakeBroker) -> None:
    """publish_nowait cannot wait for the broker: BusFull says to await publish instead."""
    async with Bus(transport=FakeTransport(broker)) as bus:
        with pytest.raises(BusFull, match=r"publish_nowait\(\) cannot wait for the broker"):
            bus.publish_nowait(OrderPlaced("o-1"))
        assert broker.stream("default").messages == []


async def test_drain_waits_for_events_still_on_the_broker(broker: FakeBroker) -> None:
    """drain() returns only after events another process stored have been handled here."""
    other = FakeTransport(broker)  # another process's transport on the same stream
    handled: list[str] = []

    async def handle(event: OrderPlaced) -> None:
        handled.append(event.order_id)

    bus = Bus(transport=FakeTransport(broker))
    bus.subscribe(OrderPlaced, handle, name="orders")  # the group exists once the bus runs
    async with bus:
        for i in range(3):
            await other.send(OrderPlaced(f"o-{i}"))
        await bus.drain()
        assert sorted(handled) == ["o-0", "o-1", "o-2"]


async def test_unsubscribe_stops_the_consumer(broker: FakeBroker) -> None:
    """unsubscribe cancels the subscription's broker consumer; its group keeps later events."""
    transport = FakeTransport(broker)

    async def handle(event: Event) -> None:
        pass

    bus = Bus(transport=transport)
    bus.subscribe(OrderPlaced, handle, name="orders")
    async with bus:
        assert transport.live_consumers("orders") == 1
        await bus.unsubscribe("orders")
        assert transport.live_consumers("orders") == 0  # stopped before unsubscribe returned
        receipt = await bus.publish(OrderPlaced("o-1"))
        assert receipt.subscriptions == ()
        assert await transport.pending("orders") == 1  # kept for the group's other processes


async def test_unsubscribe_right_after_subscribe_stops_the_consumer(broker: FakeBroker) -> None:
    """A subscription removed while its consumer is still starting leaves no consumer behind."""
    transport = FakeTransport(broker)
    ran: list[str] = []

    async def handle(event: OrderPlaced) -> None:
        ran.append(event.order_id)

    async with Bus(transport=transport) as bus:
        bus.subscribe(OrderPlaced, handle, name="orders")  # registers in the background
        await bus.unsubscribe("orders")
        assert transport.live_consumers("orders") == 0
        await bus.publish(OrderPlaced("o-1"))
        await FakeTransport(broker).send(OrderPlaced("o-2"))  # another process publishes
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        assert ran == []
        assert await transport.pending("orders") == 2  # kept for the group's other processes


async def test_events_held_at_a_crash_stay_pending_on_the_broker(broker: FakeBroker) -> None:
    """A bus leaving with an error dead-letters nothing the broker holds: it stays pending for redelivery."""
    transport = FakeTransport(broker)
    started = anyio.Event()
    bus = Bus(transport=transport)

    async def stuck(event: OrderPlaced) -> None:
        started.set()
        await anyio.sleep_forever()

    bus.subscribe(OrderPlaced, stuck, name="orders")

    async def crash() -> None:
        async with bus:
            for i in range(3):
                await bus.publish(OrderPlaced(f"o-{i}"))
            await started.wait()
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        await crash()
    assert list(bus.dead_letters) == []
    assert await transport.pending("orders") == 3


async def test_unknown_event_types_are_skipped_and_logged(
    broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A message of a type this process does not define is acked and skipped, not fatal."""
    document = dict(to_cloudevent(OrderPlaced("o-1")), type="tests.transport.NeverDefined")
    handled: list[str] = []

    async def handle(event: OrderPlaced) -> None:
        handled.append(event.order_id)

    bus = Bus(transport=FakeTransport(broker))
    bus.subscribe(OrderPlaced, handle, name="orders")
    async with bus:
        with caplog.at_level(logging.WARNING):
            broker.put("default", json.dumps(document).encode())
            await bus.publish(OrderPlaced("o-2"))
            await bus.drain()
    assert handled == ["o-2"]
    assert "tests.transport.NeverDefined" in caplog.text


# -- the bridges are optional ---------------------------------------------------------------


def test_package_root_imports_no_bridge_or_client() -> None:
    """``import eventbus`` loads neither a bridge nor a broker client."""
    code = (
        "import sys, eventbus, eventbus.testing; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('nats', 'redis') "
        "or m.startswith('eventbus.bridges')); print(loaded)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("bridge", "client", "extra"), [("nats", "nats", "nats"), ("redis", "redis", "redis")]
)
def test_a_missing_client_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, bridge: str, client: str, extra: str
) -> None:
    """Importing a bridge without its client library says which extra to install."""
    for name in [m for m in sys.modules if m == client or m.startswith(f"{client}.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, client, None)
    monkeypatch.delitem(sys.modules, f"eventbus.bridges.{bridge}", raising=False)
    with pytest.raises(ImportError, match=rf"pip install 'eventbus\[{extra}\]'"):
        importlib.import_module(f"eventbus.bridges.{bridge}")
