"""AWS Lambda payload interop: real Lambda event JSON <-> typed eventbus events.

``from_lambda_event(payload)`` turns what a Lambda handler receives from S3,
DynamoDB Streams, SNS, SQS, Kinesis or EventBridge into typed events;
``to_lambda_event(events)`` renders them back, so existing Lambda handlers
can be fed from the bus and tested locally: :class:`LambdaHandler` wraps a
``handler(event, context)`` function into a bus handler, with a
:class:`LambdaContext`. ``generate_event`` builds sample payloads like
``sam local generate-event``.
"""

from ._dynamodb import from_attribute_value as from_attribute_value
from ._dynamodb import from_dynamodb_item as from_dynamodb_item
from ._dynamodb import to_attribute_value as to_attribute_value
from ._dynamodb import to_dynamodb_item as to_dynamodb_item
from ._events import EventBridgeEvent as EventBridgeEvent
from ._events import QueueMessage as QueueMessage
from ._handler import LambdaContext as LambdaContext
from ._handler import LambdaHandler as LambdaHandler
from ._lambda import from_lambda_event as from_lambda_event
from ._lambda import to_lambda_event as to_lambda_event
from ._samples import generate_event as generate_event

__all__ = (
    "EventBridgeEvent",
    "LambdaContext",
    "LambdaHandler",
    "QueueMessage",
    "from_attribute_value",
    "from_dynamodb_item",
    "from_lambda_event",
    "generate_event",
    "to_attribute_value",
    "to_dynamodb_item",
    "to_lambda_event",
)
