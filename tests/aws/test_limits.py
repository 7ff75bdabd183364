"""Hostile Lambda payloads fail fast with a named error (issue 15).

from_lambda_event reads untrusted input: whatever it is given, it returns
events or raises SerializationError, never OverflowError, RecursionError,
AttributeError, decimal errors or a bare ValueError, and in bounded time.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventbus import SerializationError
from eventbus.aws import PayloadLimits, from_lambda_event, generate_event, to_lambda_event

from ._payloads import load, sample_paths

_DDB = generate_event("dynamodb", "update")


def _ddb_with(**fields: Any) -> dict[str, Any]:
    payload = copy.deepcopy(_DDB)
    payload["Records"][0]["dynamodb"].update(fields)
    return payload


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def test_creation_time_with_a_huge_exponent_fails_fast() -> None:
    """ApproximateCreationDateTime '1e999990' is refused by the exponent limit."""
    with pytest.raises(SerializationError, match="max_number_exponent"):
        from_lambda_event(_ddb_with(ApproximateCreationDateTime="1e999990"))


def test_creation_time_in_milliseconds() -> None:
    """ApproximateCreationDateTime 1480642020000 reads as milliseconds."""
    (event, *_) = from_lambda_event(_ddb_with(ApproximateCreationDateTime=1480642020000))
    assert event.time == datetime(2016, 12, 2, 1, 27, tzinfo=UTC)


def test_timestamp_past_year_9999_in_utc() -> None:
    """'9999-12-31T23:59:59-01:00' is refused as out of range, not an OverflowError."""
    payload = generate_event("eventbridge", "event")
    payload["time"] = "9999-12-31T23:59:59-01:00"
    with pytest.raises(SerializationError, match="out of range"):
        from_lambda_event(payload)


def test_five_thousand_digit_number_text() -> None:
    """A 5,000-digit number in JSON text is refused, naming max_number_digits."""
    text = '{"detail-type": "x", "source": "s", "detail": {"n": ' + "9" * 5000 + "}}"
    with pytest.raises(SerializationError, match="max_number_digits"):
        from_lambda_event(text)


def test_five_thousand_digit_integer_object() -> None:
    """A 5,000-digit int in a parsed payload is refused, naming max_number_digits."""
    payload = generate_event("eventbridge", "event")
    payload["detail"] = {"n": 10**5000}
    with pytest.raises(SerializationError, match="max_number_digits"):
        from_lambda_event(payload)


def test_five_thousand_digit_dynamodb_number() -> None:
    """A 5,000-digit DynamoDB N value is refused, naming max_number_digits."""
    with pytest.raises(SerializationError, match="max_number_digits"):
        from_lambda_event(_ddb_with(NewImage={"n": {"N": "1" * 5000}}))


def test_five_thousand_digit_sequence_number() -> None:
    """A 5,000-digit sequence number is refused, not a ValueError of int()."""
    with pytest.raises(SerializationError, match="max_number_digits"):
        from_lambda_event(_ddb_with(SequenceNumber="1" * 5000))


def test_five_thousand_deep_text() -> None:
    """JSON text nested 5,000 deep is refused, naming max_depth."""
    text = '{"detail-type": "x", "source": "s", "detail": {"a": ' + "[" * 5000 + "]" * 5000 + "}}"
    with pytest.raises(SerializationError, match="max_depth"):
        from_lambda_event(text)


def test_five_thousand_deep_object() -> None:
    """A parsed payload nested 5,000 deep is refused, naming max_depth."""
    payload = generate_event("eventbridge", "event")
    payload["detail"] = {"a": _nested(5000)}
    with pytest.raises(SerializationError, match="max_depth"):
        from_lambda_event(payload)


def test_nesting_at_the_limit_reads() -> None:
    """Nesting just within max_depth still reads."""
    payload = generate_event("eventbridge", "event")
    payload["detail"] = {"a": _nested(PayloadLimits().max_depth - 3)}
    assert from_lambda_event(payload)


def test_oversized_text_is_refused() -> None:
    """Text past max_payload_bytes is refused before it is parsed."""
    with pytest.raises(SerializationError, match="max_payload_bytes"):
        from_lambda_event(" " * (PayloadLimits().max_payload_bytes + 1))


def test_non_string_keys_are_refused() -> None:
    """An object with a non-string key is not JSON."""
    payload = generate_event("eventbridge", "event")
    payload["detail"] = {1: "x"}
    with pytest.raises(SerializationError, match="not a string"):
        from_lambda_event(payload)


def test_kinesis_placeholder_arn_is_kept() -> None:
    """A placeholder eventSourceARN is accepted and kept; its last part names the stream."""
    payload = generate_event("kinesis", "get-records")
    payload["Records"][0]["eventSourceARN"] = "arn:aws:kinesis:EXAMPLE"
    (event,) = from_lambda_event(payload)
    assert event.source == "arn:aws:kinesis:EXAMPLE"
    assert getattr(event, "log", None) == "EXAMPLE"
    assert to_lambda_event([event])["Records"][0]["eventSourceARN"] == "arn:aws:kinesis:EXAMPLE"
    assert from_lambda_event(to_lambda_event([event])) == [event]


def test_malformed_kinesis_arn_is_refused() -> None:
    """A well-formed ARN of another service is still refused."""
    payload = generate_event("kinesis", "get-records")
    payload["Records"][0]["eventSourceARN"] = "arn:aws:sqs:us-east-1:123456789012:queue"
    with pytest.raises(SerializationError, match="not a Kinesis stream ARN"):
        from_lambda_event(payload)


# -- fuzzing ------------------------------------------------------------------------------

_SAMPLES = [load(path) for path in sample_paths()]
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
_HOSTILE = st.sampled_from(
    [
        None,
        True,
        -1,
        0,
        10**60,
        1e308,
        "",
        "1e999990",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "9" * 200,
        "not base64!",
        "arn:aws:kinesis:EXAMPLE",
        [],
        {},
        [1],
        {"S": None},
        {"N": "1e99999"},
    ]
)


def _only_named_errors(payload: Any) -> None:
    """Read *payload*: SerializationError, or events that render and read back equal."""
    try:
        events = from_lambda_event(payload)
    except SerializationError:
        return
    rendered = to_lambda_event(events)
    assert from_lambda_event(json.loads(json.dumps(rendered))) == events


def _corrupt(payload: Any, rnd: random.Random, value: Any) -> Any:
    """*payload* with one randomly chosen value replaced by *value*."""
    payload = copy.deepcopy(payload)
    slots: list[tuple[Any, Any]] = []
    stack = [payload]
    while stack:
        node = stack.pop()
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for key, child in items:
            slots.append((node, key))
            stack.append(child)
    if not slots:
        return value
    node, key = rnd.choice(slots)
    node[key] = value
    return payload


@settings(deadline=2000, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(_SAMPLES) - 1), st.randoms(use_true_random=False), _HOSTILE | _JSON)
def test_corrupted_samples_raise_only_named_errors(
    index: int, rnd: random.Random, value: Any
) -> None:
    """A real sample with one value replaced reads or fails with SerializationError, quickly."""
    _only_named_errors(_corrupt(_SAMPLES[index], rnd, value))


@settings(deadline=2000, max_examples=200)
@given(_JSON)
def test_arbitrary_json_raises_only_named_errors(value: Any) -> None:
    """Arbitrary JSON reads or fails with SerializationError."""
    _only_named_errors(value)


@settings(deadline=2000, max_examples=200)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_arbitrary_text_raises_only_named_errors(text: str | bytes) -> None:
    """Arbitrary text or bytes read or fail with SerializationError."""
    _only_named_errors(text)


@settings(deadline=2000, max_examples=200)
@given(st.integers(0, len(_SAMPLES) - 1), st.randoms(use_true_random=False))
def test_truncated_sample_text_raises_only_named_errors(index: int, rnd: random.Random) -> None:
    """The JSON text of a sample, cut anywhere, fails with SerializationError."""
    text = json.dumps(_SAMPLES[index])
    _only_named_errors(text[: rnd.randrange(len(text))])


def test_float_sequence_number_past_the_digit_limit() -> None:
    """A float sequence number such as 1e308 is refused, not turned into a 309-digit int."""
    with pytest.raises(SerializationError, match="max_number_digits"):
        from_lambda_event(_ddb_with(SequenceNumber=1e308))


_KEYS = st.sampled_from(
    [
        "eventSource",
        "eventName",
        "eventTime",
        "eventSourceARN",
        "s3",
        "dynamodb",
        "Sns",
        "kinesis",
        "body",
        "messageId",
        "attributes",
        "eventID",
    ]
)
_NAMES = st.sampled_from(
    ["aws:s3", "aws:sqs", "aws:sns", "aws:kinesis", "aws:dynamodb", "s3.amazonaws.com", "INSERT"]
)
_ANY = _HOSTILE | _JSON
_SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "Records": st.lists(st.dictionaries(_KEYS, _ANY | _NAMES), max_size=3),
        "detail-type": st.sampled_from(["AWS API Call via CloudTrail", "Scheduled Event"]) | _ANY,
        "source": st.sampled_from(["aws.events", "aws.s3", "aws.scheduler"]) | _ANY,
        "detail": _ANY,
        "time": _HOSTILE,
        "httpMethod": st.just("GET") | _HOSTILE,
        "requestContext": _ANY | st.fixed_dictionaries({"http": _JSON}),
        "version": st.sampled_from(["2.0", "1.0"]) | _HOSTILE,
        "routeKey": _HOSTILE,
        "rawQueryString": st.text(max_size=30) | _HOSTILE,
        "awslogs": _ANY,
        "triggerSource": st.just("PreSignUp_SignUp") | _HOSTILE,
        "userPoolId": _HOSTILE,
        "request": _ANY,
        "eventType": st.just("SyncTrigger") | _HOSTILE,
        "datasetRecords": _ANY,
        "identityPoolId": _HOSTILE,
        "identityId": _HOSTILE,
        "datasetName": _HOSTILE,
        "eventSource": st.just("s3.amazonaws.com") | _HOSTILE,
        "eventName": _HOSTILE,
        "eventTime": _HOSTILE,
        "headers": _ANY,
        "multiValueHeaders": _ANY,
        "body": _HOSTILE,
        "isBase64Encoded": _HOSTILE,
    },
)


@settings(deadline=2000, max_examples=300)
@given(_SHAPED)
def test_payload_shaped_input_raises_only_named_errors(payload: dict[str, Any]) -> None:
    """Payloads with the keys every kind is recognised by, and hostile values, fail by name."""
    _only_named_errors(payload)


@pytest.mark.parametrize(
    ("kind", "edit", "message"),
    [
        ("apigateway aws-proxy", {"httpMethod": ""}, "httpMethod: must not be empty"),
        ("cognito-user-pool pre-signup", {"triggerSource": ""}, "triggerSource: must not be empty"),
    ],
)
def test_empty_required_names_are_refused_on_reading(
    kind: str, edit: dict[str, Any], message: str
) -> None:
    """What cannot be rendered back (an empty method or trigger) is refused when read."""
    payload = {**generate_event(*kind.split()), **edit}
    with pytest.raises(SerializationError, match=message):
        from_lambda_event(payload)


def test_cloudtrail_record_without_region_reads_the_default() -> None:
    """A CloudTrail record without awsRegion reads as the default region, and round-trips."""
    payload = generate_event("cloudtrail", "api-call")
    payload["awsRegion"] = None
    (event,) = from_lambda_event(payload)
    assert getattr(event, "region", None) == "us-east-1"
    assert from_lambda_event(to_lambda_event([event])) == [event]
