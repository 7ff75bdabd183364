"""eventbus.aws.LambdaHandler and LambdaContext: existing Lambda functions on the bus."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import anyio
import attrs
import pytest

from eventbus import (
    Batching,
    BatchItemFailure,
    BatchResult,
    Bus,
    Event,
    LogRecord,
    NoRetry,
    ObjectCreated,
    ScheduledEvent,
    TableChange,
)
from eventbus.aws import LambdaContext, LambdaHandler, QueueMessage
from eventbus.testing import (
    FakeClock,
    capture,
    expect_dead_letters,
    make_log_record,
    make_object_created,
    make_scheduled_event,
    make_table_change,
)


@attrs.frozen
class Thumbnail(Event):
    key: str


def queue_message(body: str, message_id: str) -> QueueMessage:
    """An SQS message with a fixed id."""
    return QueueMessage("jobs", body, id=message_id)


class Calls:
    """A Lambda function that records each (payload, context) it is called with."""

    def __init__(self, result: Any = None) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.contexts: list[LambdaContext] = []
        self.threads: list[int] = []
        self.result = result

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> Any:
        self.payloads.append(event)
        self.contexts.append(context)
        self.threads.append(threading.get_ident())
        return self.result(event) if callable(self.result) else self.result


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A classic S3-triggered Lambda function."""
    record = event["Records"][0]
    return {"key": record["s3"]["object"]["key"], "function": context.function_name}


# -- single events ---------------------------------------------------------------------


async def test_the_function_gets_the_aws_payload_and_a_context(bus: Bus) -> None:
    """An ObjectCreated reaches the function as an S3 notification, with a Lambda context."""
    calls = Calls()
    bus.subscribe(ObjectCreated, LambdaHandler(calls, function_name="thumbnails"))
    await bus.publish(make_object_created("photos/beach day.jpg", b"jpeg", bucket="media"))
    await bus.drain()
    [payload] = calls.payloads
    [record] = payload["Records"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == "media"
    assert record["s3"]["object"]["key"] == "photos/beach+day.jpg"
    assert record["s3"]["object"]["size"] == 4
    [context] = calls.contexts
    assert context.function_name == "thumbnails"
    assert context.function_version == "$LATEST"
    assert context.invoked_function_arn == (
        "arn:aws:lambda:us-east-1:123456789012:function:thumbnails"
    )
    assert context.memory_limit_in_mb == "128"
    assert context.log_group_name == "/aws/lambda/thumbnails"
    assert "[$LATEST]" in context.log_stream_name
    assert len(context.aws_request_id) == 36


async def test_the_subscription_is_named_after_the_function(bus: Bus) -> None:
    """bus.subscribe(X, LambdaHandler(fn)) is named after fn, or function_name."""
    first = bus.subscribe(ObjectCreated, LambdaHandler(lambda_handler))
    second = bus.subscribe(ObjectCreated, LambdaHandler(lambda_handler, function_name="resize"))
    assert first.name == "lambda_handler"
    assert second.name == "resize"


async def test_invoke_returns_the_functions_result(bus: Bus) -> None:
    """bus.invoke runs the function once and returns its response."""
    bus.subscribe(ObjectCreated, LambdaHandler(lambda_handler))
    result = await bus.invoke("lambda_handler", make_object_created("a b.txt"))
    assert result == {"key": "a+b.txt", "function": "lambda_handler"}


async def test_sync_functions_run_in_a_worker_thread(bus: Bus) -> None:
    """A plain def function does not run on the event loop's thread."""
    calls = Calls()
    bus.subscribe(ObjectCreated, LambdaHandler(calls, function_name="f"))
    await bus.publish(make_object_created())
    await bus.drain()
    assert calls.threads != [threading.get_ident()]


async def test_async_functions_are_awaited_and_may_publish(bus: Bus) -> None:
    """An async function runs on the loop; its context carries the eventbus Context."""

    async def handler(event: dict[str, Any], context: LambdaContext) -> None:
        assert context.eventbus_context is not None
        key = event["Records"][0]["s3"]["object"]["key"]
        await context.eventbus_context.publish(Thumbnail(key))

    thumbnails = capture(bus, Thumbnail)
    bus.subscribe(ObjectCreated, LambdaHandler(handler))
    await bus.publish(make_object_created("cat.jpg"))
    await bus.drain()
    assert [t.key for t in thumbnails] == ["cat.jpg"]


async def test_remaining_time_follows_the_subscription_timeout(fake_clock: FakeClock) -> None:
    """get_remaining_time_in_millis counts down from the shorter of the two timeouts."""
    calls = Calls(lambda event: None)
    async with Bus(clock=fake_clock) as bus:
        bus.subscribe(ObjectCreated, LambdaHandler(calls, function_name="a"), timeout=30)
        bus.subscribe(ObjectCreated, LambdaHandler(calls, function_name="b", timeout=10))
        bus.subscribe(ObjectCreated, LambdaHandler(calls, function_name="c"))
        calls.result = lambda event: calls.contexts[-1].get_remaining_time_in_millis()
        assert await bus.invoke("a", make_object_created()) == 30_000
        assert await bus.invoke("b", make_object_created()) == 10_000
        assert await bus.invoke("c", make_object_created()) == 900_000


async def test_the_functions_own_timeout_is_enforced_on_the_bus_clock(
    bus: Bus, fake_clock: FakeClock
) -> None:
    """LambdaHandler(timeout=...) fails an invocation that runs too long, in virtual time."""

    async def hangs(event: dict[str, Any], context: LambdaContext) -> None:
        await anyio.Event().wait()

    bus.subscribe(ObjectCreated, LambdaHandler(hangs, timeout=5), retry=NoRetry())
    await bus.publish(make_object_created())
    await fake_clock.advance(5)
    await bus.drain()
    [letter] = expect_dead_letters(bus, ObjectCreated, count=1)
    assert letter.error.error_type == "HandlerTimeout"
    assert "Task timed out after 5.00 seconds" in letter.error.error_message


async def test_a_single_event_reported_failed_raises() -> None:
    """A batchItemFailures response naming the one event fails it."""
    handler = LambdaHandler(
        Calls(lambda event: {"batchItemFailures": [{"itemIdentifier": "m-1"}]}),
        function_name="worker",
    )
    with pytest.raises(BatchItemFailure, match="reported event m-1 as failed"):
        await handler(queue_message("x", "m-1"))
    ok = LambdaHandler(Calls({"batchItemFailures": []}), function_name="ok")
    assert await ok(queue_message("x", "m-1")) == {"batchItemFailures": []}


# -- batches -------------------------------------------------------------------------------


async def test_sqs_partial_batch_failure_retries_only_the_failed(fake_clock: FakeClock) -> None:
    """Failed messageIds come back as BatchResult: only those messages are retried."""
    seen: list[list[str]] = []

    # async: FakeClock.advance() lets loop tasks run, but does not wait for threads.
    async def worker(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        records = event["Records"]
        seen.append([r["body"] for r in records])
        failed = [r["messageId"] for r in records if r["body"] == "bad" and len(seen) == 1]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

    async with Bus(clock=fake_clock) as bus:
        bus.subscribe(
            QueueMessage,
            LambdaHandler(worker, function_name="worker"),
            batch=Batching(size=3, window=60),
        )
        for i, body in enumerate(["ok", "bad", "fine"]):
            await bus.publish(queue_message(body, f"m-{i}"))
        await fake_clock.advance(60)
        await bus.drain()
    assert seen == [["ok", "bad", "fine"], ["bad"]]
    metrics = bus.metrics()["worker"]
    assert (metrics.succeeded, metrics.retries, metrics.dead_lettered) == (3, 1, 0)


async def test_kinesis_failures_map_sequence_numbers_to_events() -> None:
    """Kinesis records are identified by their sequenceNumber."""
    records = [make_log_record(f"r{i}", sequence_number=100 + i) for i in range(3)]
    handler = LambdaHandler(
        Calls({"batchItemFailures": [{"itemIdentifier": "101"}]}), function_name="stream"
    )
    result = await handler(records)
    assert result == BatchResult(failed=[records[1].id])
    assert isinstance(records[0], LogRecord)


async def test_dynamodb_failures_map_sequence_numbers_to_events() -> None:
    """DynamoDB Streams records are identified by dynamodb.SequenceNumber."""
    changes = [make_table_change(sequence_number=n) for n in (7, 8)]
    handler = LambdaHandler(
        Calls({"batchItemFailures": [{"itemIdentifier": "8"}, {"itemIdentifier": "7"}]}),
        function_name="ddb",
    )
    result = await handler(changes)
    assert result == BatchResult(failed=[changes[0].id, changes[1].id])
    assert isinstance(changes[0], TableChange)


async def test_an_unknown_item_identifier_fails_the_whole_batch() -> None:
    """As on Lambda, an itemIdentifier not in the batch fails everything."""
    handler = LambdaHandler(
        Calls({"batchItemFailures": [{"itemIdentifier": "nope"}]}), function_name="w"
    )
    with pytest.raises(BatchItemFailure, match=r"batchItemFailures\[0\].*whole batch failed"):
        await handler([queue_message("a", "m-1"), queue_message("b", "m-2")])
    malformed = LambdaHandler(Calls({"batchItemFailures": "m-1"}), function_name="w")
    with pytest.raises(BatchItemFailure, match="not a list"):
        await malformed([queue_message("a", "m-1")])


async def test_batch_responses_without_failures_pass_through() -> None:
    """A response that lists no failures, or is not a batch response, is returned as is."""
    handler = LambdaHandler(Calls({"status": "done"}), function_name="w")
    assert await handler([queue_message("a", "m-1")]) == {"status": "done"}
    calls = Calls({"batchItemFailures": None})
    assert await LambdaHandler(calls, function_name="v")([queue_message("a", "m-1")]) == {
        "batchItemFailures": None
    }
    assert len(calls.payloads[0]["Records"]) == 1


async def test_eventbridge_batches_run_one_event_at_a_time() -> None:
    """EventBridge never batches: the function runs per event; failures are per event."""
    at = datetime(2024, 1, 1, tzinfo=UTC)
    ticks = [make_scheduled_event(at, rule=name) for name in ("a", "b", "c")]

    def handler(event: dict[str, Any], context: LambdaContext) -> str:
        rule: str = event["resources"][0].rsplit("/", 1)[-1]
        if rule == "b":
            raise RuntimeError("b failed")
        return rule

    wrapped = LambdaHandler(handler)
    assert await wrapped(ticks) == BatchResult(failed=[ticks[1].id])
    assert await wrapped([ticks[0], ticks[2]]) == ["a", "c"]
    with pytest.raises(RuntimeError, match="b failed"):
        await wrapped([ticks[1]])
    assert isinstance(ticks[0], ScheduledEvent)


# -- construction and the standalone context ------------------------------------------------


def test_lambda_handler_checks_its_function() -> None:
    """A function that does not take (event, context) is refused with advice."""
    with pytest.raises(TypeError, match=r"taking \(event, context\).*subscribe it directly"):
        LambdaHandler(lambda event: None)
    with pytest.raises(TypeError, match="takes a Lambda function"):
        LambdaHandler("handler")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="function_name"):
        LambdaHandler(lambda_handler, function_name="has space")
    with pytest.raises(ValueError, match="timeout"):
        LambdaHandler(lambda_handler, timeout=0)
    with pytest.raises(ValueError, match="memory_limit_in_mb"):
        LambdaHandler(lambda_handler, memory_limit_in_mb=0)
    assert "lambda_handler" in repr(LambdaHandler(lambda_handler))


def test_standalone_context_for_unit_tests(capsys: pytest.CaptureFixture[str]) -> None:
    """LambdaContext(...) can be passed to a function directly."""
    context = LambdaContext("thumbnails", timeout=3, memory_limit_in_mb=512)
    assert lambda_handler({"Records": [{"s3": {"object": {"key": "k"}}}]}, context) == {
        "key": "k",
        "function": "thumbnails",
    }
    assert 0 < context.get_remaining_time_in_millis() <= 3000
    assert context.memory_limit_in_mb == "512"
    assert context.identity is None
    assert context.client_context is None
    assert context.eventbus_context is None
    assert LambdaContext(remaining_time=lambda: -1.0).get_remaining_time_in_millis() == 0
    context.log("hello\n")
    assert capsys.readouterr().out == "hello\n"
    assert "thumbnails" in repr(context)
