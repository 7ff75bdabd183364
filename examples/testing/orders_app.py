"""A small order pipeline, the application that ``test_orders.py`` tests.

* ``OrderPlaced`` -> ``charge_card`` takes the payment through a gateway and
  publishes ``PaymentTaken`` (a declined card is not retried: it is
  dead-lettered at once; gateway outages are retried).
* ``PaymentTaken`` -> ``ship_order`` publishes ``OrderShipped``.
* A nightly schedule publishes ``DailyReport`` with the number of orders shipped.
* ``index_invoice`` is an existing AWS Lambda function, triggered by S3 uploads
  under ``invoices/``; on the bus it runs through ``LambdaHandler``.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from eventbus import Bus, Context, Event, ExponentialBackoff, ObjectCreated, ScheduledEvent
from eventbus.aws import LambdaContext, LambdaHandler

# -- events ------------------------------------------------------------------------------


@attrs.frozen
class OrderPlaced(Event):
    order_id: str
    email: str
    total_cents: int


@attrs.frozen
class PaymentTaken(Event):
    order_id: str
    total_cents: int


@attrs.frozen
class OrderShipped(Event):
    order_id: str


@attrs.frozen
class DailyReport(Event):
    day: str
    shipped: int


# -- the payment gateway -------------------------------------------------------------------


class CardDeclined(Exception):
    """The card was refused: retrying will not help."""


class GatewayDown(Exception):
    """The gateway did not answer: try again later."""


class Gateway(Protocol):
    async def charge(self, email: str, cents: int) -> None: ...


# -- the Lambda function (unchanged from its AWS days) --------------------------------


def index_invoice(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Index uploaded invoices: ``invoices/<customer>/<invoice id>.pdf``."""
    indexed = []
    for record in event["Records"]:
        key = record["s3"]["object"]["key"]
        customer, _, name = key.removeprefix("invoices/").partition("/")
        indexed.append({"customer": customer, "invoice": name.removesuffix(".pdf")})
    return {"indexed": indexed, "by": context.function_name}


# -- wiring ----------------------------------------------------------------------------------


@attrs.define
class Shop:
    """The handlers, sharing a gateway and a count of orders shipped today."""

    gateway: Gateway
    shipped_today: int = 0

    async def charge_card(self, event: OrderPlaced, ctx: Context) -> None:
        await self.gateway.charge(event.email, event.total_cents)
        await ctx.publish(PaymentTaken(event.order_id, event.total_cents))

    async def ship_order(self, event: PaymentTaken, ctx: Context) -> None:
        self.shipped_today += 1
        await ctx.publish(OrderShipped(event.order_id))

    async def send_report(self, event: ScheduledEvent, ctx: Context) -> None:
        day = event.scheduled_time.date().isoformat()
        await ctx.publish(DailyReport(day, self.shipped_today))
        self.shipped_today = 0


def wire(bus: Bus, gateway: Gateway) -> Shop:
    """Subscribe the shop's handlers and schedules to *bus*."""
    shop = Shop(gateway)
    bus.subscribe(
        OrderPlaced,
        shop.charge_card,
        name="charge_card",
        retry=ExponentialBackoff(max_attempts=4, initial=1.0, retry_on=(GatewayDown,)),
    )
    bus.subscribe(PaymentTaken, shop.ship_order, name="ship_order")
    bus.subscribe(ScheduledEvent, shop.send_report, name="send_report", where={"rule": ["nightly"]})
    bus.schedule("cron(0 2 * * ? *)", name="nightly")
    bus.subscribe(
        ObjectCreated,
        LambdaHandler(index_invoice, function_name="index-invoice"),
        where={"key": [{"prefix": "invoices/"}]},
    )
    return shop
