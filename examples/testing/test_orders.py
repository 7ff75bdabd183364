"""Tests of orders_app, written as an application's own test suite would be.

They use the eventbus pytest plugin, which pytest loads by itself once
eventbus is installed: the ``bus`` and ``fake_clock`` fixtures, ``capture``,
``expect``, ``assert_published``, ``expect_dead_letters``, hypothesis
strategies for AWS-shaped events, and ``LambdaHandler`` running an
unchanged Lambda function on a generated S3 payload.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from orders_app import (
    CardDeclined,
    DailyReport,
    GatewayDown,
    OrderPlaced,
    OrderShipped,
    PaymentTaken,
    index_invoice,
    wire,
)

from eventbus import Bus, ObjectCreated
from eventbus.aws import LambdaContext, from_lambda_event, generate_event, to_lambda_event
from eventbus.testing import (
    FakeClock,
    assert_published,
    capture,
    expect,
    expect_dead_letters,
    strategies,
)


class FakeGateway:
    """Declines cards of customers at declined.example; fails the first *outages* calls."""

    def __init__(self, outages: int = 0) -> None:
        self.outages = outages
        self.charges: list[tuple[str, int]] = []

    async def charge(self, email: str, cents: int) -> None:
        if self.outages:
            self.outages -= 1
            raise GatewayDown("gateway timed out")
        if email.endswith("@declined.example"):
            raise CardDeclined(f"card of {email} declined")
        self.charges.append((email, cents))


async def test_a_paid_order_is_shipped(bus: Bus) -> None:
    """Placing an order charges the card and ships it."""
    gateway = FakeGateway()
    wire(bus, gateway)
    shipped = expect(bus, OrderShipped, where={"order_id": ["o-1"]})
    await bus.publish(OrderPlaced("o-1", "ada@example.com", 4200))
    assert (await shipped).order_id == "o-1"
    assert gateway.charges == [("ada@example.com", 4200)]


async def test_every_payment_is_recorded(bus: Bus) -> None:
    """capture() records what the handlers publish."""
    wire(bus, FakeGateway())
    payments = capture(bus, PaymentTaken)
    for n in range(3):
        await bus.publish(OrderPlaced(f"o-{n}", "ada@example.com", 100 * n))
    await bus.drain()
    assert sorted(p.total_cents for p in payments) == [0, 100, 200]
    assert_published(bus, OrderShipped, count=3)


async def test_a_declined_card_is_dead_lettered_without_retries(bus: Bus) -> None:
    """CardDeclined is not retried; the order is neither paid nor shipped."""
    wire(bus, FakeGateway())
    await bus.publish(OrderPlaced("o-13", "bob@declined.example", 999))
    await bus.drain()
    [letter] = expect_dead_letters(bus, OrderPlaced, subscription="charge_card", count=1)
    assert letter.error.error_type == "CardDeclined"
    assert letter.attempts == 1
    assert_published(bus, PaymentTaken, count=0)


async def test_gateway_outages_are_retried_in_virtual_time(bus: Bus, fake_clock: FakeClock) -> None:
    """Two outages, then success: the retries run when the fake clock advances."""
    gateway = FakeGateway(outages=2)
    wire(bus, gateway)
    shipped = expect(bus, OrderShipped, timeout=60)
    await bus.publish(OrderPlaced("o-7", "ada@example.com", 500))
    await fake_clock.advance(60)
    assert (await shipped).order_id == "o-7"
    assert bus.metrics()["charge_card"].retries == 2


@pytest.fixture
def fake_clock() -> FakeClock:
    """Start just before 02:00 UTC, when the nightly report runs."""
    return FakeClock(start=datetime(2024, 3, 1, 1, 59, tzinfo=UTC))


async def test_the_nightly_report_counts_the_days_orders(bus: Bus, fake_clock: FakeClock) -> None:
    """At 02:00 the report says how many orders shipped since the last one."""
    wire(bus, FakeGateway())
    for n in range(2):
        await bus.publish(OrderPlaced(f"o-{n}", "ada@example.com", 100))
    await bus.drain()
    report = expect(bus, DailyReport, timeout=120)
    await fake_clock.advance(120)
    assert (await report).shipped == 2
    assert (await report).day == "2024-03-01"


async def test_the_lambda_function_indexes_an_uploaded_invoice(bus: Bus) -> None:
    """An S3 upload under invoices/ runs the unchanged Lambda function."""
    wire(bus, FakeGateway())
    payload = generate_event("s3", "put", bucket="shop", key="invoices/acme/inv-1.pdf")
    [upload] = from_lambda_event(payload)
    assert isinstance(upload, ObjectCreated)
    assert bus.explain(upload)["index-invoice"].matched
    response = await bus.invoke("index-invoice", upload)
    assert response == {
        "indexed": [{"customer": "acme", "invoice": "inv-1"}],
        "by": "index-invoice",
    }


invoice_keys = st.builds(
    "invoices/{}/{}.pdf".format,
    st.from_regex(r"\A[a-z]{1,10}\Z"),
    st.from_regex(r"\A[a-z0-9-]{1,12}\Z"),
)


@given(strategies.lambda_payloads(strategies.object_created(key=invoice_keys)))
def test_every_uploaded_invoice_is_indexed(payload: dict[str, object]) -> None:
    """Whatever S3 sends (one or many records), each invoice is indexed once."""
    response = index_invoice(payload, LambdaContext("index-invoice"))
    assert len(response["indexed"]) == len(from_lambda_event(payload))


@given(strategies.object_created(bucket="shop", key=invoice_keys))
def test_the_customer_is_the_first_folder(upload: ObjectCreated) -> None:
    """The customer comes from the key, for any valid invoice upload."""
    response = index_invoice(to_lambda_event([upload]), LambdaContext("index-invoice"))
    [entry] = response["indexed"]
    assert upload.key.startswith(f"invoices/{entry['customer']}/")


async def test_capture_and_expect_without_naming_the_bus(bus: Bus) -> None:
    """Inside a test using the bus fixture, capture(EventType) and expect(EventType) use it."""
    placed = capture(OrderPlaced)
    waiting = expect(OrderPlaced, where={"order_id": ["o-77"]})
    await bus.publish(OrderPlaced("o-77", email="ada@example.com", total_cents=1200))
    event = await waiting
    assert event.order_id == "o-77"
    assert [e.order_id for e in placed] == ["o-77"]
