"""Shared helpers: the real sample payloads under tests/data/aws and Powertools' models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eventbus import Event, LogRecord, TableChange
from eventbus.aws import ApiCall, CloudWatchLogsEvent, UserPoolTrigger
from eventbus.http import HttpRequest

DATA = Path(__file__).parent.parent / "data" / "aws"

#: Folders of samples copied from the AWS Lambda runtime libraries (each has SOURCES.md).
LIBRARIES = (
    "aws-lambda-go",
    "aws-lambda-java-libs",
    "aws-lambda-dotnet",
    "aws-lambda-rust-runtime",
    "powertools-lambda-python",
    "awsdocs",
)


def sample_paths() -> list[Path]:
    """Every real sample payload, in a stable order."""
    return sorted(path for folder in LIBRARIES for path in (DATA / folder).glob("*.json"))


def load(path: Path) -> Any:
    """A sample payload (some files start with a byte order mark)."""
    return json.loads(path.read_text(encoding="utf-8-sig"))


def sample_id(path: Path) -> str:
    """A readable test id: library/file."""
    return f"{path.parent.name}/{path.name}"


def powertools_model(event: Event) -> Any:
    """The Powertools parser model for the payload *event* renders to, or None if it has none."""
    from aws_lambda_powertools.utilities.parser import models

    if isinstance(event, HttpRequest):
        if event.version == "1.0":
            return models.APIGatewayProxyEventModel
        return models.APIGatewayProxyEventV2Model
    if isinstance(event, CloudWatchLogsEvent):
        return models.CloudWatchLogsModel
    if isinstance(event, ApiCall):
        return models.EventBridgeModel if event.detail_type is not None else None
    if isinstance(event, TableChange):
        return models.DynamoDBStreamModel
    if isinstance(event, LogRecord):
        return models.KinesisDataStreamModel
    if isinstance(event, UserPoolTrigger):
        prefix = event.trigger_source.split("_", 1)[0]
        if prefix in ("TokenGeneration", "PreTokenGen", "PreTokenGeneration"):
            if event.version == "1":
                return models.CognitoPreTokenGenerationTriggerModelV1
            return models.CognitoPreTokenGenerationTriggerModelV2AndV3
        return {
            "PreSignUp": models.CognitoPreSignupTriggerModel,
            "PostConfirmation": models.CognitoPostConfirmationTriggerModel,
            "PreAuthentication": models.CognitoPreAuthenticationTriggerModel,
            "PostAuthentication": models.CognitoPostAuthenticationTriggerModel,
            "CustomMessage": models.CognitoCustomMessageTriggerModel,
            "DefineAuthChallenge": models.CognitoDefineAuthChallengeTriggerModel,
            "CreateAuthChallenge": models.CognitoCreateAuthChallengeTriggerModel,
            "VerifyAuthChallengeResponse": models.CognitoVerifyAuthChallengeTriggerModel,
            "UserMigration": models.CognitoMigrateUserTriggerModel,
            "CustomEmailSender": models.CognitoCustomEmailSenderTriggerModel,
            "CustomSMSSender": models.CognitoCustomSMSSenderTriggerModel,
        }.get(prefix)
    return None


def validates(model: Any, payload: Any) -> bool:
    """Whether Powertools' *model* accepts *payload*."""
    from pydantic import ValidationError

    try:
        model.model_validate(payload)
    except ValidationError:
        return False
    return True
