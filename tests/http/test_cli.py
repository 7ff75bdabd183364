"""``python -m eventbus serve module:gateway``."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from eventbus.http import Gateway
from eventbus.http._cli import TargetError, load_target, register, serve


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module defining a bus, a gateway and something else; its import name."""
    (tmp_path / "gateway_app_for_tests.py").write_text(
        textwrap.dedent(
            """
            from eventbus import Bus
            from eventbus.http import Gateway

            bus = Bus()
            gateway = Gateway(bus)
            other = 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "gateway_app_for_tests"


def parse(*argv: str) -> argparse.Namespace:
    """Parse *argv* with a parser holding only the serve command."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_load_target_returns_the_gateway(app_module: str) -> None:
    """module:gateway names the Gateway object."""
    assert isinstance(load_target(f"{app_module}:gateway"), Gateway)


def test_load_target_wraps_a_bus(app_module: str) -> None:
    """module:bus is served behind a new Gateway."""
    target = load_target(f"{app_module}:bus")
    assert isinstance(target, Gateway)
    assert target.routes == ()


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("no_colon", "write 'package.module:gateway'"),
        ("not_a_module_anywhere:x", "cannot import module"),
        ("{mod}:missing", "has no attribute 'missing'"),
        ("{mod}:other", "is a int; serve an eventbus.http.Gateway"),
    ],
)
def test_load_target_explains_bad_targets(app_module: str, spec: str, match: str) -> None:
    """Bad targets raise TargetError saying what is wrong."""
    with pytest.raises(TargetError, match=match):
        load_target(spec.format(mod=app_module))


def test_serve_runs_uvicorn_with_the_lifespan(
    app_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve builds a uvicorn server for the gateway, host, port, with the lifespan on."""
    seen: dict[str, Any] = {}

    def fake_run(self: uvicorn.Server) -> None:
        seen["config"] = self.config

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    args = parse("serve", f"{app_module}:gateway", "--host", "127.0.0.1", "--port", "9123")
    assert serve(args) == 0
    config = seen["config"]
    assert isinstance(config.app, Gateway)
    assert (config.host, config.port, config.lifespan) == ("127.0.0.1", 9123, "on")


def test_serve_reports_a_bad_target(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad target exits with 2 and says why on stderr."""
    assert serve(parse("serve", "nowhere_at_all:app")) == 2
    assert "cannot import module 'nowhere_at_all'" in capsys.readouterr().err


def test_serve_refuses_a_bad_port(app_module: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A port outside 0-65535 exits with 2."""
    assert serve(parse("serve", f"{app_module}:gateway", "--port", "70000")) == 2
    assert "--port" in capsys.readouterr().err


def test_serve_is_a_command_of_python_m_eventbus() -> None:
    """The eventbus command line has the serve subcommand."""
    from eventbus.__main__ import build_parser

    args = build_parser().parse_args(["serve", "m:g"])
    assert args.func is serve
