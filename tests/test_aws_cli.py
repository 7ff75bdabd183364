"""Tests for eventbus.aws.generate_event and the generate-event command."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

import pytest

from eventbus import (
    LogRecord,
    ObjectCreated,
    ObjectRemoved,
    ScheduledEvent,
    TableChange,
    TopicMessage,
)
from eventbus.aws import (
    EventBridgeEvent,
    QueueMessage,
    from_lambda_event,
    generate_event,
    to_lambda_event,
)
from eventbus.aws.cli import main, register

KINDS: list[tuple[str, str, type]] = [
    ("s3", "put", ObjectCreated),
    ("s3", "delete", ObjectRemoved),
    ("dynamodb", "update", TableChange),
    ("sns", "notification", TopicMessage),
    ("sqs", "receive-message", QueueMessage),
    ("kinesis", "get-records", LogRecord),
    ("cloudwatch", "scheduled-event", ScheduledEvent),
    ("eventbridge", "scheduled-event", ScheduledEvent),
    ("eventbridge", "event", EventBridgeEvent),
]


def parser() -> argparse.ArgumentParser:
    """A parent parser with generate-event registered, as ``python -m eventbus`` builds it."""
    root = argparse.ArgumentParser(prog="eventbus")
    register(root.add_subparsers(dest="command", required=True))
    return root


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Parse *argv*, run the command in-process, return (code, stdout, stderr)."""
    args = parser().parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


# -- generate_event -------------------------------------------------------------------


@pytest.mark.parametrize(("service", "kind", "cls"), KINDS)
def test_samples_parse_into_their_event_type(service: str, kind: str, cls: type) -> None:
    """Every sample parses with from_lambda_event into the expected event type."""
    events = from_lambda_event(generate_event(service, kind))
    assert events
    assert all(isinstance(event, cls) for event in events)


@pytest.mark.parametrize(("service", "kind", "cls"), KINDS)
def test_samples_are_deterministic_and_stable(service: str, kind: str, cls: type) -> None:
    """The same arguments give the same payload, which is a rendering fixed point."""
    payload = generate_event(service, kind)
    assert generate_event(service, kind) == payload
    assert to_lambda_event(from_lambda_event(payload)) == payload


def test_dynamodb_sample_has_every_operation() -> None:
    """The DynamoDB sample holds an INSERT, a MODIFY and a REMOVE."""
    events = from_lambda_event(generate_event("dynamodb", "update", table="Orders"))
    assert [(e.table, e.op) for e in events if isinstance(e, TableChange)] == [
        ("Orders", "INSERT"),
        ("Orders", "MODIFY"),
        ("Orders", "REMOVE"),
    ]


def test_s3_options() -> None:
    """S3 options set bucket, key (URL-encoded in the payload), size and region."""
    payload = generate_event(
        "s3", "put", bucket="b", key="a dir/f+1.txt", size=7, region="eu-west-1"
    )
    record = payload["Records"][0]
    assert record["s3"]["object"]["key"] == "a+dir/f%2B1.txt"
    assert record["awsRegion"] == "eu-west-1"
    (event,) = from_lambda_event(payload)
    assert isinstance(event, ObjectCreated)
    assert (event.bucket, event.key, event.size) == ("b", "a dir/f+1.txt", 7)


@pytest.mark.parametrize(
    ("service", "kind", "options", "expected"),
    [
        ("sns", "notification", {"topic": "t", "message": "m", "subject": ""}, ("t", "m", None)),
        ("sqs", "receive-message", {"queue": "q", "body": "hello"}, ("q", "hello")),
        (
            "kinesis",
            "get-records",
            {"stream": "s", "partition_key": "pk", "data": "héllo"},
            ("s", "pk", "héllo".encode()),
        ),
        ("cloudwatch", "scheduled-event", {"rule": "nightly"}, ("nightly",)),
        (
            "eventbridge",
            "event",
            {"source": "shop", "detail_type": "Order Placed", "detail": '{"id": 1}'},
            ("shop", "Order Placed", {"id": 1}),
        ),
    ],
)
def test_options(
    service: str, kind: str, options: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    """Each sample's options end up in the parsed event."""
    (event, *_) = from_lambda_event(generate_event(service, kind, **options))
    if isinstance(event, TopicMessage):
        got: tuple[Any, ...] = (event.topic, event.message, event.subject)
    elif isinstance(event, QueueMessage):
        got = (event.queue, event.body)
    elif isinstance(event, LogRecord):
        got = (event.log, event.partition_key, event.data)
    elif isinstance(event, ScheduledEvent):
        got = (event.rule,)
    else:
        assert isinstance(event, EventBridgeEvent)
        got = (event.source, event.detail_type, event.detail)
    assert got == expected


def test_region_and_account_options() -> None:
    """region and account go into the resource ARNs."""
    payload = generate_event(
        "sqs", "receive-message", queue="q", region="ap-south-1", account="999"
    )
    record = payload["Records"][0]
    assert record["eventSourceARN"] == "arn:aws:sqs:ap-south-1:999:q"
    assert record["awsRegion"] == "ap-south-1"


def test_combined_spelling() -> None:
    """generate_event('s3-put') equals generate_event('s3', 'put')."""
    assert generate_event("s3-put", bucket="b") == generate_event("s3", "put", bucket="b")
    assert generate_event("sqs-receive-message") == generate_event("sqs", "receive-message")


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (("s3", "get"), {}, r"unknown sample 's3' 'get'; known: s3 put, s3 delete"),
        (("lambda",), {}, r"no kind given for 'lambda'"),
        (
            ("s3", "put"),
            {"table": "t"},
            r"unknown option 'table'; options are: bucket, key, size, region",
        ),
        (("s3", "put"), {"size": -1}, r"size: expected a non-negative integer"),
        (("s3", "put"), {"bucket": 5}, r"bucket: expected a string, got int"),
        (("eventbridge", "event"), {"detail": "["}, r"detail: not valid JSON"),
        (("eventbridge", "event"), {"detail": "[]"}, r"detail: must be a JSON object"),
    ],
)
def test_bad_arguments(args: tuple[str, ...], options: dict[str, Any], message: str) -> None:
    """Unknown samples and bad options raise ValueError saying what is accepted."""
    with pytest.raises(ValueError, match=message):
        generate_event(*args, **options)


# -- the command, in process ----------------------------------------------------------


def test_cli_prints_payload(capsys: pytest.CaptureFixture[str]) -> None:
    """generate-event s3 put prints a payload that parses."""
    code, out, err = run(["generate-event", "s3", "put", "--bucket", "b", "--key", "k"], capsys)
    assert (code, err) == (0, "")
    (event,) = from_lambda_event(json.loads(out))
    assert isinstance(event, ObjectCreated)
    assert (event.bucket, event.key) == ("b", "k")


def test_cli_combined_spelling(capsys: pytest.CaptureFixture[str]) -> None:
    """generate-event s3-put prints the same payload as generate-event s3 put."""
    _, dashed, _ = run(["generate-event", "s3-put", "--bucket", "b", "--key", "k"], capsys)
    _, spaced, _ = run(["generate-event", "s3", "put", "--bucket", "b", "--key", "k"], capsys)
    assert dashed == spaced
    assert json.loads(dashed) == generate_event("s3", "put", bucket="b", key="k")


def test_cli_dashed_options(capsys: pytest.CaptureFixture[str]) -> None:
    """Multi-word options are spelled with dashes (--partition-key)."""
    code, out, _ = run(
        ["generate-event", "kinesis", "get-records", "--partition-key", "p", "--data", "d"], capsys
    )
    assert code == 0
    (event,) = from_lambda_event(json.loads(out))
    assert isinstance(event, LogRecord)
    assert (event.partition_key, event.data) == ("p", b"d")


def test_cli_integer_option(capsys: pytest.CaptureFixture[str]) -> None:
    """--size is parsed as an integer."""
    code, out, _ = run(["generate-event", "s3-put", "--size", "12"], capsys)
    assert code == 0
    assert json.loads(out)["Records"][0]["s3"]["object"]["size"] == 12


def test_cli_rejected_value_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An option value the sample rejects prints an error and returns 2."""
    code, out, err = run(["generate-event", "eventbridge", "event", "--detail", "["], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("generate-event: error: detail: not valid JSON")


@pytest.mark.parametrize(
    "argv",
    [[service, kind] for service, kind, _ in KINDS] + [[f"{s}-{k}"] for s, k, _ in KINDS],
)
def test_cli_help_on_each_sample(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """--help works on every sample, in both spellings, and lists its options."""
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["generate-event", *argv, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--region" in out or "--rule" in out or "--bucket" in out
    assert "default:" in out


def test_cli_help_lists_services(capsys: pytest.CaptureFixture[str]) -> None:
    """generate-event --help lists the services and the one-word spellings."""
    with pytest.raises(SystemExit):
        parser().parse_args(["generate-event", "--help"])
    out = capsys.readouterr().out
    for service in ("s3", "dynamodb", "sns", "sqs", "kinesis", "cloudwatch", "eventbridge"):
        assert service in out
    assert "s3-put" in out


def test_cli_service_help_lists_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    """generate-event s3 --help lists the S3 kinds."""
    with pytest.raises(SystemExit):
        parser().parse_args(["generate-event", "s3", "--help"])
    out = capsys.readouterr().out
    assert "put" in out
    assert "delete" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["generate-event"],
        ["generate-event", "s3"],
        ["generate-event", "s3", "get"],
        ["generate-event", "s3", "put", "--table", "t"],
        ["generate-event", "s3", "put", "--size", "big"],
    ],
)
def test_cli_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Usage errors exit with status 2, as argparse does."""
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_main(capsys: pytest.CaptureFixture[str]) -> None:
    """main() runs the command and returns its exit code."""
    assert main(["generate-event", "sns", "notification", "--topic", "t"]) == 0
    (event,) = from_lambda_event(json.loads(capsys.readouterr().out))
    assert isinstance(event, TopicMessage)
    assert event.topic == "t"


# -- the command, in a subprocess ------------------------------------------------------

REGISTER_AND_RUN = """
import argparse, sys
from eventbus.aws.cli import register
parser = argparse.ArgumentParser(prog="eventbus")
register(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def test_subprocess_register() -> None:
    """A fresh interpreter calling register() prints a payload and exits 0."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            REGISTER_AND_RUN,
            "generate-event",
            "s3-put",
            "--bucket",
            "b",
            "--key",
            "k",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    (event,) = from_lambda_event(json.loads(result.stdout))
    assert isinstance(event, ObjectCreated)
    assert (event.bucket, event.key) == ("b", "k")


def test_subprocess_bad_value_exits_2() -> None:
    """A rejected option value exits with status 2 and a message on stderr."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            REGISTER_AND_RUN,
            "generate-event",
            "eventbridge-event",
            "--detail",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "detail: must be a JSON object" in result.stderr
    assert result.stdout == ""


def test_subprocess_module() -> None:
    """python -m eventbus.aws.cli runs the same command."""
    result = subprocess.run(
        [sys.executable, "-m", "eventbus.aws.cli", "generate-event", "dynamodb", "update"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(from_lambda_event(json.loads(result.stdout))) == 3
