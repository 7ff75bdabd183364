"""eventbus.testing.strategies: valid built-in events that survive a Lambda payload round trip."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import Event, LogRecord, ObjectCreated, TableChange, TopicMessage
from eventbus.aws import (
    EventBridgeEvent,
    QueueMessage,
    from_lambda_event,
    to_attribute_value,
    to_lambda_event,
)
from eventbus.sources._object_keys import check_key
from eventbus.testing import strategies

SINGLE_EVENTS = {
    "object_created": strategies.object_created(),
    "object_removed": strategies.object_removed(),
    "table_changes": strategies.table_changes(),
    "topic_messages": strategies.topic_messages(),
    "scheduled_events": strategies.scheduled_events(),
    "queue_messages": strategies.queue_messages(),
    "eventbridge_events": strategies.eventbridge_events(),
}


def round_trip(events: Sequence[Event]) -> list[Event]:
    """Render *events* as a Lambda payload, through JSON text, and read them back."""
    payload = json.loads(json.dumps(to_lambda_event(events)))
    return from_lambda_event(payload)


@pytest.mark.parametrize("name", sorted(SINGLE_EVENTS))
@settings(max_examples=60)
@given(data=st.data())
def test_generated_events_survive_a_payload_round_trip(name: str, data: st.DataObject) -> None:
    """Each event is exactly what from_lambda_event reads from its rendered payload."""
    event = data.draw(SINGLE_EVENTS[name])
    assert round_trip([event]) == [event]


@given(strategies.log_records())
def test_log_batches_survive_a_payload_round_trip(batch: list[LogRecord]) -> None:
    """A batch of log records renders and reads back unchanged, in order."""
    assert round_trip(batch) == batch


@given(strategies.log_records(partitions=3, min_size=2, max_size=20))
def test_log_sequence_numbers_increase_per_partition(batch: list[LogRecord]) -> None:
    """Within a partition, sequence numbers strictly increase; a key keeps its partition."""
    last: dict[int, int] = {}
    partition_of: dict[str, int] = {}
    for record in batch:
        assert 0 <= record.partition < 3
        assert partition_of.setdefault(record.partition_key, record.partition) == record.partition
        assert record.sequence_number > last.get(record.partition, -1)
        last[record.partition] = record.sequence_number
    assert [r.time for r in batch] == sorted(r.time for r in batch)
    assert 2 <= len(batch) <= 20


@settings(max_examples=40)
@given(strategies.table_changes(key_names=("pk", "sk")))
def test_table_images_fit_the_operation(change: TableChange) -> None:
    """INSERT: new image only; REMOVE: old only; MODIFY: both; images hold the keys."""
    assert set(change.keys) == {"pk", "sk"}
    assert (change.new_image is None) == (change.op == "REMOVE")
    assert (change.old_image is None) == (change.op == "INSERT")
    for image in (change.new_image, change.old_image):
        if image is not None:
            assert {k: image[k] for k in change.keys} == dict(change.keys)
            to_attribute_value(dict(image))  # storable in DynamoDB
    assert not change.expired or change.op == "REMOVE"


@pytest.mark.parametrize(
    ("view", "new", "old"),
    [("KEYS_ONLY", False, False), ("NEW_IMAGE", True, False), ("OLD_IMAGE", False, True)],
)
@settings(max_examples=30)
@given(data=st.data())
def test_table_views_trim_images(view: str, new: bool, old: bool, data: st.DataObject) -> None:
    """A stream view leaves out the images it does not carry."""
    change = data.draw(strategies.table_changes(view=view, op="MODIFY"))
    assert (change.new_image is not None, change.old_image is not None) == (new, old)
    assert round_trip([change]) == [change]


SNS_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


@given(strategies.topic_messages())
def test_topic_attributes_are_sns_valid(message: TopicMessage) -> None:
    """Attribute names follow SNS's rules; there are at most 10; messages are not empty."""
    assert len(message.attributes) <= 10
    assert message.message
    for name, value in message.attributes.items():
        assert SNS_NAME.fullmatch(name)
        assert len(name) <= 256
        assert not name.lower().startswith(("aws.", "amazon."))
        if isinstance(value, str | bytes):
            assert value
        if isinstance(value, int | float):
            assert -(10**9) <= value <= 10**9
    if message.subject is not None:
        assert message.subject.isascii()
        assert len(message.subject) <= 100


@given(strategies.object_created())
def test_object_keys_and_buckets_are_valid(event: ObjectCreated) -> None:
    """Keys pass the object store's rules; bucket names S3's."""
    assert check_key(event.key) == event.key
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", event.bucket)
    assert re.fullmatch(r"[0-9a-f]{32}", event.etag)


@given(strategies.s3_keys())
def test_s3_keys_are_valid(key: str) -> None:
    """s3_keys() gives keys valid for S3 and ObjectStore."""
    assert check_key(key) == key


@given(strategies.object_created(bucket="photos", key=st.just("a.jpg"), size=3))
def test_fields_can_be_fixed(event: ObjectCreated) -> None:
    """Keyword arguments fix a field to a value or a strategy."""
    assert (event.bucket, event.key, event.size) == ("photos", "a.jpg", 3)


@settings(max_examples=40)
@given(strategies.lambda_payloads(strategies.queue_messages(), max_size=5))
def test_lambda_payloads_batch_records(payload: dict[str, Any]) -> None:
    """lambda_payloads batches single events into one payload of 1 to max_size records."""
    events = from_lambda_event(payload)
    assert 1 <= len(events) <= 5
    assert all(isinstance(e, QueueMessage) for e in events)


@settings(max_examples=40)
@given(strategies.lambda_payloads(strategies.eventbridge_events()))
def test_lambda_payloads_send_eventbridge_events_alone(payload: dict[str, Any]) -> None:
    """EventBridge events go one per payload, as Lambda delivers them."""
    assert "Records" not in payload
    [event] = from_lambda_event(payload)
    assert isinstance(event, EventBridgeEvent)


@given(strategies.lambda_payloads(strategies.log_records()))
def test_lambda_payloads_take_batches(payload: dict[str, Any]) -> None:
    """A strategy of lists (log_records) gives one payload per list."""
    assert all(isinstance(e, LogRecord) for e in from_lambda_event(payload))


def test_bad_arguments_are_refused() -> None:
    """Out-of-range options fail when the strategy is made."""
    with pytest.raises(ValueError, match="view"):
        strategies.table_changes(view="ALL")
    with pytest.raises(ValueError, match="key_names"):
        strategies.table_changes(key_names=())
    with pytest.raises(ValueError, match="partitions"):
        strategies.log_records(partitions=0)
    with pytest.raises(ValueError, match="min_size"):
        strategies.log_records(min_size=3, max_size=2)
    with pytest.raises(ValueError, match="min_size"):
        strategies.lambda_payloads(strategies.object_created(), min_size=0)


def test_importing_the_testing_kit_does_not_import_hypothesis() -> None:
    """hypothesis is needed only by eventbus.testing.strategies."""
    code = "import sys, eventbus.testing; print('hypothesis' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
