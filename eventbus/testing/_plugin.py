"""The pytest plugin registered under the ``pytest11`` entry point ``eventbus``.

Fixtures: ``bus`` (a started :class:`~eventbus.Bus`, drained at teardown,
failing the test on unexpected dead letters), ``fake_clock`` (a
:class:`~eventbus.testing.FakeClock`), and the override points
``eventbus_clock`` and ``eventbus_options``. Marker:
``eventbus_allow_dead_letters``. Ini option: ``eventbus_drain_timeout``.

The ``bus`` fixture itself is a plain fixture that hands each test the bus
of the async fixture matching the test's runner: ``_eventbus_asyncio_bus``
(a pytest-asyncio fixture, so strict mode serves it too) or
``_eventbus_anyio_bus`` (a plain async fixture that anyio's plugin runs for
tests using ``anyio_backend``). On asyncio the bus's ``async with`` block
runs in a task of its own: pytest-asyncio runs a fixture's setup and
teardown in different tasks, and the bus's task group must be entered and
left in the same one.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import AsyncIterator, Generator, Mapping
from typing import TYPE_CHECKING, Any, Final, final

import pytest

if TYPE_CHECKING:
    import asyncio

    from .._bus import Bus
    from .._clock import Clock
    from ._clock import FakeClock

# Every pytest session of an environment with eventbus installed loads this
# plugin: it imports the bus and the testing kit only inside the fixtures
# that use them, never at session start.

__all__: list[str] = []

_ALLOW_MARKER: Final = "eventbus_allow_dead_letters"
_DRAIN_TIMEOUT_INI: Final = "eventbus_drain_timeout"
_DEFAULT_DRAIN_TIMEOUT: Final = "10"
_TEST_FAILED: Final = pytest.StashKey[bool]()
_MAX_LISTED: Final = 10


# -- hooks ---------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``eventbus_drain_timeout`` ini option."""
    parser.addini(
        _DRAIN_TIMEOUT_INI,
        "seconds (real time) the 'bus' fixture waits at teardown for its bus to drain "
        f"before failing the test (default: {_DEFAULT_DRAIN_TIMEOUT})",
        default=_DEFAULT_DRAIN_TIMEOUT,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the plugin's marker, so ``--strict-markers`` accepts it."""
    config.addinivalue_line(
        "markers",
        f"{_ALLOW_MARKER}: the 'bus' fixture does not fail the test when its bus "
        "dead-lettered events (eventbus.testing)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test body raised, for the ``bus`` fixture's teardown."""
    report = yield
    if call.when == "call" and call.excinfo is not None:
        item.stash[_TEST_FAILED] = True
    return report


def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> object | None:
    """Fail an eventbus ``async def`` test that no async plugin ran, saying why and the fix.

    pytest itself only says "async def functions are not natively
    supported"; the usual cause is pytest-asyncio's default strict mode.
    Runs after anyio's plugin (which takes its tests first) and before
    pytest's own call; pytest-asyncio hands pytest a synchronous wrapper.
    """
    function = pyfuncitem.obj
    if not (inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)):
        return None
    if not _uses_eventbus(pyfuncitem):
        return None
    pytest.fail(_not_run_message(pyfuncitem), pytrace=False)


def pytest_assertrepr_compare(op: str, left: object, right: object) -> list[str] | None:
    """Explain a failed ``payload(got) == Event(...)`` field by field, without the envelope."""
    if op != "==":
        return None
    for mine, other in ((left, right), (right, left)):
        kind = type(mine)
        if kind.__name__ == "Payload" and kind.__module__ == "eventbus.testing._payload":
            differences: list[str] = mine.differences(other)  # type: ignore[attr-defined]
            if differences:
                return [f"{left!r} == {right!r}", "payloads differ (left != right):", *differences]
    return None


def _uses_eventbus(item: pytest.Function) -> bool:
    """Whether *item* asks for an eventbus fixture or its module uses eventbus."""
    if {"bus", "fake_clock", "eventbus_clock", "eventbus_options"} & set(item.fixturenames):
        return True
    module = getattr(item, "module", None)
    for value in vars(module).values() if module is not None else ():
        owner = getattr(value, "__module__", None) or getattr(value, "__name__", None)
        if isinstance(owner, str) and (owner == "eventbus" or owner.startswith("eventbus.")):
            return True
    return False


def _not_run_message(item: pytest.Function) -> str:
    name = item.name
    if item.config.pluginmanager.has_plugin("asyncio"):
        why = (
            f"{name} is an 'async def' test, but no plugin ran it: pytest-asyncio is in strict "
            "mode (its default), where only tests marked @pytest.mark.asyncio run. "
        )
        fix = (
            'Set asyncio_mode = "auto" under [tool.pytest.ini_options] in pyproject.toml '
            "(or asyncio_mode = auto under [pytest] in pytest.ini) to run every async test, "
            "or mark this one @pytest.mark.asyncio (or @pytest.mark.anyio for anyio's plugin)."
        )
    else:
        why = f"{name} is an 'async def' test, but no async test plugin is installed to run it. "
        fix = (
            'pip install pytest-asyncio and set asyncio_mode = "auto" under '
            "[tool.pytest.ini_options] in pyproject.toml, or mark the test @pytest.mark.anyio "
            "(anyio's plugin comes with anyio)."
        )
    return why + fix + " [eventbus.testing]"


def _asyncio_auto_mode(config: pytest.Config) -> bool:
    """Whether pytest-asyncio is active in auto mode (it then claims every async fixture)."""
    if not config.pluginmanager.has_plugin("asyncio"):
        return False
    mode = config.getoption("asyncio_mode", None)
    if mode is None:
        try:
            mode = config.getini("asyncio_mode")
        except ValueError:
            return False
    return str(mode) == "auto"


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture
def fake_clock() -> FakeClock:
    """A :class:`~eventbus.testing.FakeClock` starting at the current time.

    A test that asks for it together with ``bus`` gets a bus on this clock
    (see ``eventbus_clock``): ``await fake_clock.advance(60)`` then fires a
    minute of retries, timeouts and schedules at once.
    """
    from ._clock import FakeClock

    return FakeClock()


@pytest.fixture
def eventbus_clock(request: pytest.FixtureRequest) -> Clock | None:
    """The clock the ``bus`` fixture's bus uses.

    By default: the test's ``fake_clock`` when the test (or a fixture it
    uses) asks for ``fake_clock``, else ``None`` -- the real clock.
    Override this fixture to choose another clock.
    """
    if "fake_clock" in request.fixturenames:
        clock: Clock = request.getfixturevalue("fake_clock")
        return clock
    return None


@pytest.fixture
def eventbus_options() -> Mapping[str, Any]:
    """Keyword arguments for the ``bus`` fixture's ``Bus(...)`` (default: none).

    Override it in a ``conftest.py`` or a test module, or per test with
    ``@pytest.mark.parametrize("eventbus_options", [{"retry": NoRetry()}])``.
    """
    return {}


@pytest.fixture
def bus(
    request: pytest.FixtureRequest,
    eventbus_clock: Clock | None,
    eventbus_options: Mapping[str, Any],
) -> Bus:
    """A started :class:`~eventbus.Bus`, drained at teardown.

    The bus runs on ``eventbus_clock`` (the test's ``fake_clock`` when it
    asks for one) with the ``eventbus_options``. It records everything
    published on it, for ``assert_published(bus, ...)``.

    At teardown, unless the test failed, the fixture waits for the bus to
    drain (at most ``eventbus_drain_timeout`` seconds; at once when retries
    wait on a fake clock nobody advances) and then fails the test if the
    bus dead-lettered events the test did not expect -- listing them. Expect
    them with ``expect_dead_letters(bus, ...)``, or mark the test
    ``@pytest.mark.eventbus_allow_dead_letters``. When the test failed, the
    bus is shut down without waiting.

    Works in tests run by pytest-asyncio (auto or strict mode) and by
    anyio's plugin (``@pytest.mark.anyio``).
    """
    if "anyio_backend" in request.fixturenames:
        if _asyncio_auto_mode(request.config):
            pytest.fail(
                "the 'bus' fixture cannot serve a test marked for anyio's pytest plugin while "
                "pytest-asyncio is in auto mode: both plugins claim the test and its async "
                "fixtures, and run them on different event loops. Use one of them per test: "
                "set asyncio_mode = strict (marking pytest-asyncio tests "
                "@pytest.mark.asyncio), or drop the anyio marker",
                pytrace=False,
            )
        started: Bus = request.getfixturevalue("_eventbus_anyio_bus")
        _make_default(request, started)
        return started
    if not _HAVE_PYTEST_ASYNCIO:
        pytest.fail(
            "the 'bus' fixture needs an async test runner: install pytest-asyncio, or mark "
            "the test @pytest.mark.anyio (anyio's pytest plugin)",
            pytrace=False,
        )
    started = request.getfixturevalue("_eventbus_asyncio_bus")
    _make_default(request, started)
    return started


def _make_default(request: pytest.FixtureRequest, started: Bus) -> None:
    """Let ``capture(EventType)`` / ``expect(EventType)`` find this test's bus."""
    from ._recording import pop_default_bus, push_default_bus

    push_default_bus(started)
    request.addfinalizer(lambda: pop_default_bus(started))


@contextlib.asynccontextmanager
async def _bus_lifecycle(
    request: pytest.FixtureRequest,
    eventbus_clock: Clock | None,
    eventbus_options: Mapping[str, Any],
) -> AsyncIterator[Bus]:
    """Start the ``bus`` fixture's bus, then drain, stop and check it at teardown."""
    import anyio

    from .._bus import Bus
    from ._recording import attach_fixture_state, detach_fixture_state

    options = dict(eventbus_options)
    if eventbus_clock is not None:
        given = options.get("clock")
        if given is not None and given is not eventbus_clock:
            raise pytest.UsageError(
                "the 'bus' fixture got a clock from both eventbus_options['clock'] and the "
                "eventbus_clock fixture (the test asks for fake_clock?); set only one"
            )
        options["clock"] = eventbus_clock
    new_bus = Bus(**options)
    state = attach_fixture_state(new_bus)
    host = _BusHost(new_bus)
    try:
        await host.start()
        try:
            yield new_bus
        except BaseException:
            with anyio.CancelScope(shield=True):
                await host.stop(abandon=True)
            raise
        failed = request.node.stash.get(_TEST_FAILED, False)
        problem = None
        if not failed and new_bus.running:
            problem = await _settle(new_bus, _drain_timeout(request.config))
        await host.stop(abandon=failed or problem is not None)
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        if failed or request.node.get_closest_marker(_ALLOW_MARKER) is not None:
            return
        unexpected = [
            letter for letter in new_bus.dead_letters if letter.id not in state.expected_letters
        ]
        if unexpected:
            pytest.fail(_letters_message(unexpected), pytrace=False)
    finally:
        detach_fixture_state(new_bus)


@pytest.fixture
async def _eventbus_anyio_bus(
    request: pytest.FixtureRequest,
    eventbus_clock: Clock | None,
    eventbus_options: Mapping[str, Any],
) -> AsyncIterator[Bus]:
    """The ``bus`` fixture's bus, for tests run by anyio's plugin (which runs this fixture)."""
    async with _bus_lifecycle(request, eventbus_clock, eventbus_options) as started:
        yield started


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - pytest-asyncio is optional
    _HAVE_PYTEST_ASYNCIO = False
else:
    _HAVE_PYTEST_ASYNCIO = True

    @pytest_asyncio.fixture
    async def _eventbus_asyncio_bus(
        request: pytest.FixtureRequest,
        eventbus_clock: Clock | None,
        eventbus_options: Mapping[str, Any],
    ) -> AsyncIterator[Bus]:
        """The ``bus`` fixture's bus, for tests run by pytest-asyncio (in any mode)."""
        async with _bus_lifecycle(request, eventbus_clock, eventbus_options) as started:
            yield started


# -- running the bus -----------------------------------------------------------------


class _Abandon(Exception):
    """Leaves the bus's block with an error, so it shuts down without draining."""


@final
class _BusHost:
    """Runs a bus's ``async with`` block across a fixture's setup and teardown.

    On asyncio the block runs in a task of its own; on other event loops
    (trio, under anyio's plugin, which keeps a fixture in one task) it runs
    in the fixture's task.
    """

    __slots__ = ("_bus", "_stop", "_task")

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._stop: asyncio.Future[bool] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        aio = sys.modules.get("asyncio")  # not imported: not running on asyncio
        try:
            if aio is None:
                raise RuntimeError
            loop = aio.get_running_loop()
        except RuntimeError:  # not asyncio
            await self._bus.__aenter__()
            return
        self._stop = loop.create_future()
        ready: asyncio.Future[None] = loop.create_future()
        self._task = loop.create_task(self._host(ready, self._stop))
        await ready

    async def _host(self, ready: asyncio.Future[None], stop: asyncio.Future[bool]) -> None:
        try:
            async with self._bus:
                ready.set_result(None)
                if await stop:
                    raise _Abandon
        except _Abandon:
            pass
        except BaseException as exc:
            if ready.done():
                raise
            ready.set_exception(exc)

    async def stop(self, *, abandon: bool) -> None:
        if self._task is None:
            if abandon:
                await self._bus.__aexit__(_Abandon, _Abandon(), None)
            else:
                await self._bus.__aexit__(None, None, None)
            return
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(abandon)
        await self._task


def _drain_timeout(config: pytest.Config) -> float:
    raw = config.getini(_DRAIN_TIMEOUT_INI)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(
            f"{_DRAIN_TIMEOUT_INI} must be a number of seconds, got {raw!r}"
        ) from None
    if not value > 0:
        raise pytest.UsageError(f"{_DRAIN_TIMEOUT_INI} must be > 0, got {raw!r}")
    return value


def _outstanding(bus: Bus) -> str:
    parts = []
    for name, m in bus.metrics().items():
        if m.queued or m.in_flight or m.waiting_retry:
            parts.append(
                f"{name}: queued={m.queued} in_flight={m.in_flight} waiting_retry={m.waiting_retry}"
            )
    return "; ".join(parts) or "none"


async def _settle(bus: Bus, limit: float) -> str | None:
    """Wait for *bus* to drain; return why it cannot, or None once it has."""
    import anyio

    from ._clock import FakeClock, _wait_all_tasks_blocked

    clock = bus.clock
    if isinstance(clock, FakeClock):
        await _wait_all_tasks_blocked()
        waiting = sum(m.waiting_retry for m in bus.metrics().values())
        if bus.outstanding and waiting == bus.outstanding:
            due = clock.next_deadline()
            when = "" if due is None else f" (the next is due in {due - clock.now():g}s)"
            return (
                f"at teardown the bus still had {waiting} event(s) waiting to be retried on its "
                f"FakeClock{when}, and only 'await fake_clock.advance(seconds)' moves them "
                f"[{_outstanding(bus)}]. Advance the clock past the retries in the test, or "
                "subscribe with retry=NoRetry()"
            )
    with anyio.move_on_after(limit) as scope:
        await bus.drain()
    if scope.cancelled_caught:
        return (
            f"the bus did not drain within {limit:g}s at teardown; {bus.outstanding} "
            f"event(s) outstanding [{_outstanding(bus)}]. A handler may be stuck, or retries "
            "are waiting (on a FakeClock: advance it); if it is only slow, raise the "
            f"{_DRAIN_TIMEOUT_INI} ini option"
        )
    return None


def _letters_message(letters: list[Any]) -> str:
    from ._recording import describe_letter

    lines = [f"the bus dead-lettered {len(letters)} event(s) that the test did not expect:"]
    lines.extend(f"  - {describe_letter(letter)}" for letter in letters[:_MAX_LISTED])
    if len(letters) > _MAX_LISTED:
        lines.append(f"  ... and {len(letters) - _MAX_LISTED} more")
    lines.append(
        "Assert on them with eventbus.testing.expect_dead_letters(bus, ...), or mark the "
        f"test @pytest.mark.{_ALLOW_MARKER}"
    )
    return "\n".join(lines)
