"""The public surface: ``eventbus.__all__`` matches what the package really exports."""

from __future__ import annotations

import importlib
import types
import typing

import attrs
import pytest

import eventbus
import eventbus.testing

CORE_NAMES = {
    "BlockingBus",
    "Bus",
    "BusClosed",
    "BusFull",
    "Context",
    "DeadLetter",
    "DeadLetterSink",
    "DuplicateSubscription",
    "Event",
    "EventBusError",
    "ExponentialBackoff",
    "HandlerTimeout",
    "InvocationError",
    "LogRecord",
    "MemoryDeadLetters",
    "NoRetry",
    "ObjectCreated",
    "ObjectRemoved",
    "PatternError",
    "Receipt",
    "RetryPolicy",
    "ScheduleError",
    "ScheduledEvent",
    "SerializationError",
    "Subscription",
    "SubscriptionMetrics",
    "TableChange",
    "TopicMessage",
    "UnknownSubscription",
    "from_cloudevent",
    "to_cloudevent",
}


def _public_names(module: types.ModuleType) -> set[str]:
    """Public module-level names, leaving out modules (submodules and imports).

    Read through ``dir()`` and ``getattr``: the package loads its names on
    first use, so ``vars()`` holds only those touched so far.
    """
    return {
        name
        for name in dir(module)
        if not name.startswith("_") and not isinstance(getattr(module, name), types.ModuleType)
    }


def test_all_is_sorted_and_unique() -> None:
    """__all__ is a sorted tuple without duplicates."""
    assert isinstance(eventbus.__all__, tuple)
    assert list(eventbus.__all__) == sorted(set(eventbus.__all__))


def test_every_name_in_all_is_importable() -> None:
    """Each name in __all__ exists on the package."""
    missing = [name for name in eventbus.__all__ if not hasattr(eventbus, name)]
    assert missing == []


def test_all_lists_every_public_name() -> None:
    """Every public, non-module name of the package is in __all__, and nothing else."""
    assert _public_names(eventbus) == set(eventbus.__all__)


def test_star_import_gives_exactly_all() -> None:
    """``from eventbus import *`` binds exactly the names in __all__."""
    namespace: dict[str, object] = {}
    exec("from eventbus import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(eventbus.__all__)


def test_core_contract_names_are_exported() -> None:
    """The core names of the public API contract are exported."""
    assert set(eventbus.__all__) >= CORE_NAMES


def test_version_is_a_string_outside_all() -> None:
    """__version__ is available but not part of __all__."""
    assert isinstance(eventbus.__version__, str)
    assert "__version__" not in eventbus.__all__


@pytest.mark.parametrize(
    "name",
    sorted(n for n in CORE_NAMES if not attrs.has(getattr(eventbus, n))),
)
def test_exported_objects_report_the_public_module(name: str) -> None:
    """Exported classes and functions say they live in ``eventbus`` (clean reprs)."""
    assert getattr(eventbus, name).__module__ == "eventbus"


@pytest.mark.parametrize(
    "name",
    sorted(n for n in eventbus.__all__ if attrs.has(getattr(eventbus, n))),
)
def test_exported_attrs_classes_keep_resolvable_annotations(name: str) -> None:
    """attrs classes keep their defining module, so typing.get_type_hints (cattrs, ...) works."""
    cls = getattr(eventbus, name)
    assert set(attrs.fields_dict(cls)) <= set(typing.get_type_hints(cls))


def test_errors_derive_from_eventbus_error() -> None:
    """Every exported exception derives from EventBusError."""
    errors = [
        value
        for value in (getattr(eventbus, name) for name in eventbus.__all__)
        if isinstance(value, type) and issubclass(value, BaseException)
    ]
    assert errors
    assert all(issubclass(error, eventbus.EventBusError) for error in errors)


def test_testing_all_matches_its_exports() -> None:
    """eventbus.testing's __all__ lists exactly its public, non-module names, once each."""
    # Its order is ruff's (RUF022: constants first, then the rest alphabetically).
    assert len(eventbus.testing.__all__) == len(set(eventbus.testing.__all__))
    assert _public_names(eventbus.testing) == set(eventbus.testing.__all__)


def test_bridges_load_only_on_first_use() -> None:
    """Importing eventbus never imports a broker client; eventbus.NatsTransport loads it on use."""
    import subprocess
    import sys

    code = (
        "import sys, eventbus\n"
        "assert 'nats' not in sys.modules and 'redis' not in sys.modules\n"
        "from eventbus import NatsTransport, RedisStreamsTransport\n"
        "from eventbus.bridges.nats import NatsTransport as N\n"
        "assert NatsTransport is N\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_unknown_attributes_still_raise() -> None:
    """The lazy bridge lookup does not hide typos."""
    with pytest.raises(AttributeError, match="no attribute 'Buss'"):
        eventbus.Buss  # type: ignore[attr-defined]  # noqa: B018


def test_dir_lists_every_name_before_it_is_loaded() -> None:
    """``dir(eventbus)`` lists all of __all__ in a fresh interpreter, where nothing is loaded yet."""
    import subprocess
    import sys

    code = (
        "import eventbus\n"
        "assert set(eventbus.__all__) <= set(dir(eventbus)), 'missing from dir()'\n"
        "assert 'Bus' not in vars(eventbus), 'Bus loaded by import eventbus'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("name", sorted(eventbus.__all__))
def test_every_name_is_the_object_its_module_defines(name: str) -> None:
    """``eventbus.X`` is the very object of the module that defines X (lazy loading resolves it)."""
    module = importlib.import_module(eventbus._EXPORTS[name], "eventbus")
    assert getattr(eventbus, name) is getattr(module, name)
