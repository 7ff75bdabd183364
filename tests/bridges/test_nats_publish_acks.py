"""The NATS transport reads JetStream's answers to its publishes itself.

Unit tests feed ``_PublishAcks`` the answers JetStream gives (a PubAck, a
duplicate's PubAck, an API error, a 503 status, garbage); integration tests
publish to the real server: a duplicate id is stored once and both
publishes succeed, a refused publish names its event, a cancelled publisher
leaves nothing waiting.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import anyio.lowlevel
import attrs
import pytest

pytest.importorskip("nats")

import nats.errors
import nats.js.errors

from eventbus import Bus, Event, TransportError
from eventbus.bridges.nats import _PublishAcks

from . import test_nats


@attrs.frozen
class Ping(Event, type_name="tests.bridges.nats_acks.Ping"):
    n: int


@attrs.frozen
class Answer:
    """What the acks' callback reads of a nats-py Msg."""

    subject: str
    data: bytes
    headers: dict[str, str] | None = None


def answers() -> _PublishAcks:
    acks = _PublishAcks()
    acks._prefix, acks._skip = "_INBOX.test.", len("_INBOX.test.")
    return acks


async def answer(acks: _PublishAcks, data: bytes, headers: dict[str, str] | None = None) -> Any:
    reply, future = acks.expect()
    await acks._receive(Answer(reply, data, headers))  # type: ignore[arg-type]
    assert acks._waiting == {}  # answered: forgotten
    return future


async def test_a_pub_ack_resolves_the_publish() -> None:
    future = await answer(answers(), b'{"stream":"S","seq":7}')
    assert future.result() is None


@pytest.mark.parametrize(
    "data",
    [
        b'{"seq":7,"stream":"S"}',
        b'{ "stream" : "S", "seq" : 7 }',
        b'{"stream":"S","domain":"error"}',
    ],
)
async def test_a_pub_ack_written_otherwise_resolves_the_publish(data: bytes) -> None:
    """The prefix check is a shortcut: any PubAck without an error means stored."""
    future = await answer(answers(), data)
    assert future.result() is None


async def test_a_duplicate_is_stored_already_so_it_resolves_too() -> None:
    future = await answer(answers(), b'{"stream":"S","seq":7,"duplicate":true}')
    assert future.result() is None


async def test_an_api_error_fails_the_publish_with_nats_py_s_error() -> None:
    data = b'{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}'
    future = await answer(answers(), data)
    error = future.exception()
    assert isinstance(error, nats.js.errors.APIError)
    assert "expected stream does not match" in str(error)


async def test_an_error_written_after_the_stream_field_is_still_an_error() -> None:
    future = await answer(answers(), b'{"stream":"S","error":{"code":503,"description":"x"}}')
    assert isinstance(future.exception(), nats.js.errors.APIError)


async def test_no_responders_means_no_stream_takes_the_subject() -> None:
    future = await answer(answers(), b"", {"Status": "503"})
    assert isinstance(future.exception(), nats.js.errors.NoStreamResponseError)


@pytest.mark.parametrize("data", [b"", b"not json", b"[1]", b'{"seq":1}', b"\xff" * 10])
async def test_an_unreadable_answer_fails_the_publish_with_a_nats_error(data: bytes) -> None:
    future = await answer(answers(), data)
    error = future.exception()
    assert isinstance(error, nats.errors.Error)
    assert "JetStream acknowledgement" in str(error)


async def test_late_and_unknown_answers_are_ignored() -> None:
    acks = answers()
    reply, future = acks.expect()
    future.cancel()  # its publisher gave up
    await acks._receive(Answer(reply, b'{"stream":"S","seq":1}'))  # type: ignore[arg-type]
    await acks._receive(Answer("_INBOX.test.999", b'{"stream":"S","seq":2}'))  # type: ignore[arg-type]
    assert future.cancelled()
    assert acks._waiting == {}


async def test_each_publish_gets_its_own_reply_subject() -> None:
    acks = answers()
    replies = {acks.expect()[0] for _ in range(1000)}
    assert len(replies) == 1000
    assert all(reply.startswith("_INBOX.test.") for reply in replies)
    for reply in replies:
        acks.forget(reply)
    assert acks._waiting == {}


@pytest.mark.integration
async def test_a_duplicate_publish_is_stored_once_and_both_return(nats_url: str) -> None:
    async with test_nats.transport(nats_url) as transport:
        async with Bus(transport=transport) as bus:
            event = Ping(1)
            await bus.publish(event)
            await bus.publish(event)  # the same id: JetStream answers "duplicate"
            await bus.publish_many([event, Ping(2)])
        async with test_nats.jetstream(nats_url) as js:
            state = (await js.stream_info(transport.stream)).state
    assert state.messages == 2


@pytest.mark.integration
async def test_publishes_leave_nothing_waiting(nats_url: str) -> None:
    async with test_nats.transport(nats_url) as transport, Bus(transport=transport) as bus:
        await asyncio.gather(*(bus.publish(Ping(i)) for i in range(300)))
        await bus.publish_many([Ping(i) for i in range(300)])
        assert transport._replies._waiting == {}


@pytest.mark.integration
async def test_a_cancelled_publisher_leaves_nothing_behind(
    nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Publishers cancelled while waiting: no answer waited for, no unretrieved exception."""
    async with (
        test_nats.transport(nats_url, publish_timeout=0.2) as transport,
        Bus(transport=transport) as bus,
    ):
        tasks = [asyncio.ensure_future(bus.publish(Ping(i))) for i in range(100)]
        batch = asyncio.ensure_future(bus.publish_many([Ping(i) for i in range(100)]))
        await anyio.lowlevel.checkpoint()  # every publisher has started
        for task in [*tasks, batch]:
            task.cancel()
        await asyncio.gather(*tasks, batch, return_exceptions=True)
        assert transport._replies._waiting == {}
    gc.collect()
    assert "exception was never retrieved" not in caplog.text


@pytest.mark.integration
async def test_a_refused_publish_names_the_event(nats_url: str) -> None:
    async with (
        test_nats.transport(nats_url, publish_timeout=2.0) as transport,
        Bus(transport=transport) as bus,
    ):
        await bus.publish(Ping(0))
        await test_nats.delete_stream(nats_url, transport.stream)
        event = Ping(1)
        with pytest.raises(TransportError, match=event.id) as caught:
            await bus.publish(event)
    assert isinstance(caught.value.__cause__, nats.errors.Error | TimeoutError)


@pytest.mark.parametrize(
    "data",
    [b'{"error":{"code":"x","surprise":1}}', b'{"error":{}}', b'{"error":{"code":503,"seq":[1]}}'],
)
async def test_an_error_nats_py_cannot_read_still_fails_the_publish(data: bytes) -> None:
    future = await answer(answers(), data)
    assert isinstance(future.exception(), nats.errors.Error)
