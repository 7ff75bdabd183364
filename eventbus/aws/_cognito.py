"""Cognito Sync and User Pool trigger payloads <-> the typed Cognito events."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ._cognito_events import TRIGGER_CLASSES, CognitoSync, DatasetRecord, UserPoolTrigger
from ._common import (
    as_int,
    as_object,
    as_str,
    digest,
    fail,
    join,
    json_copy,
    opt_obj,
    opt_str,
    req_obj,
    req_str,
)

__all__ = [
    "is_sync",
    "is_user_pool",
    "parse_sync",
    "parse_user_pool",
    "render_sync",
    "render_user_pool",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SYNC_TRIGGER = "SyncTrigger"


def is_sync(payload: Mapping[str, Any]) -> bool:
    """Whether *payload* is a Cognito Sync trigger."""
    return payload.get("eventType") == SYNC_TRIGGER


def is_user_pool(payload: Mapping[str, Any]) -> bool:
    """Whether *payload* is a Cognito User Pool trigger."""
    return "triggerSource" in payload and "userPoolId" in payload


def _fingerprint(payload: Mapping[str, Any]) -> str:
    # The payload was checked to be JSON within the limits before it got here.
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_sync(payload: Mapping[str, Any]) -> CognitoSync:
    """Read a Cognito Sync trigger."""
    records: dict[str, DatasetRecord] = {}
    for key, value in opt_obj(payload, "datasetRecords", "").items():
        path = join("datasetRecords", key)
        record = as_object(value, path)
        records[key] = DatasetRecord(
            opt_str(record, "oldValue", path),
            opt_str(record, "newValue", path),
            opt_str(record, "op", path) or "replace",
        )
    pool = req_str(payload, "identityPoolId", "")
    raw_version = payload.get("version")
    fields: dict[str, Any] = {
        "identity_pool_id": pool,
        "identity_id": req_str(payload, "identityId", ""),
        "dataset": req_str(payload, "datasetName", ""),
        "region": opt_str(payload, "region", "") or "",
        "version": 2 if raw_version is None else as_int(raw_version, "version"),
    }
    records_id = {key: [r.old_value, r.new_value, r.op] for key, r in records.items()}
    return CognitoSync(
        records=records,
        id=digest("cognito-sync", _fingerprint({**fields, "records": records_id})),
        time=_EPOCH,
        source=pool,
        **fields,
    )


def render_sync(event: CognitoSync, path: str) -> dict[str, Any]:
    """Render a :class:`CognitoSync` as a Sync trigger payload."""
    records: dict[str, Any] = {}
    for key, record in event.records.items():
        if not isinstance(record, DatasetRecord):
            fail(
                join(path, f"records.{key}"),
                f"expected a DatasetRecord, got {type(record).__name__}",
            )
        records[key] = {"oldValue": record.old_value, "newValue": record.new_value, "op": record.op}
    return {
        "version": event.version,
        "eventType": SYNC_TRIGGER,
        "region": event.region,
        "identityPoolId": event.identity_pool_id,
        "identityId": event.identity_id,
        "datasetName": event.dataset,
        "datasetRecords": records,
    }


def parse_user_pool(payload: Mapping[str, Any]) -> UserPoolTrigger:
    """Read a Cognito User Pool trigger into the event class of its ``triggerSource``."""
    trigger = req_str(payload, "triggerSource", "")
    if not trigger:
        fail("triggerSource", "must not be empty")
    # A trigger this module has no class for (a newer one, or a sample's
    # placeholder) still reads, as the base class.
    cls = TRIGGER_CLASSES.get(trigger.split("_", 1)[0], UserPoolTrigger)
    pool = req_str(payload, "userPoolId", "")
    raw_version = payload.get("version")
    version = "1" if raw_version is None else raw_version
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    raw_response = payload.get("response")
    fields: dict[str, Any] = {
        "trigger_source": trigger,
        "user_pool_id": pool,
        "user_name": opt_str(payload, "userName", ""),
        "region": opt_str(payload, "region", "") or "",
        "version": as_str(version, "version"),
        "caller_context": json_copy(opt_obj(payload, "callerContext", ""), "callerContext"),
        "request": json_copy(req_obj(payload, "request", ""), "request"),
    }
    return cls(
        response={}
        if raw_response is None
        else json_copy(as_object(raw_response, "response"), "response"),
        # The id leaves the response out: a handler's response does not make
        # the trigger another event.
        id=digest("cognito-idp", _fingerprint(fields)),
        time=_EPOCH,
        source=pool,
        **fields,
    )


def render_user_pool(event: UserPoolTrigger, path: str) -> dict[str, Any]:
    """Render a :class:`UserPoolTrigger` as its trigger payload, response included."""
    if not event.trigger_source:
        fail(join(path, "trigger_source"), "must not be empty")
    return {
        "version": event.version,
        "triggerSource": event.trigger_source,
        "region": event.region,
        "userPoolId": event.user_pool_id,
        "userName": event.user_name,
        "callerContext": json_copy(dict(event.caller_context), join(path, "caller_context")),
        "request": json_copy(dict(event.request), join(path, "request")),
        "response": json_copy(dict(event.response), join(path, "response")),
    }
