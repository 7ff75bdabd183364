"""Stream sources: how a partitioned log plugs into the core.

A :class:`~eventbus.Log` (in ``eventbus.sources``) registers itself with
``bus._add_stream_source(log)``; the bus then tells it about every
subscription to :class:`~eventbus.LogRecord` (its consumers), and starts it
with the bus's task group. The core knows only this Protocol, never the
sources themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ._batching import StreamOptions
from ._events import Event, LogRecord

if TYPE_CHECKING:
    import anyio.abc

    from ._subscription import Subscription

__all__ = ["StreamSource", "is_stream_subscription", "stream_options"]


class StreamSource(Protocol):
    """**Protocol:** a partitioned log that streams records to LogRecord subscriptions.

    The bus calls :meth:`attach` for each subscription to ``LogRecord``
    (made before or after the source registered), :meth:`start` once its
    task group runs, and :meth:`detach` when such a subscription goes.
    """

    def attach(self, sub: Subscription) -> None:
        """Start (or plan) consuming for *sub*."""
        ...

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Start the consumers' tasks in the bus's task group."""
        ...

    def detach(self, sub: Subscription) -> None:
        """Stop consuming for *sub* (it is being unsubscribed)."""
        ...


def is_stream_subscription(types: tuple[type[Event], ...]) -> bool:
    """Whether a subscription to *types* consumes stream sources (only ``LogRecord`` s)."""
    return all(issubclass(t, LogRecord) for t in types)


def stream_options(types: tuple[type[Event], ...], **options: Any) -> StreamOptions | None:
    """The :class:`~eventbus.StreamOptions` of a subscription to *types* (``None``: not a stream).

    Raises:
        TypeError: stream options were given for a subscription that is not
            to ``LogRecord``.
    """
    given = {k: v for k, v in options.items() if v is not None}
    if not given:
        return StreamOptions() if is_stream_subscription(types) else None
    if not is_stream_subscription(types):
        names = ", ".join(sorted(given))
        raise TypeError(
            f"subscribe({names}=...): stream options apply only to subscriptions to "
            "LogRecord (consumers of a Log); remove them or subscribe to LogRecord"
        )
    return StreamOptions(**given)
