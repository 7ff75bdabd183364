"""Cognito Sync and User Pool trigger payloads <-> the typed Cognito events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eventbus import Bus, from_cloudevent, to_cloudevent
from eventbus.aws import (
    CognitoCustomMessage,
    CognitoDefineAuthChallenge,
    CognitoPreSignUp,
    CognitoPreTokenGeneration,
    CognitoSync,
    DatasetRecord,
    LambdaContext,
    LambdaHandler,
    UserPoolTrigger,
    from_lambda_event,
    generate_event,
    to_lambda_event,
)
from eventbus.aws.cli import main

from ._payloads import DATA, load


def test_sync_trigger_fields() -> None:
    """A Sync trigger reads the pool, identity, dataset and each record's values and op."""
    (event,) = from_lambda_event(load(DATA / "aws-lambda-java-libs" / "cognito_sync_event.json"))
    assert isinstance(event, CognitoSync)
    assert event.identity_pool_id == "us-east-1:example-identity-pool-id"
    assert event.identity_id == "us-east-1:example-identity-id"
    assert event.dataset == "SampleDataset"
    assert event.records["SampleKey2"] == DatasetRecord("oldValue2", "newValue2", "replace")
    assert event.version == 2


def test_sync_trigger_crosses_the_wire() -> None:
    """A CognitoSync event survives CloudEvents encoding."""
    (event,) = from_lambda_event(generate_event("cognito", "sync-trigger"))
    assert from_cloudevent(to_cloudevent(event)) == event


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("cognito-event-userpools-presignup.json", CognitoPreSignUp),
        ("cognito-event-userpools-custommessage.json", CognitoCustomMessage),
        ("cognito-event-userpools-define-auth-challenge.json", CognitoDefineAuthChallenge),
        ("cognito-event-userpools-pretokengen-v2.json", CognitoPreTokenGeneration),
    ],
)
def test_user_pool_triggers_read_into_their_class(name: str, cls: type) -> None:
    """Each User Pool trigger reads into the class of its triggerSource."""
    (event,) = from_lambda_event(load(DATA / "aws-lambda-go" / name))
    assert type(event) is cls


def test_user_pool_trigger_fields() -> None:
    """The common fields, user attributes and client metadata are read."""
    (event,) = from_lambda_event(
        load(DATA / "aws-lambda-go" / "cognito-event-userpools-presignup.json")
    )
    assert isinstance(event, CognitoPreSignUp)
    assert event.trigger_source == "PreSignUp_SignUp"
    assert (event.user_pool_id, event.user_name) == ("<userPoolId>", "<userName>")
    assert event.user_attributes == {"email": "<email>", "phone_number": "<phone_number>"}
    assert event.client_metadata == {"exampleMetadataKey": "example metadata value"}
    assert event.response["autoVerifyEmail"] is True


def test_unknown_trigger_reads_as_the_base_class() -> None:
    """A triggerSource without a class of its own reads as UserPoolTrigger."""
    payload = generate_event("cognito-user-pool", "pre-signup")
    payload["triggerSource"] = "InboundFederation_ExternalProvider"
    (event,) = from_lambda_event(payload)
    assert type(event) is UserPoolTrigger


def test_with_response_renders_into_the_payload() -> None:
    """with_response() fills the trigger's response, which to_lambda_event renders."""
    (event,) = from_lambda_event(generate_event("cognito-user-pool", "pre-signup"))
    assert isinstance(event, CognitoPreSignUp)
    answered = event.with_response({"autoConfirmUser": True})
    payload = to_lambda_event([answered])
    assert payload["response"] == {
        "autoConfirmUser": True,
        "autoVerifyEmail": False,
        "autoVerifyPhone": False,
    }
    assert answered.id == event.id


async def test_lambda_handler_returns_the_answered_trigger() -> None:
    """A Lambda function's returned trigger (response filled in) is what invoke returns."""

    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        event["response"]["autoConfirmUser"] = True
        return event

    (trigger,) = from_lambda_event(generate_event("cognito-user-pool", "pre-signup"))
    async with Bus() as bus:
        bus.subscribe(CognitoPreSignUp, LambdaHandler(handler), name="signup")
        result = await bus.invoke("signup", trigger)
    assert result["response"]["autoConfirmUser"] is True
    assert result["triggerSource"] == "PreSignUp_SignUp"


def test_invoke_renders_an_eventbus_handlers_response(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`invoke` with an eventbus handler returning response keys prints the answered trigger."""
    app = tmp_path / "signup_app.py"
    app.write_text(
        "from eventbus.aws import CognitoPreSignUp\n\n"
        "def confirm(event: CognitoPreSignUp):\n"
        "    return {'autoConfirmUser': True}\n"
    )
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(generate_event("cognito-user-pool", "pre-signup")))
    code = main(["invoke", f"{app}:confirm", "--event", str(event_file)])
    out = capsys.readouterr().out
    assert code == 0, out
    printed = json.loads(out)
    assert printed["response"]["autoConfirmUser"] is True
    assert printed["userPoolId"] == "us-east-1_EXAMPLE123"


def test_trigger_specific_request_readers() -> None:
    """Each trigger class reads the parts of its request by name."""
    from eventbus.aws import (
        CognitoCreateAuthChallenge,
        CognitoUserMigration,
        CognitoVerifyAuthChallengeResponse,
    )

    def read(kind: str) -> Any:
        (event,) = from_lambda_event(generate_event("cognito-user-pool", kind))
        return event

    define = read("define-auth-challenge")
    assert isinstance(define, CognitoDefineAuthChallenge)
    assert [step["challengeName"] for step in define.session] == ["SRP_A", "PASSWORD_VERIFIER"]
    assert define.user_not_found is False
    create = read("create-auth-challenge")
    assert isinstance(create, CognitoCreateAuthChallenge)
    assert create.challenge_name == "CUSTOM_CHALLENGE"
    verify = read("verify-auth-challenge-response")
    assert isinstance(verify, CognitoVerifyAuthChallengeResponse)
    assert verify.challenge_answer == verify.private_challenge_parameters["answer"] == "42"
    migration = read("user-migration")
    assert isinstance(migration, CognitoUserMigration)
    assert migration.password == "correct horse battery staple"
    message = read("custom-message")
    assert isinstance(message, CognitoCustomMessage)
    assert message.code_parameter == "{####}"
    token = read("pre-token-generation")
    assert isinstance(token, CognitoPreTokenGeneration)
    assert token.group_configuration["groupsToOverride"] == ["readers"]
    signup = read("pre-signup")
    assert isinstance(signup, CognitoPreSignUp)
    assert signup.validation_data == {}
