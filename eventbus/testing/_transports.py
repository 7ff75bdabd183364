"""``check_transport``: the conformance suite every :class:`~eventbus.Transport` must pass.

A bridge's tests call it with a factory of fresh transports and the
features the transport has; it runs real :class:`~eventbus.Bus` instances
over them and raises :class:`AssertionError`, naming the case, at the first
broken promise::

    @asynccontextmanager
    async def make(namespace: str) -> AsyncIterator[Transport]:
        yield MyTransport(stream=f"test-{namespace}", redelivery_after=0.5)
        await delete_stream(f"test-{namespace}")

    @pytest.mark.parametrize("case", TRANSPORT_CASES)
    async def test_conformance(case: str) -> None:
        await check_transport(make, TransportFeatures.REDELIVERY, cases=[case])

The factory is called with a *namespace*: transports made with the same
namespace share one stream on the broker (they stand for several processes),
and each case uses namespaces of its own, so cases never see each other's
events. The factory's context manager yields a transport that is not
started (the bus starts and closes it) and may delete the namespace's broker
state when it exits, after every bus using it has closed.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, Final, NoReturn, TypeAlias, final

import anyio
import attrs

from .._bus import Bus
from .._deadletter import UndecodableEvent
from .._events import Event
from .._exceptions import SerializationError
from .._retry import NoRetry
from .._serialization import from_cloudevent, to_cloudevent
from .._transport import Ack, SendsMany, Transport

__all__ = [
    "TRANSPORT_CASES",
    "TransportFactory",
    "TransportFeatures",
    "TransportReport",
    "Wire",
    "check_transport",
]

TransportFactory: TypeAlias = Callable[[str], AbstractAsyncContextManager[Transport]]
"""``factory(namespace)``: an async context manager yielding an unstarted transport.

Transports made with the same namespace share a stream (several processes
on one broker); different namespaces are isolated.
"""


class TransportFeatures(enum.Flag):
    """What a transport promises beyond the contract every transport keeps.

    Cases that need a feature run only when it is given to
    :func:`check_transport`.
    """

    NONE = 0
    REDELIVERY = enum.auto()
    """A message delivered to a consumer that stops without acknowledging it
    is delivered again to another consumer of the group. The factory must
    make the redelivery delay short (``ack_wait``, ``claim_idle``: about a
    second)."""
    DEDUPLICATION = enum.auto()
    """Sending the same event (same id) twice stores it once."""
    ORDERED = enum.auto()
    """One consumer of a group receives events in the order they were sent."""
    ORDERED_ACROSS_PROCESSES = enum.auto()
    """A subscription with ``ordered_by`` keeps each key's events in publish
    order even when several processes share it (the transport has
    ``consume_ordered``: one process of the group consumes at a time).

    .. versionadded:: 0.2"""


@final
@attrs.frozen
class Wire:
    """Raw access to the broker, for the cases about what crosses the wire.

    Attributes:
        put: ``await put(namespace, payload)`` stores raw bytes as a message
            of the namespace's stream, as a producer written in another
            language would.
        read: ``await read(namespace)`` returns the payloads of every
            message stored in the namespace's stream so far, oldest first.
    """

    put: Callable[[str, bytes], Awaitable[None]]
    read: Callable[[str], Awaitable[Sequence[bytes]]]


@final
@attrs.frozen
class TransportReport:
    """What :func:`check_transport` ran.

    Attributes:
        passed: the names of the cases that ran and passed, in order.
        skipped: ``(case, reason)`` for each case not run: a feature the
            transport lacks, or no :class:`Wire` given.
    """

    passed: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


# -- events the cases send --------------------------------------------------------------


@attrs.frozen
class _Ping(Event, type_name="eventbus.testing.conformance.Ping"):
    n: int
    tag: str = ""


@attrs.frozen
class _Pong(Event, type_name="eventbus.testing.conformance.Pong"):
    n: int


@attrs.frozen
class _Payload(Event, type_name="eventbus.testing.conformance.Payload"):
    extra: Any = None


_UNKNOWN_TYPE: Final = "eventbus.testing.conformance.NeverDefined"


def _fail(case: str, message: str) -> NoReturn:
    raise AssertionError(f"check_transport case {case!r}: {message}")


@final
class _Recorder:
    """A handler that records the events it is given."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def ids(self) -> list[str]:
        return [e.id for e in self.events]


@final
class _Run:
    """One case's context: its name, the factory and fresh namespaces."""

    __slots__ = ("_stack", "factory", "name", "wire")

    def __init__(
        self, name: str, factory: TransportFactory, wire: Wire | None, stack: AsyncExitStack
    ) -> None:
        self.name = name
        self.factory = factory
        self.wire = wire
        self._stack = stack

    @staticmethod
    def namespace() -> str:
        return uuid.uuid4().hex[:12]

    async def transport(self, namespace: str) -> Transport:
        """A transport on *namespace*, cleaned up when the case ends."""
        transport = await self._stack.enter_async_context(self.factory(namespace))
        if not isinstance(transport, Transport):
            _fail(
                self.name,
                f"the factory yielded {type(transport).__name__}, which does not implement "
                "eventbus.Transport (start, send, consume, pending, aclose)",
            )
        return transport

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            _fail(self.name, message)

    async def pending(self, transport: Transport, group: str) -> int:
        count = await transport.pending(group)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            _fail(self.name, f"pending({group!r}) must return an int >= 0, got {count!r}")
        return count

    def once_each(self, recorder: _Recorder, events: Sequence[Event], who: str) -> None:
        counts = Counter(recorder.ids())
        missing = [e.id for e in events if counts[e.id] == 0]
        repeated = sorted(i for i, n in counts.items() if n > 1)
        extra = sorted(set(counts) - {e.id for e in events})
        self.check(
            not missing and not repeated and not extra,
            f"{who} should handle each of {len(events)} events once; missing {missing}, "
            f"handled more than once {repeated}, unexpected {extra}",
        )


async def _wait_until(predicate: Callable[[], Awaitable[bool]], interval: float = 0.01) -> None:
    """Poll *predicate* until true (the caller bounds the wait with a deadline)."""
    while not await predicate():  # noqa: ASYNC110 - a broker-side condition has no event to await
        await anyio.sleep(interval)


# -- the cases ---------------------------------------------------------------------------


async def _publish_handled_once(run: _Run) -> None:
    """Each published event is handled once, equal to what was published; then nothing is pending."""
    transport = await run.transport(run.namespace())
    name = "check.handled-once"
    recorder = _Recorder()
    async with Bus(transport=transport) as bus:
        bus.subscribe(_Ping, recorder, name=name)
        events = [_Ping(i, tag=f"t{i}", source="/check", correlation_id=f"c{i}") for i in range(5)]
        for event in events:
            receipt = await bus.publish(event)
            run.check(
                receipt == (event.id, (name,)),
                f"publish should return Receipt({event.id!r}, ({name!r},)), got {receipt!r}",
            )
        await bus.drain()
        run.once_each(recorder, events, "the subscription")
        by_id = {e.id: e for e in recorder.events}
        for event in events:
            run.check(
                by_id[event.id] == event,
                f"event {event.id} came back as {by_id[event.id]!r}, not {event!r}",
            )
        left = await run.pending(transport, name)
        run.check(left == 0, f"after drain(), pending({name!r}) should be 0, got {left}")


async def _publish_many_stores_every_event(run: _Run) -> None:
    """``publish_many`` returns receipts in order once every event is stored; each is handled once.

    On a transport that sends batches (``SendsMany``), a batch holding an
    event that cannot be encoded is refused whole: nothing is stored.
    """
    transport = await run.transport(run.namespace())
    pings, pongs = "check.many-pings", "check.many-pongs"
    ping_recorder, pong_recorder = _Recorder(), _Recorder()
    async with Bus(transport=transport) as bus:
        bus.subscribe(_Ping, ping_recorder, name=pings)
        bus.subscribe(_Pong, pong_recorder, name=pongs)
        # More than one chunk of a batch where the transport sends batches; within an MQTT
        # broker's per-client queue (Mosquitto keeps 1000 by default) elsewhere.
        count = 1100 if isinstance(transport, SendsMany) else 300
        events: list[Event] = [_Ping(i, tag=f"t{i}") if i % 3 else _Pong(i) for i in range(count)]
        receipts = await bus.publish_many(events)
        run.check(
            [r.event_id for r in receipts] == [e.id for e in events],
            "publish_many should return one receipt per event, in the order given",
        )
        wrong = [
            (e.id, r.subscriptions)
            for e, r in zip(events, receipts, strict=False)
            if r.subscriptions != ((pings,) if isinstance(e, _Ping) else (pongs,))
        ]
        run.check(not wrong, f"receipts name the wrong subscriptions: {wrong[:3]}")
        await bus.drain()
        run.once_each(ping_recorder, [e for e in events if isinstance(e, _Ping)], pings)
        run.once_each(pong_recorder, [e for e in events if isinstance(e, _Pong)], pongs)
        if isinstance(transport, SendsMany):
            before = len(ping_recorder.events)
            bad = [_Ping(1), _Payload(extra=object()), _Ping(2)]
            try:
                await bus.publish_many(bad)
            except SerializationError:
                pass
            else:
                run.check(False, "publish_many with an unencodable event should raise")
            await bus.drain()
            run.check(
                len(ping_recorder.events) == before,
                "a batch refused for an unencodable event should store nothing; "
                f"{len(ping_recorder.events) - before} of its events were handled",
            )
        for name in (pings, pongs):
            left = await run.pending(transport, name)
            run.check(left == 0, f"after drain(), pending({name!r}) should be 0, got {left}")


async def _every_subscription_sees_every_event(run: _Run) -> None:
    """Two subscriptions (two groups) each see every event; a third, for another type, none."""
    transport = await run.transport(run.namespace())
    first, second, other = _Recorder(), _Recorder(), _Recorder()
    async with Bus(transport=transport) as bus:
        bus.subscribe(_Ping, first, name="check.first")
        bus.subscribe(_Ping, second, name="check second/with:odd*chars>")
        bus.subscribe(_Pong, other, name="check.pongs")
        events = [_Ping(i) for i in range(6)]
        for event in events:
            receipt = await bus.publish(event)
            run.check(
                set(receipt.subscriptions) == {"check.first", "check second/with:odd*chars>"},
                f"the receipt should name both Ping subscriptions, got {receipt.subscriptions}",
            )
        await bus.drain()
    run.once_each(first, events, "the first subscription")
    run.once_each(second, events, "the second subscription")
    run.check(not other.events, f"a Pong subscription handled Pings: {other.events}")


async def _filtered_events_acknowledged(run: _Run) -> None:
    """Events a subscription does not take (other type, ``where`` mismatch) are acked, not handled."""
    transport = await run.transport(run.namespace())
    pongs, ones = _Recorder(), _Recorder()
    async with Bus(transport=transport) as bus:
        bus.subscribe(_Pong, pongs, name="check.pongs-only")
        bus.subscribe(_Ping, ones, name="check.where", where={"n": [1]})
        events = [_Ping(i) for i in range(3)]
        receipts = [await bus.publish(event) for event in events]
        run.check(
            [r.subscriptions for r in receipts] == [(), ("check.where",), ()],
            f"receipts should name only the matching subscription, got {receipts}",
        )
        await bus.drain()
        run.check(not pongs.events, f"a Pong subscription handled Pings: {pongs.events}")
        run.once_each(ones, events[1:2], "the where={'n': [1]} subscription")
        for group in ("check.pongs-only", "check.where"):
            left = await run.pending(transport, group)
            run.check(left == 0, f"skipped events must be acknowledged; {group!r} has {left}")


async def _shared_group_splits_work(run: _Run) -> None:
    """Two processes with the same subscription name share it: each event is handled once in all."""
    namespace = run.namespace()
    one, two = await run.transport(namespace), await run.transport(namespace)
    first, second = _Recorder(), _Recorder()
    name = "check.shared"
    async with Bus(transport=one) as bus_one, Bus(transport=two) as bus_two:
        bus_one.subscribe(_Ping, first, name=name)
        bus_two.subscribe(_Ping, second, name=name)
        events = [_Ping(i) for i in range(20)]
        for i, event in enumerate(events):
            await (bus_one if i % 2 else bus_two).publish(event)
        await bus_one.drain()
        await bus_two.drain()
    both = _Recorder()
    both.events = first.events + second.events
    run.once_each(both, events, "the two processes together")


async def _ack_after_settle(run: _Run) -> None:
    """An event stays unacknowledged on the broker while its handler runs, and is acked after."""
    transport = await run.transport(run.namespace())
    name = "check.ack-after-settle"
    started, release = anyio.Event(), anyio.Event()

    async def slow(event: _Ping) -> None:
        started.set()
        await release.wait()

    async with Bus(transport=transport) as bus:
        bus.subscribe(_Ping, slow, name=name)
        await bus.publish(_Ping(1))
        await started.wait()
        held = await run.pending(transport, name)
        run.check(
            held == 1,
            f"while its handler runs the event must not be acknowledged: pending({name!r}) "
            f"should be 1, got {held}",
        )
        release.set()
        await bus.drain()
        left = await run.pending(transport, name)
        run.check(left == 0, f"a handled event must be acknowledged; pending is {left}")


async def _dead_letter_acknowledged(run: _Run) -> None:
    """A handler that fails with NoRetry dead-letters the event, which is then acknowledged."""
    transport = await run.transport(run.namespace())
    name = "check.dead-letter"
    calls = 0

    async def failing(event: _Ping) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("check_transport: this handler always fails")

    async with Bus(transport=transport) as bus:
        bus.subscribe(_Ping, failing, name=name, retry=NoRetry())
        event = _Ping(7)
        await bus.publish(event)
        await bus.drain()
        letters = list(bus.dead_letters)
        run.check(
            [(letter.event.id, letter.subscription) for letter in letters] == [(event.id, name)],
            f"the event should be dead-lettered once for {name!r}, got {letters}",
        )
        run.check(calls == 1, f"the handler should run once, ran {calls} times")
        left = await run.pending(transport, name)
        run.check(left == 0, f"a dead-lettered event must be acknowledged; pending is {left}")


async def _drain_waits_for_broker(run: _Run) -> None:
    """``bus.drain()`` waits for events stored on the broker that no consumer has taken yet."""
    transport = await run.transport(run.namespace())
    recorder = _Recorder()
    name = "check.drain"
    bus = Bus(transport=transport)
    bus.subscribe(_Ping, recorder, name=name)  # its group exists once the bus has started
    async with bus:
        events = [_Ping(i) for i in range(3)]
        for event in events:
            await transport.send(event)  # stored on the broker, behind the bus's back
        await bus.drain()
        run.once_each(recorder, events, "the subscription, by the time drain() returned,")
        unknown = await run.pending(transport, "check.no-such-group")
        run.check(unknown == 0, f"pending() of a group never consumed should be 0, got {unknown}")


async def _subscribe_while_running(run: _Run) -> None:
    """A subscription made on a running bus sees an event published right after it."""
    transport = await run.transport(run.namespace())
    recorder = _Recorder()
    async with Bus(transport=transport) as bus:
        bus.subscribe(_Ping, recorder, name="check.late")
        event = _Ping(1)
        receipt = await bus.publish(event)
        run.check(receipt.subscriptions == ("check.late",), f"got receipt {receipt!r}")
        await bus.drain()
    run.once_each(recorder, [event], "a subscription made while the bus runs")


async def _unsubscribe_stops_consumer(run: _Run) -> None:
    """After ``unsubscribe``, the subscription gets nothing more; the others still do."""
    transport = await run.transport(run.namespace())
    gone, kept = _Recorder(), _Recorder()
    async with Bus(transport=transport) as bus:
        bus.subscribe(_Ping, gone, name="check.gone")
        bus.subscribe(_Ping, kept, name="check.kept")
        before = _Ping(1)
        await bus.publish(before)
        await bus.drain()
        await bus.unsubscribe("check.gone")
        after = _Ping(2)
        receipt = await bus.publish(after)
        run.check(receipt.subscriptions == ("check.kept",), f"got receipt {receipt!r}")
        await bus.drain()
    run.once_each(gone, [before], "the unsubscribed subscription")
    run.once_each(kept, [before, after], "the remaining subscription")


async def _backpressure_small_queue(run: _Run) -> None:
    """A subscription with a queue of one still handles every event once (no loss, no repeats)."""
    transport = await run.transport(run.namespace())
    recorder = _Recorder()

    async def slow(event: _Ping) -> None:
        await anyio.sleep(0.002)
        await recorder(event)

    async with Bus(transport=transport) as bus:
        bus.subscribe(_Ping, slow, name="check.small-queue", queue_size=1, concurrency=1)
        events = [_Ping(i) for i in range(30)]
        for event in events:
            await bus.publish(event)
        await bus.drain()
    run.once_each(recorder, events, "a subscription with queue_size=1")


async def _ordered_across_processes(run: _Run) -> None:
    """Two processes share an ordered_by subscription: each key is handled in order, by one of them."""
    namespace = run.namespace()
    one, two = await run.transport(namespace), await run.transport(namespace)
    first, second = _Recorder(), _Recorder()
    name = "check.ordered-shared"
    async with Bus(transport=one) as bus_one, Bus(transport=two) as bus_two:
        bus_one.subscribe(_Ping, first, name=name, ordered_by="tag", concurrency=4)
        bus_two.subscribe(_Ping, second, name=name, ordered_by="tag", concurrency=4)
        events = [_Ping(i, tag=f"key{i % 4}") for i in range(40)]
        for event in events:
            await bus_one.publish(event)
        await bus_one.drain()
        await bus_two.drain()
    both = _Recorder()
    both.events = first.events + second.events
    run.once_each(both, events, "the two processes together")
    for tag in {e.tag for e in events}:
        by_process = [
            [e.n for e in recorder.events if isinstance(e, _Ping) and e.tag == tag]
            for recorder in (first, second)
        ]
        run.check(
            sorted(by_process, key=len)[0] == [],
            f"the events of key {tag!r} were handled by both processes at once: {by_process}",
        )
        handled = max(by_process, key=len)
        run.check(handled == sorted(handled), f"key {tag!r} was handled out of order: {handled}")


async def _ordered_single_consumer(run: _Run) -> None:
    """One consumer with concurrency 1 handles events in the order they were published."""
    transport = await run.transport(run.namespace())
    recorder = _Recorder()
    async with Bus(transport=transport) as bus:
        bus.subscribe(_Ping, recorder, name="check.ordered", concurrency=1)
        events = [_Ping(i) for i in range(20)]
        for event in events:
            await bus.publish(event)
        await bus.drain()
    seen = [e.n for e in recorder.events if isinstance(e, _Ping)]
    run.check(seen == list(range(20)), f"events arrived in the order {seen}")


async def _deduplicated_by_event_id(run: _Run) -> None:
    """Publishing the same event twice stores it once: it is handled once."""
    transport = await run.transport(run.namespace())
    recorder = _Recorder()
    async with Bus(transport=transport) as bus:
        bus.subscribe(_Ping, recorder, name="check.dedup")
        event = _Ping(1)
        await bus.publish(event)
        await bus.publish(event)
        await bus.drain()
    run.once_each(recorder, [event], "a subscription given the same event twice")


async def _redelivery_after_crash(run: _Run) -> None:
    """A consumer that stops without acking (a crash) has its message delivered to another."""
    namespace = run.namespace()
    crashed, survivor = await run.transport(namespace), await run.transport(namespace)
    group = "check.redelivery"
    event = _Ping(42, tag="redeliver me")
    received = anyio.Event()

    async def never_ack(got: Event, ack: Ack) -> None:
        received.set()

    await crashed.start()
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(crashed.consume, group, never_ack)
            await crashed.send(event)
            await received.wait()
            tg.cancel_scope.cancel()
    finally:
        await crashed.aclose()

    again: list[Event] = []
    redelivered = anyio.Event()

    async def acking(got: Event, ack: Ack) -> None:
        again.append(got)
        ack()
        redelivered.set()

    await survivor.start()
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(survivor.consume, group, acking)
            await redelivered.wait()

            async def acknowledged() -> bool:
                return await run.pending(survivor, group) == 0

            await _wait_until(acknowledged)
            tg.cancel_scope.cancel()
    finally:
        await survivor.aclose()
    run.check(
        again == [event], f"the unacknowledged event should come back once as {event!r}: {again}"
    )


async def _undecodable_messages_skipped(run: _Run) -> None:
    """Messages of unknown types or not CloudEvents are acknowledged and skipped; the rest flows."""
    assert run.wire is not None
    namespace = run.namespace()
    transport = await run.transport(namespace)
    recorder = _Recorder()
    name = "check.poison"
    good = _Ping(3)
    unknown = dict(to_cloudevent(_Ping(1)), type=_UNKNOWN_TYPE)
    bad_data = dict(to_cloudevent(_Ping(2)), data={"n": "not a number"})
    async with Bus(transport=transport) as bus:
        bus.subscribe(_Ping, recorder, name=name)
        await run.wire.put(namespace, json.dumps(unknown).encode())
        await run.wire.put(namespace, b"\x00 this is not JSON")
        await run.wire.put(namespace, json.dumps(bad_data).encode())
        await bus.publish(good)
        await bus.drain()
        run.once_each(recorder, [good], "the subscription, past three undecodable messages,")
        left = await run.pending(transport, name)
        run.check(left == 0, f"undecodable messages must be acknowledged; pending is {left}")


def _poison_messages() -> list[bytes]:
    """Messages whose decoding raises something other than a plain shape error."""
    payload = to_cloudevent(_Payload())
    return [
        # a time that leaves years 1-9999 once converted to UTC (OverflowError)
        json.dumps(dict(to_cloudevent(_Ping(90)), time="0001-01-01T00:00:00+01:00")).encode(),
        # a tag whose value has the wrong shape (AttributeError)
        json.dumps(dict(payload, data={"extra": {"$map": 5}})).encode(),
        # nesting far deeper than any parser should recurse (RecursionError)
        b"[" * 5000 + b"]" * 5000,
        # bytes that are not UTF-8
        b'{"specversion": "1.0", "type": "' + _Ping.event_type().encode() + b'", "id": "\xff\xfe"}',
        # not JSON at all
        b"\x00 this is not JSON",
    ]


async def _poison_messages_dead_lettered(run: _Run) -> None:
    """Each poison message is dead-lettered once with its raw bytes and acked; the bus goes on."""
    assert run.wire is not None
    namespace = run.namespace()
    transport = await run.transport(namespace)
    recorder = _Recorder()
    name = "check.poison-dead-letters"
    poison = _poison_messages()
    before, after, later = _Ping(1), _Ping(2), _Ping(3)
    async with Bus(transport=transport) as bus:
        bus.subscribe((_Ping, _Payload), recorder, name=name)
        await bus.publish(before)
        for message in poison:
            await run.wire.put(namespace, message)
        await bus.publish(after)
        await bus.drain()
        run.once_each(recorder, [before, after], "the subscription, around poison messages,")
        letters = [letter for letter in bus.dead_letters if letter.subscription == name]
        stored = [
            letter.event.document
            for letter in letters
            if isinstance(letter.event, UndecodableEvent) and letter.event.reason
        ]
        run.check(
            len(letters) == len(poison) and len(stored) == len(poison),
            f"each of the {len(poison)} poison messages should be dead-lettered once as an "
            f"UndecodableEvent with a reason; got {len(letters)} letters: "
            f"{[(type(x.event).__name__, x.error.error_message[:60]) for x in letters]}",
        )
        texts = [m.decode() for m in poison if _is_utf8(m)]
        run.check(
            sorted(t for t in stored if t in texts) == sorted(texts),
            "each dead-lettered poison message should keep the message's raw text",
        )
        await bus.publish(later)  # the consumer is still running
        await bus.drain()
        run.once_each(recorder, [before, after, later], "the subscription, after the poison,")
        left = await run.pending(transport, name)
        run.check(left == 0, f"poison messages must be acknowledged; pending is {left}")


def _is_utf8(message: bytes) -> bool:
    try:
        message.decode()
    except UnicodeDecodeError:
        return False
    return True


async def _cloudevents_on_the_wire(run: _Run) -> None:
    """Events are stored as CloudEvents 1.0 JSON (structured mode), decodable by from_cloudevent."""
    assert run.wire is not None
    namespace = run.namespace()
    transport = await run.transport(namespace)
    event = _Ping(5, tag="wire", source="/check/wire")
    async with Bus(transport=transport) as bus:
        await bus.publish(event)
    payloads = await run.wire.read(namespace)
    documents = []
    for payload in payloads:
        try:
            documents.append(json.loads(payload))
        except ValueError:
            _fail(run.name, f"a stored message is not JSON: {bytes(payload)[:80]!r}")
    mine = [d for d in documents if isinstance(d, dict) and d.get("id") == event.id]
    run.check(len(mine) == 1, f"expected one stored message with id {event.id}, got {documents}")
    document = mine[0]
    run.check(document.get("specversion") == "1.0", f"specversion: {document!r}")
    run.check(document.get("type") == _Ping.event_type(), f"type: {document!r}")
    run.check(document.get("source") == "/check/wire", f"source: {document!r}")
    run.check(document.get("data") == {"n": 5, "tag": "wire"}, f"data: {document!r}")
    run.check(from_cloudevent(document) == event, f"does not decode back to {event!r}")


_Case: TypeAlias = Callable[[_Run], Awaitable[None]]

_CASES: Final[dict[str, tuple[_Case, TransportFeatures, bool]]] = {
    # name: (case, features it needs, needs a Wire)
    "publish_handled_once": (_publish_handled_once, TransportFeatures.NONE, False),
    "publish_many_stores_every_event": (
        _publish_many_stores_every_event,
        TransportFeatures.NONE,
        False,
    ),
    "every_subscription_sees_every_event": (
        _every_subscription_sees_every_event,
        TransportFeatures.NONE,
        False,
    ),
    "filtered_events_acknowledged": (_filtered_events_acknowledged, TransportFeatures.NONE, False),
    "shared_group_splits_work": (_shared_group_splits_work, TransportFeatures.NONE, False),
    "ack_after_settle": (_ack_after_settle, TransportFeatures.NONE, False),
    "dead_letter_acknowledged": (_dead_letter_acknowledged, TransportFeatures.NONE, False),
    "drain_waits_for_broker": (_drain_waits_for_broker, TransportFeatures.NONE, False),
    "subscribe_while_running": (_subscribe_while_running, TransportFeatures.NONE, False),
    "unsubscribe_stops_consumer": (_unsubscribe_stops_consumer, TransportFeatures.NONE, False),
    "backpressure_small_queue": (_backpressure_small_queue, TransportFeatures.NONE, False),
    "ordered_single_consumer": (_ordered_single_consumer, TransportFeatures.ORDERED, False),
    "ordered_across_processes": (
        _ordered_across_processes,
        TransportFeatures.ORDERED_ACROSS_PROCESSES,
        False,
    ),
    "deduplicated_by_event_id": (_deduplicated_by_event_id, TransportFeatures.DEDUPLICATION, False),
    "redelivery_after_crash": (_redelivery_after_crash, TransportFeatures.REDELIVERY, False),
    "undecodable_messages_skipped": (_undecodable_messages_skipped, TransportFeatures.NONE, True),
    "poison_messages_dead_lettered": (
        _poison_messages_dead_lettered,
        TransportFeatures.NONE,
        True,
    ),
    "cloudevents_on_the_wire": (_cloudevents_on_the_wire, TransportFeatures.NONE, True),
}

TRANSPORT_CASES: Final[tuple[str, ...]] = tuple(_CASES)
"""The names of :func:`check_transport`'s cases, in the order it runs them."""


async def check_transport(
    factory: TransportFactory,
    features: TransportFeatures = TransportFeatures.NONE,
    *,
    wire: Wire | None = None,
    cases: Collection[str] | None = None,
    case_timeout: float = 30.0,
) -> TransportReport:
    """Run the transport conformance suite; raise at the first case that fails.

    Every case runs real :class:`~eventbus.Bus` instances (or calls the
    transport directly) on namespaces of its own: publish and handle once,
    every subscription sees every event, two processes share a subscription,
    acknowledgement only after the event settles (handled or
    dead-lettered), ``drain`` waiting for the broker, subscribe and
    unsubscribe on a running bus, a one-slot queue (backpressure), skipped
    events acknowledged; with *features*, order, deduplication and
    redelivery after a crash; with *wire*, the CloudEvents JSON on the wire
    and undecodable messages skipped without blocking the group, and
    poison messages (whose decoding raises anything at all) dead-lettered
    once each with their raw text and acknowledged while the bus goes on.

    Args:
        factory: ``factory(namespace)`` returns an async context manager
            yielding an unstarted transport (see :data:`TransportFactory`).
        features: what the transport promises beyond the basic contract.
        wire: raw access to the broker for the wire-format cases; without
            it they are skipped.
        cases: run only these cases (names from :data:`TRANSPORT_CASES`),
            e.g. one per parametrized test.
        case_timeout: seconds each case may take.

    Returns:
        A :class:`TransportReport` of the cases passed and skipped.

    Raises:
        AssertionError: a case failed; the message names it and what was wrong.
        ValueError: *cases* names a case that does not exist.
    """
    if not isinstance(features, TransportFeatures):
        raise TypeError(
            f"check_transport(features=...) takes TransportFeatures flags, got {features!r}"
        )
    if (
        isinstance(case_timeout, bool)
        or not isinstance(case_timeout, int | float)
        or not case_timeout > 0
    ):
        raise ValueError(
            f"check_transport(case_timeout=...) must be seconds > 0, got {case_timeout!r}"
        )
    selected = TRANSPORT_CASES
    if cases is not None:
        if isinstance(cases, str):
            raise TypeError("check_transport(cases=...) takes a collection of names, not a string")
        unknown = sorted(set(cases) - set(TRANSPORT_CASES))
        if unknown:
            raise ValueError(
                f"check_transport(cases=...): no case named {', '.join(map(repr, unknown))}; "
                f"the cases are {', '.join(TRANSPORT_CASES)}"
            )
        selected = tuple(name for name in TRANSPORT_CASES if name in cases)
    passed: list[str] = []
    skipped: list[tuple[str, str]] = []
    for name in selected:
        case, needs, needs_wire = _CASES[name]
        if needs and needs not in features:
            skipped.append((name, f"needs TransportFeatures.{needs.name}"))
            continue
        if needs_wire and wire is None:
            skipped.append((name, "needs wire=Wire(put, read)"))
            continue
        await _run_case(name, case, factory, wire, float(case_timeout))
        passed.append(name)
    return TransportReport(tuple(passed), tuple(skipped))


async def _run_case(
    name: str, case: _Case, factory: TransportFactory, wire: Wire | None, limit: float
) -> None:
    async with AsyncExitStack() as stack:
        run = _Run(name, factory, wire, stack)
        with anyio.move_on_after(limit) as scope:
            await case(run)
        if scope.cancelled_caught:
            _fail(
                name,
                f"did not finish within {limit:g}s; an event was lost, never acknowledged, "
                "or the broker did not answer",
            )
