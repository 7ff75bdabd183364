"""Topics and their messages (the SNS model).

:class:`Topic` is an embedded publish/subscribe topic: :meth:`Topic.publish`
publishes a :class:`TopicMessage` on a bus; subscribers filter messages on
their attributes or JSON body, and FIFO topics keep order per message group
and drop duplicates.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Final, final

import anyio
import attrs

from .._bus import Bus
from .._events import Event
from .._subscription import Handler, Subscription
from ._common import check_bus, check_name, ensure_running
from ._topic_args import (
    check_attributes,
    check_message,
    check_subject,
    check_token,
    compile_filter,
)

__all__ = ["Topic", "TopicMessage"]

#: How long a FIFO topic remembers a deduplication id, in seconds (as SNS).
DEDUP_WINDOW: Final = 300.0


@attrs.frozen
class TopicMessage(Event, type_name="eventbus.TopicMessage"):
    """A message published to a topic (an SNS notification).

    Attributes:
        topic: the topic name.
        message: the message body (a string, as SNS delivers it).
        attributes: message attributes: strings, numbers or lists of strings.
            Subscriptions filter on them with ``where={"attributes": {...}}``.
        subject: an optional subject line.
        group_id: the message group of a FIFO topic (order is kept per group).
        dedup_id: the deduplication id of a FIFO topic.
    """

    topic: str
    message: str
    attributes: Mapping[str, Any] = attrs.field(factory=dict)
    subject: str | None = None
    group_id: str | None = None
    dedup_id: str | None = None


@final
class Topic:
    """An embedded topic: :meth:`publish` puts a :class:`TopicMessage` on the bus.

    ::

        orders = Topic(bus, "orders")
        orders.subscribe(notify, filter_policy={"kind": ["refund"]})
        await orders.publish({"id": 7}, attributes={"kind": "refund", "amount": 12.5})

    Messages carry ``source="eventbus.topics/<name>"``. Subscribe with
    :meth:`subscribe`, which filters on this topic and on a filter policy, or
    with ``bus.subscribe(TopicMessage, ..., where=...)`` directly.

    A FIFO topic (``fifo=True``) needs a ``group_id`` on every message and
    serialises its publishers, so messages reach the bus in publish order;
    subscribers keep that order per group with ``ordered_by="group_id"``
    (which :meth:`subscribe` sets for you). It drops a message whose
    ``dedup_id`` it has seen in the last 5 minutes of the bus clock; with
    ``content_based_dedup=True`` the id defaults to the SHA-256 of the body.

    Args:
        bus: the bus to publish on.
        name: the topic name (1-255 letters, digits, ``_ - .``).
        fifo: keep order per message group and drop duplicates.
        content_based_dedup: (FIFO) derive missing deduplication ids from the body.

    Raises:
        TypeError, ValueError: an argument is invalid.

    .. versionadded:: 0.1
    """

    __slots__ = ("_bus", "_content_dedup", "_fifo", "_lock", "_name", "_seen")

    def __init__(
        self, bus: Bus, name: str, fifo: bool = False, *, content_based_dedup: bool = False
    ) -> None:
        self._bus = check_bus("Topic", bus)
        self._bus._add_source(self)
        self._name = check_name("Topic", "name", name)
        if not isinstance(fifo, bool) or not isinstance(content_based_dedup, bool):
            raise TypeError("Topic(fifo=..., content_based_dedup=...) take True or False")
        if content_based_dedup and not fifo:
            raise ValueError("Topic(content_based_dedup=True) needs fifo=True")
        self._fifo = fifo
        self._content_dedup = content_based_dedup
        self._lock = anyio.Lock()
        self._seen: OrderedDict[str, float] = OrderedDict()

    @property
    def name(self) -> str:
        """The topic name."""
        return self._name

    @property
    def fifo(self) -> bool:
        """Whether this is a FIFO topic."""
        return self._fifo

    @property
    def source(self) -> str:
        """The ``source`` of its messages: ``eventbus.topics/<name>``."""
        return f"eventbus.topics/{self._name}"

    async def publish(
        self,
        message: object,
        *,
        attributes: Mapping[str, Any] | None = None,
        subject: str | None = None,
        group_id: str | None = None,
        dedup_id: str | None = None,
    ) -> TopicMessage | None:
        """Publish a message, waiting while a subscriber's queue is full.

        Args:
            message: the body: a string, or a JSON-serialisable value (sent as JSON text).
            attributes: message attributes: each a string, a number, or a list of strings.
            subject: a one-line subject of at most 100 characters.
            group_id: (FIFO, required) the message group.
            dedup_id: (FIFO) the deduplication id; required unless the topic
                has ``content_based_dedup``.

        Returns:
            The :class:`TopicMessage` published, or None when a FIFO topic
            dropped it as a duplicate.

        Raises:
            TypeError, ValueError: an argument is invalid (nothing was published).
            BusClosed: the bus is not running.
        """
        body = check_message(message)
        attrs_ = check_attributes(attributes)
        subject = check_subject(subject)
        group_id = check_token("group_id", group_id)
        dedup_id = check_token("dedup_id", dedup_id)
        if not self._fifo:
            if group_id is not None or dedup_id is not None:
                raise ValueError(
                    f"topic {self._name!r} is not FIFO, so group_id and dedup_id do not apply; "
                    "drop them or create the topic with Topic(..., fifo=True)"
                )
        else:
            if group_id is None:
                raise ValueError(
                    f"FIFO topic {self._name!r} needs a group_id on every message (order is kept per group)"
                )
            if dedup_id is None:
                if not self._content_dedup:
                    raise ValueError(
                        f"FIFO topic {self._name!r} needs a dedup_id on every message; pass one, "
                        "or create the topic with content_based_dedup=True"
                    )
                dedup_id = hashlib.sha256(body.encode("utf-8")).hexdigest()
        ensure_running(self._bus, "Topic.publish")
        clock = self._bus.clock
        event = TopicMessage(
            self._name,
            body,
            attrs_,
            subject,
            group_id=group_id,
            dedup_id=dedup_id,
            source=self.source,
            time=clock.wall(),
        )
        if dedup_id is None:
            await self._bus.publish(event)
            return event
        return await self._publish_once(event, dedup_id)

    async def _publish_once(self, event: TopicMessage, dedup_id: str) -> TopicMessage | None:
        """Publish unless *dedup_id* was seen within the window; one publisher at a time."""
        clock = self._bus.clock
        async with self._lock:
            now = clock.now()
            seen = self._seen
            while seen and next(iter(seen.values())) <= now:
                seen.popitem(last=False)
            if dedup_id in seen:
                return None
            await self._bus.publish(event)
            seen[dedup_id] = now + DEDUP_WINDOW
        return event

    def subscribe(
        self,
        handler: Handler,
        *,
        filter_policy: Mapping[str, Any] | Callable[[Any], bool] | None = None,
        filter_scope: str = "attributes",
        where: Mapping[str, Any] | Callable[[Any], bool] | None = None,
        **options: Any,
    ) -> Subscription:
        """Subscribe *handler* to this topic's messages (an SNS subscription).

        Args:
            handler: as for :meth:`Bus.subscribe <eventbus.Bus.subscribe>`.
            filter_policy: which messages to take: an EventBridge-style
                pattern (a mapping) or a predicate, applied to what
                *filter_scope* names.
            filter_scope: ``"attributes"`` (the message attributes, as SNS's
                ``MessageAttributes`` scope) or ``"body"`` (the message parsed
                as JSON, as ``MessageBody``; non-JSON messages never match).
            where: an extra filter on the whole :class:`TopicMessage`.
            options: passed on to ``bus.subscribe`` (``name``, ``concurrency``,
                ``queue_size``, ``retry``...). On a FIFO topic ``ordered_by``
                defaults to ``"group_id"``.

        Returns:
            The :class:`~eventbus.Subscription`.

        Raises:
            PatternError: a pattern is invalid.
            TypeError, ValueError: another argument is invalid.
        """
        tests: list[Callable[[Any], bool]] = []
        source = self.source
        tests.append(lambda event: event.source == source)
        if filter_policy is not None:
            tests.append(compile_filter(filter_policy, filter_scope))
        elif filter_scope not in ("attributes", "body"):
            raise ValueError(f"filter_scope must be 'attributes' or 'body', got {filter_scope!r}")
        if where is not None:
            if isinstance(where, Mapping):
                from ..patterns import Pattern

                tests.append(Pattern(dict(where)).matches)
            elif callable(where):
                tests.append(where)
            else:
                raise TypeError(
                    f"where= must be a pattern (a mapping) or a predicate, got {type(where).__name__}"
                )
        if self._fifo:
            options.setdefault("ordered_by", "group_id")

        def accept(event: Any) -> bool:
            return all(test(event) for test in tests)

        return self._bus.subscribe(TopicMessage, handler, where=accept, **options)

    def __repr__(self) -> str:
        return f"<Topic {self._name!r}{' fifo' if self._fifo else ''}>"
