"""AWS Lambda payload interop: real Lambda event JSON <-> typed eventbus events.

``from_lambda_event(payload)`` turns what a Lambda handler receives from S3,
DynamoDB Streams, SNS, SQS, Kinesis, EventBridge, API Gateway (REST and HTTP
APIs), CloudWatch Logs, CloudTrail or Cognito (Sync and User Pool triggers)
into typed events;
``to_lambda_event(events)`` renders them back, so existing Lambda handlers
can be fed from the bus and tested locally: :class:`LambdaHandler` wraps a
``handler(event, context)`` function into a bus handler, with a
:class:`LambdaContext`. ``generate_event`` builds sample payloads like
``sam local generate-event``.
"""

from ._cognito_events import CognitoCreateAuthChallenge as CognitoCreateAuthChallenge
from ._cognito_events import CognitoCustomEmailSender as CognitoCustomEmailSender
from ._cognito_events import CognitoCustomMessage as CognitoCustomMessage
from ._cognito_events import CognitoCustomSmsSender as CognitoCustomSmsSender
from ._cognito_events import CognitoDefineAuthChallenge as CognitoDefineAuthChallenge
from ._cognito_events import CognitoPostAuthentication as CognitoPostAuthentication
from ._cognito_events import CognitoPostConfirmation as CognitoPostConfirmation
from ._cognito_events import CognitoPreAuthentication as CognitoPreAuthentication
from ._cognito_events import CognitoPreSignUp as CognitoPreSignUp
from ._cognito_events import CognitoPreTokenGeneration as CognitoPreTokenGeneration
from ._cognito_events import CognitoSync as CognitoSync
from ._cognito_events import CognitoUserMigration as CognitoUserMigration
from ._cognito_events import (
    CognitoVerifyAuthChallengeResponse as CognitoVerifyAuthChallengeResponse,
)
from ._cognito_events import DatasetRecord as DatasetRecord
from ._cognito_events import UserPoolTrigger as UserPoolTrigger
from ._dynamodb import from_attribute_value as from_attribute_value
from ._dynamodb import from_dynamodb_item as from_dynamodb_item
from ._dynamodb import to_attribute_value as to_attribute_value
from ._dynamodb import to_dynamodb_item as to_dynamodb_item
from ._events import ApiCall as ApiCall
from ._events import CloudWatchLogsEvent as CloudWatchLogsEvent
from ._events import EventBridgeEvent as EventBridgeEvent
from ._events import LogEvent as LogEvent
from ._events import QueueMessage as QueueMessage
from ._handler import LambdaContext as LambdaContext
from ._handler import LambdaHandler as LambdaHandler
from ._lambda import from_lambda_event as from_lambda_event
from ._lambda import to_lambda_event as to_lambda_event
from ._limits import PayloadLimits as PayloadLimits
from ._samples import generate_event as generate_event

__all__ = (
    "ApiCall",
    "CloudWatchLogsEvent",
    "CognitoCreateAuthChallenge",
    "CognitoCustomEmailSender",
    "CognitoCustomMessage",
    "CognitoCustomSmsSender",
    "CognitoDefineAuthChallenge",
    "CognitoPostAuthentication",
    "CognitoPostConfirmation",
    "CognitoPreAuthentication",
    "CognitoPreSignUp",
    "CognitoPreTokenGeneration",
    "CognitoSync",
    "CognitoUserMigration",
    "CognitoVerifyAuthChallengeResponse",
    "DatasetRecord",
    "EventBridgeEvent",
    "LambdaContext",
    "LambdaHandler",
    "LogEvent",
    "PayloadLimits",
    "QueueMessage",
    "UserPoolTrigger",
    "from_attribute_value",
    "from_dynamodb_item",
    "from_lambda_event",
    "generate_event",
    "to_attribute_value",
    "to_dynamodb_item",
    "to_lambda_event",
)
