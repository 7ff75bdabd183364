"""Samples of every kind: generate_event / `generate-event`, and Powertools' models."""

from __future__ import annotations

import json

import pytest

from eventbus.aws import from_lambda_event, generate_event, to_lambda_event
from eventbus.aws._samples import sample_kinds
from eventbus.aws.cli import main

from ._payloads import powertools_model, validates

_KINDS = [(kind.service, kind.kind) for kind in sample_kinds()]
_NEW = [
    ("apigateway", "aws-proxy"),
    ("apigateway", "http-api-proxy"),
    ("cloudwatch", "logs"),
    ("cloudtrail", "api-call"),
    ("eventbridge", "cloudtrail-api-call"),
    ("cognito", "sync-trigger"),
    ("cognito-user-pool", "pre-signup"),
    ("cognito-user-pool", "post-confirmation"),
    ("cognito-user-pool", "pre-authentication"),
    ("cognito-user-pool", "post-authentication"),
    ("cognito-user-pool", "pre-token-generation"),
    ("cognito-user-pool", "custom-message"),
    ("cognito-user-pool", "define-auth-challenge"),
    ("cognito-user-pool", "create-auth-challenge"),
    ("cognito-user-pool", "verify-auth-challenge-response"),
    ("cognito-user-pool", "user-migration"),
]


def test_every_new_kind_has_a_sample() -> None:
    """generate_event knows a sample of every payload kind."""
    assert set(_NEW) <= set(_KINDS)


@pytest.mark.parametrize(("service", "kind"), _KINDS)
def test_sample_round_trips(service: str, kind: str) -> None:
    """Each sample reads, renders and reads back to equal events."""
    events = from_lambda_event(generate_event(service, kind))
    assert from_lambda_event(to_lambda_event(events)) == events


@pytest.mark.parametrize(("service", "kind"), _KINDS)
def test_sample_validates_with_powertools(service: str, kind: str) -> None:
    """Powertools' parser model of the kind accepts the sample (where it has one)."""
    payload = generate_event(service, kind)
    model = powertools_model(from_lambda_event(payload)[0])
    if model is None:
        pytest.skip("Powertools has no parser model for this kind")
    model.model_validate(payload)
    assert validates(model, payload)


@pytest.mark.parametrize(("service", "kind"), _NEW)
def test_cli_prints_the_sample(service: str, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`generate-event SERVICE KIND` prints the sample as JSON."""
    assert main(["generate-event", service, kind]) == 0
    assert json.loads(capsys.readouterr().out) == generate_event(service, kind)


def test_cli_combined_spelling_with_dashes(capsys: pytest.CaptureFixture[str]) -> None:
    """`generate-event cognito-user-pool-pre-signup` names a service with a dash."""
    assert main(["generate-event", "cognito-user-pool-pre-signup"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["triggerSource"] == "PreSignUp_SignUp"


def test_cli_options(capsys: pytest.CaptureFixture[str]) -> None:
    """Options of the new samples are command-line flags."""
    assert (
        main(["generate-event", "apigateway", "aws-proxy", "--method", "GET", "--path", "/x"]) == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert (payload["httpMethod"], payload["path"]) == ("GET", "/x")
