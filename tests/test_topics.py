"""Topic: messages, typed attributes, filtering, and FIFO order and deduplication."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from eventbus import Bus, BusClosed
from eventbus.sources.topics import Topic, TopicMessage
from eventbus.testing import FakeClock


@contextlib.asynccontextmanager
async def running(clock: FakeClock | None = None) -> AsyncIterator[tuple[Bus, list[TopicMessage]]]:
    """A running bus, and every topic message it delivers, in order."""
    messages: list[TopicMessage] = []

    async def record(event: TopicMessage) -> None:
        messages.append(event)

    async with Bus(clock=clock) as bus:
        bus.subscribe(TopicMessage, record, name="recorder")
        yield bus, messages


def collector(into: list[TopicMessage]) -> Any:
    async def collect(event: TopicMessage) -> None:
        into.append(event)

    return collect


async def test_publish_emits_a_topic_message_with_every_field(fake_clock: FakeClock) -> None:
    """publish() puts a TopicMessage on the bus: body, attributes, subject, source, time."""
    async with running(fake_clock) as (bus, seen):
        topic = Topic(bus, "orders")
        sent = await topic.publish(
            "hello", attributes={"kind": "refund", "amount": 12.5, "tags": ["a", "b"]}, subject="Hi"
        )
        await bus.drain()
    assert sent is not None
    assert seen == [sent]
    assert sent.topic == "orders"
    assert sent.message == "hello"
    assert sent.attributes == {"kind": "refund", "amount": 12.5, "tags": ["a", "b"]}
    assert sent.subject == "Hi"
    assert (sent.group_id, sent.dedup_id) == (None, None)
    assert sent.source == "eventbus.topics/orders"
    assert sent.time == fake_clock.wall()


async def test_non_string_messages_are_sent_as_json() -> None:
    """A dict or list body is encoded as JSON text; unencodable values are refused."""
    async with running() as (bus, _):
        topic = Topic(bus, "t")
        sent = await topic.publish({"id": 7, "items": [1, 2]})
        assert sent is not None
        assert json.loads(sent.message) == {"id": 7, "items": [1, 2]}
        with pytest.raises(TypeError, match="JSON-serialisable"):
            await topic.publish({"when": object()})


@pytest.mark.parametrize(
    ("attributes", "error", "match"),
    [
        ({"flag": True}, TypeError, "send booleans as 'true'/'false'"),
        ({"obj": {"a": 1}}, TypeError, "strings, numbers or lists of strings, got dict"),
        ({"mixed": ["a", 1]}, TypeError, "a string array holds only strings"),
        ({"n": float("inf")}, ValueError, "numbers must be finite"),
        ({"bad name": "x"}, ValueError, "attribute name 'bad name'"),
        ({"a..b": "x"}, ValueError, "single '.'"),
        ({"AWS.trace": "x"}, ValueError, "reserved"),
        ({1: "x"}, TypeError, "attribute names must be strings"),
        (["kind"], TypeError, "must be a mapping"),
    ],
)
async def test_bad_attributes_are_refused(
    attributes: Any, error: type[Exception], match: str
) -> None:
    """Attributes are strings, finite numbers or string arrays under valid names."""
    async with running() as (bus, seen):
        topic = Topic(bus, "t")
        with pytest.raises(error, match=match):
            await topic.publish("m", attributes=attributes)
        await bus.drain()
    assert seen == []


async def test_attribute_values_are_normalised() -> None:
    """A tuple of strings becomes a list (a string array)."""
    async with running() as (bus, _):
        sent = await Topic(bus, "t").publish("m", attributes={"tags": ("x", "y")})
    assert sent is not None
    assert sent.attributes == {"tags": ["x", "y"]}


@pytest.mark.parametrize(
    ("subject", "error", "match"),
    [
        ("", ValueError, "1 to 100 characters"),
        ("x" * 101, ValueError, "1 to 100 characters"),
        ("two\nlines", ValueError, "one line"),
        (5, TypeError, "must be a string"),
    ],
)
async def test_bad_subjects_are_refused(subject: Any, error: type[Exception], match: str) -> None:
    """A subject is one line of 1 to 100 characters."""
    async with running() as (bus, _):
        with pytest.raises(error, match=match):
            await Topic(bus, "t").publish("m", subject=subject)


async def test_subscribers_filter_on_attributes_with_predicates() -> None:
    """bus.subscribe(where=predicate) selects messages by their attributes."""
    refunds: list[TopicMessage] = []
    async with running() as (bus, _):
        bus.subscribe(
            TopicMessage,
            collector(refunds),
            name="refunds",
            where=lambda e: e.attributes.get("kind") == "refund",
        )
        topic = Topic(bus, "orders")
        await topic.publish("1", attributes={"kind": "refund"})
        await topic.publish("2", attributes={"kind": "sale"})
        await topic.publish("3")
        await bus.drain()
    assert [m.message for m in refunds] == ["1"]


async def test_topic_subscribe_filters_on_attributes_or_body() -> None:
    """topic.subscribe takes only this topic's messages, filtered on attributes or JSON body."""
    by_attributes: list[TopicMessage] = []
    by_body: list[TopicMessage] = []
    async with running() as (bus, _):
        orders, other = Topic(bus, "orders"), Topic(bus, "other")
        orders.subscribe(
            collector(by_attributes),
            name="attrs",
            filter_policy=lambda attributes: attributes.get("size", 0) > 10,
        )
        orders.subscribe(
            collector(by_body),
            name="body",
            filter_scope="body",
            filter_policy=lambda body: body.get("status") == "paid",
        )
        await orders.publish({"status": "paid"}, attributes={"size": 11})
        await orders.publish({"status": "open"}, attributes={"size": 5})
        await orders.publish("not json", attributes={"size": 50})
        await other.publish({"status": "paid"}, attributes={"size": 99})
        await bus.drain()
    assert [m.message for m in by_attributes] == ['{"status":"paid"}', "not json"]
    assert [m.message for m in by_body] == ['{"status":"paid"}']
    assert {m.topic for m in by_attributes + by_body} == {"orders"}


async def test_topic_subscribe_passes_options_and_an_extra_where() -> None:
    """Options reach bus.subscribe, and where= narrows further."""
    got: list[TopicMessage] = []
    async with running() as (bus, _):
        topic = Topic(bus, "t")
        sub = topic.subscribe(
            collector(got), name="mine", concurrency=2, where=lambda e: e.subject == "keep"
        )
        assert (sub.name, sub.concurrency, sub.ordered_by) == ("mine", 2, None)
        await topic.publish("a", subject="keep")
        await topic.publish("b", subject="drop")
        await bus.drain()
        with pytest.raises(ValueError, match="filter_scope must be"):
            topic.subscribe(collector(got), name="x", filter_scope="headers")
    assert [m.message for m in got] == ["a"]


async def test_patterns_filter_attributes_and_bodies() -> None:
    """EventBridge-style patterns match attributes (numeric, prefix) and JSON bodies."""
    pattern_module = pytest.importorskip("eventbus.patterns")
    big_refunds: list[TopicMessage] = []
    paid: list[TopicMessage] = []
    via_predicate: list[TopicMessage] = []
    async with running() as (bus, _):
        topic = Topic(bus, "orders")
        topic.subscribe(
            collector(big_refunds),
            name="big-refunds",
            filter_policy={"kind": ["refund"], "amount": [{"numeric": [">", 10]}]},
        )
        topic.subscribe(
            collector(paid),
            name="paid",
            filter_scope="body",
            filter_policy={"status": [{"prefix": "pa"}]},
        )
        pattern = pattern_module.Pattern({"attributes": {"tags": ["vip"]}})
        bus.subscribe(TopicMessage, collector(via_predicate), name="vip", where=pattern.matches)
        await topic.publish({"status": "paid"}, attributes={"kind": "refund", "amount": 12})
        await topic.publish({"status": "open"}, attributes={"kind": "refund", "amount": 5})
        await topic.publish({"status": "open"}, attributes={"kind": "sale", "tags": ["new", "vip"]})
        await bus.drain()
    assert [json.loads(m.message)["status"] for m in big_refunds] == ["paid"]
    assert [m.attributes["amount"] for m in paid] == [12]
    assert [m.attributes["kind"] for m in via_predicate] == ["sale"]


async def test_bus_where_patterns_select_on_attributes() -> None:
    """bus.subscribe(where={"attributes": ...}) filters topic messages once patterns are wired in."""
    pytest.importorskip("eventbus.patterns")
    got: list[TopicMessage] = []
    async with running() as (bus, _):
        try:
            bus.subscribe(
                TopicMessage,
                collector(got),
                name="eu",
                where={"attributes": {"region": [{"prefix": "eu-"}]}},
            )
        except TypeError as exc:  # the bus does not compile mapping patterns yet
            pytest.skip(str(exc))
        topic = Topic(bus, "t")
        await topic.publish("a", attributes={"region": "eu-west-1"})
        await topic.publish("b", attributes={"region": "us-east-1"})
        await bus.drain()
    assert [m.message for m in got] == ["a"]


# -- FIFO topics ------------------------------------------------------------------------------


async def test_fifo_topics_need_group_and_dedup_ids() -> None:
    """A FIFO message needs group_id, and dedup_id unless content-based dedup is on."""
    async with running() as (bus, _):
        fifo = Topic(bus, "jobs.fifo", fifo=True)
        with pytest.raises(ValueError, match="needs a group_id"):
            await fifo.publish("m", dedup_id="1")
        with pytest.raises(ValueError, match="content_based_dedup=True"):
            await fifo.publish("m", group_id="g")
        with pytest.raises(ValueError, match="printable ASCII"):
            await fifo.publish("m", group_id="has space", dedup_id="1")
        plain = Topic(bus, "plain")
        with pytest.raises(ValueError, match=r"Topic\(\.\.\., fifo=True\)"):
            await plain.publish("m", group_id="g")
        with pytest.raises(ValueError, match="needs fifo=True"):
            Topic(bus, "x", content_based_dedup=True)


async def test_fifo_drops_duplicates_within_five_minutes(fake_clock: FakeClock) -> None:
    """A dedup_id seen in the last 300 s of the bus clock is dropped; later it is new again."""
    async with running(fake_clock) as (bus, seen):
        fifo = Topic(bus, "jobs.fifo", fifo=True)
        first = await fifo.publish("a", group_id="g", dedup_id="d1")
        await fake_clock.advance(299)
        assert await fifo.publish("a again", group_id="g", dedup_id="d1") is None
        await fake_clock.advance(1)
        again = await fifo.publish("a later", group_id="g", dedup_id="d1")
        await bus.drain()
    assert first is not None
    assert again is not None
    assert (first.group_id, first.dedup_id) == ("g", "d1")
    assert [m.message for m in seen] == ["a", "a later"]


async def test_content_based_dedup_hashes_the_body(fake_clock: FakeClock) -> None:
    """With content_based_dedup the dedup id is the body's SHA-256."""
    async with running(fake_clock) as (bus, seen):
        fifo = Topic(bus, "jobs.fifo", fifo=True, content_based_dedup=True)
        sent = await fifo.publish("same", group_id="g1")
        assert await fifo.publish("same", group_id="g2") is None
        assert await fifo.publish("other", group_id="g1") is not None
        await bus.drain()
    assert sent is not None
    assert sent.dedup_id == hashlib.sha256(b"same").hexdigest()
    assert len(seen) == 2


async def test_fifo_subscribers_keep_order_per_group() -> None:
    """topic.subscribe on a FIFO topic orders by group_id: each group in publish order."""
    handled: list[tuple[str, int]] = []
    first_started = anyio.Event()
    release = anyio.Event()

    async def handler(event: TopicMessage) -> None:
        number = int(event.message)
        if number == 0:
            first_started.set()
            await release.wait()  # group a's first message is slow
        handled.append((event.group_id or "", number))

    async with Bus() as bus:
        fifo = Topic(bus, "jobs.fifo", fifo=True)
        sub = fifo.subscribe(handler, name="workers", concurrency=4)
        assert sub.ordered_by == "group_id"
        for number in range(6):
            group = "a" if number % 2 == 0 else "b"
            await fifo.publish(str(number), group_id=group, dedup_id=str(number))
        await first_started.wait()
        await anyio.wait_all_tasks_blocked()
        assert [n for g, n in handled if g == "b"] == [1, 3, 5]  # b is not held up by a
        release.set()
        await bus.drain()
    assert [n for g, n in handled if g == "a"] == [0, 2, 4]


async def test_publishing_needs_a_running_bus() -> None:
    """Publishing outside the bus's block raises BusClosed."""
    topic = Topic(Bus(), "t")
    with pytest.raises(BusClosed, match="not running"):
        await topic.publish("m")


async def test_constructor_checks_its_arguments() -> None:
    """Bad buses, names and flags fail at construction."""
    with pytest.raises(TypeError, match=r"needs an eventbus\.Bus"):
        Topic("bus", "t")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name is 1 to 255 characters"):
        Topic(Bus(), "no spaces")
    with pytest.raises(TypeError, match="True or False"):
        Topic(Bus(), "t", fifo="yes")  # type: ignore[arg-type]
