"""on_success / on_failure destinations receive InvocationRecords."""

from __future__ import annotations

import attrs
import pytest

from eventbus import Bus, Event, InvocationRecord, NoRetry


@attrs.frozen
class Job(Event):
    n: int


async def test_on_success_receives_a_record_with_the_result() -> None:
    """A successful invocation sends a Success record with the handler's result."""
    records: list[InvocationRecord] = []

    async def sink(record: InvocationRecord) -> None:
        records.append(record)

    async def double(event: Job) -> int:
        return event.n * 2

    async with Bus() as bus:
        bus.subscribe(Job, double, name="double", on_success=sink)
        job = Job(21)
        await bus.publish(job)
    (record,) = records
    assert record.outcome == "Success"
    assert record.result == 42
    assert record.event == job
    assert record.subscription == "double"
    assert record.attempts == 1
    assert record.duration >= 0


async def test_on_failure_receives_the_error_and_condition() -> None:
    """A dead-lettered event sends a Failure record with Lambda's error shape."""
    records: list[InvocationRecord] = []

    def sink(record: InvocationRecord) -> None:  # a plain def destination
        records.append(record)

    async def broken(event: Job) -> None:
        raise KeyError("missing")

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Job, broken, name="broken", on_failure=sink)
        await bus.publish(Job(1))
    (record,) = records
    assert record.outcome == "Failure"
    assert record.condition == "RetriesExhausted"
    assert record.error is not None
    assert record.error.to_dict()["errorType"] == "KeyError"


async def test_another_bus_as_destination_gets_the_record_published() -> None:
    """A Bus destination receives the record as an event it can route."""
    got: list[InvocationRecord] = []

    async def audit(record: InvocationRecord) -> None:
        got.append(record)

    async with Bus() as audit_bus, Bus() as bus:
        audit_bus.subscribe(InvocationRecord, audit, name="audit")

        async def ok(event: Job) -> str:
            return "done"

        bus.subscribe(Job, ok, name="ok", on_success=audit_bus)
        await bus.publish(Job(3))
        await bus.drain()
        await audit_bus.drain()
    assert [r.result for r in got] == ["done"]


async def test_a_failing_destination_does_not_change_the_outcome(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A destination that raises is logged; the event still counts as succeeded."""

    async def bad_sink(record: InvocationRecord) -> None:
        raise RuntimeError("sink down")

    async def ok(event: Job) -> None: ...

    async with Bus() as bus:
        bus.subscribe(Job, ok, name="ok", on_success=bad_sink)
        await bus.publish(Job(1))
    assert bus.metrics()["ok"].succeeded == 1
    assert "failed to receive the Success record" in caplog.text


async def test_invalid_destination_is_refused_at_subscribe_time() -> None:
    """A destination that is neither callable nor publishable fails at subscribe time."""

    async def ok(event: Job) -> None: ...

    async with Bus() as bus:
        with pytest.raises(TypeError, match="on_failure"):
            bus.subscribe(Job, ok, on_failure=42)  # type: ignore[arg-type]


def test_invocation_record_round_trips_through_cloudevents() -> None:
    """InvocationRecord is an Event with a stable type name and survives the codec."""
    from eventbus import from_cloudevent, to_cloudevent

    record = InvocationRecord(Job(5), "s", "Success", result={"k": 1})
    assert InvocationRecord.event_type() == "eventbus.InvocationRecord"
    decoded = from_cloudevent(to_cloudevent(record))
    assert isinstance(decoded, InvocationRecord)
    assert decoded.result == {"k": 1}
    assert decoded.event == record.event  # the nested event keeps its own type


async def test_a_topic_destination_gets_the_record_as_cloudevents_json() -> None:
    """A Topic destination receives the record as a CloudEvents JSON message."""
    import json

    from eventbus import Topic, TopicMessage

    messages: list[TopicMessage] = []

    async def listen(message: TopicMessage) -> None:
        messages.append(message)

    async def ok(event: Job) -> int:
        return event.n

    async with Bus() as bus:
        outcomes = Topic(bus, "outcomes")
        bus.subscribe(TopicMessage, listen, name="listen")
        bus.subscribe(Job, ok, name="ok", on_success=outcomes)
        await bus.publish(Job(9))
    (message,) = messages
    assert message.topic == "outcomes"
    assert message.subject == "ok: Success"
    document = json.loads(message.message)
    assert document["type"] == "eventbus.InvocationRecord"
    assert document["data"]["result"] == 9
