"""``python -m eventbus worker``: real subprocesses, signalled as an orchestrator would."""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path

import anyio
import pytest
from _worker_process import run_worker

from eventbus import Bus, EventBusError
from eventbus.__main__ import main
from eventbus.worker import WorkerError, load_bus

APP = """
import attrs
from eventbus import Bus, Event


@attrs.frozen
class Tick(Event, type_name="tests.worker.Tick"):
    n: int


async def ticks(event: Tick) -> None:
    pass


async def tocks(event: Tick) -> None:
    pass


def make() -> Bus:
    bus = Bus()
    bus.subscribe(Tick, ticks, name="ticks", concurrency=2)
    bus.subscribe(Tick, tocks, name="tocks")
    return bus


bus = make()
not_a_bus = 42


def needs_an_argument(x):
    return Bus()
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A directory holding ``app.py``, a module with a bus and a factory."""
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    return tmp_path


async def test_sigterm_drains_and_exits_zero(app: Path) -> None:
    """After SIGTERM the worker closes its bus and exits with status 0."""
    async with run_worker("app:bus", cwd=app) as worker:
        await worker.wait_for("started")
        worker.signal(signal.SIGTERM)
        assert await worker.wait() == 0
    assert "SIGTERM received, draining" in worker.log
    assert "stopped" in worker.log


async def test_sigint_drains_and_exits_zero(app: Path) -> None:
    """SIGINT (Ctrl-C) stops the worker as gracefully as SIGTERM."""
    async with run_worker("app:bus", cwd=app) as worker:
        await worker.wait_for("started")
        worker.signal(signal.SIGINT)
        assert await worker.wait() == 0
    assert "Traceback" not in worker.log


async def test_startup_line_names_transport_and_subscriptions(app: Path) -> None:
    """The startup line names the transport and each subscription with its concurrency."""
    async with run_worker("app:bus", cwd=app) as worker:
        log = await worker.wait_for("started")
        worker.signal()
        await worker.wait()
    line = next(line for line in log.splitlines() if "started" in line)
    assert "transport memory" in line
    assert "ticks (concurrency 2)" in line
    assert "tocks (concurrency 1)" in line


async def test_a_factory_target_is_called(app: Path) -> None:
    """A zero-argument function returning a Bus is a valid target."""
    async with run_worker("app:make", cwd=app) as worker:
        await worker.wait_for("subscriptions ticks")
        worker.signal()
        assert await worker.wait() == 0


async def test_subscriptions_option_runs_only_those(app: Path) -> None:
    """--subscriptions leaves out every other subscription."""
    async with run_worker("app:bus", "--subscriptions", "tocks", cwd=app) as worker:
        log = await worker.wait_for("started")
        worker.signal()
        await worker.wait()
    line = next(line for line in log.splitlines() if "started" in line)
    assert "tocks" in line
    assert "ticks" not in line


async def test_concurrency_option_overrides_the_code(app: Path) -> None:
    """--concurrency N sets every subscription's concurrency."""
    async with run_worker("app:bus", "--concurrency", "7", cwd=app) as worker:
        log = await worker.wait_for("started")
        worker.signal()
        await worker.wait()
    assert "ticks (concurrency 7), tocks (concurrency 7)" in log


async def test_health_port_answers_200_with_json(app: Path) -> None:
    """--health-port serves a liveness endpoint answering HTTP 200 with a JSON status."""
    async with run_worker("app:bus", "--health-port", "0", cwd=app) as worker:
        log = await worker.wait_for("started")
        port = int(log.split("health on http://127.0.0.1:")[1].split("/")[0])
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            reply = b""
            with anyio.fail_after(10):
                try:
                    while True:
                        reply += await stream.receive()
                except anyio.EndOfStream:
                    pass
        worker.signal()
        assert await worker.wait() == 0
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: application/json" in head
    document = json.loads(body)
    assert document["status"] == "ok"
    assert document["state"] == "running"
    assert document["subscriptions"] == ["ticks", "tocks"]


async def test_unknown_subscription_exits_two_naming_it(app: Path) -> None:
    """--subscriptions with a name the bus lacks exits 2 and lists the real ones."""
    async with run_worker("app:bus", "--subscriptions", "nope", cwd=app) as worker:
        assert await worker.wait() == 2
    assert "'nope'" in worker.log
    assert "'ticks', 'tocks'" in worker.log


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("app", "must be 'module:attribute'"),
        ("no_such_module_here:bus", "cannot import module 'no_such_module_here'"),
        ("app:missing", "has no attribute 'missing'"),
        ("app:not_a_bus", "is int, not a Bus"),
        ("app:needs_an_argument", "takes arguments"),
    ],
)
def test_bad_targets_raise_worker_error(
    app: Path, monkeypatch: pytest.MonkeyPatch, target: str, message: str
) -> None:
    """A target that is not a Bus (or a factory of one) raises WorkerError saying why."""
    monkeypatch.syspath_prepend(str(app))
    with pytest.raises(WorkerError, match=message):
        load_bus(target)


def test_worker_error_is_an_eventbus_error() -> None:
    """WorkerError is an EventBusError and a ValueError."""
    assert issubclass(WorkerError, EventBusError)
    assert issubclass(WorkerError, ValueError)


def test_load_bus_returns_the_bus(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_bus returns the module's Bus object itself."""
    monkeypatch.syspath_prepend(str(app))
    assert isinstance(load_bus("app:bus"), Bus)


def test_command_exits_two_on_a_bad_target(
    app: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command prints the error and exits 2 rather than raising."""
    monkeypatch.syspath_prepend(str(app))
    assert main(["worker", "app:not_a_bus"]) == 2
    assert "not a Bus" in capsys.readouterr().err


def test_command_refuses_a_bad_concurrency(capsys: pytest.CaptureFixture[str]) -> None:
    """--concurrency 0 is refused by the parser."""
    with pytest.raises(SystemExit) as exit_info:
        main(["worker", "app:bus", "--concurrency", "0"])
    assert exit_info.value.code == 2
    assert "int >= 1" in capsys.readouterr().err


async def test_a_close_cancelled_while_draining_still_stops_the_bus() -> None:
    """Cancelling `async with Bus()` while it drains (a forced stop) dead-letters and exits cleanly."""
    import attrs

    from eventbus import Event

    @attrs.frozen
    class Stuck(Event, type_name="tests.worker.Stuck"):
        n: int

    started = anyio.Event()

    async def forever(event: Stuck) -> None:
        started.set()
        await anyio.sleep_forever()

    bus = Bus()
    bus.subscribe(Stuck, forever, name="stuck")
    with anyio.move_on_after(0.2) as scope:  # the drain on close never ends by itself
        async with bus:
            await bus.publish(Stuck(1))
            await started.wait()
    assert scope.cancelled_caught
    assert not bus.running
    assert [letter.subscription for letter in bus.dead_letters] == ["stuck"]
