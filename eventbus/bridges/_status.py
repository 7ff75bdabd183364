"""The connection state a broker transport reports (internal; imports no client library)."""

from __future__ import annotations

from typing import final

from .._transport import TransportStatus

__all__ = ["ConnectionTracker", "TransportStatus"]


@final
class ConnectionTracker:
    """Mutable bookkeeping behind :class:`TransportStatus`."""

    __slots__ = ("connected", "last_error", "reconnects", "transport", "url")

    def __init__(self, transport: str, url: str) -> None:
        self.transport = transport
        self.url = url
        self.connected = False
        self.reconnects = 0
        self.last_error: str | None = None

    def up(self, *, again: bool = False) -> None:
        """The connection works (*again*: after it was lost)."""
        if again:
            self.reconnects += 1
        self.connected = True

    def down(self, error: BaseException | str) -> None:
        """The connection failed with *error*."""
        self.connected = False
        self.failed(error)

    def failed(self, error: BaseException | str) -> None:
        """Record *error* without saying the connection is lost."""
        if isinstance(error, BaseException):
            text = str(error) or type(error).__name__
            self.last_error = f"{type(error).__name__}: {text}"
        else:
            self.last_error = error

    def snapshot(self) -> TransportStatus:
        return TransportStatus(
            self.transport, self.url, self.connected, self.reconnects, self.last_error
        )
