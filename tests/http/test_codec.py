"""Property tests of the gateway's parsers: request bodies and handlers' proxy responses."""

from __future__ import annotations

import json
from typing import Any

from gateway_helpers import OrderPlaced
from hypothesis import given
from hypothesis import strategies as st

from eventbus.http._codec import build_event, encode_json, parse_json, proxy_response
from eventbus.http._errors import HttpError

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=25,
)
ORDER_LIKE = st.fixed_dictionaries(
    {},
    optional={"order_id": JSON, "quantity": JSON, "note": JSON, "extra": JSON},
)


def outcome(fn: Any, *args: Any, **kwargs: Any) -> int:
    """0 when *fn* returns, else the status of the HttpError it raised."""
    try:
        fn(*args, **kwargs)
    except HttpError as exc:
        return exc.status
    return 0


@given(st.binary(max_size=200))
def test_any_bytes_build_an_event_or_a_400(body: bytes) -> None:
    """Arbitrary bytes as a body give an event or a 400, never another error."""
    assert outcome(build_event, OrderPlaced, body, {}, request_id="r", source="/") in (0, 400)


@given(ORDER_LIKE, st.dictionaries(st.sampled_from(["order_id"]), st.text(max_size=10)))
def test_json_objects_build_an_event_or_a_400(
    document: dict[str, Any], path: dict[str, str]
) -> None:
    """Any JSON object with any path parameters gives an event or a 400 naming a field."""
    body = json.dumps(document).encode()
    error: HttpError | None = None
    try:
        event = build_event(OrderPlaced, body, path, request_id="r", source="/")
    except HttpError as exc:
        error = exc
    if error is not None:
        assert error.status == 400
        assert any(name in error.message for name in ("order_id", "quantity", "note"))
    else:
        assert isinstance(event, OrderPlaced)
        assert event.order_id == path.get("order_id", document.get("order_id"))


@given(st.text(max_size=40))
def test_parse_json_raises_only_400(text: str) -> None:
    """parse_json returns a value or raises a 400."""
    assert outcome(parse_json, text.encode("utf-8", "surrogatepass")) in (0, 400)


@given(
    st.fixed_dictionaries(
        {"statusCode": JSON | st.integers(0, 700)},
        optional={
            "headers": JSON,
            "multiValueHeaders": JSON,
            "cookies": JSON,
            "body": JSON,
            "isBase64Encoded": st.booleans(),
        },
    )
)
def test_proxy_responses_are_sent_or_502(result: dict[str, Any]) -> None:
    """Any proxy-style result is sent as is, or answered 502 (500 if its body cannot be JSON)."""
    assert outcome(proxy_response, result) in (0, 500, 502)


@given(JSON)
def test_json_values_encode(value: Any) -> None:
    """Every JSON value encodes and reads back equal."""
    assert json.loads(encode_json(value)) == value
