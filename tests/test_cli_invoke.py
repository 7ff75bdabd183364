"""``python -m eventbus invoke``: run a Lambda function or an eventbus handler on a payload."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from eventbus.aws import generate_event
from eventbus.aws.cli import main

APP = """
import asyncio
import threading
from decimal import Decimal

from eventbus import BatchResult, Context, ObjectCreated
from eventbus.aws import QueueMessage

released = threading.Event()


def lambda_handler(event, context):
    print("lambda_handler was here")
    keys = [record["s3"]["object"]["key"] for record in event["Records"]]
    return {
        "keys": keys,
        "function": context.function_name,
        "memory": context.memory_limit_in_mb,
        "has_time": context.get_remaining_time_in_millis() > 0,
    }


def echo(event, context):
    return event


def fails(event, context):
    raise ValueError("bad input")


def blocks(event, context):
    released.wait()


async def blocks_async(event, context):
    await asyncio.Event().wait()


def runs_asyncio(event, context):
    return asyncio.run(asyncio.sleep(0, result="ran"))


async def async_handler(event, context):
    return {"async": True, "records": len(event.get("Records", []))}


def unserializable(event, context):
    return {"when": object()}


def decimals(event, context):
    return {"n": Decimal("2"), "x": Decimal("1.5")}


async def typed(event: ObjectCreated) -> str:
    return f"{event.bucket}/{event.key}"


def typed_with_context(event: ObjectCreated, ctx: Context) -> list[str]:
    return [ctx.subscription, event.key]


def typed_batch(events: list[QueueMessage]) -> BatchResult:
    return BatchResult(failed=[e.id for e in events if e.body == "bad"])


def untyped(event):
    return type(event).__name__


def typed_fails(event: ObjectCreated) -> None:
    raise KeyError(event.key)


not_callable = 42
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory holding app.py and payloads; sys.path and sys.modules restored after."""
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    (tmp_path / "s3.json").write_text(
        json.dumps(generate_event("s3", "put", bucket="photos", key="a b.jpg")), encoding="utf-8"
    )
    sqs = generate_event("sqs", "receive-message", queue="jobs", body="ok")
    bad = dict(sqs["Records"][0], messageId="m-bad", body="bad")
    sqs["Records"].append(bad)
    (tmp_path / "sqs.json").write_text(json.dumps(sqs), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    app = sys.modules.get("app")
    if app is not None:
        app.released.set()
    for name in set(sys.modules) - before:
        del sys.modules[name]


Invoke = Callable[..., tuple[int, Any, str]]


@pytest.fixture
def invoke(workdir: Path, capsys: pytest.CaptureFixture[str]) -> Invoke:
    """Run ``invoke`` in-process; return (exit code, parsed stdout, stderr)."""

    def run(*argv: str) -> tuple[int, Any, str]:
        code = main(["invoke", *argv])
        out, err = capsys.readouterr()
        return code, json.loads(out) if out.strip() else None, err

    return run


# -- Lambda functions --------------------------------------------------------------------


def test_runs_a_lambda_function_from_a_file(invoke: Invoke) -> None:
    """path/to/file.py:function gets the raw payload and a context; its prints go to stderr."""
    code, result, err = invoke("./app.py:lambda_handler", "--event", "s3.json")
    assert code == 0
    assert result == {
        "keys": ["a+b.jpg"],
        "function": "lambda_handler",
        "memory": "128",
        "has_time": True,
    }
    assert "lambda_handler was here" in err


def test_module_spellings(invoke: Invoke) -> None:
    """module:function and Lambda's module.function both work, from the current directory."""
    assert invoke("app:echo", "--event", "s3.json")[0] == 0
    code, result, _ = invoke("app.echo", "-e", "s3.json")
    assert code == 0
    assert result["Records"][0]["eventSource"] == "aws:s3"


def test_reads_the_event_from_stdin(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    """--event - reads the payload from standard input."""
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"hello": "world"}'))
    assert invoke("app:echo", "--event", "-")[:2] == (0, {"hello": "world"})


def test_the_default_event_is_empty(invoke: Invoke) -> None:
    """Without --event the function gets {}."""
    assert invoke("app:echo")[:2] == (0, {})


def test_context_options(invoke: Invoke) -> None:
    """--function-name and --memory show in the context."""
    code, result, _ = invoke(
        "app:lambda_handler", "-e", "s3.json", "--function-name", "thumbs", "--memory", "512"
    )
    assert code == 0
    assert (result["function"], result["memory"]) == ("thumbs", "512")


def test_a_failing_function_prints_lambdas_error_shape(invoke: Invoke) -> None:
    """An exception is printed as {errorType, errorMessage, stackTrace}; exit status 1."""
    code, error, _ = invoke("app:fails", "-e", "s3.json")
    assert code == 1
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "bad input")
    assert len(error["stackTrace"]) == 1
    assert "in fails" in error["stackTrace"][0]


def test_async_functions_and_asyncio_run(invoke: Invoke) -> None:
    """async functions are awaited; sync ones run outside any event loop."""
    assert invoke("app:async_handler", "-e", "s3.json")[:2] == (
        0,
        {"async": True, "records": 1},
    )
    assert invoke("app:runs_asyncio")[:2] == (0, "ran")


def test_timeouts(invoke: Invoke) -> None:
    """--timeout fails a function that runs too long, sync or async, as Lambda reports it."""
    for handler in ("app:blocks", "app:blocks_async"):
        code, error, _ = invoke(handler, "--timeout", "0.05")
        assert code == 1
        assert error == {
            "errorType": "Sandbox.Timedout",
            "errorMessage": "Task timed out after 0.05 seconds",
            "stackTrace": [],
        }


def test_results_must_be_json(invoke: Invoke) -> None:
    """Decimals print as numbers; other non-JSON results are a marshal error."""
    assert invoke("app:decimals")[:2] == (0, {"n": 2, "x": 1.5})
    code, error, _ = invoke("app:unserializable")
    assert code == 1
    assert error["errorType"] == "Runtime.MarshalError"
    assert "object is not JSON serializable" in error["errorMessage"]


# -- eventbus handlers --------------------------------------------------------------------


def test_an_event_annotation_makes_an_eventbus_handler(invoke: Invoke) -> None:
    """A handler annotated with an Event class gets typed events."""
    assert invoke("app:typed", "-e", "s3.json")[:2] == (0, "photos/a b.jpg")
    code, result, _ = invoke("app:typed_with_context", "-e", "s3.json", "--function-name", "f")
    assert (code, result) == (0, ["f", "a b.jpg"])


def test_a_list_annotation_gets_the_batch_and_batch_results_print_as_lambda_does(
    invoke: Invoke,
) -> None:
    """list[E] handlers get every event at once; BatchResult prints as batchItemFailures."""
    code, result, _ = invoke("app:typed_batch", "-e", "sqs.json")
    assert code == 0
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}


def test_style_flags_override_detection(invoke: Invoke) -> None:
    """--eventbus and --lambda choose how to call the function."""
    assert invoke("app:untyped", "--eventbus", "-e", "s3.json")[:2] == (0, "ObjectCreated")
    code, result, _ = invoke("app:echo", "--lambda", "-e", "s3.json")
    assert code == 0
    assert "Records" in result


def test_eventbus_handler_errors(invoke: Invoke) -> None:
    """A failing handler, or a payload that is no Lambda event, is a Lambda-shaped error."""
    code, error, _ = invoke("app:typed_fails", "-e", "s3.json")
    assert (code, error["errorType"], error["errorMessage"]) == (1, "KeyError", "'a b.jpg'")
    code, error, _ = invoke("app:typed")
    assert (code, error["errorType"]) == (1, "SerializationError")
    assert "not a Lambda event" in error["errorMessage"]


# -- loading and usage errors --------------------------------------------------------------


def test_import_and_lookup_failures_are_lambda_errors(invoke: Invoke) -> None:
    """Missing modules and handlers give Lambda's Runtime errors."""
    code, error, _ = invoke("missing_module:handler")
    assert (code, error["errorType"]) == (1, "Runtime.ImportModuleError")
    assert error["errorMessage"].startswith("Unable to import module 'missing_module'")
    code, error, _ = invoke("app:nope")
    assert (code, error) == (
        1,
        {
            "errorType": "Runtime.HandlerNotFound",
            "errorMessage": "Handler 'nope' missing on module 'app'",
            "stackTrace": [],
        },
    )
    code, error, _ = invoke("app:not_callable")
    assert (code, error["errorType"]) == (1, "Runtime.HandlerNotFound")
    code, error, _ = invoke("no/such/file.py:handler")
    assert (code, error["errorType"]) == (1, "Runtime.ImportModuleError")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["handler"], "names no function"),
        (["app.py"], "name the function in the file: 'app.py:handler'"),
        (["app:echo", "-e", "missing.json"], "cannot read the event from 'missing.json'"),
        (["app:echo", "-e", "app.py"], "is not valid JSON"),
        (["app:echo", "--timeout", "0"], "--timeout must be"),
        (["app:echo", "--memory", "0"], "--memory must be"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad arguments print a one-line error on stderr and exit with status 2."""
    assert main(["invoke", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("invoke: error: ")
    assert message in err


def test_help_and_a_real_process(workdir: Path) -> None:
    """python -m eventbus invoke --help works, and a real run pipes the result."""
    help_text = subprocess.run(
        [sys.executable, "-m", "eventbus", "invoke", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "HANDLER" in help_text
    assert "--event FILE" in help_text
    payload = (workdir / "s3.json").read_text(encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "eventbus", "invoke", "app:typed", "--event", "-"],
        input=payload,
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    assert (done.returncode, json.loads(done.stdout)) == (0, "photos/a b.jpg")
    assert done.stderr == ""
