"""Metering: what the bus's invocations would cost as AWS Lambda bills them.

Lambda bills each invocation (attempts, retries included) per request, and
its duration -- rounded up to a billing granularity (1 ms today, 100 ms when
Lambda launched) -- times the memory configured, in GB-seconds. A
:class:`Metering` hook adds those up per subscription, with durations on the
bus's clock (so they are exact under ``FakeClock``); :class:`LambdaPricing`
turns them into a :class:`CostEstimate`.

Money is :class:`decimal.Decimal`, exact: nothing is rounded until you ask for
:meth:`CostEstimate.rounded` (or print one).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final, final

import attrs

from ._exceptions import MeteringError
from ._hooks import Delivery, DeliveryOutcome, Hook

if TYPE_CHECKING:
    from ._bus import Bus

__all__ = [
    "DEFAULT_MEMORY_MB",
    "CostEstimate",
    "LambdaPricing",
    "Metering",
    "Usage",
    "UsageReport",
    "check_memory_mb",
]

logger = logging.getLogger("eventbus")

DEFAULT_MEMORY_MB: Final = 128
MIN_MEMORY_MB: Final = 128
MAX_MEMORY_MB: Final = 10_240
_MB_MS_PER_GB_S: Final = Decimal(1024 * 1000)
_CENT: Final = Decimal("0.01")
_MAX_GRANULARITY_MS: Final = 3_600_000


def check_memory_mb(value: object, where: str = "subscribe(memory_mb=...)") -> int:
    """Return *value* if it is a Lambda memory size in MB, else raise :class:`MeteringError`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MeteringError(
            f"{where} must be a whole number of MB between {MIN_MEMORY_MB} and "
            f"{MAX_MEMORY_MB} (Lambda's range), got {type(value).__name__} {value!r:.40}"
        )
    if not MIN_MEMORY_MB <= value <= MAX_MEMORY_MB:
        raise MeteringError(
            f"{where} must be between {MIN_MEMORY_MB} and {MAX_MEMORY_MB} MB "
            f"(Lambda's range), got {value}; pick a size in that range"
        )
    return value


_MAX_NUMBER_CHARS = 100
"""The longest numeric string a price or amount may be written in."""
_MAX_EXPONENT = 30
"""Prices and amounts stay below 1e31: far beyond any bill, well inside exact Decimal arithmetic."""


def _to_decimal(value: object, name: str) -> Decimal:
    """An exact Decimal for a price or amount: floats by their shortest repr (0.2 -> 0.2)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise MeteringError(
            f"{name} must be a number (int, float, Decimal or numeric string), "
            f"got {type(value).__name__}"
        )
    if isinstance(value, str) and len(value) > _MAX_NUMBER_CHARS:
        raise MeteringError(
            f"{name} must be a number of at most {_MAX_NUMBER_CHARS} characters, "
            f"got {len(value)} characters"
        )
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise MeteringError(f"{name} must be a number, got {value!r:.40}") from None
    if not number.is_finite() or number < 0:
        raise MeteringError(f"{name} must be a finite number >= 0, got {value!r:.40}")
    if number.adjusted() > _MAX_EXPONENT:
        raise MeteringError(
            f"{name} must be below 1e{_MAX_EXPONENT + 1} (larger amounts overflow "
            f"exact arithmetic), got {value!r:.40}"
        )
    return number


# -- usage -------------------------------------------------------------------------


@final
@attrs.frozen
class Usage:
    """What one subscription (or the whole bus) used, as Lambda would bill it.

    Attributes:
        requests: invocations billed: every attempt, retries included (and
            ``bus.invoke`` calls); a batch is one request.
        duration_ms: the attempts' durations added up, in milliseconds on
            the bus's clock.
        billed_duration_ms: each attempt's duration rounded *up* to the
            metering granularity (at least one granule), added up.
        memory_mb: the memory size configured (``subscribe(memory_mb=...)``);
            in :attr:`UsageReport.total`, the largest of them.
        gb_seconds: billed seconds times ``memory_mb / 1024``, added up per attempt.

    .. versionadded:: 0.2
    """

    requests: int = 0
    duration_ms: float = 0.0
    billed_duration_ms: int = 0
    memory_mb: int = DEFAULT_MEMORY_MB
    gb_seconds: float = 0.0


@final
class _Meter:
    """The running totals of one subscription (internal, mutable)."""

    __slots__ = ("billed_ms", "duration_ms", "mb_ms", "memory_mb", "requests")

    def __init__(self, memory_mb: int) -> None:
        self.requests = 0
        self.duration_ms = 0.0
        self.billed_ms = 0
        self.mb_ms = 0  # billed milliseconds x memory MB: GB-seconds x 1,024,000, exactly
        self.memory_mb = memory_mb

    def exact_gb_seconds(self) -> Decimal:
        return Decimal(self.mb_ms) / _MB_MS_PER_GB_S

    def usage(self) -> Usage:
        return Usage(
            requests=self.requests,
            duration_ms=self.duration_ms,
            billed_duration_ms=self.billed_ms,
            memory_mb=self.memory_mb,
            gb_seconds=float(self.exact_gb_seconds()),
        )


@final
class UsageReport(Mapping[str, Usage]):
    """Usage per subscription name, from :meth:`Bus.usage`: ``report[name]`` is a :class:`Usage`.

    Every subscription of the bus is listed (with zero usage before its
    first attempt), plus any that was metered and has since been removed.
    ``report[handler]`` also works when exactly one subscription runs that
    handler. :attr:`total` adds everything up; :meth:`estimate` prices it.

    .. versionadded:: 0.2
    """

    __slots__ = ("_exact", "_handlers", "_usage", "granularity_ms")

    def __init__(
        self,
        usage: Mapping[str, Usage],
        *,
        granularity_ms: int = 1,
        handlers: Mapping[str, Callable[..., Any]] | None = None,
        exact_gb_seconds: Mapping[str, Decimal] | None = None,
    ) -> None:
        self._usage = dict(usage)
        self.granularity_ms = granularity_ms
        self._handlers = dict(handlers or {})
        exact = dict(exact_gb_seconds or {})
        self._exact = {
            name: exact[name] if name in exact else _to_decimal(u.gb_seconds, "gb_seconds")
            for name, u in self._usage.items()
        }

    def __getitem__(self, key: str | Callable[..., Any]) -> Usage:
        if isinstance(key, str):
            try:
                return self._usage[key]
            except KeyError:
                known = ", ".join(repr(n) for n in self._usage) or "none"
                raise KeyError(
                    f"no usage for subscription {key!r}; metered subscriptions: {known}"
                ) from None
        names = [name for name, handler in self._handlers.items() if handler == key]
        if len(names) == 1:
            return self._usage[names[0]]
        label = getattr(key, "__qualname__", repr(key))
        if not names:
            raise KeyError(f"no subscription runs the handler {label}; look it up by name")
        raise KeyError(
            f"{len(names)} subscriptions run the handler {label} ({', '.join(names)}); "
            "look one up by name"
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._usage)

    def __len__(self) -> int:
        return len(self._usage)

    def exact_gb_seconds(self, name: str | None = None) -> Decimal:
        """GB-seconds as an exact Decimal, of subscription *name* or (``None``) of all."""
        if name is None:
            return sum(self._exact.values(), Decimal(0))
        return self._exact[name]

    @property
    def total(self) -> Usage:
        """Everything added up (``memory_mb`` is the largest memory size)."""
        usages = list(self._usage.values())
        return Usage(
            requests=sum(u.requests for u in usages),
            duration_ms=math.fsum(u.duration_ms for u in usages),
            billed_duration_ms=sum(u.billed_duration_ms for u in usages),
            memory_mb=max((u.memory_mb for u in usages), default=DEFAULT_MEMORY_MB),
            gb_seconds=float(self.exact_gb_seconds()),
        )

    def estimate(self, pricing: LambdaPricing | None = None) -> CostEstimate:
        """Price the total with *pricing* (default: ``LambdaPricing()``, Lambda's list prices).

        The free tier applies once, to the total -- not per subscription.
        """
        if pricing is None:
            pricing = LambdaPricing()
        elif not isinstance(pricing, LambdaPricing):
            raise TypeError(f"estimate() takes a LambdaPricing(...), got {type(pricing).__name__}")
        return pricing.cost(requests=self.total.requests, gb_seconds=self.exact_gb_seconds())

    def bill(self, pricing: LambdaPricing | None = None) -> str:
        """A printable bill: one line per subscription, the total, and the estimate."""
        estimate = self.estimate(pricing)
        header = (
            f"  {'subscription':<14}{'requests':>10}{'duration ms':>14}"
            f"{'billed ms':>12}{'memory MB':>11}{'GB-s':>14}"
        )
        lines = [header, "  " + "-" * (len(header) - 2)]

        def row(name: str, u: Usage) -> str:
            return (
                f"  {name:<14}{u.requests:>10}{u.duration_ms:>14.3f}"
                f"{u.billed_duration_ms:>12}{u.memory_mb:>11}{u.gb_seconds:>14.6f}"
            )

        lines.extend(row(name, u) for name, u in self._usage.items())
        lines.append(row("total", self.total))
        rounded = estimate.rounded()
        lines.append(
            f"  at Lambda prices (granularity {self.granularity_ms} ms, free tier applied): "
            f"requests ${rounded.request_cost} + compute ${rounded.compute_cost} "
            f"= ${rounded.total}"
        )
        prices = pricing if pricing is not None else LambdaPricing()
        gross = attrs.evolve(prices, free_requests=0, free_gb_seconds=0)
        exact = self.estimate(gross).total
        lines.append(f"  without the free tier: ${exact.normalize():f}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        total = self.total
        return (
            f"<UsageReport subscriptions={len(self)} requests={total.requests} "
            f"gb_seconds={total.gb_seconds:g}>"
        )


# -- pricing -------------------------------------------------------------------------


@final
@attrs.frozen
class CostEstimate:
    """What usage costs, in dollars, as exact Decimals.

    Attributes:
        request_cost: the price of the requests beyond the free tier.
        compute_cost: the price of the GB-seconds beyond the free tier.
        total: ``request_cost + compute_cost``.

    Nothing is rounded: :meth:`rounded` gives the amounts in cents, and
    ``str()`` shows them so.

    .. versionadded:: 0.2
    """

    request_cost: Decimal
    compute_cost: Decimal
    total: Decimal

    def rounded(self, places: int = 2) -> CostEstimate:
        """The same estimate with each amount rounded half up to *places* decimals.

        Each amount is rounded on its own: the rounded ``total`` is the exact
        total rounded, which may differ by a cent from the sum of the other
        two rounded amounts.
        """
        if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 28:
            raise MeteringError(f"rounded(places=...) must be an int in 0..28, got {places!r}")
        quantum = Decimal(1).scaleb(-places)
        return CostEstimate(
            request_cost=self.request_cost.quantize(quantum, ROUND_HALF_UP),
            compute_cost=self.compute_cost.quantize(quantum, ROUND_HALF_UP),
            total=self.total.quantize(quantum, ROUND_HALF_UP),
        )

    def __str__(self) -> str:
        r = self.rounded()
        return f"${r.total} (requests ${r.request_cost} + compute ${r.compute_cost})"


def _price_per_million(value: object) -> Decimal:
    return _to_decimal(value, "LambdaPricing(price_per_million_requests=...)")


def _price_per_gb_second(value: object) -> Decimal:
    return _to_decimal(value, "LambdaPricing(price_per_gb_second=...)")


def _free_requests(value: object) -> Decimal:
    return _to_decimal(value, "LambdaPricing(free_requests=...)")


def _free_gb_seconds(value: object) -> Decimal:
    return _to_decimal(value, "LambdaPricing(free_gb_seconds=...)")


@final
@attrs.frozen
class LambdaPricing:
    """AWS Lambda's price list (x86, on-demand), to price a :class:`UsageReport`.

    The defaults are Lambda's published prices: $0.20 per million requests,
    $0.0000166667 per GB-second, and a monthly free tier of one million
    requests and 400,000 GB-seconds. Amounts are kept as exact Decimals
    (a float such as ``0.2`` is read as the decimal it prints as).

    Example, from Lambda's pricing page: 3 million requests of one second at
    512 MB, at $0.00001667 per GB-s::

        >>> p = LambdaPricing(price_per_gb_second="0.00001667")
        >>> str(p.cost(requests=3_000_000, gb_seconds=3_000_000 * 0.5))
        '$18.74 (requests $0.40 + compute $18.34)'

    Raises:
        MeteringError: an amount is negative, not finite, or not a number.

    .. versionadded:: 0.2
    """

    price_per_million_requests: Decimal = attrs.field(
        default=Decimal("0.20"), converter=_price_per_million
    )
    price_per_gb_second: Decimal = attrs.field(
        default=Decimal("0.0000166667"), converter=_price_per_gb_second
    )
    free_requests: Decimal = attrs.field(default=Decimal(1_000_000), converter=_free_requests)
    free_gb_seconds: Decimal = attrs.field(default=Decimal(400_000), converter=_free_gb_seconds)

    def cost(self, *, requests: int | Decimal, gb_seconds: float | Decimal | str) -> CostEstimate:
        """Price *requests* and *gb_seconds*, after the free tier.

        Args:
            requests: invocations, retries included.
            gb_seconds: billed GB-seconds (``Usage.gb_seconds``).

        Returns:
            The exact :class:`CostEstimate`.

        Raises:
            MeteringError: an amount is negative, not finite, or not a number.
        """
        n = _to_decimal(requests, "cost(requests=...)")
        gbs = _to_decimal(gb_seconds, "cost(gb_seconds=...)")
        billable_requests = max(Decimal(0), n - self.free_requests)
        billable_gbs = max(Decimal(0), gbs - self.free_gb_seconds)
        request_cost = billable_requests * self.price_per_million_requests / Decimal(1_000_000)
        compute_cost = billable_gbs * self.price_per_gb_second
        return CostEstimate(
            request_cost=request_cost,
            compute_cost=compute_cost,
            total=request_cost + compute_cost,
        )


# -- the hook --------------------------------------------------------------------------


@final
class Metering(Hook):
    """Meter every delivery attempt as Lambda bills it; install with ``Bus(metering=...)``.

    A :class:`~eventbus.Hook`: at the end of each attempt it adds one
    request, the attempt's duration on the bus's clock, that duration rounded
    up to *granularity_ms* (every attempt bills at least one granule, as on
    Lambda) and the GB-seconds at the subscription's ``memory_mb``. Read the
    totals with :meth:`Bus.usage`.

    Args:
        granularity_ms: the billing granularity in milliseconds: 1 (Lambda
            today, the default) or e.g. 100 (Lambda before December 2020).
        report_log: also log a Lambda-style ``REPORT`` line per attempt
            (logger ``eventbus``, level INFO) -- ``REPORT RequestId: <id>
            Duration: 1.23 ms Billed Duration: 2 ms Memory Size: 128 MB`` --
            whose record carries ``subscription``, ``event_id``,
            ``event_type``, ``attempt`` and ``invocation_id``.

    Raises:
        MeteringError: *granularity_ms* is not a whole number of ms >= 1.

    .. versionadded:: 0.2
    """

    __slots__ = ("_granularity", "_meters", "report_log")

    def __init__(self, *, granularity_ms: int = 1, report_log: bool = False) -> None:
        if (
            isinstance(granularity_ms, bool)
            or not isinstance(granularity_ms, int)
            or not 1 <= granularity_ms <= _MAX_GRANULARITY_MS
        ):
            raise MeteringError(
                f"Metering(granularity_ms=...) must be a whole number of milliseconds "
                f"between 1 and {_MAX_GRANULARITY_MS}, got {granularity_ms!r:.40}; "
                "Lambda bills per 1 ms (100 ms before 2020)"
            )
        self._granularity = granularity_ms
        self._meters: dict[str, _Meter] = {}
        self.report_log = bool(report_log)

    @property
    def granularity_ms(self) -> int:
        """The billing granularity, in milliseconds."""
        return self._granularity

    def billed_ms(self, duration_ms: float) -> int:
        """*duration_ms* rounded up to the granularity (at least one granule)."""
        g = self._granularity
        # Rounded to the nanosecond first: clock arithmetic such as
        # 0.1 + 0.2 must not bill a whole extra granule.
        granules = math.ceil(round(duration_ms, 6) / g)
        return max(granules, 1) * g

    def on_delivery_end(
        self,
        delivery: Delivery,
        token: object,
        outcome: DeliveryOutcome,
        duration: float,
        error: BaseException | None,
    ) -> None:
        """Add the attempt to its subscription's usage (a :class:`~eventbus.Hook` method)."""
        duration_ms = max(0.0, duration * 1000.0)
        billed = self.billed_ms(duration_ms)
        meter = self._meters.get(delivery.subscription)
        if meter is None:
            meter = self._meters[delivery.subscription] = _Meter(delivery.memory_mb)
        meter.memory_mb = delivery.memory_mb
        meter.requests += 1
        meter.duration_ms += duration_ms
        meter.billed_ms += billed
        meter.mb_ms += billed * delivery.memory_mb
        if self.report_log:
            event = delivery.event
            logger.info(
                "REPORT RequestId: %s Duration: %.2f ms Billed Duration: %d ms Memory Size: %d MB",
                delivery.invocation_id,
                duration_ms,
                billed,
                delivery.memory_mb,
                extra={
                    "subscription": delivery.subscription,
                    "event_id": event.id,
                    "event_type": type(event).event_type(),
                    "attempt": delivery.attempt,
                    "invocation_id": delivery.invocation_id,
                    "outcome": outcome,
                },
            )

    def report(self, bus: Bus | None = None) -> UsageReport:
        """The usage so far, per subscription: every one of *bus*'s, plus any metered.

        :meth:`Bus.usage` calls this with its bus.
        """
        usage: dict[str, Usage] = {}
        exact: dict[str, Decimal] = {}
        handlers: dict[str, Callable[..., Any]] = {}
        if bus is not None:
            for sub in bus.subscriptions():
                meter = self._meters.get(sub.name)
                if meter is None:
                    usage[sub.name] = Usage(memory_mb=sub.memory_mb)
                    exact[sub.name] = Decimal(0)
                handlers[sub.name] = sub.handler
        for name, meter in self._meters.items():
            usage[name] = meter.usage()
            exact[name] = meter.exact_gb_seconds()
        if bus is not None:  # the bus's subscription order first
            order = {sub.name: i for i, sub in enumerate(bus.subscriptions())}
            usage = dict(sorted(usage.items(), key=lambda kv: order.get(kv[0], len(order))))
        return UsageReport(
            usage, granularity_ms=self._granularity, handlers=handlers, exact_gb_seconds=exact
        )

    def reset(self) -> None:
        """Forget the usage metered so far (e.g. at the start of a billing period)."""
        self._meters.clear()

    def __repr__(self) -> str:
        return f"Metering(granularity_ms={self._granularity}, report_log={self.report_log})"
