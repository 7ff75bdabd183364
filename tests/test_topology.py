"""bus.topology(): a Mermaid flowchart of sources, types, subscriptions, destinations, sinks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventbus import Bus, Event, MemoryDeadLetters, ObjectStore, Table, Topic
from eventbus._topology import escape_label


@attrs.frozen
class Uploaded(Event, type_name="tests.topology.Uploaded"):
    key: str = ""


@attrs.frozen
class Resized(Event, type_name="tests.topology.Resized"):
    key: str = ""


async def resize(event: Uploaded) -> None:
    pass


async def notify(event: Resized) -> None:
    pass


def small_bus() -> Bus:
    bus = Bus()
    bus.subscribe(
        Uploaded,
        resize,
        name="resize",
        where={"key": [{"suffix": ".png"}]},
        concurrency=4,
        ordered_by="key",
        on_success=notify,
    )
    bus.subscribe(Resized, notify, name="notify", dead_letter=MemoryDeadLetters())
    bus.schedule("rate(1 hour)", name="hourly")
    return bus


EXPECTED = """\
flowchart LR
    %% sources
    src1[/"schedule hourly<br/>rate(1 hour)"/]
    %% event types
    type1{{"ScheduledEvent"}}
    type2{{"Uploaded"}}
    type3{{"Resized"}}
    %% subscriptions
    sub1["resize<br/>where {#quot;key#quot;:[{#quot;suffix#quot;:#quot;.png#quot;}]}<br/>concurrency 4, ordered by key"]
    sub2["notify<br/>concurrency 1"]
    %% destinations
    dest1>"notify"]
    %% dead-letter sinks
    dlq1[("bus.dead_letters<br/>MemoryDeadLetters")]
    dlq2[("dead letters<br/>MemoryDeadLetters")]
    src1 --> type1
    type2 --> sub1
    sub1 -- on_success --> dest1
    sub1 -. dead letters .-> dlq1
    type3 --> sub2
    sub2 -. dead letters .-> dlq2
"""


def test_a_small_bus_renders_exactly() -> None:
    """The flowchart of a small bus, line by line."""
    assert small_bus().topology() == EXPECTED


def test_an_empty_bus_is_a_bare_flowchart() -> None:
    """A bus with nothing on it renders as just the header."""
    assert Bus().topology() == "flowchart LR\n"


def test_direction_is_checked() -> None:
    """Only Mermaid's directions are accepted."""
    with pytest.raises(ValueError, match=r"direction"):
        Bus().topology(direction="sideways")


def test_user_strings_cannot_break_out_of_a_label() -> None:
    """Quotes, brackets and newlines in a name are escaped, not interpreted."""
    bus = Bus()
    bus.subscribe(Uploaded, resize, name='evil"]\nclick sub1 call x()')
    text = bus.topology()
    (line,) = [line for line in text.splitlines() if line.lstrip().startswith("sub1[")]
    assert line == '    sub1["evil#quot;] click sub1 call x()<br/>concurrency 1"]'


@given(st.text(max_size=200))
def test_escaped_labels_hold_no_mermaid_syntax(text: str) -> None:
    """An escaped label has no quote, angle bracket, backtick or line break, and stays short."""
    label = escape_label(text)
    assert not set(label) & set('"<>`\n\r')
    assert len(label) <= 60 * len("#quot;")


def test_the_command_prints_a_modules_bus(tmp_path: Path) -> None:
    """python -m eventbus topology module:bus prints the flowchart."""
    (tmp_path / "topo_app.py").write_text(
        textwrap.dedent(
            """
            import attrs
            from eventbus import Bus, Event

            @attrs.frozen
            class Ping(Event, type_name="topo_app.Ping"):
                pass

            async def pong(event: Ping) -> None:
                pass

            bus = Bus()
            bus.subscribe(Ping, pong, name="pong")
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "eventbus", "topology", "topo_app:bus"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("flowchart LR\n")
    assert '    sub1["pong<br/>concurrency 1"]' in result.stdout


def test_the_command_explains_a_bad_target(tmp_path: Path) -> None:
    """A target that is not module:bus fails with a message saying what to pass."""
    result = subprocess.run(
        [sys.executable, "-m", "eventbus", "topology", "no_colon"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "module:attribute" in result.stderr


def test_embedded_sources_point_at_the_events_they_emit() -> None:
    """An ObjectStore, a Table and a Topic made on the bus appear as sources of their events."""
    bus = Bus()
    ObjectStore(bus, "photos")
    Table(bus, "orders", key="id")
    Topic(bus, "alerts")
    text = bus.topology()
    assert text.splitlines()[:8] == [
        "flowchart LR",
        "    %% sources",
        '    src1[/"ObjectStore photos"/]',
        '    src2[/"Table orders"/]',
        '    src3[/"Topic alerts"/]',
        "    %% event types",
        '    type1{{"ObjectCreated"}}',
        '    type2{{"ObjectRemoved"}}',
    ]
    assert "    src1 --> type2" in text
    assert "    src3 --> type4" in text
