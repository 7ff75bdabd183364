"""Publishing with exactly one where= pattern routes as the general filter path does."""

from __future__ import annotations

import attrs
import pytest

from eventbus import Bus, Event


@attrs.frozen
class Upload(Event):
    """An event with one string field."""

    key: str


@attrs.frozen
class LargeUpload(Upload):
    """A subclass, so the pattern meets a type it was not bound to first."""


async def _nothing(event: Upload) -> None:
    return None


async def _route(event: Upload, *, filtered_first: bool, general: bool) -> tuple[str, ...]:
    """The receipt's subscriptions, and check every named subscription accepted the event."""
    async with Bus() as bus:

        def filtered() -> None:
            bus.subscribe(Upload, _nothing, where={"key": [{"prefix": "a/"}]}, name="f")
            if general:  # a second pattern that never matches: the plan takes the index path
                bus.subscribe(Upload, _nothing, where={"key": ["never"]}, name="g")

        if filtered_first:
            filtered()
        bus.subscribe(Upload, _nothing, name="all")
        if not filtered_first:
            filtered()
        receipt = await bus.publish(event)
        await bus.drain()
        metrics = bus.metrics()
        accepted = {name for name, m in metrics.items() if m.accepted}
        assert accepted == set(receipt.subscriptions)
        return receipt.subscriptions


@pytest.mark.parametrize("filtered_first", [True, False])
@pytest.mark.parametrize(
    "event", [Upload("a/1"), Upload("b/1"), LargeUpload("a/2"), LargeUpload("b/2")]
)
async def test_one_pattern_routes_as_the_index_path(event: Upload, filtered_first: bool) -> None:
    """One where= pattern gives the receipt and deliveries of the general filter path."""
    one = await _route(event, filtered_first=filtered_first, general=False)
    general = await _route(event, filtered_first=filtered_first, general=True)
    assert one == general
    assert ("f" in one) is event.key.startswith("a/")
