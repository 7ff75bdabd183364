"""The pytest plugin: fixtures, marker and teardown checks, under pytest-asyncio and anyio."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

AUTO_INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
addopts = -p no:cacheprovider -p no:hypothesispytest --strict-markers
"""

STRICT_INI = AUTO_INI.replace("asyncio_mode = auto", "asyncio_mode = strict")

EVENTS = """
import attrs
import pytest
from eventbus import Bus, Event, NoRetry
from eventbus.testing import assert_published, capture, expect, expect_dead_letters


@attrs.frozen
class Placed(Event):
    order: str


@attrs.frozen
class Shipped(Event):
    order: str
"""

USAGE = """
async def test_publish_capture_expect(bus):
    @bus.on(Placed)
    async def ship(event, ctx):
        await ctx.publish(Shipped(event.order))

    shipped = capture(bus, Shipped)
    second = expect(bus, Shipped, where={"order": ["o-2"]})
    await bus.publish(Placed("o-1"))
    await bus.publish(Placed("o-2"))
    assert (await second).order == "o-2"
    await bus.drain()
    assert len(shipped) == 2
    assert_published(bus, Placed, count=2)


async def test_retries_in_virtual_time(bus, fake_clock):
    attempts = []

    @bus.on(Placed)
    async def flaky(event):
        attempts.append(fake_clock.now())
        if len(attempts) < 3:
            raise RuntimeError("try again")

    await bus.publish(Placed("o-1"))
    await fake_clock.advance(60)
    await bus.drain()
    assert len(attempts) == 3
"""


def run(pytester: pytest.Pytester, ini: str, body: str, *args: str) -> pytest.RunResult:
    """Write *body* (after the shared event classes) as a test module and run pytest on it."""
    pytester.makeini(ini)
    pytester.makepyfile(EVENTS + textwrap.dedent(body))
    return pytester.runpytest(*args)


def test_bus_fixture_under_pytest_asyncio_auto_mode(pytester: pytest.Pytester) -> None:
    """In auto mode, plain async tests get a running bus, drained at teardown."""
    result = run(pytester, AUTO_INI, USAGE)
    result.assert_outcomes(passed=2)


def test_bus_fixture_under_pytest_asyncio_strict_mode(pytester: pytest.Pytester) -> None:
    """In strict mode, @pytest.mark.asyncio tests get the bus without deprecation warnings."""
    body = "pytestmark = pytest.mark.asyncio\n" + USAGE
    result = run(pytester, STRICT_INI, body)
    result.assert_outcomes(passed=2)


def test_bus_fixture_under_anyio_plugin(pytester: pytest.Pytester) -> None:
    """With anyio's plugin (pytest-asyncio disabled), @pytest.mark.anyio tests get the bus."""
    body = (
        "pytestmark = pytest.mark.anyio\n\n"
        "@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n" + USAGE
    )
    ini = AUTO_INI.replace(
        "asyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n", ""
    )
    result = run(pytester, ini, body, "-p", "no:asyncio")
    result.assert_outcomes(passed=2)


def test_bus_fixture_for_anyio_tests_beside_strict_pytest_asyncio(
    pytester: pytest.Pytester,
) -> None:
    """With pytest-asyncio in strict mode, anyio-marked tests still get the bus from anyio."""
    body = (
        "pytestmark = pytest.mark.anyio\n\n"
        "@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n" + USAGE
    )
    result = run(pytester, STRICT_INI, body)
    result.assert_outcomes(passed=2)


def test_anyio_tests_in_auto_mode_fail_with_advice(pytester: pytest.Pytester) -> None:
    """anyio-marked tests in pytest-asyncio auto mode are refused with a way out."""
    body = """
    @pytest.fixture
    def anyio_backend():
        return "asyncio"

    @pytest.mark.anyio
    async def test_it(bus):
        pass
    """
    result = run(pytester, AUTO_INI, body)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*set asyncio_mode = strict*"])


def test_unexpected_dead_letters_fail_the_test(pytester: pytest.Pytester) -> None:
    """A dead letter the test did not expect fails it at teardown, with the letter listed."""
    body = """
    async def test_it(bus):
        @bus.on(Placed, retry=NoRetry(), name="charge")
        async def charge(event):
            raise ValueError("card declined")

        await bus.publish(Placed("o-1"))
    """
    result = run(pytester, AUTO_INI, body)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*the bus dead-lettered 1 event(s) that the test did not expect:",
            "*subscription 'charge': Placed(order='o-1')*RetriesExhausted after 1 attempt(s): "
            "ValueError: card declined",
            "*expect_dead_letters(bus, ...)*eventbus_allow_dead_letters",
        ]
    )


def test_expected_dead_letters_pass(pytester: pytest.Pytester) -> None:
    """Letters returned by expect_dead_letters, or allowed by the marker, pass."""
    body = """
    async def fail(event):
        raise ValueError("no")

    async def test_expected(bus):
        bus.subscribe(Placed, fail, retry=NoRetry())
        await bus.publish(Placed("o-1"))
        await bus.drain()
        expect_dead_letters(bus, Placed, count=1)

    @pytest.mark.eventbus_allow_dead_letters
    async def test_allowed(bus):
        bus.subscribe(Placed, fail, retry=NoRetry())
        await bus.publish(Placed("o-1"))
    """
    result = run(pytester, AUTO_INI, body)
    result.assert_outcomes(passed=2)


def test_only_the_expected_letters_are_excused(pytester: pytest.Pytester) -> None:
    """A letter outside what expect_dead_letters matched still fails the test."""
    body = """
    async def fail(event):
        raise ValueError("no")

    async def test_it(bus):
        bus.subscribe(Placed, fail, retry=NoRetry())
        await bus.publish(Placed("o-1"))
        await bus.publish(Placed("o-2"))
        await bus.drain()
        expect_dead_letters(bus, Placed, where={"order": ["o-1"]}, count=1)
    """
    result = run(pytester, AUTO_INI, body)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*Placed(order='o-2')*"])
    result.stdout.no_fnmatch_line("*Placed(order='o-1')*")


def test_a_failing_test_gets_no_teardown_error(pytester: pytest.Pytester) -> None:
    """When the test fails, the bus shuts down without draining or checking letters."""
    body = """
    async def test_it(bus, fake_clock):
        async def fail(event):
            raise ValueError("no")

        bus.subscribe(Placed, fail)
        await bus.publish(Placed("o-1"))
        assert False, "the test's own failure"
    """
    result = run(pytester, AUTO_INI, body)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the test's own failure*"])


def test_retries_stuck_on_the_fake_clock_fail_at_once(pytester: pytest.Pytester) -> None:
    """Retries waiting on a fake clock nobody advances fail at teardown, saying so."""
    body = """
    async def test_it(bus, fake_clock):
        async def fail(event):
            raise ValueError("no")

        bus.subscribe(Placed, fail, name="flaky")
        await bus.publish(Placed("o-1"))
    """
    result = run(pytester, AUTO_INI, body)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*1 event(s) waiting to be retried on its FakeClock*fake_clock.advance(seconds)*flaky*"]
    )


def test_a_bus_that_does_not_drain_fails_after_the_timeout(pytester: pytest.Pytester) -> None:
    """A handler that never finishes fails the test after eventbus_drain_timeout."""
    ini = AUTO_INI + "eventbus_drain_timeout = 0.05\n"
    body = """
    import anyio

    async def test_it(bus):
        async def stuck(event):
            await anyio.Event().wait()

        bus.subscribe(Placed, stuck, name="stuck")
        await bus.publish(Placed("o-1"))
    """
    result = run(pytester, ini, body)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*did not drain within 0.05s at teardown*stuck: queued=0 in_flight=1*"]
    )


def test_eventbus_options_configure_the_bus(pytester: pytest.Pytester) -> None:
    """eventbus_options gives Bus() keyword arguments, also by direct parametrization."""
    body = """
    from eventbus import ExponentialBackoff

    @pytest.mark.parametrize("eventbus_options", [{"retry": NoRetry()}])
    async def test_parametrized(bus):
        assert isinstance(bus.retry, NoRetry)

    async def test_default(bus):
        assert isinstance(bus.retry, ExponentialBackoff)
    """
    result = run(pytester, AUTO_INI, body)
    result.assert_outcomes(passed=2)


def test_eventbus_clock_can_be_overridden(pytester: pytest.Pytester) -> None:
    """Overriding eventbus_clock puts every bus on that clock."""
    pytester.makeconftest(
        """
        import pytest
        from datetime import UTC, datetime
        from eventbus.testing import FakeClock

        @pytest.fixture
        def eventbus_clock():
            return FakeClock(start=datetime(2030, 1, 1, tzinfo=UTC))
        """
    )
    body = """
    async def test_it(bus):
        assert bus.clock.wall().year == 2030
    """
    result = run(pytester, AUTO_INI, body)
    result.assert_outcomes(passed=1)


def test_two_clocks_are_a_usage_error(pytester: pytest.Pytester) -> None:
    """A clock in eventbus_options and a fake_clock together are refused."""
    body = """
    from eventbus.testing import FakeClock

    @pytest.mark.parametrize("eventbus_options", [{"clock": FakeClock()}])
    async def test_it(bus, fake_clock):
        pass
    """
    result = run(pytester, AUTO_INI, body)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*set only one*"])


def test_fixtures_and_marker_are_documented(pytester: pytest.Pytester) -> None:
    """pytest --fixtures and --markers list what the plugin provides."""
    pytester.makeini(AUTO_INI)
    fixtures = pytester.runpytest("--fixtures")
    fixtures.stdout.fnmatch_lines(
        [
            "bus -- *",
            "*A started :class:`~eventbus.Bus`, drained at teardown.",
        ]
    )
    fixtures.stdout.fnmatch_lines(["fake_clock -- *"])
    fixtures.stdout.fnmatch_lines(["eventbus_clock -- *"])
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.eventbus_allow_dead_letters: *"])
