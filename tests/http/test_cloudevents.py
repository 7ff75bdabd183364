"""POST /events: CloudEvents over HTTP in structured, batched and binary modes."""

from __future__ import annotations

import json

import httpx
import pytest
from gateway_helpers import OrderPlaced
from hypothesis import given
from hypothesis import strategies as st

import eventbus
from eventbus import Bus
from eventbus.http._cloudevents import decode_cloudevents, media_type
from eventbus.http._errors import HttpError

STRUCTURED = {"content-type": "application/cloudevents+json"}


def binary_headers(**extra: str) -> dict[str, str]:
    """Binary-mode headers for an OrderPlaced."""
    return {
        "ce-specversion": "1.0",
        "ce-id": "evt-1",
        "ce-source": "/shop",
        "ce-type": OrderPlaced.event_type(),
        "content-type": "application/json",
        **extra,
    }


async def test_structured_mode_publishes(routed_bus: Bus, http: httpx.AsyncClient) -> None:
    """A structured CloudEvent is decoded and published; 202 with the receipt."""
    document = eventbus.to_cloudevent(OrderPlaced("o-5", quantity=2))
    response = await http.post("/events", content=json.dumps(document), headers=STRUCTURED)
    assert response.status_code == 202
    assert response.json() == {"id": document["id"], "subscriptions": ["create_order"]}
    await routed_bus.drain()
    assert routed_bus.metrics()["create_order"].succeeded == 1


async def test_binary_mode_publishes(http: httpx.AsyncClient) -> None:
    """ce-* headers plus a JSON body make the event."""
    response = await http.post(
        "/events", json={"order_id": "o-6"}, headers=binary_headers(**{"ce-source": "%2Fshop"})
    )
    assert response.status_code == 202
    assert response.json()["id"] == "evt-1"


async def test_batched_mode_publishes_each(http: httpx.AsyncClient) -> None:
    """A batch is a JSON array of CloudEvents; each gets a receipt."""
    docs = [eventbus.to_cloudevent(OrderPlaced(f"o-{i}")) for i in range(3)]
    response = await http.post(
        "/events",
        content=json.dumps(docs),
        headers={"content-type": "application/cloudevents-batch+json; charset=utf-8"},
    )
    assert response.status_code == 202
    assert [r["id"] for r in response.json()["events"]] == [d["id"] for d in docs]


async def test_unregistered_type_is_a_400(http: httpx.AsyncClient) -> None:
    """A CloudEvent of a type no class registers answers 400 naming the type."""
    doc = {"specversion": "1.0", "id": "1", "source": "/x", "type": "com.example.Nope"}
    response = await http.post("/events", content=json.dumps(doc), headers=STRUCTURED)
    assert response.status_code == 400
    assert response.json()["errorType"] == "InvalidCloudEvent"
    assert "com.example.Nope" in response.json()["errorMessage"]


async def test_bad_field_in_data_is_a_400(http: httpx.AsyncClient) -> None:
    """A data field of the wrong type answers 400 naming it."""
    doc = eventbus.to_cloudevent(OrderPlaced("o"))
    doc["data"]["quantity"] = [1]
    response = await http.post("/events", content=json.dumps(doc), headers=STRUCTURED)
    assert response.status_code == 400
    assert "data.quantity" in response.json()["errorMessage"]


async def test_plain_json_without_ce_headers_is_a_415(http: httpx.AsyncClient) -> None:
    """A JSON body in no CloudEvents mode answers 415 explaining the modes."""
    response = await http.post("/events", json={"order_id": "x"})
    assert response.status_code == 415
    assert "ce-specversion" in response.json()["errorMessage"]


async def test_binary_mode_needs_json_data(http: httpx.AsyncClient) -> None:
    """Binary mode with a non-JSON content type answers 415."""
    response = await http.post(
        "/events", content=b"<xml/>", headers=binary_headers(**{"content-type": "text/xml"})
    )
    assert response.status_code == 415


async def test_batch_must_be_an_array(http: httpx.AsyncClient) -> None:
    """A batch body that is not an array answers 400."""
    response = await http.post(
        "/events", content=b"{}", headers={"content-type": "application/cloudevents-batch+json"}
    )
    assert response.status_code == 400


async def test_structured_body_must_be_json(http: httpx.AsyncClient) -> None:
    """Malformed structured JSON answers 400 saying where."""
    response = await http.post("/events", content=b"{", headers=STRUCTURED)
    assert response.status_code == 400
    assert "line 1 column 2" in response.json()["errorMessage"]


def test_binary_mode_carries_trace_context() -> None:
    """The traceparent header rides along as the CloudEvent attribute."""
    headers = [(k, v) for k, v in binary_headers().items()]
    headers.append(("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))
    events, batch = decode_cloudevents(headers, b'{"order_id": "t"}')
    assert not batch
    assert isinstance(events[0], OrderPlaced)
    assert events[0].order_id == "t"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("application/cloudevents+json", "application/cloudevents+json"),
        ("Application/CloudEvents+JSON; charset=UTF-8", "application/cloudevents+json"),
    ],
)
def test_media_type_drops_parameters(value: str | None, expected: str) -> None:
    """media_type() lower-cases and drops parameters."""
    assert media_type(value) == expected


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.sampled_from(
        ["application/cloudevents+json", "application/cloudevents-batch+json", "application/json"]
    ),
    st.one_of(st.binary(max_size=100), JSON.map(lambda v: json.dumps(v).encode())),
    st.booleans(),
)
def test_decoder_only_raises_http_errors(content_type: str, body: bytes, binary: bool) -> None:
    """Any body in any mode decodes or raises HttpError (400/415), nothing else."""
    headers = [("content-type", content_type)]
    if binary:
        headers += [("ce-specversion", "1.0"), ("ce-id", "1"), ("ce-source", "/s")]
        headers.append(("ce-type", OrderPlaced.event_type()))
    status = 0
    try:
        decode_cloudevents(headers, body)
    except HttpError as exc:
        status = exc.status
    assert status in (0, 400, 415)
