"""Who may call the gateway: the :class:`Authenticator` protocol and two built-ins.

An authenticator is any callable taking the request as an
:class:`~eventbus.HttpRequest` (its body already read, within ``max_body``)
and returning ``None`` to let it through, or a :class:`Denied` to refuse it;
it may also raise :class:`Denied`, and may be ``async``. Nothing here needs
Starlette.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Final, Protocol, final, runtime_checkable

import attrs

from .._exceptions import EventBusError
from ._request import HttpRequest

__all__ = ["Authenticator", "BearerTokens", "Denied", "HmacSignature"]

#: The HMAC signature header: ``sha256=<hex digest>``.
SIGNATURE_HEADER: Final = "x-eventbus-signature"
#: The HMAC timestamp header: Unix time in whole seconds.
TIMESTAMP_HEADER: Final = "x-eventbus-timestamp"
_REPLAY_MEMORY: Final = 65_536


class Denied(EventBusError, PermissionError):
    """An authenticator refused a request: raise it, or return it.

    Args:
        message: why, as the client will read it (say what to send instead;
            never echo a secret).
        status: 401 (no or unusable credentials) or 403 (credentials that
            are not allowed).
        challenge: the ``WWW-Authenticate`` header of a 401 (e.g. ``"Bearer"``).

    Raises:
        ValueError: *status* is neither 401 nor 403.

    .. versionadded:: 0.2
    """

    def __init__(self, message: str, *, status: int = 401, challenge: str | None = None) -> None:
        if status not in (401, 403):
            raise ValueError(f"Denied(status=...) must be 401 or 403, got {status!r}")
        super().__init__(message)
        self.message = message
        self.status = status
        self.challenge = challenge


@runtime_checkable
class Authenticator(Protocol):
    """**Protocol:** decides whether a request may reach the bus.

    Called once per request with the request as an
    :class:`~eventbus.HttpRequest`; return ``None`` to admit it, or return
    (or raise) a :class:`Denied`. May be a plain function or ``async``. A
    plain :class:`PermissionError` it raises answers 403; any other
    exception answers 500 and is logged.

    .. versionadded:: 0.2
    """

    def __call__(self, request: HttpRequest, /) -> Denied | Awaitable[Denied | None] | None: ...


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


@final
@attrs.frozen(init=False)
class BearerTokens:
    """Admit requests carrying one of the given tokens: ``Authorization: Bearer <token>``.

    Tokens are compared in constant time (:func:`hmac.compare_digest` over
    their SHA-256 digests, against every token), so timing reveals neither
    a token nor which one matched. No header, another scheme or a wrong
    token answer 401 with a ``WWW-Authenticate: Bearer`` challenge.

    Args:
        tokens: the accepted tokens (one string, or several to rotate them).

    Raises:
        ValueError: no token was given, or one is empty or not a string.

    .. versionadded:: 0.2
    """

    _digests: tuple[bytes, ...]

    def __init__(self, tokens: str | Iterable[str]) -> None:
        items = (tokens,) if isinstance(tokens, str) else tuple(tokens)
        if not items:
            raise ValueError("BearerTokens() needs at least one token")
        for token in items:
            if not isinstance(token, str) or not token:
                raise ValueError(
                    f"BearerTokens(): every token must be a non-empty string, got {type(token).__name__}"
                )
        self.__attrs_init__(tuple(_digest(t.encode()) for t in items))

    def __repr__(self) -> str:
        return f"BearerTokens(<{len(self._digests)} token(s)>)"

    def __call__(self, request: HttpRequest, /) -> Denied | None:
        """Admit *request* if it carries one of the tokens; else return a 401 :class:`Denied`."""
        header = request.header("authorization")
        if header is None:
            return Denied(
                "missing Authorization header; send 'Authorization: Bearer <token>'",
                challenge="Bearer",
            )
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Denied(
                "the Authorization header must read 'Bearer <token>'",
                challenge="Bearer",
            )
        given = _digest(token.strip().encode("utf-8", errors="surrogateescape"))
        ok = False
        for expected in self._digests:
            ok |= hmac.compare_digest(given, expected)
        if not ok:
            return Denied("invalid bearer token", challenge='Bearer error="invalid_token"')
        return None


@final
class HmacSignature:
    """Admit requests signed with a shared secret: HMAC-SHA256 over timestamp and body.

    The client sends two headers:

    - ``X-Eventbus-Timestamp``: the Unix time, in whole seconds, when it signed;
    - ``X-Eventbus-Signature``: ``sha256=`` followed by the lower-case hex
      HMAC-SHA256, keyed with the secret, of the timestamp's ASCII digits, a
      ``.``, then the raw body bytes.

    :meth:`sign` computes both headers. A request is refused when a header
    is missing (401), the timestamp is more than *max_skew* seconds away from
    now, the signature does not match, or the same signature was already
    accepted within the window, a replay (403). The signatures accepted are
    remembered for twice *max_skew* seconds (at most 65,536 of them).

    Args:
        secret: the shared secret (text is encoded as UTF-8).
        max_skew: how many seconds a timestamp may differ from now.
        now: the wall clock, in Unix seconds (tests pass a fake one).

    Raises:
        ValueError: the secret is empty, or *max_skew* is not a positive number.

    .. versionadded:: 0.2
    """

    __slots__ = ("_key", "_now", "_seen", "max_skew")

    def __init__(
        self,
        secret: str | bytes,
        max_skew: float = 300,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if not isinstance(key, bytes) or not key:
            raise ValueError("HmacSignature(secret=...) must be a non-empty str or bytes")
        if (
            isinstance(max_skew, bool)
            or not isinstance(max_skew, int | float)
            or not math.isfinite(max_skew)
            or max_skew <= 0
        ):
            raise ValueError(f"HmacSignature(max_skew=...) must be seconds > 0, got {max_skew!r}")
        self._key = key
        self.max_skew = float(max_skew)
        self._now = now
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def __repr__(self) -> str:
        return f"HmacSignature(<secret>, max_skew={self.max_skew:g})"

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The headers that sign *body* at *timestamp* (default: now)."""
        ts = int(self._now()) if timestamp is None else int(timestamp)
        return {
            "X-Eventbus-Timestamp": str(ts),
            "X-Eventbus-Signature": "sha256=" + self._mac(str(ts), body).hex(),
        }

    def _mac(self, timestamp: str, body: bytes) -> bytes:
        return hmac.new(self._key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).digest()

    def __call__(self, request: HttpRequest, /) -> Denied | None:
        """Admit *request* if its signature and timestamp hold; else return a :class:`Denied`."""
        stamp = request.header(TIMESTAMP_HEADER)
        signature = request.header(SIGNATURE_HEADER)
        if stamp is None or signature is None:
            return Denied(
                "missing X-Eventbus-Timestamp or X-Eventbus-Signature header; sign the request "
                "with HMAC-SHA256 over '<timestamp>.<body>'",
                challenge="HMAC-SHA256",
            )
        stamp = stamp.strip()
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            return Denied("X-Eventbus-Timestamp must be Unix seconds as digits", status=403)
        now = self._now()
        if abs(now - int(stamp)) > self.max_skew:
            return Denied(
                f"X-Eventbus-Timestamp is more than {self.max_skew:g}s away from the server's "
                "clock; sign again with the current time",
                status=403,
            )
        scheme, _, hexdigest = signature.strip().partition("=")
        try:
            given = bytes.fromhex(hexdigest) if scheme.lower() == "sha256" else b""
        except ValueError:
            given = b""
        if not hmac.compare_digest(given, self._mac(stamp, request.body)):
            return Denied("X-Eventbus-Signature does not match the body", status=403)
        self._forget(now)
        if given in self._seen:
            return Denied("this signature was already used (a replay); sign again", status=403)
        self._seen[given] = now + 2 * self.max_skew  # outlives any timestamp still in the window
        while len(self._seen) > _REPLAY_MEMORY:
            self._seen.popitem(last=False)
        return None

    def _forget(self, now: float) -> None:
        seen = self._seen
        while seen:
            oldest, expires = next(iter(seen.items()))
            if expires >= now:
                return
            del seen[oldest]
