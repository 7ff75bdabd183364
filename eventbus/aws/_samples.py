"""Sample Lambda payloads, like ``sam local generate-event``.

Each sample is built from typed events and rendered with
:func:`~eventbus.aws.to_lambda_event`, so every sample parses back with
:func:`~eventbus.aws.from_lambda_event`. Samples are deterministic: the same
service, kind and options always give the same payload.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from .._events import Event, LogRecord, ScheduledEvent
from ..http._request import HttpRequest
from ..sources.objects import ObjectCreated, ObjectRemoved
from ..sources.tables import TableChange
from ..sources.topics import TopicMessage
from ._cognito_events import TRIGGER_CLASSES, CognitoSync, DatasetRecord
from ._common import DEFAULT_ACCOUNT, DEFAULT_REGION, digest
from ._events import ApiCall, CloudWatchLogsEvent, EventBridgeEvent, LogEvent, QueueMessage
from ._lambda import to_lambda_event

__all__ = ["SampleKind", "SampleOption", "generate_event", "sample_kinds"]

_TIME = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)


@attrs.frozen
class SampleOption:
    """One option of a sample payload (a keyword of :func:`generate_event`)."""

    name: str
    help: str
    default: str | int
    type: type[str] | type[int] = str


@attrs.frozen
class SampleKind:
    """A ``service kind`` pair that :func:`generate_event` can produce."""

    service: str
    kind: str
    help: str
    options: tuple[SampleOption, ...]
    build: Callable[[Mapping[str, Any]], list[Event]]


_REGION = SampleOption("region", "AWS region of the resource", DEFAULT_REGION)
_ACCOUNT = SampleOption("account", "AWS account id of the resource", DEFAULT_ACCOUNT)


def _arn(service: str, o: Mapping[str, Any], resource: str) -> str:
    return f"arn:aws:{service}:{o['region']}:{o['account']}:{resource}"


def _sample_id(*parts: object) -> str:
    # Shaped like the UUIDs AWS uses for message and event ids.
    h = digest("sample", *map(str, parts))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _s3_put(o: Mapping[str, Any]) -> list[Event]:
    return [
        ObjectCreated(
            o["bucket"],
            o["key"],
            o["size"],
            "0123456789abcdef0123456789abcdef",
            sequencer="0A1B2C3D4E5F678901",
            reason="Put",
            time=_TIME,
            source=f"arn:aws:s3:::{o['bucket']}",
        )
    ]


def _s3_delete(o: Mapping[str, Any]) -> list[Event]:
    return [
        ObjectRemoved(
            o["bucket"],
            o["key"],
            sequencer="0A1B2C3D4E5F678901",
            reason="Delete",
            time=_TIME,
            source=f"arn:aws:s3:::{o['bucket']}",
        )
    ]


def _dynamodb_update(o: Mapping[str, Any]) -> list[Event]:
    source = _arn("dynamodb", o, f"table/{o['table']}/stream/2024-01-01T00:00:00.000")
    keys = {"Id": 101}
    first = {"Id": 101, "Message": "New item!"}
    second = {"Id": 101, "Message": "This item has changed"}
    steps: list[tuple[Any, dict[str, Any] | None, dict[str, Any] | None]] = [
        ("INSERT", first, None),
        ("MODIFY", second, first),
        ("REMOVE", None, second),
    ]
    return [
        TableChange(
            o["table"],
            op,
            keys,
            new,
            old,
            111 * (n + 1),
            id=digest("sample", "dynamodb", o["table"], str(n)),
            time=_TIME,
            source=source,
        )
        for n, (op, new, old) in enumerate(steps)
    ]


def _sns_notification(o: Mapping[str, Any]) -> list[Event]:
    return [
        TopicMessage(
            o["topic"],
            o["message"],
            {"Test": "TestString", "TestBinary": b"TestBinary"},
            o["subject"] or None,
            id=_sample_id("sns", o["topic"], o["message"]),
            time=_TIME,
            source=_arn("sns", o, o["topic"]),
        )
    ]


def _sqs_receive(o: Mapping[str, Any]) -> list[Event]:
    return [
        QueueMessage(
            o["queue"],
            o["body"],
            id=_sample_id("sqs", o["queue"], o["body"]),
            time=_TIME,
            source=_arn("sqs", o, o["queue"]),
        )
    ]


def _kinesis_get_records(o: Mapping[str, Any]) -> list[Event]:
    return [
        LogRecord(
            o["stream"],
            o["partition_key"],
            49590338271490256608559692538361571095921575989136588898,
            o["data"].encode("utf-8"),
            0,
            time=_TIME,
            source=_arn("kinesis", o, f"stream/{o['stream']}"),
        )
    ]


def _scheduled(o: Mapping[str, Any]) -> list[Event]:
    return [
        ScheduledEvent(
            o["rule"],
            _TIME,
            id=_sample_id("scheduled", o["rule"]),
            time=_TIME,
            source=_arn("events", o, f"rule/{o['rule']}"),
        )
    ]


def _eventbridge_event(o: Mapping[str, Any]) -> list[Event]:
    try:
        detail = json.loads(o["detail"])
    except ValueError as exc:
        raise ValueError(f"detail: not valid JSON: {exc}") from None
    if not isinstance(detail, dict):
        raise ValueError("detail: must be a JSON object")
    return [
        EventBridgeEvent(
            o["detail_type"],
            detail,
            (),
            o["account"],
            o["region"],
            id=_sample_id("eventbridge", o["source"], o["detail_type"], o["detail"]),
            time=_TIME,
            source=o["source"],
        )
    ]


def _http_request(version: str) -> Callable[[Mapping[str, Any]], list[Event]]:
    def build(o: Mapping[str, Any]) -> list[Event]:
        body = o["body"].encode("utf-8")
        headers = {
            "accept": "application/json",
            "content-type": "application/json",
            "host": f"abcdef1234.execute-api.{o['region']}.amazonaws.com",
            "user-agent": "curl/8.4.0",
        }
        return [
            HttpRequest(
                o["method"].upper(),
                o["path"],
                route="/orders/{order_id}" if o["path"].startswith("/orders/") else o["path"],
                path_parameters={"order_id": o["path"].rsplit("/", 1)[-1]}
                if o["path"].startswith("/orders/")
                else {},
                query={"verbose": ("true",)},
                headers=headers,
                cookies=("session=abc123",) if version == "2.0" else (),
                body=body,
                stage="$default" if version == "2.0" else "prod",
                request_id=_sample_id("apigateway", version, o["method"], o["path"]),
                source_ip="203.0.113.10",
                version=version,
                id=_sample_id("apigateway", version, o["method"], o["path"]),
                time=_TIME,
                source="abcdef1234",
            )
        ]

    return build


def _cloudwatch_logs(o: Mapping[str, Any]) -> list[Event]:
    return [
        CloudWatchLogsEvent(
            o["log_group"],
            o["log_stream"],
            o["account"],
            ["example-filter"],
            "DATA_MESSAGE",
            [
                LogEvent(digest("sample", "log", str(n))[:24], _TIME, message)
                for n, message in enumerate((o["message"], "[INFO] second log line"))
            ],
            id=digest("sample", "awslogs", o["log_group"], o["log_stream"]),
            time=_TIME,
            source=o["log_group"],
        )
    ]


def _api_call(detail_type: str | None) -> Callable[[Mapping[str, Any]], list[Event]]:
    def build(o: Mapping[str, Any]) -> list[Event]:
        service = o["event_source"].removesuffix(".amazonaws.com")
        event_id = _sample_id("cloudtrail", o["event_source"], o["event_name"])
        return [
            ApiCall(
                o["event_source"],
                o["event_name"],
                o["region"],
                {
                    "type": "IAMUser",
                    "principalId": "AIDAEXAMPLEPRINCIPAL",
                    "arn": f"arn:aws:iam::{o['account']}:user/alice",
                    "accountId": o["account"],
                    "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                    "userName": "alice",
                },
                {"bucketName": "example-bucket", "key": "reports/2024.csv"},
                None,
                "203.0.113.10",
                "aws-cli/2.15.0",
                event_id,
                "79104EXAMPLEB723",
                "AwsApiCall",
                "1.08",
                False,
                recipient_account_id=o["account"],
                extra={"managementEvent": False, "eventCategory": "Data"},
                detail_type=detail_type,
                id=event_id
                if detail_type is None
                else _sample_id("eventbridge-cloudtrail", o["event_name"]),
                time=_TIME,
                source=f"aws.{service}",
            )
        ]

    return build


def _cognito_sync(o: Mapping[str, Any]) -> list[Event]:
    pool = f"{o['region']}:{_sample_id('identity-pool')}"
    return [
        CognitoSync(
            pool,
            f"{o['region']}:{_sample_id('identity')}",
            o["dataset"],
            {
                "theme": DatasetRecord("light", "dark", "replace"),
                "draft": DatasetRecord("notes", None, "remove"),
            },
            o["region"],
            2,
            id=_sample_id("cognito-sync", o["dataset"]),
            time=datetime(1970, 1, 1, tzinfo=UTC),
            source=pool,
        )
    ]


_USER = {
    "sub": "4f1e9e3e-8a2b-4c1d-9f00-0123456789ab",
    "email": "alice@example.com",
    "email_verified": "true",
    "cognito:user_status": "CONFIRMED",
}
_SESSION = [
    {"challengeName": "SRP_A", "challengeResult": True, "challengeMetadata": None},
    {"challengeName": "PASSWORD_VERIFIER", "challengeResult": True, "challengeMetadata": None},
]

# kind -> (triggerSource, request, response) of a User Pool trigger sample.
_TRIGGERS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "pre-signup": (
        "PreSignUp_SignUp",
        {"userAttributes": {"email": "alice@example.com"}, "validationData": None},
        {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False},
    ),
    "post-confirmation": ("PostConfirmation_ConfirmSignUp", {"userAttributes": _USER}, {}),
    "pre-authentication": (
        "PreAuthentication_Authentication",
        {"userAttributes": _USER, "validationData": None, "userNotFound": False},
        {},
    ),
    "post-authentication": (
        "PostAuthentication_Authentication",
        {"userAttributes": _USER, "newDeviceUsed": False},
        {},
    ),
    "pre-token-generation": (
        "TokenGeneration_Authentication",
        {
            "userAttributes": _USER,
            "groupConfiguration": {
                "groupsToOverride": ["readers"],
                "iamRolesToOverride": [],
                "preferredRole": None,
            },
        },
        {"claimsOverrideDetails": None},
    ),
    "custom-message": (
        "CustomMessage_SignUp",
        {"userAttributes": _USER, "codeParameter": "{####}", "usernameParameter": None},
        {"smsMessage": None, "emailMessage": None, "emailSubject": None},
    ),
    "define-auth-challenge": (
        "DefineAuthChallenge_Authentication",
        {"userAttributes": _USER, "session": _SESSION, "userNotFound": False},
        {"challengeName": None, "issueTokens": False, "failAuthentication": False},
    ),
    "create-auth-challenge": (
        "CreateAuthChallenge_Authentication",
        {
            "userAttributes": _USER,
            "challengeName": "CUSTOM_CHALLENGE",
            "session": _SESSION,
            "userNotFound": False,
        },
        {
            "publicChallengeParameters": None,
            "privateChallengeParameters": None,
            "challengeMetadata": None,
        },
    ),
    "verify-auth-challenge-response": (
        "VerifyAuthChallengeResponse_Authentication",
        {
            "userAttributes": _USER,
            "privateChallengeParameters": {"answer": "42"},
            "challengeAnswer": "42",
            "userNotFound": False,
        },
        {"answerCorrect": False},
    ),
    "user-migration": (
        "UserMigration_Authentication",
        {"password": "correct horse battery staple", "validationData": None},
        {
            "userAttributes": None,
            "finalUserStatus": None,
            "messageAction": None,
            "desiredDeliveryMediums": None,
            "forceAliasCreation": None,
        },
    ),
}


def _user_pool(kind: str) -> Callable[[Mapping[str, Any]], list[Event]]:
    trigger, request, response = _TRIGGERS[kind]
    cls = TRIGGER_CLASSES[trigger.split("_", 1)[0]]

    def build(o: Mapping[str, Any]) -> list[Event]:
        pool = f"{o['region']}_{o['user_pool']}"
        return [
            cls(
                trigger,
                pool,
                o["user_name"],
                o["region"],
                "1",
                {"awsSdkVersion": "aws-sdk-js-3.0.0", "clientId": "1example23456789"},
                json.loads(json.dumps(request)),
                json.loads(json.dumps(response)),
                id=_sample_id("cognito-idp", trigger, pool, o["user_name"]),
                time=datetime(1970, 1, 1, tzinfo=UTC),
                source=pool,
            )
        ]

    return build


_RULE = SampleOption("rule", "name of the EventBridge rule", "my-schedule")
_HTTP_OPTIONS = (
    SampleOption("method", "HTTP method", "POST"),
    SampleOption("path", "request path", "/orders/o-1"),
    SampleOption("body", "request body (text)", '{"quantity": 2}'),
    _REGION,
    _ACCOUNT,
)
_CLOUDTRAIL_OPTIONS = (
    SampleOption("event_source", "the service called", "s3.amazonaws.com"),
    SampleOption("event_name", "the API action", "PutObject"),
    _REGION,
    _ACCOUNT,
)
_USER_POOL_OPTIONS = (
    SampleOption("user_pool", "user pool id (after the region and '_')", "EXAMPLE123"),
    SampleOption("user_name", "the user's name", "alice"),
    _REGION,
)

_KINDS: tuple[SampleKind, ...] = (
    SampleKind(
        "s3",
        "put",
        "an S3 ObjectCreated:Put notification",
        (
            SampleOption("bucket", "bucket name", "example-bucket"),
            SampleOption("key", "object key (not URL-encoded)", "test/key"),
            SampleOption("size", "object size in bytes", 1024, int),
            _REGION,
        ),
        _s3_put,
    ),
    SampleKind(
        "s3",
        "delete",
        "an S3 ObjectRemoved:Delete notification",
        (
            SampleOption("bucket", "bucket name", "example-bucket"),
            SampleOption("key", "object key (not URL-encoded)", "test/key"),
            _REGION,
        ),
        _s3_delete,
    ),
    SampleKind(
        "dynamodb",
        "update",
        "DynamoDB Streams records: an INSERT, a MODIFY and a REMOVE",
        (SampleOption("table", "table name", "ExampleTable"), _REGION, _ACCOUNT),
        _dynamodb_update,
    ),
    SampleKind(
        "sns",
        "notification",
        "an SNS notification",
        (
            SampleOption("topic", "topic name", "ExampleTopic"),
            SampleOption("message", "message body", "example message"),
            SampleOption("subject", "subject line ('' for none)", "example subject"),
            _REGION,
            _ACCOUNT,
        ),
        _sns_notification,
    ),
    SampleKind(
        "sqs",
        "receive-message",
        "an SQS message",
        (
            SampleOption("queue", "queue name", "ExampleQueue"),
            SampleOption("body", "message body", "Hello from SQS!"),
            _REGION,
            _ACCOUNT,
        ),
        _sqs_receive,
    ),
    SampleKind(
        "kinesis",
        "get-records",
        "a Kinesis Data Streams record",
        (
            SampleOption("stream", "stream name", "ExampleStream"),
            SampleOption("partition_key", "partition key", "partitionKey-03"),
            SampleOption(
                "data",
                "record data as text (base64-encoded in the payload)",
                "Hello, this is a test.",
            ),
            _REGION,
            _ACCOUNT,
        ),
        _kinesis_get_records,
    ),
    SampleKind(
        "cloudwatch",
        "scheduled-event",
        "an EventBridge (CloudWatch Events) Scheduled Event",
        (_RULE, _REGION, _ACCOUNT),
        _scheduled,
    ),
    SampleKind(
        "eventbridge",
        "scheduled-event",
        "an EventBridge Scheduled Event",
        (_RULE, _REGION, _ACCOUNT),
        _scheduled,
    ),
    SampleKind(
        "eventbridge",
        "event",
        "a custom EventBridge event",
        (
            SampleOption("source", "event source", "com.example.orders"),
            SampleOption("detail_type", "detail-type", "Order Placed"),
            SampleOption("detail", "detail, as JSON text", '{"order_id": "o-1"}'),
            _REGION,
            _ACCOUNT,
        ),
        _eventbridge_event,
    ),
    SampleKind(
        "apigateway",
        "aws-proxy",
        "an API Gateway REST API (payload format 1.0) proxy request",
        _HTTP_OPTIONS,
        _http_request("1.0"),
    ),
    SampleKind(
        "apigateway",
        "http-api-proxy",
        "an API Gateway HTTP API (payload format 2.0) request",
        _HTTP_OPTIONS,
        _http_request("2.0"),
    ),
    SampleKind(
        "cloudwatch",
        "logs",
        "a CloudWatch Logs subscription delivery (awslogs.data)",
        (
            SampleOption("log_group", "log group name", "/aws/lambda/example"),
            SampleOption("log_stream", "log stream name", "2024/01/01/[$LATEST]0123456789abcdef"),
            SampleOption("message", "the first log line", "[ERROR] something failed"),
            _REGION,
            _ACCOUNT,
        ),
        _cloudwatch_logs,
    ),
    SampleKind(
        "cloudtrail",
        "api-call",
        "a CloudTrail record of an API call",
        _CLOUDTRAIL_OPTIONS,
        _api_call(None),
    ),
    SampleKind(
        "eventbridge",
        "cloudtrail-api-call",
        "an EventBridge 'AWS API Call via CloudTrail' event",
        _CLOUDTRAIL_OPTIONS,
        _api_call("AWS API Call via CloudTrail"),
    ),
    SampleKind(
        "cognito",
        "sync-trigger",
        "a Cognito Sync trigger",
        (SampleOption("dataset", "dataset name", "preferences"), _REGION),
        _cognito_sync,
    ),
    *(
        SampleKind(
            "cognito-user-pool",
            kind,
            f"a Cognito User Pool {trigger} trigger",
            _USER_POOL_OPTIONS,
            _user_pool(kind),
        )
        for kind, (trigger, _, _) in _TRIGGERS.items()
    ),
)


def sample_kinds() -> tuple[SampleKind, ...]:
    """Every ``service kind`` pair :func:`generate_event` knows, in a stable order."""
    return _KINDS


def _find(service: str, kind: str | None) -> SampleKind:
    if kind is None:
        for candidate in _KINDS:
            if f"{candidate.service}-{candidate.kind}" == service.lower():
                return candidate
        service, _, rest = service.partition("-")
        kind = rest or None
    known = ", ".join(f"{k.service} {k.kind}" for k in _KINDS)
    if kind is None:
        raise ValueError(f"generate_event: no kind given for {service!r}; known: {known}")
    for candidate in _KINDS:
        if candidate.service == service.lower() and candidate.kind == kind.lower():
            return candidate
    raise ValueError(f"generate_event: unknown sample {service!r} {kind!r}; known: {known}")


def generate_event(service: str, kind: str | None = None, **options: Any) -> dict[str, Any]:
    """Build a sample Lambda payload, like ``sam local generate-event``.

    Known samples (service, kind): ``s3 put``, ``s3 delete``, ``dynamodb
    update``, ``sns notification``, ``sqs receive-message``, ``kinesis
    get-records``, ``cloudwatch scheduled-event``, ``eventbridge
    scheduled-event``, ``eventbridge event``, ``apigateway aws-proxy``,
    ``apigateway http-api-proxy``, ``cloudwatch logs``, ``cloudtrail
    api-call``, ``eventbridge cloudtrail-api-call``, ``cognito
    sync-trigger`` and ``cognito-user-pool`` with ``pre-signup``,
    ``post-confirmation``, ``pre-authentication``, ``post-authentication``,
    ``pre-token-generation``, ``custom-message``, ``define-auth-challenge``,
    ``create-auth-challenge``, ``verify-auth-challenge-response`` or
    ``user-migration``. The combined spelling ``generate_event("s3-put")``
    is accepted too.

    Options (each has a default): ``bucket``, ``key``, ``size`` (S3);
    ``table`` (DynamoDB); ``topic``, ``message``, ``subject`` (SNS);
    ``queue``, ``body`` (SQS); ``stream``, ``partition_key``, ``data``
    (Kinesis, as text); ``rule`` (scheduled events); ``source``,
    ``detail_type``, ``detail`` (JSON text; EventBridge); ``method``,
    ``path``, ``body`` (API Gateway); ``log_group``, ``log_stream``,
    ``message`` (CloudWatch Logs); ``event_source``, ``event_name``
    (CloudTrail); ``dataset`` (Cognito Sync); ``user_pool``, ``user_name``
    (Cognito User Pools); and ``region``, ``account`` where the resource
    has them.

    Args:
        service: the service (``"s3"``), or ``"service-kind"`` (``"s3-put"``).
        kind: the kind of event (``"put"``).
        **options: values for the sample's options.

    Returns:
        The payload, a JSON-serializable dict that :func:`from_lambda_event`
        accepts. The same arguments always give the same payload.

    Raises:
        ValueError: unknown service or kind, unknown option, or an option of
            the wrong type (the message lists what is accepted).

    .. versionadded:: 0.1
    """
    sample = _find(service, kind)
    values: dict[str, Any] = {}
    names = {option.name: option for option in sample.options}
    for name, value in options.items():
        option = names.get(name)
        if option is None:
            raise ValueError(
                f"generate_event({sample.service!r}, {sample.kind!r}): unknown option {name!r}; "
                f"options are: {', '.join(names)}"
            )
        if option.type is int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected a non-negative integer, got {value!r:.40}")
        elif not isinstance(value, str):
            raise ValueError(f"{name}: expected a string, got {type(value).__name__}")
        values[name] = value
    for option in sample.options:
        values.setdefault(option.name, option.default)
    return to_lambda_event(
        sample.build(values),
        region=values.get("region", DEFAULT_REGION),
        account=values.get("account", DEFAULT_ACCOUNT),
    )
