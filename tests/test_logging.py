"""Logs: records about deliveries carry the invocation's ids; Lambda-style REPORT lines."""

from __future__ import annotations

import logging
import re

import attrs
import pytest

from eventbus import Bus, Context, Delivery, Event, Hook, Metering, NoRetry

IDS = ("subscription", "event_id", "event_type", "attempt", "invocation_id")


@attrs.frozen
class Upload(Event, type_name="tests.logging.Upload"):
    key: str = "k"


async def test_ctx_logger_records_carry_the_invocation_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ctx.logger adds subscription, event id and type, attempt and invocation id."""
    seen: list[str] = []

    async def handle(event: Upload, ctx: Context) -> None:
        seen.append(ctx.invocation_id)
        ctx.logger.info("handling %s", event.key)

    with caplog.at_level(logging.INFO, logger="eventbus.handler"):
        async with Bus() as bus:
            bus.subscribe(Upload, handle, name="up")
            receipt = await bus.publish(Upload())
            await bus.drain()
    (record,) = [r for r in caplog.records if r.name == "eventbus.handler"]
    assert [getattr(record, k) for k in IDS] == [
        "up",
        receipt.event_id,
        "tests.logging.Upload",
        1,
        seen[0],
    ]


async def test_dead_letter_records_carry_the_delivery_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The bus's dead-letter error record carries subscription, event id and type, attempt."""

    async def boom(event: Upload) -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="eventbus"):
        async with Bus(retry=NoRetry()) as bus:
            bus.subscribe(Upload, boom, name="boom")
            receipt = await bus.publish(Upload())
            await bus.drain()
    (record,) = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert [getattr(record, k) for k in IDS[:4]] == [
        "boom",
        receipt.event_id,
        "tests.logging.Upload",
        1,
    ]
    assert hasattr(record, "invocation_id")


async def test_report_lines_are_logged_per_invocation(caplog: pytest.LogCaptureFixture) -> None:
    """Metering(report_log=True) logs one REPORT line per attempt, its RequestId the invocation id."""
    seen: list[str] = []

    async def handle(event: Upload, ctx: Context) -> None:
        seen.append(ctx.invocation_id)

    with caplog.at_level(logging.INFO, logger="eventbus"):
        async with Bus(metering=Metering(report_log=True)) as bus:
            bus.subscribe(Upload, handle, name="up", memory_mb=256)
            await bus.publish(Upload())
            await bus.publish(Upload())
            await bus.drain()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("REPORT")]
    pattern = re.compile(
        r"REPORT RequestId: (\S+) Duration: \d+\.\d\d ms Billed Duration: \d+ ms "
        r"Memory Size: 256 MB"
    )
    ids = []
    for line in lines:
        match = pattern.fullmatch(line)
        assert match is not None, line
        ids.append(match.group(1))
    assert ids == seen


async def test_report_lines_are_off_by_default(caplog: pytest.LogCaptureFixture) -> None:
    """Without report_log, metering logs nothing."""

    async def handle(event: Upload) -> None:
        pass

    with caplog.at_level(logging.DEBUG, logger="eventbus"):
        async with Bus(metering=Metering()) as bus:
            bus.subscribe(Upload, handle, name="up")
            await bus.publish(Upload())
            await bus.drain()
    assert not [r for r in caplog.records if r.getMessage().startswith("REPORT")]


async def test_hook_failure_records_carry_the_delivery_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failing hook is logged with the delivery's subscription, event and invocation ids."""

    class Broken(Hook):
        def on_delivery_start(self, delivery: Delivery) -> object:
            raise ValueError("broken hook")

    seen: list[str] = []

    async def handle(event: Upload, ctx: Context) -> None:
        seen.append(ctx.invocation_id)

    with caplog.at_level(logging.ERROR, logger="eventbus"):
        async with Bus(hooks=[Broken()]) as bus:
            bus.subscribe(Upload, handle, name="up")
            receipt = await bus.publish(Upload())
            await bus.drain()
    (record,) = [r for r in caplog.records if "on_delivery_start" in r.getMessage()]
    assert [getattr(record, k) for k in IDS] == [
        "up",
        receipt.event_id,
        "tests.logging.Upload",
        1,
        seen[0],
    ]


async def test_destination_failure_records_carry_the_delivery_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A destination that raises is logged with the subscription and event ids."""

    def broken(record: object) -> None:
        raise RuntimeError("destination down")

    async def handle(event: Upload) -> None:
        pass

    with caplog.at_level(logging.ERROR, logger="eventbus"):
        async with Bus() as bus:
            bus.subscribe(Upload, handle, name="up", on_success=broken)
            receipt = await bus.publish(Upload())
            await bus.drain()
    (record,) = [r for r in caplog.records if "failed to receive" in r.getMessage()]
    assert [getattr(record, k) for k in IDS[:4]] == [
        "up",
        receipt.event_id,
        "tests.logging.Upload",
        1,
    ]
