"""CloudEvents JSON from untrusted sources: only SerializationError, within named limits."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventbus import Event, SerializationError, TableChange, from_cloudevent, to_cloudevent
from eventbus._serialization import MAX_DEPTH, MAX_DOCUMENT_SIZE, MAX_NUMBER_DIGITS

WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


@attrs.frozen
class Sample(Event, type_name="tests.limits.Sample"):
    count: int = 0
    ratio: float = 0.0
    price: Decimal = Decimal(0)
    at: datetime = WHEN
    blob: bytes = b""
    tags: frozenset[str] = frozenset()
    meta: Mapping[str, Any] = attrs.field(factory=dict)
    extra: Any = None


GOOD = Sample(
    3,
    0.5,
    Decimal("1.25"),
    WHEN,
    b"\x00\x01",
    frozenset({"a"}),
    {"k": [1, {"x": None}]},
    {"$set": 1},
    source="/s",
)


def document(**changes: Any) -> dict[str, Any]:
    """GOOD's CloudEvent with *changes* applied to the top level."""
    return dict(to_cloudevent(GOOD), **changes)


def with_data(**changes: Any) -> dict[str, Any]:
    """GOOD's CloudEvent with *changes* applied to its data."""
    base = to_cloudevent(GOOD)
    return dict(base, data=dict(base["data"], **changes))


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# -- the reproducers -------------------------------------------------------------------

REPRODUCERS: dict[str, Any] = {
    "time before year 1 in UTC": json.dumps(document(time="0001-01-01T00:00:00+01:00")),
    "time after year 9999 in UTC": json.dumps(document(time="9999-12-31T23:59:59-01:00")),
    "$map of a number": json.dumps(with_data(extra={"$map": 5})),
    "$set of a number": json.dumps(with_data(extra={"$set": 5})),
    "$set of objects": json.dumps(with_data(extra={"$set": [{"a": 1}]})),
    "$datetime overflowing": json.dumps(
        with_data(extra={"$datetime": "9999-12-31T23:59:59-01:00"})
    ),
    "JSON nested 5,000 deep": nested(5000),
    "data nested 5,000 deep": json.dumps(document(data=None)).replace(
        '"data": null', '"data": {"extra": ' + nested(5000) + "}"
    ),
    "data nested 200 deep": json.dumps(document(data=None)).replace(
        '"data": null', '"data": {"extra": ' + nested(200) + "}"
    ),
    "5,000-digit integer": json.dumps(document(data=None)).replace(
        '"data": null', '"data": {"count": ' + "9" * 5000 + "}"
    ),
    "5,000-digit integer as text": json.dumps(with_data(count="9" * 5000)),
    "float beyond a double": json.dumps(document(data=None)).replace(
        '"data": null', '"data": {"ratio": 1e999}'
    ),
    "an integer too big for a float": json.dumps(document(data=None)).replace(
        '"data": null', '"data": {"ratio": ' + "9" * 400 + "}"
    ),
    "NaN": json.dumps(document(data=None)).replace('"data": null', '"data": {"ratio": NaN}'),
    "decimal exponent 1e999990": json.dumps(with_data(price="1e999990")),
    "decimal of 5,000 digits": json.dumps(with_data(price="1" * 5000)),
    "decimal that is text": json.dumps(with_data(price="abc")),
    "bytes that are not base64": json.dumps(with_data(blob="***")),
    "not UTF-8": b'{"specversion": "1.0", "id": "\xff"}',
    "a JSON array": "[]",
    "a number": "5",
    "bad JSON": "{",
    "time as a number": json.dumps(document(time=5)),
    "a very long time": json.dumps(document(time="2024-01-01T00:00:00" + "0" * 10_000 + "Z")),
    "data as a list": json.dumps(document(data=[1])),
    "meta as a list": json.dumps(with_data(meta=[1])),
    "tags as an object": json.dumps(with_data(tags={"a": 1})),
    "an unknown type": json.dumps(document(type="tests.limits.Nowhere")),
}


@pytest.mark.parametrize("name", sorted(REPRODUCERS))
def test_a_reproducer_raises_serialization_error(name: str) -> None:
    """Each hostile document from the issue is refused with SerializationError."""
    with pytest.raises(SerializationError):
        from_cloudevent(REPRODUCERS[name])


def test_too_deep_names_the_depth_limit() -> None:
    """Nesting past MAX_DEPTH is refused with a message naming the limit."""
    with pytest.raises(SerializationError, match=rf"deeper than the {MAX_DEPTH} levels.*MAX_DEPTH"):
        from_cloudevent(REPRODUCERS["data nested 200 deep"])


def test_too_deep_says_where() -> None:
    """For a parsed document, the depth error names the path where the limit was crossed."""
    with pytest.raises(SerializationError, match=r"the CloudEvent\.\.\.\[0\]"):
        from_cloudevent(json.loads(REPRODUCERS["data nested 200 deep"]))


def test_nesting_at_the_limit_is_accepted() -> None:
    """Data nested exactly to MAX_DEPTH (the document being level 1) decodes."""
    inner: Any = 1
    for _ in range(MAX_DEPTH - 2):  # the document and data take two levels
        inner = [inner]
    event = from_cloudevent(json.dumps(with_data(extra=inner)))
    assert isinstance(event, Sample)


def test_too_many_digits_names_the_limit() -> None:
    """A number past MAX_NUMBER_DIGITS is refused with a message naming the limit."""
    with pytest.raises(SerializationError, match=r"1,000 digits allowed \(MAX_NUMBER_DIGITS\)"):
        from_cloudevent(REPRODUCERS["5,000-digit integer"])


def test_a_number_at_the_digit_limit_is_accepted() -> None:
    """An integer of exactly MAX_NUMBER_DIGITS digits decodes."""
    text = json.dumps(document(data=None)).replace(
        '"data": null', '"data": {"count": ' + "9" * MAX_NUMBER_DIGITS + "}"
    )
    event = from_cloudevent(text)
    assert isinstance(event, Sample)
    assert event.count == int("9" * MAX_NUMBER_DIGITS)


def test_an_oversized_document_names_the_size_limit() -> None:
    """A JSON text longer than MAX_DOCUMENT_SIZE is refused before it is parsed."""
    text = json.dumps(with_data(extra="x" * MAX_DOCUMENT_SIZE))
    with pytest.raises(SerializationError, match="MAX_DOCUMENT_SIZE"):
        from_cloudevent(text)


def test_an_overflowing_time_says_out_of_range() -> None:
    """A time that leaves years 1-9999 once in UTC is refused naming the field."""
    with pytest.raises(SerializationError, match=r"^time: .* out of range"):
        from_cloudevent(REPRODUCERS["time before year 1 in UTC"])


def test_a_parsed_dict_is_checked_too() -> None:
    """A dict (not text) nesting too deep or holding a huge int is refused the same way."""
    deep: Any = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(SerializationError, match="MAX_DEPTH"):
        from_cloudevent(with_data(extra=deep))
    with pytest.raises(SerializationError, match="MAX_NUMBER_DIGITS"):
        from_cloudevent(with_data(count=10**5000))


def test_a_self_referencing_dict_is_refused() -> None:
    """A cyclic dict does not loop forever: it nests past MAX_DEPTH."""
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(SerializationError, match="MAX_DEPTH"):
        from_cloudevent(with_data(meta=loop))


def test_a_failing_validator_becomes_serialization_error() -> None:
    """An exception from the event class's own validator is reported as SerializationError."""

    @attrs.frozen
    class Picky(Event, type_name="tests.limits.Picky"):
        n: int = attrs.field(validator=lambda *_: (_ for _ in ()).throw(KeyError("nope")))

    text = json.dumps(dict(to_cloudevent(Sample()), type="tests.limits.Picky", data={"n": 1}))
    with pytest.raises(SerializationError, match="KeyError"):
        from_cloudevent(text)


# -- encoding ------------------------------------------------------------------------------


def test_encoding_too_deep_names_the_limit() -> None:
    """to_cloudevent refuses data nesting past MAX_DEPTH, so it never writes what it cannot read."""
    deep: Any = 1
    for _ in range(200):
        deep = [deep]
    with pytest.raises(SerializationError, match="MAX_DEPTH"):
        to_cloudevent(Sample(extra=deep))


def test_encoding_a_cycle_is_refused() -> None:
    """A list containing itself is refused with SerializationError, not RecursionError."""
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SerializationError, match="MAX_DEPTH"):
        to_cloudevent(Sample(extra=loop))


def test_encoding_a_huge_int_names_the_limit() -> None:
    """An int of more than MAX_NUMBER_DIGITS digits is refused when encoding."""
    with pytest.raises(SerializationError, match="MAX_NUMBER_DIGITS"):
        to_cloudevent(Sample(count=10**5000))


def test_encoding_a_wrong_type_is_serialization_error() -> None:
    """A field holding a value of the wrong Python type is refused with SerializationError."""
    with pytest.raises(SerializationError, match="blob"):
        to_cloudevent(Sample(blob=5))  # type: ignore[arg-type]


# -- fuzzing -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["$map", "$set", "$bytes", "$decimal", "$datetime", "$event"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["$map", "$set", "$bytes", "$decimal", "$datetime", "$event"])
            | st.text(max_size=8),
            inner,
            max_size=4,
        )
    ),
    max_leaves=30,
)

FIELDS = ["count", "ratio", "price", "at", "blob", "tags", "meta", "extra"]
ENVELOPE = ["specversion", "id", "source", "type", "time", "data", "correlationid", "causationid"]
FUZZ = settings(deadline=1000, max_examples=300, suppress_health_check=[HealthCheck.too_slow])


def decode_or_named_error(doc: Any) -> None:
    with contextlib.suppress(SerializationError):
        from_cloudevent(doc)


@FUZZ
@given(json_values)
def test_arbitrary_json_raises_only_serialization_error(value: Any) -> None:
    """Any JSON value, as text or parsed, decodes or raises SerializationError."""
    decode_or_named_error(json.dumps(value))
    if isinstance(value, dict):
        decode_or_named_error(value)


@FUZZ
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4))
def test_mutated_data_raises_only_serialization_error(changes: dict[str, Any]) -> None:
    """A valid document with arbitrary values in its data decodes or raises SerializationError."""
    decode_or_named_error(json.dumps(with_data(**changes)))


@FUZZ
@given(st.dictionaries(st.sampled_from(ENVELOPE), json_values, max_size=3))
def test_mutated_envelope_raises_only_serialization_error(changes: dict[str, Any]) -> None:
    """A valid document with arbitrary envelope values decodes or raises SerializationError."""
    decode_or_named_error(json.dumps(document(**changes)))


@FUZZ
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=400))
def test_spliced_bytes_raise_only_serialization_error(junk: bytes, at: int) -> None:
    """Bytes spliced into a valid document decode or raise SerializationError."""
    text = json.dumps(to_cloudevent(GOOD)).encode()
    decode_or_named_error(text[:at] + junk + text[at:])


@FUZZ
@given(
    st.sampled_from(["[", '{"a":', '[{"$map":', '{"$set":[']),
    st.integers(min_value=1, max_value=20_000),
)
def test_any_nesting_depth_raises_only_serialization_error(opener: str, depth: int) -> None:
    """Arbitrarily deep nesting in data decodes (when within MAX_DEPTH) or raises SerializationError."""
    inner = opener * depth
    text = json.dumps(document(data=None)).replace('"data": null', '"data": {"extra": ' + inner)
    decode_or_named_error(text)


@FUZZ
@given(st.text(alphabet="0123456789-+.eE", min_size=1, max_size=3000))
def test_numbers_of_any_shape_raise_only_serialization_error(number: str) -> None:
    """Any number-like token in any numeric field decodes or raises SerializationError."""
    for field in ("count", "ratio", "price", "extra"):
        text = json.dumps(document(data=None)).replace(
            '"data": null', '"data": {"' + field + '": ' + number + "}"
        )
        decode_or_named_error(text)
        decode_or_named_error(json.dumps(with_data(**{field: number})))


@FUZZ
@given(st.text(max_size=80))
def test_times_of_any_shape_raise_only_serialization_error(when: str) -> None:
    """Any text as the time or a $datetime decodes or raises SerializationError."""
    decode_or_named_error(json.dumps(document(time=when)))
    decode_or_named_error(json.dumps(with_data(extra={"$datetime": when}, at=when)))


def test_built_in_table_change_rejects_hostile_images() -> None:
    """A TableChange document with a deep image is refused like any other event."""
    change = TableChange("t", "INSERT", {"pk": "1"}, {"pk": "1"}, None, 1)
    doc = to_cloudevent(change)
    deep: Any = "x"
    for _ in range(100):
        deep = {"a": deep}
    doc["data"]["new_image"] = deep
    with pytest.raises(SerializationError, match="MAX_DEPTH"):
        from_cloudevent(json.dumps(doc))


def test_stored_documents_may_exceed_the_size_limit() -> None:
    """What the package wrote itself (outbox, journal, dead letters) decodes past MAX_DOCUMENT_SIZE."""
    from eventbus._serialization import decode_stored

    big = Sample(extra="x" * (MAX_DOCUMENT_SIZE + 10))
    text = json.dumps(to_cloudevent(big))
    with pytest.raises(SerializationError, match="MAX_DOCUMENT_SIZE"):
        from_cloudevent(text)
    assert decode_stored(text) == big


python_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**1200), max_value=10**1200)
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=10)
    | st.decimals()
    | st.datetimes(timezones=st.none() | st.timezones())
    | st.builds(object),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers() | st.text(max_size=5), max_size=3)
        | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=3)
    ),
    max_leaves=20,
)


@FUZZ
@given(python_values)
def test_encoding_any_value_raises_only_serialization_error(value: Any) -> None:
    """to_cloudevent of any Python value in an Any field encodes or raises SerializationError."""
    try:
        document = to_cloudevent(Sample(extra=value))
    except SerializationError:
        return
    from_cloudevent(json.dumps(document))  # what is written can be read back
