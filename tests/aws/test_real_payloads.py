"""Real sample payloads of the AWS Lambda runtime libraries, read, rendered and read again.

The payloads are copied, unchanged, from the Go, Java, .NET, Rust and Python
Lambda libraries' test data (and one from the AWS docs), pinned by commit in
each folder's SOURCES.md under tests/data/aws.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from eventbus import LogRecord, TableChange, from_cloudevent, to_cloudevent
from eventbus.aws import (
    ApiCall,
    CloudWatchLogsEvent,
    CognitoSync,
    UserPoolTrigger,
    from_lambda_event,
    to_lambda_event,
)
from eventbus.http import HttpRequest

from ._payloads import DATA, LIBRARIES, load, powertools_model, sample_id, sample_paths, validates

SAMPLES = sample_paths()
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: What a sample's file name says it holds -> the event class it must read into.
_EXPECTED = (
    ("cloudtrail", ApiCall),
    ("apigw", HttpRequest),
    ("alb", HttpRequest),
    ("apigateway", HttpRequest),
    ("http-api", HttpRequest),
    ("proxy-event", HttpRequest),
    ("logs", CloudWatchLogsEvent),
    ("cloudwatchlog", CloudWatchLogsEvent),
    ("userpool", UserPoolTrigger),
    ("cognito_sync", CognitoSync),
    ("cognito-event.json", CognitoSync),
    ("cognito", UserPoolTrigger),
    ("dynamo", TableChange),
    ("kinesis", LogRecord),
)


def _expected(path: Path) -> type:
    name = path.name.lower()
    for needle, cls in _EXPECTED:
        if needle in name:
            return cls
    raise AssertionError(f"no expected event class for {name}")


def test_every_library_has_samples() -> None:
    """Each library folder holds samples and names their source commit."""
    for folder in LIBRARIES:
        path = Path(SAMPLES[0]).parent.parent / folder
        assert list(path.glob("*.json")), folder
        assert "commit" in (path / "SOURCES.md").read_text()


@pytest.mark.parametrize("path", SAMPLES, ids=sample_id)
def test_reads_into_typed_events(path: Path) -> None:
    """The sample reads into events of the class its kind maps to."""
    events = from_lambda_event(load(path))
    assert events
    assert all(isinstance(event, _expected(path)) for event in events)


@pytest.mark.parametrize("path", SAMPLES, ids=sample_id)
def test_round_trips(path: Path) -> None:
    """Rendering the events and reading them back gives equal events."""
    events = from_lambda_event(load(path))
    assert from_lambda_event(to_lambda_event(events)) == events


@pytest.mark.parametrize("path", SAMPLES, ids=sample_id)
def test_reading_is_deterministic(path: Path) -> None:
    """The same payload always reads as equal events (ids and times included)."""
    payload = load(path)
    if _expected(path) in (TableChange, LogRecord):
        pytest.skip("a stream record without a timestamp reads as received now")
    assert from_lambda_event(payload) == from_lambda_event(payload)


@pytest.mark.parametrize("path", SAMPLES, ids=sample_id)
def test_rendering_keeps_powertools_validity(path: Path) -> None:
    """When Powertools' model accepts the sample, it accepts the rendered payload too."""
    payload = load(path)
    events = from_lambda_event(payload)
    model = powertools_model(events[0])
    if model is None or not validates(model, payload):
        pytest.skip("Powertools has no model for this kind, or refuses the sample itself")
    assert validates(model, to_lambda_event(events))


@pytest.mark.parametrize("path", SAMPLES, ids=sample_id)
def test_text_and_object_read_alike(path: Path) -> None:
    """The JSON text of a payload reads as the parsed object does."""
    text = path.read_text(encoding="utf-8-sig")
    from_text = from_lambda_event(text)
    from_object = from_lambda_event(load(path))
    assert [attrs.evolve(event, time=EPOCH) for event in from_text] == [
        attrs.evolve(event, time=EPOCH) for event in from_object
    ]


_OLDER = sorted(DATA.glob("*.json")) + sorted((DATA.parent / "vectors" / "lambda").glob("*.json"))


@pytest.mark.parametrize("path", _OLDER, ids=lambda path: path.name)
def test_earlier_vectors_render_what_powertools_accepts(path: Path) -> None:
    """S3, SNS, SQS, DynamoDB, Kinesis and EventBridge vectors render Powertools-valid payloads."""
    payload = load(path)
    events = from_lambda_event(payload)
    model = powertools_model(events[0])
    if model is None or not validates(model, payload):
        pytest.skip("Powertools has no model for this kind, or refuses the vector itself")
    assert validates(model, to_lambda_event(events))


@pytest.mark.parametrize("path", SAMPLES, ids=sample_id)
def test_events_cross_the_wire(path: Path) -> None:
    """Each event read from a sample survives CloudEvents encoding, as transports carry it."""
    for event in from_lambda_event(load(path)):
        assert from_cloudevent(to_cloudevent(event)) == event
