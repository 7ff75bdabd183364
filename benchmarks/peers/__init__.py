"""The contenders of the headline table, baseline first."""

from ._base import Adapter, Plain, Probe
from .bare import BareQueue
from .eventbus import BenchEvent, EventbusCtx, EventbusPlain
from .others import (
    AiopubsubAdapter,
    BlinkerAdapter,
    BubusAdapter,
    FaststreamAdapter,
    PyeeAdapter,
)

ADAPTERS: list[type[Adapter]] = [
    BareQueue,
    EventbusCtx,
    EventbusPlain,
    BlinkerAdapter,
    PyeeAdapter,
    AiopubsubAdapter,
    BubusAdapter,
    FaststreamAdapter,
]

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AiopubsubAdapter",
    "BareQueue",
    "BenchEvent",
    "BlinkerAdapter",
    "BubusAdapter",
    "EventbusCtx",
    "EventbusPlain",
    "FaststreamAdapter",
    "Plain",
    "Probe",
    "PyeeAdapter",
]
