"""Broker transports: one subscription, several processes.

Each bridge is an optional extra and a module of its own; import the one you
use, never this package for its names::

    from eventbus.bridges.nats import NatsTransport            # pip install 'eventbus[nats]'
    from eventbus.bridges.redis import RedisStreamsTransport   # pip install 'eventbus[redis]'
    from eventbus.bridges.mqtt import MqttTransport            # pip install 'eventbus[mqtt]'

    async with Bus(transport=NatsTransport("nats://127.0.0.1:4222")) as bus:
        ...

Each implements :class:`eventbus.Transport`: events cross the wire as
CloudEvents 1.0 JSON, each subscription name is a durable consumer group,
and an event is acknowledged to the broker only once the bus has settled it
(handled or dead-lettered), so the events of a process that dies are
delivered again. See the "Transports" documentation page.

This package imports no client library; a bridge whose client is missing
raises :class:`ImportError` naming the extra to install. It re-exports
:class:`eventbus.TransportStatus`, what each bridge's ``status()`` returns.
"""

from .._transport import TransportStatus as TransportStatus

__all__ = ("TransportStatus",)
