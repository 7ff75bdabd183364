"""Errors of the HTTP gateway and the mapping of failed invocations to statuses.

A failed invocation becomes an HTTP status the way API Gateway's integration
responses do it: an ordered list of regular expressions, each with a status,
searched in the error's ``errorMessage`` and then in its ``errorType``. The
body is Lambda's error shape, ``{"errorType", "errorMessage"}``.

Nothing here needs Starlette.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, final

from .._exceptions import EventBusError

__all__ = ["ErrorStatus", "GatewayConfigError", "HttpError"]

#: Error messages longer than this are matched on their first part only, so a
#: pattern's search time stays bounded whatever a handler puts in a message.
MAX_MATCHED_MESSAGE: Final = 64 * 1024


class GatewayConfigError(EventBusError, ValueError):
    """The gateway or one of its routes was configured wrongly; the message says which part.

    Raised by :class:`~eventbus.http.Gateway` and ``Gateway.route`` when they
    are set up, never while serving a request.

    .. versionadded:: 0.2
    """


class HttpError(Exception):
    """A request ends with this status and a Lambda-shaped error body (internal)."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        stack_trace: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers = dict(headers or {})
        self.stack_trace = stack_trace

    def body(self, *, debug: bool) -> dict[str, Any]:
        """``{"errorType", "errorMessage"}``, plus ``stackTrace`` when *debug* and known."""
        out: dict[str, Any] = {"errorType": self.error_type, "errorMessage": self.message}
        if debug and self.stack_trace is not None:
            out["stackTrace"] = list(self.stack_trace)
        return out


@final
class ErrorStatus:
    """The compiled ``error_status=`` mapping of a gateway (internal).

    Args:
        spec: regular expression -> status, in the order they are tried; a
            mapping or an iterable of pairs. Patterns may be strings or
            compiled patterns.

    Raises:
        GatewayConfigError: a pattern does not compile, or a status is not an
            int from 200 to 599.
    """

    __slots__ = ("rules",)

    def __init__(self, spec: object) -> None:
        pairs: Any
        if spec is None:
            pairs = ()
        elif isinstance(spec, Mapping):
            pairs = spec.items()
        elif isinstance(spec, str | bytes):
            raise GatewayConfigError(
                "Gateway(error_status=...) takes a mapping of regular expressions to statuses, "
                f'such as {{r"^\\[BadRequest\\]": 400}}, not the string {spec!r:.60}'
            )
        else:
            pairs = spec
        rules: list[tuple[re.Pattern[str], int]] = []
        for index, pair in enumerate(pairs):
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise GatewayConfigError(
                    f"Gateway(error_status=...) item {index}: expected a (pattern, status) pair, "
                    f"got {pair!r:.60}"
                )
            pattern, status = pair
            rules.append((_compile(index, pattern), _status(index, pattern, status)))
        self.rules: tuple[tuple[re.Pattern[str], int], ...] = tuple(rules)

    def status_for(self, error_type: str, error_message: str) -> int | None:
        """The status of the first rule matching the message, else of the first matching the type."""
        message = error_message[:MAX_MATCHED_MESSAGE]
        for pattern, status in self.rules:
            if pattern.search(message):
                return status
        for pattern, status in self.rules:
            if pattern.search(error_type):
                return status
        return None


def _compile(index: int, pattern: object) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        if not isinstance(pattern.pattern, str):
            raise GatewayConfigError(
                f"Gateway(error_status=...) item {index}: the pattern must match text (str), "
                "not bytes"
            )
        return pattern
    if not isinstance(pattern, str):
        raise GatewayConfigError(
            f"Gateway(error_status=...) item {index}: a pattern must be a regular expression "
            f"string, got {type(pattern).__name__}"
        )
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise GatewayConfigError(
            f"Gateway(error_status=...) item {index}: {pattern!r:.80} is not a valid regular "
            f"expression ({exc}); fix it, or escape it with re.escape() to match it literally"
        ) from None


def _status(index: int, pattern: object, status: object) -> int:
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise GatewayConfigError(
            f"Gateway(error_status=...) item {index} ({pattern!r:.60}): the status must be an "
            f"int from 200 to 599, got {status!r:.40}"
        )
    return status
