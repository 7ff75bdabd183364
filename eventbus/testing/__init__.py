"""Testing kit for code that uses eventbus; also a pytest plugin (``pytest11`` entry point).

* :class:`FakeClock`: virtual time for retries, timeouts and schedules.
* :func:`capture`, :func:`expect`, :func:`assert_published`,
  :func:`expect_dead_letters`: record and assert on what a bus published
  and dead-lettered.
* :func:`payload` and :func:`same_payload`: compare events ignoring their
  envelope (``id``, ``time``, ...); ``where=`` takes an example event too.
* ``make_*`` factories: built-in events with consistent defaults.
* :func:`check_transport` and :class:`TransportFeatures`: the conformance
  suite every :class:`~eventbus.Transport` must pass.
* :mod:`eventbus.testing.strategies`: hypothesis strategies for the
  built-in events (needs ``hypothesis``, imported only there).
* The pytest plugin: the ``bus``, ``fake_clock``, ``eventbus_clock`` and
  ``eventbus_options`` fixtures and the ``eventbus_allow_dead_letters``
  marker; see the testing documentation page.

Every name is loaded on first use (PEP 562): the pytest plugin
(``eventbus.testing._plugin``) lives in this package, and a pytest session
that merely has eventbus installed must not import the kit, let alone the bus.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from ._clock import FakeClock as FakeClock
    from ._factories import make_log_record as make_log_record
    from ._factories import make_object_created as make_object_created
    from ._factories import make_object_removed as make_object_removed
    from ._factories import make_scheduled_event as make_scheduled_event
    from ._factories import make_table_change as make_table_change
    from ._factories import make_topic_message as make_topic_message
    from ._filters import Where as Where
    from ._payload import ENVELOPE_FIELDS as ENVELOPE_FIELDS
    from ._payload import Payload as Payload
    from ._payload import payload as payload
    from ._payload import same_payload as same_payload
    from ._recording import EventRecorder as EventRecorder
    from ._recording import Expectation as Expectation
    from ._recording import assert_published as assert_published
    from ._recording import capture as capture
    from ._recording import expect as expect
    from ._recording import expect_dead_letters as expect_dead_letters
    from ._transports import TRANSPORT_CASES as TRANSPORT_CASES
    from ._transports import TransportFactory as TransportFactory
    from ._transports import TransportFeatures as TransportFeatures
    from ._transports import TransportReport as TransportReport
    from ._transports import Wire as Wire
    from ._transports import check_transport as check_transport

__all__ = (
    "ENVELOPE_FIELDS",
    "TRANSPORT_CASES",
    "EventRecorder",
    "Expectation",
    "FakeClock",
    "Payload",
    "TransportFactory",
    "TransportFeatures",
    "TransportReport",
    "Where",
    "Wire",
    "assert_published",
    "capture",
    "check_transport",
    "expect",
    "expect_dead_letters",
    "make_log_record",
    "make_object_created",
    "make_object_removed",
    "make_scheduled_event",
    "make_table_change",
    "make_topic_message",
    "payload",
    "same_payload",
)

# Where each public name is defined; ``__getattr__`` imports it on first use.
_EXPORTS: dict[str, str] = {
    "ENVELOPE_FIELDS": "._payload",
    "EventRecorder": "._recording",
    "Expectation": "._recording",
    "FakeClock": "._clock",
    "Payload": "._payload",
    "TRANSPORT_CASES": "._transports",
    "TransportFactory": "._transports",
    "TransportFeatures": "._transports",
    "TransportReport": "._transports",
    "Where": "._filters",
    "Wire": "._transports",
    "assert_published": "._recording",
    "capture": "._recording",
    "check_transport": "._transports",
    "expect": "._recording",
    "expect_dead_letters": "._recording",
    "make_log_record": "._factories",
    "make_object_created": "._factories",
    "make_object_removed": "._factories",
    "make_scheduled_event": "._factories",
    "make_table_change": "._factories",
    "make_topic_message": "._factories",
    "payload": "._payload",
    "same_payload": "._payload",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'eventbus.testing' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
