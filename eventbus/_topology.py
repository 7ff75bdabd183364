"""``bus.topology()``: a Mermaid flowchart of how events flow through a bus.

Sources the bus knows (schedules, logs) point at the event types they emit;
event types point at the subscriptions that take them (with their filters,
concurrency and ordering); subscriptions point at their destinations
(``on_success``/``on_failure``) and, dashed, at their dead-letter sinks.

Every label is escaped: user strings (names, patterns) cannot break out of
their node or inject Mermaid syntax.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._bus import Bus
    from ._events import Event
    from ._subscription import Subscription

__all__ = ["escape_label", "render"]

_MAX_LINE: Final = 60  # characters per label line before it is cut with an ellipsis
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]+")
# Mermaid entity codes: '#' first, so that the codes we add are not escaped again.
_ENTITIES: Final = (
    ("#", "#35;"),
    ("&", "#38;"),
    ('"', "#quot;"),
    ("<", "#lt;"),
    (">", "#gt;"),
    ("`", "#96;"),
)


def escape_label(text: str, limit: int = _MAX_LINE) -> str:
    """*text* made safe inside a quoted Mermaid label: one line, entities escaped, cut to *limit*."""
    line = _CONTROL.sub(" ", text).strip()
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "\u2026"
    for raw, code in _ENTITIES:
        line = line.replace(raw, code)
    return line


def _label(*lines: str) -> str:
    return "<br/>".join(escape_label(line) for line in lines if line)


def _callable_name(fn: object) -> str:
    name = getattr(fn, "__qualname__", None)
    return name if isinstance(name, str) else type(fn).__qualname__


def _where(sub: Subscription) -> str:
    where: Any = sub.where
    if where is None:
        return ""
    spec = getattr(where, "spec", None)
    if isinstance(spec, dict):
        return "where " + json.dumps(spec, separators=(",", ":"), sort_keys=True, default=str)
    return "where " + _callable_name(where) + "()"


def _shape(sub: Subscription) -> str:
    parts = [f"concurrency {sub.concurrency}"]
    ordered_by: Any = sub.ordered_by
    if ordered_by is not None:
        key = ordered_by if isinstance(ordered_by, str) else _callable_name(ordered_by)
        parts.append(f"ordered by {key}")
    batch = sub.batch
    if batch is not None:
        parts.append(f"batch {batch.size}/{batch.window:g}s")
    return ", ".join(parts)


def _destination(dest: object) -> str:
    from ._bus import Bus

    if isinstance(dest, Bus):
        return "another bus"
    kind = type(dest).__name__
    name = getattr(dest, "name", None)
    if isinstance(name, str) and not callable(dest):
        return f"{kind} {name}"
    return _callable_name(dest)


# What each embedded source emits, by its class name and the attribute naming it
# (the core may not import the sources, so their event types are looked up by name).
_SOURCE_KINDS: Final = {
    "ObjectStore": ("bucket", ("eventbus.ObjectCreated", "eventbus.ObjectRemoved")),
    "Table": ("name", ("eventbus.TableChange",)),
    "Topic": ("name", ("eventbus.TopicMessage",)),
}


def _sources(bus: Bus) -> list[tuple[str, str, tuple[type[Event], ...]]]:
    """(label, detail, event classes emitted) for each source the bus knows."""
    from ._events import LogRecord, ScheduledEvent, registered_event_types

    out: list[tuple[str, str, tuple[type[Event], ...]]] = []
    for info in bus.schedules():
        emits = _schedule_event_type(bus, info.name) or ScheduledEvent
        out.append((f"schedule {info.name}", info.expression, (emits,)))
    for source in getattr(bus, "_stream_sources", ()):
        name = getattr(source, "name", None)
        if isinstance(name, str):
            out.append((f"Log {name}", "", (LogRecord,)))
    registry = registered_event_types()
    for source in getattr(bus, "_sources", ()):
        kind = type(source).__name__
        attribute, type_names = _SOURCE_KINDS.get(kind, ("name", ()))
        try:
            name = getattr(source, attribute)
        except Exception:  # made on this bus, but its constructor failed
            continue
        classes = tuple(registry[t] for t in type_names if t in registry)
        if isinstance(name, str) and classes:
            out.append((f"{kind} {name}", "", classes))
    return out


def _schedule_event_type(bus: Bus, name: str) -> type[Event] | None:
    """The class of the events schedule *name* publishes, when it was given one."""
    from ._events import Event

    scheduler = getattr(bus, "_scheduler", None)
    entries = getattr(scheduler, "_entries", None)
    entry = entries.get(name) if isinstance(entries, dict) else None
    template = getattr(entry, "template", None) or getattr(entry, "event", None)
    if isinstance(template, Event):
        return type(template)
    return None


def render(bus: Bus, direction: str = "LR") -> str:
    """The Mermaid ``flowchart`` text of *bus* (see :meth:`Bus.topology`)."""
    if direction not in ("LR", "RL", "TB", "TD", "BT"):
        raise ValueError(f"topology(direction=...) must be LR, RL, TB, TD or BT, got {direction!r}")
    subs = bus.subscriptions()
    nodes: list[str] = []
    edges: list[str] = []

    types: dict[type[Event], str] = {}

    def type_node(cls: type[Event]) -> str:
        node = types.get(cls)
        if node is None:
            node = types[cls] = f"type{len(types) + 1}"
        return node

    sources = _sources(bus)
    if sources:
        nodes.append("    %% sources")
    for i, (label, detail, emits) in enumerate(sources, 1):
        nodes.append(f'    src{i}[/"{_label(label, detail)}"/]')
        edges.extend(f"    src{i} --> {type_node(cls)}" for cls in emits)
    for sub in subs:
        for cls in sub.event_types:
            type_node(cls)
    if types:
        nodes.append("    %% event types")
    for cls, node in types.items():
        nodes.append(f'    {node}{{{{"{_label(cls.__qualname__)}"}}}}')

    sinks: dict[int, str] = {}
    sink_nodes: list[str] = []
    dests: dict[int, str] = {}
    dest_nodes: list[str] = []
    if subs:
        nodes.append("    %% subscriptions")
    for i, sub in enumerate(subs, 1):
        node = f"sub{i}"
        nodes.append(f'    {node}["{_label(sub.name, _where(sub), _shape(sub))}"]')
        for cls in sub.event_types:
            edges.append(f"    {types[cls]} --> {node}")
        for kind, dest in (("on_success", sub.on_success), ("on_failure", sub.on_failure)):
            if dest is None:
                continue
            dnode = dests.get(id(dest))
            if dnode is None:
                dnode = dests[id(dest)] = f"dest{len(dests) + 1}"
                dest_nodes.append(f'    {dnode}>"{_label(_destination(dest))}"]')
            edges.append(f"    {node} -- {kind} --> {dnode}")
        sink = sub.dead_letter
        snode = sinks.get(id(sink))
        if snode is None:
            snode = sinks[id(sink)] = f"dlq{len(sinks) + 1}"
            title = "bus.dead_letters" if sink is bus.dead_letters else "dead letters"
            sink_nodes.append(f'    {snode}[("{_label(title, type(sink).__name__)}")]')
        edges.append(f"    {node} -. dead letters .-> {snode}")
    if dest_nodes:
        nodes.append("    %% destinations")
        nodes.extend(dest_nodes)
    if sink_nodes:
        nodes.append("    %% dead-letter sinks")
        nodes.extend(sink_nodes)
    return "\n".join([f"flowchart {direction}", *nodes, *edges]) + "\n"


# -- python -m eventbus topology module:bus ------------------------------------------------


def _load(target: str) -> Bus:
    """Import ``module:attribute`` and return the bus it names (or a factory's bus)."""
    from ._bus import Bus

    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise LookupError(
            f"topology target {target!r} must be 'module:attribute', e.g. 'shop.app:bus'"
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"cannot import {module_name!r} (target {target!r}): {exc}") from exc
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise LookupError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if callable(value) and not isinstance(value, Bus | type):
        value = value()
    if not isinstance(value, Bus):
        raise LookupError(
            f"topology target {target!r} is a {type(value).__name__}, not an eventbus.Bus "
            "(or a function taking no arguments that returns one)"
        )
    return value


def _command(args: argparse.Namespace) -> int:
    try:
        bus = _load(args.target)
    except LookupError as exc:
        print(f"python -m eventbus topology: {exc.args[0]}", file=sys.stderr)
        return 2
    sys.stdout.write(render(bus, args.direction))
    return 0


def register(commands: Any) -> None:
    """Register ``topology`` on the command line's subparsers (``python -m eventbus``)."""
    parser = commands.add_parser(
        "topology",
        help="print a Mermaid flowchart of a bus: sources, event types, subscriptions, "
        "destinations and dead-letter sinks",
        description="Import a Bus (module:attribute) and print its topology as a Mermaid flowchart.",
    )
    parser.add_argument("target", help="the Bus, as module:attribute (e.g. shop.app:bus)")
    parser.add_argument(
        "--direction",
        default="LR",
        choices=("LR", "RL", "TB", "TD", "BT"),
        help="the flowchart's direction (default: LR, left to right)",
    )
    parser.set_defaults(func=_command)
