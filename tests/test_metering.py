"""Metering: usage as Lambda bills it, and its price."""

from __future__ import annotations

import logging
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventbus import (
    Bus,
    Context,
    CostEstimate,
    Event,
    ExponentialBackoff,
    LambdaPricing,
    Metering,
    MeteringError,
    Usage,
    UsageReport,
)
from eventbus._hooks import Delivery
from eventbus._metering import check_memory_mb
from eventbus.testing import FakeClock


@attrs.frozen
class Job(Event, type_name="tests.metering.Job"):
    n: int = 0


def _end(m: Metering, name: str, seconds: float, memory_mb: int = 128) -> None:
    delivery = Delivery(name, Job(), 1, "inv-1", memory_mb)
    m.on_delivery_end(delivery, None, "success", seconds, None)


# -- pricing ---------------------------------------------------------------------------


def test_worked_example_from_the_pricing_page() -> None:
    """512 MB, 3M one-second requests at $0.00001667/GB-s: $18.34 + $0.40 = $18.74."""
    pricing = LambdaPricing(price_per_gb_second=Decimal("0.00001667"))
    estimate = pricing.cost(requests=3_000_000, gb_seconds=3_000_000 * 1 * 512 / 1024)
    rounded = estimate.rounded()
    assert (rounded.compute_cost, rounded.request_cost, rounded.total) == (
        Decimal("18.34"),
        Decimal("0.40"),
        Decimal("18.74"),
    )


def test_costs_are_exact_decimals() -> None:
    """Nothing is rounded until asked: the compute cost of the worked example is 18.337."""
    pricing = LambdaPricing(price_per_gb_second=0.00001667)
    estimate = pricing.cost(requests=3_000_000, gb_seconds=1_500_000)
    assert estimate.compute_cost == Decimal("18.337")
    assert estimate.total == Decimal("18.737")


def test_default_prices_are_lambdas() -> None:
    """The defaults are $0.20 per million requests, $0.0000166667 per GB-s and the free tier."""
    p = LambdaPricing()
    assert p.price_per_million_requests == Decimal("0.20")
    assert p.price_per_gb_second == Decimal("0.0000166667")
    assert p.free_requests == 1_000_000
    assert p.free_gb_seconds == 400_000


def test_free_tier_covers_small_usage() -> None:
    """Usage within the free tier costs nothing."""
    assert LambdaPricing().cost(requests=999_999, gb_seconds=400_000).total == 0


def test_estimate_str_shows_cents() -> None:
    """str() of an estimate shows the rounded amounts."""
    estimate = CostEstimate(Decimal("0.4"), Decimal("18.337"), Decimal("18.737"))
    assert str(estimate) == "$18.74 (requests $0.40 + compute $18.34)"


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "x", None, True])
def test_bad_price_is_a_metering_error(bad: object) -> None:
    """A negative, non-finite or non-numeric price is refused with MeteringError."""
    with pytest.raises(MeteringError, match=r"price_per_gb_second"):
        LambdaPricing(price_per_gb_second=bad)


def test_negative_requests_are_refused() -> None:
    """cost() refuses negative amounts."""
    with pytest.raises(MeteringError, match=r"cost\(requests=...\)"):
        LambdaPricing().cost(requests=-1, gb_seconds=0)


@given(
    requests=st.integers(0, 10**12),
    more=st.integers(0, 10**9),
    gbs=st.decimals(0, 10**9, places=6),
)
def test_cost_never_decreases_with_usage(requests: int, more: int, gbs: Decimal) -> None:
    """More requests never cost less, and costs are never negative."""
    p = LambdaPricing()
    a = p.cost(requests=requests, gb_seconds=gbs)
    b = p.cost(requests=requests + more, gb_seconds=gbs)
    assert 0 <= a.total <= b.total
    assert a.total == a.request_cost + a.compute_cost


# -- memory sizes and granularity -------------------------------------------------------------


@pytest.mark.parametrize("size", [128, 512, 10_240])
def test_memory_sizes_in_lambdas_range_are_accepted(size: int) -> None:
    """128..10,240 MB are valid memory sizes."""
    assert check_memory_mb(size) == size


@pytest.mark.parametrize("size", [0, 127, 10_241, 256.0, "512", True])
def test_memory_sizes_outside_the_range_are_refused(size: object) -> None:
    """Anything else raises MeteringError naming the range."""
    with pytest.raises(MeteringError, match=r"memory_mb.*128.*10240"):
        check_memory_mb(size)


def test_metering_error_is_a_value_error() -> None:
    """MeteringError is also a ValueError, for code that does not know eventbus."""
    assert issubclass(MeteringError, ValueError)


@pytest.mark.parametrize("g", [0, -1, 1.5, True])
def test_bad_granularity_is_refused(g: object) -> None:
    """granularity_ms must be a whole number of milliseconds >= 1."""
    with pytest.raises(MeteringError, match=r"granularity_ms"):
        Metering(granularity_ms=g)  # type: ignore[arg-type]


def test_billing_rounds_each_attempt_up() -> None:
    """250 ms at a 100 ms granularity bills 300 ms."""
    assert Metering(granularity_ms=100).billed_ms(250.0) == 300


def test_billing_bills_at_least_one_granule() -> None:
    """An attempt that took no time still bills one granule, as Lambda does."""
    assert Metering(granularity_ms=100).billed_ms(0.0) == 100


def test_clock_arithmetic_noise_does_not_bill_an_extra_granule() -> None:
    """0.1 + 0.2 s of clock arithmetic bills 300 ms at 1 ms, not 301."""
    assert Metering().billed_ms((0.1 + 0.2) * 1000) == 300


@given(ms=st.floats(0.001, 10**7), g=st.integers(1, 1000))
def test_billed_duration_is_the_next_granule(ms: float, g: int) -> None:
    """Billed time is a multiple of the granularity, covering the duration, less than a granule over."""
    billed = Metering(granularity_ms=g).billed_ms(ms)
    assert billed % g == 0
    assert billed >= round(ms, 6)
    assert billed < round(ms, 6) + g or billed == g


# -- the hook and the report ------------------------------------------------------------------


def test_each_attempt_adds_a_request_and_its_billed_duration() -> None:
    """Two 0.25 s attempts at 512 MB, granularity 100: 600 ms billed, 0.3 GB-s."""
    m = Metering(granularity_ms=100)
    _end(m, "resize", 0.25, 512)
    _end(m, "resize", 0.25, 512)
    usage = m.report()["resize"]
    assert usage == Usage(
        requests=2, duration_ms=500.0, billed_duration_ms=600, memory_mb=512, gb_seconds=0.3
    )


def test_total_adds_subscriptions_up() -> None:
    """report.total sums requests, durations and GB-seconds over subscriptions."""
    m = Metering()
    _end(m, "a", 0.001, 1024)
    _end(m, "b", 0.002, 2048)
    total = m.report().total
    assert (total.requests, total.billed_duration_ms, total.memory_mb) == (2, 3, 2048)
    assert total.gb_seconds == pytest.approx(0.001 + 0.004)


def test_estimate_applies_the_free_tier_once() -> None:
    """The free tier applies to the total, not to each subscription."""
    report = UsageReport(
        {
            "a": Usage(requests=800_000, memory_mb=128),
            "b": Usage(requests=800_000, memory_mb=128),
        }
    )
    assert report.estimate().request_cost == Decimal("0.12")


def test_unknown_name_says_which_are_known() -> None:
    """Looking up an unmetered name lists the metered ones."""
    m = Metering()
    _end(m, "a", 0.001)
    with pytest.raises(KeyError, match=r"'nope'.*'a'"):
        m.report()["nope"]


def test_reset_forgets_usage() -> None:
    """reset() starts a new billing period."""
    m = Metering()
    _end(m, "a", 0.001)
    m.reset()
    assert len(m.report()) == 0


def test_report_log_writes_a_lambda_report_line(caplog: pytest.LogCaptureFixture) -> None:
    """report_log=True logs REPORT RequestId/Duration/Billed Duration/Memory Size per attempt."""
    m = Metering(granularity_ms=100, report_log=True)
    with caplog.at_level(logging.INFO, logger="eventbus"):
        _end(m, "resize", 0.00123, 512)
    (record,) = [r for r in caplog.records if r.getMessage().startswith("REPORT")]
    assert record.getMessage() == (
        "REPORT RequestId: inv-1 Duration: 1.23 ms Billed Duration: 100 ms Memory Size: 512 MB"
    )
    ids = [getattr(record, k) for k in ("subscription", "invocation_id", "attempt", "event_type")]
    assert ids == ["resize", "inv-1", 1, "tests.metering.Job"]


def test_bill_lists_subscriptions_and_the_estimate() -> None:
    """bill() prints one line per subscription, the total and the priced estimate."""
    m = Metering()
    _end(m, "resize", 0.25, 512)
    text = m.report().bill()
    assert "resize" in text
    assert "total" in text
    assert "= $0.00" in text


# -- on a bus ------------------------------------------------------------------------------


async def test_a_quarter_second_at_512_mb_bills_300_ms_per_attempt() -> None:
    """0.25 s of virtual time, 512 MB, granularity 100: 300 ms billed per attempt, retries too."""
    clock = FakeClock()
    retry = ExponentialBackoff(max_attempts=2, initial=1.0, jitter=False)
    calls = 0

    async def resize(event: Job, ctx: Context) -> None:
        nonlocal calls
        calls += 1
        await ctx.clock.sleep_until(ctx.clock.now() + 0.25)
        if calls == 1:
            raise RuntimeError("first attempt fails")

    async with Bus(clock=clock, retry=retry, metering=Metering(granularity_ms=100)) as bus:
        bus.subscribe(Job, resize, name="resize", memory_mb=512)
        await bus.publish(Job())
        await clock.advance(0.25)  # the first attempt
        await clock.advance(1.0)  # the retry delay
        await clock.advance(0.25)  # the second attempt
        await bus.drain()
        report = bus.usage()
    assert report["resize"] == Usage(
        requests=2, duration_ms=500.0, billed_duration_ms=600, memory_mb=512, gb_seconds=0.3
    )
    assert report[resize] == report["resize"]
    assert report.total.requests == 2


async def test_every_subscription_is_listed_even_before_its_first_attempt() -> None:
    """usage() lists each subscription with its memory size, at zero before any attempt."""

    async def idle(event: Job) -> None:
        pass

    async with Bus(metering=Metering()) as bus:
        bus.subscribe(Job, idle, name="idle", memory_mb=1024)
        assert bus.usage()["idle"] == Usage(memory_mb=1024)


async def test_invoke_is_metered() -> None:
    """A bus.invoke call is a billed request too."""

    async def echo(event: Job) -> int:
        return event.n

    async with Bus(metering=Metering()) as bus:
        bus.subscribe(Job, echo, name="echo")
        await bus.invoke("echo", Job(n=1))
        assert bus.usage()["echo"].requests == 1


def test_subscribe_refuses_a_memory_size_outside_lambdas_range() -> None:
    """subscribe(memory_mb=64) raises MeteringError naming the range."""

    async def handle(event: Job) -> None:
        pass

    with pytest.raises(MeteringError, match=r"subscribe\(memory_mb=...\).*128 and 10240"):
        Bus().subscribe(Job, handle, memory_mb=64)


def test_usage_without_metering_says_how_to_meter() -> None:
    """bus.usage() on a bus without metering= raises MeteringError with the fix."""
    with pytest.raises(MeteringError, match=r"Bus\(metering=Metering"):
        Bus().usage()


def test_metering_is_installed_as_a_hook() -> None:
    """Bus(metering=m) lists m among its hooks and as bus.metering."""
    m = Metering()
    bus = Bus(metering=m)
    assert bus.hooks == (m,)
    assert bus.metering is m


async def test_a_metering_added_as_a_hook_is_what_usage_reads() -> None:
    """bus.add_hook(Metering()) on a bus without metering= makes usage() work."""

    async def handle(event: Job) -> None:
        pass

    m = Metering()
    async with Bus() as bus:
        bus.add_hook(m)
        bus.subscribe(Job, handle, name="h")
        await bus.publish(Job())
        await bus.drain()
        assert bus.metering is m
        assert bus.usage()["h"].requests == 1
