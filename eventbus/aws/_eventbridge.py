"""EventBridge events <-> :class:`~eventbus.ScheduledEvent` / :class:`~eventbus.aws.EventBridgeEvent`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._events import ScheduledEvent
from ._common import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    Arn,
    RenderOptions,
    account_of,
    as_list,
    as_object,
    as_str,
    digest,
    fail,
    format_iso,
    json_copy,
    json_text,
    now_utc,
    opt_str,
    parse_iso,
    rebuild_arn,
    region_of,
    req_str,
    source_arn,
)
from ._events import EventBridgeEvent

__all__ = ["parse_event", "render_event"]

SCHEDULED = "Scheduled Event"
EVENTS_SOURCE = "aws.events"
#: EventBridge Scheduler's own scheduled events: a schedule ARN, and detail the JSON text "{}".
SCHEDULER_SOURCE = "aws.scheduler"


def parse_event(payload: Mapping[str, Any]) -> ScheduledEvent | EventBridgeEvent:
    """Convert an EventBridge event (one per invocation) to a typed event."""
    detail_type = req_str(payload, "detail-type", "")
    source = req_str(payload, "source", "")
    if not source:
        fail("source", "must not be empty")
    raw_time = payload.get("time")
    time = now_utc() if raw_time is None else parse_iso(raw_time, "time")
    raw_id = payload.get("id")
    event_id = (
        digest("eventbridge", source, detail_type, format_iso(time))
        if raw_id is None
        else as_str(raw_id, "id")
    )
    raw_resources = payload.get("resources")
    resources = [
        as_str(item, f"resources[{i}]")
        for i, item in enumerate(
            as_list([] if raw_resources is None else raw_resources, "resources")
        )
    ]
    if detail_type == SCHEDULED and source in (EVENTS_SOURCE, SCHEDULER_SOURCE):
        if not resources:
            fail("resources", "missing; a Scheduled Event names the rule that fired it")
        if source == SCHEDULER_SOURCE:
            rule = _schedule_name(resources[0], "resources[0]")
        else:
            rule = _rule_name(resources[0], "resources[0]")
        return ScheduledEvent(rule, time, id=event_id, time=time, source=resources[0])
    raw_detail = payload.get("detail")
    if isinstance(raw_detail, str):
        # EventBridge Scheduler and Pipes deliver detail as JSON text.
        raw_detail = json_text(raw_detail, "detail")
    detail = {} if raw_detail is None else json_copy(as_object(raw_detail, "detail"), "detail")
    return EventBridgeEvent(
        detail_type,
        detail,
        resources,
        opt_str(payload, "account", "") or DEFAULT_ACCOUNT,
        opt_str(payload, "region", "") or DEFAULT_REGION,
        id=event_id,
        time=time,
        source=source,
    )


def _rule_name(arn_text: str, path: str) -> str:
    arn = Arn.parse(arn_text)
    if arn is None or arn.service != "events" or not arn.resource.startswith("rule/"):
        fail(
            path,
            f"{arn_text!r:.80} is not an EventBridge rule ARN "
            "(arn:aws:events:<region>:<account>:rule/<name>)",
        )
    name = arn.resource.removeprefix("rule/")
    if not name:
        fail(path, f"{arn_text!r:.80} names no rule")
    return name


def _schedule_name(arn_text: str, path: str) -> str:
    arn = Arn.parse(arn_text)
    if arn is None or arn.service != "scheduler" or not arn.resource.startswith("schedule/"):
        fail(
            path,
            f"{arn_text!r:.80} is not an EventBridge Scheduler schedule ARN "
            "(arn:aws:scheduler:<region>:<account>:schedule/<group>/<name>)",
        )
    name = arn.resource.rsplit("/", 1)[-1]
    if not name or arn.resource.count("/") != 2:
        fail(path, f"{arn_text!r:.80} names no schedule (schedule/<group>/<name>)")
    return name


def render_event(
    event: ScheduledEvent | EventBridgeEvent, path: str, options: RenderOptions
) -> dict[str, Any]:
    """Render a :class:`ScheduledEvent` or :class:`EventBridgeEvent` as an EventBridge event."""
    if isinstance(event, ScheduledEvent):
        return _render_scheduled(event, path, options)
    if not event.source:
        fail(
            f"{path}.source",
            "an EventBridge event needs a source, e.g. EventBridgeEvent(..., source='com.example.orders')",
        )
    detail = json_copy(dict(event.detail), f"{path}.detail")
    return {
        "version": "0",
        "id": event.id,
        "detail-type": event.detail_type,
        "source": event.source,
        "account": event.account or options.account,
        "time": format_iso(event.time, fraction=False),
        "region": event.region or options.region,
        "resources": list(event.resources),
        "detail": detail,
    }


def _render_scheduled(event: ScheduledEvent, path: str, options: RenderOptions) -> dict[str, Any]:
    if not event.rule:
        fail(f"{path}.rule", "must not be empty")
    scheduler = source_arn(event.source, "scheduler")
    if scheduler is not None and scheduler.resource.rsplit("/", 1)[-1] == event.rule:
        return {
            "version": "0",
            "id": event.id,
            "detail-type": SCHEDULED,
            "source": SCHEDULER_SOURCE,
            "account": scheduler.account or options.account,
            "time": format_iso(event.scheduled_time, fraction=False),
            "region": scheduler.region or options.region,
            "resources": [event.source],
            "detail": "{}",
        }
    arn = event.source
    current = source_arn(event.source, "events")
    if current is None or current.resource != f"rule/{event.rule}":
        arn = str(rebuild_arn(event.source, "events", f"rule/{event.rule}", options))
    return {
        "version": "0",
        "id": event.id,
        "detail-type": SCHEDULED,
        "source": EVENTS_SOURCE,
        "account": account_of(arn, options),
        "time": format_iso(event.scheduled_time, fraction=False),
        "region": region_of(arn, options),
        "resources": [arn],
        "detail": {},
    }
