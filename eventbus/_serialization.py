"""CloudEvents 1.0 JSON (structured mode) for :class:`~eventbus.Event`.

Events cross process boundaries as plain JSON, decoded only into registered
event classes -- never pickle. Field values are encoded from the field's
declared type: ``datetime`` as RFC 3339 text, ``bytes`` as base64,
``Decimal`` as a decimal string, sets and tuples as arrays, attrs classes as
objects. Where the declared type says nothing (``Any``, a union of several
types), non-JSON values are tagged with one-key objects -- ``{"$bytes": ...}``,
``{"$decimal": ...}``, ``{"$set": [...]}``, ``{"$datetime": ...}`` -- so that
they come back as the same Python type.

Documents from outside are untrusted: decoding raises only
:class:`~eventbus.SerializationError`, in time and memory linear in the
document's size, and refuses documents past these limits (each named in
the error):

* :data:`MAX_DOCUMENT_SIZE` -- a JSON text of at most 1 MiB (1,048,576
  bytes, or characters for ``str``), as NATS's default message size;
* :data:`MAX_DEPTH` -- arrays and objects nested at most 64 deep, the
  CloudEvent object itself being level 1;
* :data:`MAX_NUMBER_DIGITS` -- numbers of at most 1,000 digits, written
  out or implied by an exponent (a float must also fit a double).

Encoding checks the same depth and number limits, so what is written can
be read back.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, NoReturn

import attrs

from ._events import Event, event_class, optional_envelope, time_text
from ._exceptions import SerializationError

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_SIZE",
    "MAX_NUMBER_DIGITS",
    "from_cloudevent",
    "to_cloudevent",
]

MAX_DOCUMENT_SIZE: Final = 1024 * 1024
"""The longest CloudEvent JSON text ``from_cloudevent`` reads (bytes, or characters)."""
MAX_DEPTH: Final = 64
"""How deep arrays and objects may nest in a CloudEvent (the document is level 1)."""
MAX_NUMBER_DIGITS: Final = 1000
"""The most digits a number may have, written out or implied by its exponent."""

_INT_BOUND: Final = 10**MAX_NUMBER_DIGITS
_MAX_TIME_TEXT: Final = 64  # characters: longer is no RFC 3339 timestamp

_ENVELOPE = frozenset(
    {"id", "time", "source", "correlation_id", "causation_id", "traceparent", "tracestate"}
)
# W3C Trace Context: version-traceid-parentid-flags; a later version may append fields.
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-[\x21-\x7e]*)?")
_MAX_TRACESTATE: Final = 512  # characters W3C asks every vendor to propagate
_EMPTY_SOURCE = "/"
_TAGS = ("$bytes", "$decimal", "$set", "$datetime", "$event", "$map")

Encoder = Callable[[Any, str], Any]
Decoder = Callable[[Any, str], Any]


def to_cloudevent(event: Event) -> dict[str, Any]:
    """Render *event* as a CloudEvents 1.0 structured-mode JSON object (a dict).

    The envelope maps to CloudEvents attributes (``id``, ``source``, ``type``
    from :meth:`Event.event_type`, ``time``); ``correlation_id`` and
    ``causation_id`` become the extension attributes ``correlationid`` and
    ``causationid``; ``traceparent`` and ``tracestate`` become the
    distributed-tracing extension attributes of the same names; the declared
    fields become ``data``. An empty ``source`` is written as ``"/"``
    (CloudEvents requires a non-empty source).

    Raises:
        SerializationError: a field holds a value JSON cannot carry (the
            message names the field).
    """
    time, data = _render(event)
    source, correlation, causation, traceparent, tracestate = optional_envelope(event)
    out: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.id,
        "source": source or _EMPTY_SOURCE,
        "type": type(event).event_type(),
        "time": time,
        "datacontenttype": "application/json",
        "data": data,
    }
    if correlation is not None:
        out["correlationid"] = correlation
    if causation is not None:
        out["causationid"] = causation
    if traceparent is not None:
        out["traceparent"] = traceparent
        if tracestate is not None:
            out["tracestate"] = tracestate
    return out


def _render(event: Event) -> tuple[str, dict[str, Any]]:
    """*event*'s time as RFC 3339 text and its declared fields as JSON values (checked)."""
    if not isinstance(event, Event):
        raise SerializationError(
            f"to_cloudevent() takes an Event instance, got {type(event).__name__}"
        )
    cls = type(event)
    data: dict[str, Any] = {}
    name = "time"
    try:
        time = time_text(event)
        for name, encode, _ in _codec(cls):
            data[name] = encode(getattr(event, name), name)
    except SerializationError:
        raise
    except RecursionError:
        raise SerializationError(
            f"{cls.event_type()}.{name}: nests deeper than the {MAX_DEPTH} levels a CloudEvent "
            "may have (MAX_DEPTH), or refers to itself; flatten the data"
        ) from None
    except MemoryError:
        raise
    except Exception as exc:
        raise SerializationError(
            f"{cls.event_type()}.{name}: cannot encode {type(getattr(event, name, None)).__name__} "
            f"({type(exc).__name__}: {_short(str(exc))})"
        ) from exc
    _check_tree(data, "data", 2, numbers=True)
    return time, data


def from_cloudevent(document: Mapping[str, Any] | str | bytes) -> Event:
    """Decode a CloudEvents 1.0 structured-mode document into its registered event class.

    Accepts the parsed dict or its JSON text. Unknown extra ``data`` fields
    are ignored, so older readers accept newer writers. The document is
    untrusted: whatever it holds, only :class:`~eventbus.SerializationError`
    is raised, in time linear in its size.

    Raises:
        SerializationError: the document is not CloudEvents 1.0, its ``type``
            is not a registered :class:`Event` subclass, a field is missing
            or of the wrong shape (the message names it), or it exceeds a
            limit: :data:`MAX_DOCUMENT_SIZE`, :data:`MAX_DEPTH` or
            :data:`MAX_NUMBER_DIGITS` (the message names the limit).
    """
    return _decode(document, MAX_DOCUMENT_SIZE)


def decode_stored(document: str | bytes) -> Event:
    """Decode a CloudEvent this package wrote to its own files (internal).

    The outbox of a table, the journal of an object store and a dead-letter
    file hold what :func:`to_cloudevent` wrote, which may exceed
    :data:`MAX_DOCUMENT_SIZE` (it limits only what comes from outside). The
    depth and number limits still apply; errors are ``SerializationError``.
    """
    return _decode(document, None)


def _decode(document: Mapping[str, Any] | str | bytes, max_size: int | None) -> Event:
    try:
        return _from_cloudevent(document, max_size)
    except SerializationError:
        raise
    except RecursionError:
        raise SerializationError(
            f"the CloudEvent nests deeper than the {MAX_DEPTH} levels allowed (MAX_DEPTH)"
        ) from None
    except MemoryError:
        raise
    except Exception as exc:  # a decoder or an attrs validator met input it did not expect
        raise SerializationError(
            f"cannot decode the CloudEvent ({type(exc).__name__}: {_short(str(exc))})"
        ) from exc


def _from_cloudevent(document: Mapping[str, Any] | str | bytes, max_size: int | None) -> Event:
    # Exact-type checks first: this runs once per event a transport delivers.
    kind = document.__class__
    if kind is bytes or kind is str or isinstance(document, str | bytes | bytearray):
        document = _parse_json(document, max_size)  # type: ignore[arg-type]
    elif kind is dict or isinstance(document, Mapping):
        _check_tree(document, "the CloudEvent", 1, numbers=True)
    else:
        raise SerializationError(
            f"a CloudEvent must be a JSON object, got {type(document).__name__}"
        )
    if document.__class__ is not dict and not isinstance(document, Mapping):
        raise SerializationError(
            f"a CloudEvent must be a JSON object, got {type(document).__name__}"
        )
    get = document.get
    version = get("specversion")
    if version != "1.0":
        raise SerializationError(
            f"specversion: expected '1.0', got {_short(repr(version))}; "
            "only CloudEvents 1.0 is supported"
        )
    event_id, source, type_name = get("id"), get("source"), get("type")
    for required, value in (("id", event_id), ("source", source), ("type", type_name)):
        if value.__class__ is not str or not value:
            if isinstance(value, str) and value:
                continue  # a str subclass
            raise SerializationError(f"{required}: a CloudEvent needs a non-empty string")
    cls = event_class(type_name)  # type: ignore[arg-type]  # a str: checked above
    data = get("data")
    if data is None:
        data = {}
    elif data.__class__ is not dict and not isinstance(data, Mapping):
        raise SerializationError(
            f"data: expected a JSON object for {cls.event_type()}, got {type(data).__name__}"
        )
    kwargs: dict[str, Any] = {}
    for name, decode, where in _decode_plan(cls):
        if name in data:
            kwargs[name] = decode(data[name], where)
    kwargs["id"] = event_id
    kwargs["source"] = "" if source == _EMPTY_SOURCE else source
    time = get("time")
    if time is not None:
        kwargs["time"] = _parse_time(time, "time")
    for ext, field in (("correlationid", "correlation_id"), ("causationid", "causation_id")):
        value = get(ext)
        if value is not None:
            if not isinstance(value, str):
                raise SerializationError(f"{ext}: expected a string, got {type(value).__name__}")
            kwargs[field] = value
    if "traceparent" in document:
        kwargs.update(_trace_context(document))
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(f"data: cannot build {cls.event_type()}: {exc}") from exc


def _trace_context(document: Mapping[str, Any]) -> dict[str, str]:
    """The valid W3C ``traceparent`` (and ``tracestate``) of *document*, else nothing.

    As the W3C Trace Context processing model says, an invalid ``traceparent``
    is ignored (the trace restarts) rather than refused; an invalid
    ``tracestate`` is dropped on its own.
    """
    traceparent = document.get("traceparent")
    if (
        not isinstance(traceparent, str)
        or len(traceparent) > _MAX_TRACESTATE
        or not _TRACEPARENT.fullmatch(traceparent)
        or traceparent.startswith("ff")
        or (traceparent.startswith("00") and len(traceparent) != 55)
        or traceparent[3:35] == "0" * 32
        or traceparent[36:52] == "0" * 16
    ):
        return {}
    out = {"traceparent": traceparent}
    tracestate = document.get("tracestate")
    if (
        isinstance(tracestate, str)
        and tracestate
        and len(tracestate) <= _MAX_TRACESTATE
        and tracestate.isascii()
        and tracestate.isprintable()
    ):
        out["tracestate"] = tracestate
    return out


# -- untrusted JSON, within limits ---------------------------------------------------


def _parse_json(text: str | bytes | bytearray, max_size: int | None = MAX_DOCUMENT_SIZE) -> Any:
    """Parse CloudEvent JSON text within the size, depth and number limits."""
    if max_size is not None and len(text) > max_size:
        raise SerializationError(
            f"the CloudEvent is {len(text):,} {'characters' if isinstance(text, str) else 'bytes'}"
            f" long, more than the {max_size:,} allowed (MAX_DOCUMENT_SIZE)"
        )
    if not isinstance(text, str):
        try:  # as json.loads does: UTF-8, -16 or -32, told apart by the first bytes
            if text[:1] == b"{" and text[1:2] != b"\x00":  # UTF-8: what the transports send
                text = bytes(text).decode("utf-8", "surrogatepass")
            else:
                text = bytes(text).decode(json.detect_encoding(text), "surrogatepass")
        except UnicodeDecodeError as exc:
            raise SerializationError(f"CloudEvent is not valid JSON: {exc}") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(text):
        raise SerializationError(
            f"the CloudEvent nests deeper than the {MAX_DEPTH} levels allowed (MAX_DEPTH); "
            "flatten the data"
        )
    try:
        try:  # the scanner itself: json's decode() around it costs a third more
            document, end = _SCAN(text, 0)
        except StopIteration:
            end = -1  # leading whitespace, or not JSON: decode() says which
        if end != len(text):
            return _DECODER.decode(text)  # trailing whitespace, or extra data: as decode() does
        return document
    except RecursionError:  # not reached after _too_deep; kept as a guard
        raise SerializationError(
            f"the CloudEvent nests deeper than the {MAX_DEPTH} levels allowed (MAX_DEPTH)"
        ) from None
    except ValueError as exc:
        raise SerializationError(f"CloudEvent is not valid JSON: {_short(str(exc))}") from None


_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]+")
_TO_PARENS: Final = str.maketrans("[]{}", "()()")


def _too_deep(text: str) -> bool:
    """Whether JSON *text* nests arrays and objects deeper than MAX_DEPTH.

    Works on the text alone, before parsing: strings are dropped, then the
    brackets left are peeled one nesting level per pass (each pass a
    C-speed replace), at most MAX_DEPTH passes.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).translate(_TO_PARENS)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        if _OPENERS in brackets:
            return True
        brackets = brackets.replace("()", "")
    return bool(brackets)


_OPENERS: Final = "(" * (MAX_DEPTH + 1)


def _too_many_digits(text: str) -> SerializationError:
    return SerializationError(
        f"the number {text[:20]}... has more than the {MAX_NUMBER_DIGITS:,} digits allowed "
        "(MAX_NUMBER_DIGITS)"
    )


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS + 1:  # + 1 for a minus sign
        raise _too_many_digits(text)
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS + 16:  # room for a sign, a point and an exponent
        raise _too_many_digits(text)
    value = float(text)
    if not math.isfinite(value):
        raise SerializationError(
            f"the number {text[:40]} is out of range of a float (at most about 1.8e308)"
        )
    return value


def _parse_constant(text: str) -> Any:
    raise SerializationError(f"{text} is not a JSON number; CloudEvents JSON has no {text}")


# Built once: json.loads/json.dumps with options build a new decoder/encoder per call.
_DECODER: Final = json.JSONDecoder(
    parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
)
_COMPACT: Final = json.JSONEncoder(separators=(",", ":"))
_SCAN: Final[Callable[[str, int], tuple[Any, int]]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _compact_data(data: dict[str, Any]) -> str:
    """``_COMPACT.encode(data)`` for a rendered ``data``, without its per-call set-up.

    *data* is a fresh tree :func:`_check_tree` bounded, so it cannot refer
    to itself: the encoder keeps no record of the containers it is in.
    """
    if _C_ENCODE is None:  # pragma: no cover - CPython has the C encoder
        return _COMPACT.encode(data)
    return "".join(_C_ENCODE(data, 0))


_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)  # untyped: CPython's C encoder
_C_ENCODE: Final[Callable[[Any, int], Any] | None] = (
    None
    if _make_encoder is None
    else _make_encoder(
        None,  # no circular-reference check (see _compact_data)
        _COMPACT.default,
        json.encoder.encode_basestring_ascii,
        None,  # no indent
        ":",
        ",",
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan, as _COMPACT (NaN and infinities never reach it)
    )
)


_QUOTE: Final = json.encoder.encode_basestring_ascii  # a JSON string as _COMPACT writes it
_TYPE_JSON: dict[type, str] = {}  # an event class's quoted type name


def cloudevent_json(event: Event) -> str:
    """``to_cloudevent(event)`` as compact JSON text (internal: what the transports send).

    The same text as ``_COMPACT.encode(to_cloudevent(event))``, written
    without building the envelope dict: the transports pay this per event.
    """
    time, data = _render(event)
    cls = type(event)
    event_id = event.id
    source, correlation, causation, traceparent, tracestate = optional_envelope(event)
    source = source or _EMPTY_SOURCE
    if (
        type(event_id) is not str
        or type(source) is not str
        or (correlation is not None and type(correlation) is not str)
        or (causation is not None and type(causation) is not str)
        or (traceparent is not None and type(traceparent) is not str)
        or (tracestate is not None and type(tracestate) is not str)
    ):
        return _COMPACT.encode(to_cloudevent(event))  # odd envelope values: the general path
    quoted_type = _TYPE_JSON.get(cls)
    if quoted_type is None:
        quoted_type = _TYPE_JSON[cls] = _QUOTE(cls.event_type())
    text = (
        f'{{"specversion":"1.0","id":{_QUOTE(event_id)},"source":{_QUOTE(source)},'
        f'"type":{quoted_type},"time":"{time}","datacontenttype":"application/json",'
        f'"data":{_compact_data(data)}'
    )
    if correlation is None and causation is None and traceparent is None:
        return text + "}"
    parts = [text]
    if correlation is not None:
        parts.append(f',"correlationid":{_QUOTE(correlation)}')
    if causation is not None:
        parts.append(f',"causationid":{_QUOTE(causation)}')
    if traceparent is not None:
        parts.append(f',"traceparent":{_QUOTE(traceparent)}')
        if tracestate is not None:
            parts.append(f',"tracestate":{_QUOTE(tracestate)}')
    parts.append("}")
    return "".join(parts)


def _check_tree(value: Any, where: str, depth: int, *, numbers: bool) -> None:
    """Refuse *value* (at *depth*, 1 for the document) nesting past MAX_DEPTH.

    With *numbers*, also refuse ints past MAX_NUMBER_DIGITS (documents
    built in Python rather than parsed from text). Iterative: never recurses.
    A quick pass finds whether anything is wrong; only then a second pass
    keeps the path, for the error message.
    """
    stack: list[tuple[Any, int]] = [(value, depth)]
    while stack:
        node, level = stack.pop()
        if level > MAX_DEPTH:
            _explain_tree(value, where, depth, numbers=numbers)
        kind = type(node)
        if kind is dict or (kind is not list and isinstance(node, Mapping)):
            children: Any = node.values()
        elif kind is list or kind is tuple:
            children = node
        else:
            continue
        for child in children:
            kind = type(child)
            if kind in _LEAVES:
                continue
            if kind is int:
                if numbers and not -_INT_BOUND < child < _INT_BOUND:
                    _explain_tree(value, where, depth, numbers=numbers)
                continue
            stack.append((child, level + 1))


def _explain_tree(value: Any, where: str, depth: int, *, numbers: bool) -> NoReturn:
    """Raise the error :func:`_check_tree` found, naming the path where it is."""
    stack: list[tuple[Any, int, Any]] = [(value, depth, None)]
    while stack:
        node, level, trail = stack.pop()
        kind = type(node)
        if kind is dict or (kind is not list and isinstance(node, Mapping)):
            children: Any = node.items()
        elif kind is list or kind is tuple:
            children = enumerate(node)
        else:
            if numbers and kind is int and not -_INT_BOUND < node < _INT_BOUND:
                raise SerializationError(
                    f"{_trail(where, trail)}: a number has more than the {MAX_NUMBER_DIGITS:,} "
                    "digits allowed (MAX_NUMBER_DIGITS)"
                )
            continue
        if level > MAX_DEPTH:
            raise SerializationError(
                f"{_trail(where, trail)}: the CloudEvent nests deeper than the {MAX_DEPTH} levels "
                "allowed (MAX_DEPTH); flatten the data"
            )
        for key, child in children:
            kind = type(child)
            if kind in _LEAVES:
                continue
            if kind is int and not numbers:
                continue
            stack.append((child, level + 1, (trail, key)))
    raise SerializationError(  # not reached: the quick pass saw a limit crossed
        f"{where}: the CloudEvent exceeds MAX_DEPTH ({MAX_DEPTH}) or MAX_NUMBER_DIGITS "
        f"({MAX_NUMBER_DIGITS:,})"
    )


_LEAVES: Final = frozenset({str, float, bool, type(None)})


def _trail(where: str, trail: Any) -> str:
    keys: list[Any] = []
    while trail is not None and len(keys) < 12:
        trail, key = trail
        keys.append(key)
    path = "".join(f"[{k}]" if isinstance(k, int) else f".{str(k)[:40]}" for k in reversed(keys))
    return f"{where}{'...' if trail is not None else ''}{path}"


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


# -- per-class codecs, built once -------------------------------------------------


def _codec(cls: type) -> tuple[tuple[str, Encoder, Decoder], ...]:
    codec = _CODECS.get(cls)
    if codec is None:
        codec = _CODECS[cls] = _build_codec(cls)
    return codec


_CODECS: dict[type, tuple[tuple[str, Encoder, Decoder], ...]] = {}


def _decode_plan(cls: type) -> tuple[tuple[str, Decoder, str], ...]:
    """Each field's name, decoder and place in a CloudEvent (``data.<name>``)."""
    plan = _DECODE_PLANS.get(cls)
    if plan is None:
        plan = _DECODE_PLANS[cls] = tuple(
            (name, decode, f"data.{name}") for name, _, decode in _codec(cls)
        )
    return plan


_DECODE_PLANS: dict[type, tuple[tuple[str, Decoder, str], ...]] = {}


def _build_codec(cls: type) -> tuple[tuple[str, Encoder, Decoder], ...]:
    hints = _hints(cls)
    out = []
    for field in attrs.fields(cls):
        if field.name in _ENVELOPE:
            continue
        hint = hints.get(field.name, Any)
        out.append((field.name, _encoder(hint), _decoder(hint)))
    return tuple(out)


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:
        pass
    # Classes the package re-exports report __module__ = "eventbus", where the
    # names in their annotations are undefined: look them up where they were defined.
    namespace: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        module = sys.modules.get(klass.__dict__.get("__event_module__", klass.__module__))
        if module is not None:
            namespace.update(vars(module))
    try:
        return typing.get_type_hints(cls, localns=namespace)
    except Exception:  # a forward reference to a local name: fall back per field
        return {
            f.name: f.type
            for f in attrs.fields(cls)
            if f.type is not None and not isinstance(f.type, str)
        }


def _strip(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _strip(typing.get_args(hint)[0])
    return hint


def _encoder(hint: Any) -> Encoder:
    hint = _strip(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint in (str, bool, int):
        return _identity_json
    if hint is float:
        return _encode_float
    if hint is datetime:
        return lambda v, p: _format_time(v)
    if hint in (bytes, bytearray):
        return lambda v, p: base64.b64encode(v).decode("ascii")
    if hint is Decimal:
        return lambda v, p: str(v)
    if origin is typing.Literal:
        return _identity_json
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return lambda v, p: v.value
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        if len(arms) == 1:
            inner = _encoder(arms[0])
            return lambda v, p: None if v is None else inner(v, p)
        return _encode_dynamic
    if origin in (dict, Mapping, typing.Mapping, typing.MutableMapping) or (
        isinstance(origin, type) and issubclass(origin, Mapping)
    ):
        value_enc = _encoder(args[1]) if len(args) == 2 else _encode_dynamic
        return lambda v, p: {_key(k, p): value_enc(x, f"{p}.{k}") for k, x in v.items()}
    if origin in (list, tuple, set, frozenset) or (
        origin is not None and origin.__name__ in ("Sequence", "Set", "AbstractSet")
    ):
        item = args[0] if args and (origin is not tuple or args[-1] is Ellipsis) else Any
        item_enc = _encoder(item)
        return lambda v, p: [item_enc(x, f"{p}[{i}]") for i, x in enumerate(v)]
    if isinstance(hint, type) and issubclass(hint, Event):
        # A nested event keeps its own type: it is written as a whole CloudEvent.
        return lambda v, p: to_cloudevent(v)
    if isinstance(hint, type) and attrs.has(hint):
        return lambda v, p: _encode_attrs(v, p)
    return _encode_dynamic


def _literal_decoder(allowed: tuple[Any, ...]) -> Decoder:
    """Accept exactly the declared literal values (by type too: ``1`` is not ``True``)."""
    keys = {(type(a), a) for a in allowed}
    shown = ", ".join(
        json.dumps(a) if isinstance(a, str | int | bool) else repr(a) for a in allowed
    )

    def decode_literal(v: Any, p: str) -> Any:
        try:
            ok = (type(v), v) in keys
        except TypeError:  # an unhashable value (a list, an object) is never a literal
            ok = False
        if not ok:
            got = json.dumps(v[:40]) if isinstance(v, str) else type(v).__name__
            raise SerializationError(
                f"{p}: expected one of {shown}, got {got}; send one of the declared values"
            )
        return v

    return decode_literal


def _decoder(hint: Any) -> Decoder:
    hint = _strip(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is str:
        return _expect(str)
    if hint is bool:
        return _expect(bool)
    if hint is int:
        return _decode_int
    if hint is float:
        return _decode_float
    if hint is datetime:
        return _parse_time
    if hint in (bytes, bytearray):
        return _decode_bytes
    if hint is Decimal:
        return _decode_decimal
    if origin is typing.Literal:
        return _literal_decoder(args)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        enum_cls = hint
        return lambda v, p: _wrap(lambda: enum_cls(v), p)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        if len(arms) == 1:
            inner = _decoder(arms[0])
            return lambda v, p: None if v is None else inner(v, p)
        return _decode_dynamic
    if origin in (dict, Mapping, typing.Mapping, typing.MutableMapping) or (
        isinstance(origin, type) and issubclass(origin, Mapping)
    ):
        value_dec = _decoder(args[1]) if len(args) == 2 else _decode_dynamic

        def decode_map(v: Any, p: str) -> Any:
            if not isinstance(v, Mapping):
                raise SerializationError(f"{p}: expected an object, got {type(v).__name__}")
            return {k: value_dec(x, f"{p}.{k}") for k, x in v.items()}

        return decode_map
    if origin in (list, tuple, set, frozenset) or (
        origin is not None and origin.__name__ in ("Sequence", "Set", "AbstractSet")
    ):
        item = args[0] if args and (origin is not tuple or args[-1] is Ellipsis) else Any
        item_dec = _decoder(item)
        build: Callable[[list[Any]], Any]
        if origin is tuple:
            build = tuple
        elif origin is set or origin.__name__ in ("Set", "AbstractSet"):
            build = set
        elif origin is frozenset:
            build = frozenset
        else:
            build = list

        def decode_seq(v: Any, p: str) -> Any:
            if not isinstance(v, list):
                raise SerializationError(f"{p}: expected an array, got {type(v).__name__}")
            return build([item_dec(x, f"{p}[{i}]") for i, x in enumerate(v)])

        return decode_seq
    if isinstance(hint, type) and issubclass(hint, Event):
        expected = hint

        def decode_event(v: Any, p: str) -> Any:
            try:
                nested = from_cloudevent(v)
            except SerializationError as exc:
                raise SerializationError(f"{p}: {exc}") from exc
            if not isinstance(nested, expected):
                raise SerializationError(
                    f"{p}: expected a {expected.event_type()} event, got {type(nested).event_type()}"
                )
            return nested

        return decode_event
    if isinstance(hint, type) and attrs.has(hint):
        target = hint
        return lambda v, p: _decode_attrs(target, v, p)
    return _decode_dynamic


def _key(k: Any, path: str) -> str:
    if not isinstance(k, str):
        raise SerializationError(f"{path}: mapping keys must be strings, got {type(k).__name__}")
    return k


def _identity_json(v: Any, p: str) -> Any:
    return v


def _encode_float(v: Any, p: str) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        raise SerializationError(f"{p}: {v!r} cannot be represented in JSON")
    return v


def _encode_attrs(v: Any, p: str) -> dict[str, Any]:
    return {name: enc(getattr(v, name), f"{p}.{name}") for name, enc, _ in _codec(type(v))}


def _decode_attrs(cls: type, v: Any, p: str) -> Any:
    if not isinstance(v, Mapping):
        raise SerializationError(f"{p}: expected an object, got {type(v).__name__}")
    kwargs = {name: dec(v[name], f"{p}.{name}") for name, _, dec in _codec(cls) if name in v}
    return _wrap(lambda: cls(**kwargs), p)


def _encode_dynamic(v: Any, p: str) -> Any:
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return _encode_float(v, p)
    if isinstance(v, bytes | bytearray):
        return {"$bytes": base64.b64encode(v).decode("ascii")}
    if isinstance(v, Decimal):
        return {"$decimal": str(v)}
    if isinstance(v, datetime):
        return {"$datetime": _format_time(v)}
    if isinstance(v, set | frozenset):
        items = [_encode_dynamic(x, f"{p}[]") for x in v]
        return {"$set": sorted(items, key=json.dumps)}
    if isinstance(v, list | tuple):
        return [_encode_dynamic(x, f"{p}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, Mapping):
        out = {_key(k, p): _encode_dynamic(x, f"{p}.{k}") for k, x in v.items()}
        if len(out) == 1 and next(iter(out)) in _TAGS:
            return {"$map": out}
        return out
    if isinstance(v, Event):
        return {"$event": to_cloudevent(v)}
    if attrs.has(type(v)):
        return _encode_attrs(v, p)
    raise SerializationError(
        f"{p}: {type(v).__name__} values cannot be serialized; use JSON types, "
        "bytes, Decimal, datetime, sets, or attrs classes"
    )


def _decode_dynamic(v: Any, p: str) -> Any:
    if type(v) in _LEAVES:
        return v
    if isinstance(v, list):
        return [_decode_dynamic(x, f"{p}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, Mapping):
        if len(v) == 1:
            tag, inner = next(iter(v.items()))
            if tag == "$bytes":
                return _decode_bytes(inner, p)
            if tag == "$decimal":
                return _decode_decimal(inner, p)
            if tag == "$datetime":
                return _parse_time(inner, p)
            if tag == "$set":
                if not isinstance(inner, list):
                    raise SerializationError(
                        f"{p}: $set expects an array, got {type(inner).__name__}"
                    )
                return _wrap(lambda: {_hashable(_decode_dynamic(x, p)) for x in inner}, p)
            if tag == "$event":
                return from_cloudevent(inner)
            if tag == "$map":
                if not isinstance(inner, Mapping):
                    raise SerializationError(
                        f"{p}: $map expects an object, got {type(inner).__name__}"
                    )
                return {k: _decode_dynamic(x, f"{p}.{k}") for k, x in inner.items()}
        return {k: _decode_dynamic(x, f"{p}.{k}") for k, x in v.items()}
    return v


def _hashable(v: Any) -> Any:
    return frozenset(v) if isinstance(v, set) else v


def _expect(kind: type) -> Decoder:
    def check(v: Any, p: str) -> Any:
        if not isinstance(v, kind):
            raise SerializationError(
                f"{p}: expected {kind.__name__}, got {type(v).__name__} {v!r:.60}"
            )
        return v

    return check


def _decode_int(v: Any, p: str) -> int:
    if v.__class__ is int:
        return v  # the common case; the parser bounded its digits
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise SerializationError(f"{p}: expected an integer, got {type(v).__name__} {v!r:.60}")
    if isinstance(v, str) and len(v) > MAX_NUMBER_DIGITS + 1:
        raise SerializationError(
            f"{p}: the integer has more than the {MAX_NUMBER_DIGITS:,} digits allowed "
            "(MAX_NUMBER_DIGITS)"
        )
    result: int = _wrap(lambda: int(v), p)
    return result


def _decode_float(v: Any, p: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise SerializationError(f"{p}: expected a number, got {type(v).__name__} {v!r:.60}")
    try:
        return float(v)
    except OverflowError:
        raise SerializationError(f"{p}: the number is out of range of a float") from None


def _decode_bytes(v: Any, p: str) -> bytes:
    if not isinstance(v, str):
        raise SerializationError(f"{p}: expected base64 text, got {type(v).__name__}")
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raise SerializationError(f"{p}: {v!r:.60} is not valid base64") from None


def _decode_decimal(v: Any, p: str) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise SerializationError(f"{p}: expected a decimal string, got {type(v).__name__}")
    if isinstance(v, str) and len(v) > MAX_NUMBER_DIGITS + 16:
        raise SerializationError(
            f"{p}: the decimal has more than the {MAX_NUMBER_DIGITS:,} digits allowed "
            "(MAX_NUMBER_DIGITS)"
        )
    try:
        value = Decimal(str(v))
    except (InvalidOperation, ValueError):
        raise SerializationError(f"{p}: {v!r:.60} is not a decimal number") from None
    if value.is_finite() and value and abs(value.adjusted()) >= MAX_NUMBER_DIGITS:
        raise SerializationError(
            f"{p}: {v!r:.60} has an exponent implying more than the {MAX_NUMBER_DIGITS:,} "
            "digits allowed (MAX_NUMBER_DIGITS)"
        )
    return value


def _format_time(value: datetime) -> str:
    # An event's time is UTC already (Event normalises it): no conversion then.
    text = (value if value.tzinfo is UTC else value.astimezone(UTC)).isoformat()
    return text.removesuffix("+00:00") + "Z"


def _parse_time(v: Any, p: str) -> datetime:
    if not isinstance(v, str):
        raise SerializationError(f"{p}: expected an RFC 3339 timestamp, got {type(v).__name__}")
    if len(v) > _MAX_TIME_TEXT:
        raise SerializationError(f"{p}: {v!r:.60}... is too long for an RFC 3339 timestamp")
    try:
        parsed = datetime.fromisoformat(v)
    except ValueError:
        raise SerializationError(f"{p}: {v!r:.60} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is UTC:
        return parsed  # "Z" or "+00:00": nothing to convert
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise SerializationError(f"{p}: {v!r} has no UTC offset; RFC 3339 requires one")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise SerializationError(
            f"{p}: {v!r} is out of range once converted to UTC (years 1 to 9999)"
        ) from None


def _wrap(make: Callable[[], Any], p: str) -> Any:
    try:
        return make()
    except SerializationError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(f"{p}: {exc}") from exc
