"""OpenTelemetry tracing and metrics for a bus (``pip install eventbus[otel]``).

:func:`instrument` installs a :class:`~eventbus.Hook` that follows
OpenTelemetry's messaging semantic conventions:

* a ``PRODUCER`` span ``publish <event type>`` per publish, whose W3C trace
  context is stamped on the event (``Event.traceparent`` /
  ``Event.tracestate``), so it travels with the event through ``ctx.publish``
  follow-ups, CloudEvents JSON (``to_cloudevent``), broker transports and the
  HTTP gateway;
* a ``CONSUMER`` span ``process <event type>`` per delivery attempt, a child
  of the publishing span, current while the handler runs (the handler's own
  spans and its ``ctx.publish`` follow-ups nest under it); a failed attempt
  sets the span status to ERROR and records the exception;
* metrics: ``eventbus.invocations`` (counter, by subscription and outcome),
  ``messaging.process.duration`` (histogram, seconds on the bus's clock),
  ``eventbus.queue.depth`` (observable gauge, per subscription),
  ``messaging.client.sent.messages``, ``eventbus.retries`` and
  ``eventbus.dead_letters`` (counters); with a broker transport,
  ``eventbus.transport.connected`` (1 or 0) and ``eventbus.transport.buffered``
  (observable gauges) and ``eventbus.transport.reconnects`` (observable
  counter), by ``eventbus.transport`` (``nats``, ``redis``, ``mqtt``).

Only ``opentelemetry-api`` is needed at run time; bring the SDK (or any
other implementation) to export. Without one, the API's no-op tracer costs
little and stamps nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, final

import attrs

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "eventbus.otel needs the OpenTelemetry API: pip install 'eventbus[otel]'"
    ) from exc

from ._bus import Bus
from ._events import Event
from ._hooks import Delivery, DeliveryOutcome

if TYPE_CHECKING:
    from ._deadletter import DeadLetter

__all__ = ["Instrumentation", "extract", "instrument"]

SYSTEM: Final = "eventbus"
"""The value of ``messaging.system`` on every span and metric."""

_PROPAGATOR: Final = TraceContextTextMapPropagator()


def _version() -> str:
    try:
        return version("eventbus")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def _error_type(error: BaseException) -> str:
    cls = type(error)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _carrier(event: Event) -> dict[str, str]:
    carrier: dict[str, str] = {}
    traceparent = getattr(event, "traceparent", None)
    if traceparent:
        carrier["traceparent"] = traceparent
        tracestate = getattr(event, "tracestate", None)
        if tracestate:
            carrier["tracestate"] = tracestate
    return carrier


def extract(event: Event) -> otel_context.Context | None:
    """The trace context *event* carries (``traceparent``/``tracestate``), or ``None``.

    Use it to continue a trace from an event in code of your own, e.g.
    ``tracer.start_span(..., context=eventbus.otel.extract(event))``.

    .. versionadded:: 0.2
    """
    carrier = _carrier(event)
    if not carrier:
        return None
    ctx = _PROPAGATOR.extract(carrier)
    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return None
    return ctx


@final
class Instrumentation:
    """OpenTelemetry instrumentation installed on one bus, from :func:`instrument`.

    A :class:`~eventbus.Hook`. Call :meth:`uninstrument` (or leave its
    ``with`` block) to remove it; the queue-depth gauge then reports nothing.

    .. versionadded:: 0.2
    """

    __slots__ = (
        "_bus",
        "_dead_letters",
        "_duration",
        "_installed",
        "_invocations",
        "_retries",
        "_sent",
        "_tracer",
        "bus",
    )

    def __init__(
        self,
        bus: Bus,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.bus = bus
        self._tracer = trace.get_tracer("eventbus", _version(), tracer_provider=tracer_provider)
        meter = metrics.get_meter("eventbus", _version(), meter_provider=meter_provider)
        self._invocations = meter.create_counter(
            "eventbus.invocations",
            unit="{invocation}",
            description="Delivery attempts (invocations), by subscription and outcome.",
        )
        self._duration = meter.create_histogram(
            "messaging.process.duration",
            unit="s",
            description="Duration of delivery attempts, on the bus's clock.",
        )
        self._sent = meter.create_counter(
            "messaging.client.sent.messages",
            unit="{message}",
            description="Events published.",
        )
        self._retries = meter.create_counter(
            "eventbus.retries", unit="{attempt}", description="Attempts scheduled after a failure."
        )
        self._dead_letters = meter.create_counter(
            "eventbus.dead_letters", unit="{event}", description="Events dead-lettered."
        )
        meter.create_observable_gauge(
            "eventbus.queue.depth",
            callbacks=[self._observe_queue_depth],
            unit="{event}",
            description="Events waiting for a worker, per subscription.",
        )
        meter.create_observable_gauge(
            "eventbus.transport.connected",
            callbacks=[self._observe_transport("connected")],
            unit="1",
            description="1 while the broker transport holds a working connection, else 0.",
        )
        meter.create_observable_gauge(
            "eventbus.transport.buffered",
            callbacks=[self._observe_transport("buffered")],
            unit="{event}",
            description="Events waiting in the publish buffer for the broker.",
        )
        meter.create_observable_counter(
            "eventbus.transport.reconnects",
            callbacks=[self._observe_transport("reconnects")],
            unit="{reconnect}",
            description="Times the broker connection was lost and made again.",
        )
        self._installed = False

    # -- lifecycle ---------------------------------------------------------------------

    def _install(self) -> None:
        self.bus.add_hook(self)
        self._installed = True

    def uninstrument(self) -> None:
        """Remove the instrumentation from its bus (idempotent)."""
        if self._installed:
            self._installed = False
            self.bus.remove_hook(self)

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstrument()

    # -- hook methods --------------------------------------------------------------------

    def on_publish(self, event: Event) -> Event | None:
        """Start and end the PRODUCER span; stamp its context on the event."""
        event_type = type(event).event_type()
        parent: otel_context.Context | None = None
        if not trace.get_current_span().get_span_context().is_valid:
            parent = extract(event)  # e.g. an event decoded from a traced CloudEvent
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "publish",
            "messaging.operation.name": "publish",
            "messaging.destination.name": event_type,
            "messaging.message.id": event.id,
        }
        if event.correlation_id is not None:
            attributes["messaging.message.conversation_id"] = event.correlation_id
        span = self._tracer.start_span(
            f"publish {event_type}", context=parent, kind=SpanKind.PRODUCER, attributes=attributes
        )
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        span.end()
        self._sent.add(1, {"messaging.system": SYSTEM, "messaging.destination.name": event_type})
        traceparent = carrier.get("traceparent")
        if traceparent is None or traceparent == getattr(event, "traceparent", None):
            return None
        return attrs.evolve(event, traceparent=traceparent, tracestate=carrier.get("tracestate"))

    def on_delivery_start(self, delivery: Delivery) -> tuple[trace.Span, object]:
        """Start the CONSUMER span and make it current for the handler."""
        event = delivery.event
        event_type = type(event).event_type()
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": event_type,
            "messaging.destination.subscription.name": delivery.subscription,
            "messaging.consumer.group.name": delivery.subscription,
            "messaging.message.id": event.id,
            "eventbus.subscription": delivery.subscription,
            "eventbus.attempt": delivery.attempt,
            "eventbus.invocation_id": delivery.invocation_id,
        }
        if event.correlation_id is not None:
            attributes["messaging.message.conversation_id"] = event.correlation_id
        if delivery.batch_size != 1:
            attributes["messaging.batch.message_count"] = delivery.batch_size
        span = self._tracer.start_span(
            f"process {event_type}",
            context=extract(event),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        return span, token

    def on_delivery_end(
        self,
        delivery: Delivery,
        token: Any,
        outcome: DeliveryOutcome,
        duration: float,
        error: BaseException | None,
    ) -> None:
        """End the CONSUMER span (ERROR on failure) and record the metrics."""
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.destination.name": type(delivery.event).event_type(),
            "messaging.destination.subscription.name": delivery.subscription,
            "eventbus.outcome": outcome,
        }
        if error is not None and outcome != "cancelled":
            attributes["error.type"] = _error_type(error)
        self._invocations.add(1, attributes)
        self._duration.record(duration, attributes)
        if token is None:  # on_delivery_start failed
            return
        span, context_token = token
        try:
            span.set_attribute("eventbus.outcome", outcome)
            if error is not None and outcome != "cancelled":
                span.set_attribute("error.type", _error_type(error))
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            span.end()
        finally:
            otel_context.detach(context_token)

    def on_retry(self, subscription: str, event: Event, attempt: int, delay: float) -> None:
        """Count a scheduled retry."""
        self._retries.add(
            1,
            {"messaging.system": SYSTEM, "messaging.destination.subscription.name": subscription},
        )

    def on_dead_letter(self, letter: DeadLetter) -> None:
        """Count a dead letter, by condition."""
        self._dead_letters.add(
            1,
            {
                "messaging.system": SYSTEM,
                "messaging.destination.subscription.name": letter.subscription,
                "eventbus.condition": letter.condition,
            },
        )

    def _observe_queue_depth(
        self, options: metrics.CallbackOptions
    ) -> Iterable[metrics.Observation]:
        if not self._installed:
            return []
        return [
            metrics.Observation(
                m.queued,
                {"messaging.system": SYSTEM, "messaging.destination.subscription.name": name},
            )
            for name, m in self.bus.metrics().items()
        ]

    def _observe_transport(
        self, field: str
    ) -> Callable[[metrics.CallbackOptions], Iterable[metrics.Observation]]:
        """A callback observing one field of the broker connection (nothing in memory)."""

        def observe(options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
            if not self._installed:
                return []
            status = self.bus._reported_status()  # never raises: a broken status() is "down"
            if status is None:
                return []
            return [
                metrics.Observation(
                    int(getattr(status, field)),
                    {"messaging.system": SYSTEM, "eventbus.transport": status.transport},
                )
            ]

        return observe

    def __repr__(self) -> str:
        state = "installed" if self._installed else "removed"
        return f"<eventbus.otel.Instrumentation {state} on {self.bus!r}>"


def instrument(
    bus: Bus,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> Instrumentation:
    """Trace and measure *bus* with OpenTelemetry.

    Args:
        bus: the bus to instrument (before or while it runs).
        tracer_provider: where spans go (default: the global one,
            ``opentelemetry.trace.get_tracer_provider()``).
        meter_provider: where metrics go (default: the global one).

    Returns:
        The :class:`Instrumentation`; ``instrumentation.uninstrument()``
        removes it (it is also a context manager).

    Raises:
        TypeError: *bus* is not a :class:`~eventbus.Bus`.

    .. versionadded:: 0.2
    """
    if not isinstance(bus, Bus):
        raise TypeError(f"instrument() takes an eventbus.Bus, got {type(bus).__name__}")
    instrumentation = Instrumentation(bus, tracer_provider, meter_provider)
    instrumentation._install()
    return instrumentation
