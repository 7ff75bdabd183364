"""Issue 13 as a new user calls it: every payload kind, the newer pattern operators, strict schedules."""

from __future__ import annotations

import base64
import contextlib
import copy
import gzip
import json
import subprocess
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventbus
from eventbus import (
    EventBusError,
    HttpRequest,
    Pattern,
    PatternError,
    ScheduleError,
    SerializationError,
    parse_schedule,
)
from eventbus.aws import (
    ApiCall,
    CloudWatchLogsEvent,
    CognitoPreSignUp,
    CognitoSync,
    from_lambda_event,
    generate_event,
    to_lambda_event,
)
from eventbus.aws._samples import sample_kinds
from eventbus.testing import same_payload

_DATA = Path(__file__).parent.parent / "data" / "aws"
_PAYLOADS = sorted(
    p for p in _DATA.rglob("*.json") if "alb" not in p.name and "SOURCES" not in p.name
)


def _events_equal(first: list[Any], second: list[Any]) -> bool:
    return len(first) == len(second) and all(
        same_payload(a, b) for a, b in zip(first, second, strict=True)
    )


# -- payload kinds ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", _PAYLOADS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_payload_reads_and_renders_back(path: Path) -> None:
    """Every pinned real payload reads into typed events and renders back to the same events."""
    events = from_lambda_event(json.loads(path.read_text(encoding="utf-8-sig")))
    assert events
    assert all(isinstance(e, eventbus.Event) for e in events)
    assert _events_equal(from_lambda_event(to_lambda_event(events)), events)


@pytest.mark.parametrize("kind", sample_kinds(), ids=lambda k: f"{k.service}-{k.kind}")
def test_every_generated_kind_round_trips(kind: Any) -> None:
    """generate_event covers every kind; each reads and renders back to the same events."""
    payload = generate_event(kind.service, kind.kind)
    events = from_lambda_event(payload)
    assert events
    assert _events_equal(from_lambda_event(to_lambda_event(events)), events)


@pytest.mark.parametrize("kind", ["aws-proxy", "http-api-proxy"])
def test_api_gateway_proxy_is_an_http_request(kind: str) -> None:
    """API Gateway v1 and v2 proxy payloads read into one HttpRequest."""
    (event,) = from_lambda_event(generate_event("apigateway", kind, method="PUT", body="hé"))
    assert isinstance(event, HttpRequest)
    assert event.method == "PUT"
    assert event.body == "hé".encode()
    assert event.request_id


def test_api_gateway_base64_body_and_multi_value_headers() -> None:
    """A base64 body is decoded; multi-value headers and queries are kept, headers case-insensitive."""
    payload = generate_event("apigateway", "aws-proxy")
    payload["body"] = base64.b64encode(b"\x00\xffbinary").decode()
    payload["isBase64Encoded"] = True
    payload["multiValueHeaders"] = {"X-Many": ["a", "b"]}
    payload["headers"] = {"X-Many": "b"}
    payload["multiValueQueryStringParameters"] = {"q": ["1", "2"]}
    payload["queryStringParameters"] = {"q": "2"}
    (event,) = from_lambda_event(payload)
    assert event.body == b"\x00\xffbinary"
    assert event.header("x-many") is not None
    assert list(event.query["q"]) == ["1", "2"]


def test_cloudwatch_logs_gzip_and_zlib() -> None:
    """awslogs.data is read whether gzip- or zlib-compressed."""
    doc = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/x",
        "logStream": "s",
        "subscriptionFilters": ["f"],
        "logEvents": [{"id": "1", "timestamp": 1_700_000_000_000, "message": "héllo"}],
    }
    raw = json.dumps(doc).encode()
    for packed in (gzip.compress(raw), zlib.compress(raw)):
        payload = {"awslogs": {"data": base64.b64encode(packed).decode()}}
        (event,) = from_lambda_event(payload)
        assert isinstance(event, CloudWatchLogsEvent)
        assert event.log_group == "/aws/lambda/x"
        assert len(event.log_events) == 1


def test_cloudwatch_logs_gzip_bomb_is_refused() -> None:
    """A compressed payload that inflates past the limits is a SerializationError, fast."""
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]")
    payload = {"awslogs": {"data": base64.b64encode(bomb).decode()}}
    with pytest.raises(SerializationError):
        from_lambda_event(payload)


def test_cloudtrail_bare_and_inside_eventbridge() -> None:
    """CloudTrail records, bare and via EventBridge, read into ApiCall events."""
    for service, kind in (("cloudtrail", "api-call"), ("eventbridge", "cloudtrail-api-call")):
        (event,) = from_lambda_event(
            generate_event(service, kind, event_source="s3.amazonaws.com", event_name="GetObject")
        )
        assert isinstance(event, ApiCall)
        assert event.event_name == "GetObject"
        assert event.event_source == "s3.amazonaws.com"


def test_cognito_sync_and_user_pool_triggers() -> None:
    """Cognito Sync and User Pool triggers read into typed events."""
    (sync,) = from_lambda_event(generate_event("cognito", "sync-trigger"))
    assert isinstance(sync, CognitoSync)
    (signup,) = from_lambda_event(generate_event("cognito-user-pool", "pre-signup"))
    assert isinstance(signup, CognitoPreSignUp)


def test_dynamodb_creation_time_in_milliseconds() -> None:
    """ApproximateCreationDateTime in milliseconds reads as the right moment."""
    payload = generate_event("dynamodb", "update")
    for record in payload["Records"]:
        record["dynamodb"]["ApproximateCreationDateTime"] = 1480642020000
    events = from_lambda_event(payload)
    assert events
    assert events[0].time == datetime(2016, 12, 2, 1, 27, tzinfo=UTC)


@pytest.mark.parametrize(
    "value", ["1e999990", 1e308, -1, "9999-12-31T23:59:59-01:00", float("nan"), [1], {"a": 1}, True]
)
def test_dynamodb_hostile_creation_time_is_named_and_fast(value: Any) -> None:
    """Hostile ApproximateCreationDateTime values raise SerializationError, in bounded time."""
    payload = generate_event("dynamodb", "update")
    payload["Records"][0]["dynamodb"]["ApproximateCreationDateTime"] = value
    with contextlib.suppress(SerializationError):
        from_lambda_event(payload)


def test_kinesis_placeholder_arn_is_kept() -> None:
    """A Kinesis record with eventSourceARN 'arn:aws:kinesis:EXAMPLE' is accepted and kept."""
    payload = generate_event("kinesis", "get-records")
    payload["Records"][0]["eventSourceARN"] = "arn:aws:kinesis:EXAMPLE"
    events = from_lambda_event(payload)
    assert events
    rendered = to_lambda_event(events)
    assert rendered["Records"][0]["eventSourceARN"] == "arn:aws:kinesis:EXAMPLE"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"Records": "x"},
        {"Records": [None]},
        {"Records": [{"eventSource": "aws:s3"}]},
        {"awslogs": {"data": "not base64!"}},
        {"awslogs": {"data": base64.b64encode(b"not gzip").decode()}},
        {"version": "2.0", "requestContext": 5},
        {"httpMethod": "GET", "headers": [1, 2]},
        {"eventType": "SyncTrigger", "datasetRecords": "x"},
        {"triggerSource": "PreSignUp_SignUp", "request": None},
        {
            "Records": [
                {"eventSource": "aws:dynamodb", "dynamodb": {"NewImage": {"a": {"N": "1e999999"}}}}
            ]
        },
    ],
)
def test_malformed_payloads_are_serialization_errors(payload: Any) -> None:
    """Malformed payloads raise SerializationError naming the problem."""
    with pytest.raises(SerializationError):
        from_lambda_event(payload)


@pytest.mark.parametrize("payload", [None, 5, "text", [1, 2], b"{}"])
def test_non_mapping_payload_is_a_named_error(payload: Any) -> None:
    """A payload that is not a mapping raises SerializationError or TypeError."""
    with pytest.raises((SerializationError, TypeError)):
        from_lambda_event(payload)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=2000)
@given(kind=st.sampled_from(sample_kinds()), path_pick=st.integers(0, 10_000), junk=_json)
def test_mutated_real_payloads_raise_only_named_errors(
    kind: Any, path_pick: int, junk: Any
) -> None:
    """Any value swapped into a generated payload reads or raises SerializationError only."""
    payload = generate_event(kind.service, kind.kind)
    spots: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k in node:
                spots.append((node, k))
                walk(node[k])
        elif isinstance(node, list):
            for i in range(len(node)):
                spots.append((node, i))
                walk(node[i])

    walk(payload)
    container, key = spots[path_pick % len(spots)]
    container[key] = copy.deepcopy(junk)
    try:
        events = from_lambda_event(payload)
    except SerializationError:
        return
    to_lambda_event(events)


def test_generate_event_cli_covers_new_kinds() -> None:
    """python -m eventbus generate-event prints an HTTP API payload that reads back."""
    proc = subprocess.run(
        [sys.executable, "-m", "eventbus", "generate-event", "apigateway", "http-api-proxy"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    (event,) = from_lambda_event(json.loads(proc.stdout))
    assert isinstance(event, HttpRequest)


# -- patterns ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "doc", "expected"),
    [
        ({"a": [{"anything-but": {"prefix": ["init", "test"]}}]}, {"a": "initial"}, False),
        ({"a": [{"anything-but": {"prefix": ["init", "test"]}}]}, {"a": "testing"}, False),
        ({"a": [{"anything-but": {"prefix": ["init", "test"]}}]}, {"a": "prod"}, True),
        ({"a": [{"anything-but": {"suffix": [".png", ".jpg"]}}]}, {"a": "x.png"}, False),
        ({"a": [{"anything-but": {"suffix": [".png", ".jpg"]}}]}, {"a": "x.gif"}, True),
        ({"a": [{"anything-but": {"wildcard": "*/lib/*"}}]}, {"a": "/usr/lib/x"}, False),
        ({"a": [{"anything-but": {"wildcard": "*/lib/*"}}]}, {"a": "/usr/bin/x"}, True),
        ({"a": [{"anything-but": {"wildcard": ["*.txt", "*.md"]}}]}, {"a": "r.md"}, False),
        ({"a": [{"anything-but": {"wildcard": ["*.txt", "*.md"]}}]}, {"a": "r.rst"}, True),
        ({"a": [{"anything-but": {"equals-ignore-case": ["Red", "BLUE"]}}]}, {"a": "blue"}, False),
        ({"a": [{"anything-but": {"equals-ignore-case": ["Red", "BLUE"]}}]}, {"a": "green"}, True),
        ({"a": [{"anything-but": {"prefix": ["init"]}}]}, {"b": "x"}, False),
        # recorded against AWS: a number or null is "anything but" a string prefix/wildcard
        ({"a": [{"anything-but": {"prefix": ["init"]}}]}, {"a": 5}, True),
        ({"a": [{"anything-but": {"wildcard": ["*/init/*"]}}]}, {"a": None}, True),
        ({"a": [{"anything-but": {"suffix": ["x"]}}]}, {"a": ["ax", "b"]}, True),
    ],
)
def test_new_anything_but_forms(spec: dict[str, Any], doc: dict[str, Any], expected: bool) -> None:
    """anything-but with prefix/suffix lists, wildcard and equals-ignore-case lists match as AWS."""
    assert Pattern(spec).matches(doc) is expected


@pytest.mark.parametrize(
    "spec",
    [
        {"a": [{"anything-but": {"prefix": []}}]},
        {"a": [{"anything-but": {"prefix": [5]}}]},
        {"a": [{"anything-but": {"suffix": "x", "prefix": "y"}}]},
        {"a": [{"anything-but": {"wildcard": ["a**b"]}}]},
        {"a": [{"anything-but": {"equals-ignore-case": [None]}}]},
        {"a": [{"anything-but": {"nope": "x"}}]},
        {"a": [{"prefix": "x" * 5_000_000}]},
        {"a": [{"wildcard": "*" * 10_000}]},
        {"a": [{"prefix": str(i)} for i in range(100_000)]},
        {f"f{i}": ["x"] for i in range(200_000)},
        {"a": [{"numeric": [">", float("nan")]}]},
        {"a": [{"numeric": [">", "1e999999"]}]},
        {"a": [{"cidr": "10.0.0.0/99"}]},
        {"a": 5},
        {"a": []},
        [1, 2],
        "a",
    ],
)
def test_bad_or_oversized_patterns_are_pattern_errors(spec: Any) -> None:
    """Malformed or oversized patterns raise PatternError (or TypeError for a wrong type), fast."""
    with pytest.raises((PatternError, TypeError)):
        Pattern(spec)


def test_deeply_nested_pattern_is_a_pattern_error() -> None:
    """A pattern nested 3,000 deep raises PatternError, not RecursionError."""
    spec: Any = ["x"]
    for _ in range(3000):
        spec = {"a": spec}
    with pytest.raises(PatternError):
        Pattern(spec)


def test_deeply_nested_document_does_not_crash_matches() -> None:
    """Matching a document nested 3,000 deep returns or raises a named error, no RecursionError."""
    doc: Any = "x"
    for _ in range(3000):
        doc = {"a": doc}
    pattern = Pattern({"a": {"a": ["x"]}})
    with contextlib.suppress(EventBusError):
        assert pattern.matches(doc) is False


def test_pattern_limits_are_configurable() -> None:
    """A pattern over AWS's 2,048 characters is refused unless PatternLimits is raised."""
    spec = {"a": [{"prefix": str(i)} for i in range(200)]}
    with pytest.raises(PatternError, match="PatternLimits"):
        Pattern(spec)
    limits = eventbus.PatternLimits(max_size=100_000)
    assert Pattern(spec, limits=limits).matches({"a": "150x"})


# -- schedules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "rate( 5 minutes)",
        "rate(5 minutes )",
        " rate(5 minutes)",
        "rate(0 minutes)",
        "rate(-1 minutes)",
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(1.5 hours)",
        "rate(10 seconds)",
        "cron(5/155 * * * ? *)",
        "cron(0 0 * * * *)",
        "cron(0 0 ? * ? *)",
        "cron(60 0 * * ? *)",
        "cron(0 24 * * ? *)",
        "cron(0 0 32 * ? *)",
        "cron(0 0 * 13 ? *)",
        "cron(0 0 ? * 8 *)",
        "cron(0 0 * * ? 1969)",
        "cron(0 0 * * ?)",
        "at(2024-13-01T00:00:00)",
        "at(2024-01-01 00:00:00)",
        "at(9999-12-31T23:59:60)",
        "",
        "rate(" + "9" * 5000 + " minutes)",
        "cron(" + "1," * 5000 + "1 * * * ? *)",
        "RATE(5 minutes)",
        "rate(5 minutes)\n",
        "rate(\u0665 minutes)",
    ],
)
def test_schedules_aws_refuses_are_schedule_errors(expression: str) -> None:
    """Expressions AWS refuses raise ScheduleError."""
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(1 day)",
        "cron(0/15 * * * ? *)",
        "cron(0 12 L * ? *)",
        "cron(0 9 ? * MON-FRI *)",
        "cron(0 10 ? * 6#3 *)",
        "cron(0 12 15W * ? *)",
        "at(2030-01-01T00:00:00)",
    ],
)
def test_valid_aws_schedules_parse(expression: str) -> None:
    """Expressions AWS accepts parse."""
    assert parse_schedule(expression) is not None


def test_sub_minute_rate_is_off_by_default_and_says_so() -> None:
    """rate(10 seconds) is refused unless allow_seconds=True, and the error says so."""
    with pytest.raises(ScheduleError, match="allow_seconds"):
        parse_schedule("rate(10 seconds)")
    schedule = parse_schedule("rate(10 seconds)", allow_seconds=True)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    nxt = schedule.next_after(start)
    assert nxt is not None
    assert (nxt - start).total_seconds() <= 10


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "../../etc/passwd", "UTC\x00"])
def test_bad_timezone_is_a_schedule_error(tz: str) -> None:
    """An unknown or hostile timezone raises ScheduleError."""
    with pytest.raises(ScheduleError):
        parse_schedule("rate(5 minutes)", timezone=tz)


@pytest.mark.parametrize("expression", [None, 5, b"rate(5 minutes)"])
def test_non_string_schedule_is_a_named_error(expression: Any) -> None:
    """A non-string expression raises ScheduleError or TypeError."""
    with pytest.raises((ScheduleError, TypeError)):
        parse_schedule(expression)


@settings(max_examples=300, deadline=1000)
@given(st.text(max_size=60))
def test_parse_schedule_raises_only_schedule_error(text: str) -> None:
    """Arbitrary text parses or raises ScheduleError, quickly."""
    with contextlib.suppress(ScheduleError):
        parse_schedule(text)


@settings(max_examples=300, deadline=1000)
@given(st.from_regex(r"cron\(([0-9*?,/LW#-]{1,6} ){5}[0-9*?,/LW#-]{1,9}\)", fullmatch=True))
def test_cron_like_text_raises_only_schedule_error(text: str) -> None:
    """cron()-shaped text parses (and evaluates) or raises ScheduleError, quickly."""
    try:
        schedule = parse_schedule(text)
    except ScheduleError:
        return
    schedule.next_after(datetime(2024, 1, 1, tzinfo=UTC))
