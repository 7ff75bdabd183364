"""Running existing AWS Lambda functions on the bus: :class:`LambdaHandler`, :class:`LambdaContext`."""

from __future__ import annotations

import functools
import inspect
import math
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, final

import anyio
import anyio.to_thread

from .._batching import BatchResult
from .._clock import Clock, RealClock
from .._context import Context
from .._events import Event, _new_id
from .._exceptions import BatchItemFailure, HandlerTimeout
from ._common import DEFAULT_ACCOUNT, DEFAULT_REGION
from ._lambda import is_single_event, to_lambda_event

__all__ = ["LambdaContext", "LambdaHandler", "item_identifiers", "read_batch_response"]

#: Lambda's longest timeout; what a function without one is told it has left.
MAX_TIMEOUT: Final = 900.0
_FUNCTION_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _request_id(hex32: str) -> str:
    """A 32-hex-digit id in the 8-4-4-4-12 form of Lambda's ``aws_request_id``."""
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:32]}"


@final
class LambdaContext:
    """The ``context`` object an AWS Lambda function receives, for running it locally.

    It has the attributes and methods of the Python runtime's context, with
    values a local run can give: ``memory_limit_in_mb`` is a string, as the
    runtime has it; ``identity`` and ``client_context`` are ``None``.
    :class:`LambdaHandler` makes one per invocation; build one yourself to
    call a function directly in a unit test::

        result = lambda_handler(payload, LambdaContext("thumbnails", timeout=3))

    Args:
        function_name: the function's name.
        timeout: seconds the invocation may run; :meth:`get_remaining_time_in_millis`
            counts down from it in real time (default: 3, Lambda's default).
        memory_limit_in_mb: the memory size reported.
        function_version: the version reported (default ``$LATEST``).
        region: the region in the function's ARN.
        account: the account in the function's ARN.
        aws_request_id: the invocation's id (default: a new one).
        remaining_time: a function giving the seconds left, instead of
            counting down from *timeout* (what :class:`LambdaHandler` passes).
        eventbus_context: the eventbus :class:`~eventbus.Context` of the
            invocation, when run by a bus.

    Attributes:
        function_name, function_version, invoked_function_arn,
        memory_limit_in_mb, aws_request_id, log_group_name, log_stream_name,
        identity, client_context: as in the Lambda Python runtime.
        eventbus_context: the :class:`~eventbus.Context` when run on a bus
            (publish follow-up events with it), else ``None``.

    Raises:
        ValueError: *function_name* is not a valid Lambda function name
            (letters, digits, ``-`` and ``_``, at most 64), or *timeout* or
            *memory_limit_in_mb* is not positive.

    .. versionadded:: 0.1
    """

    __slots__ = (
        "_remaining",
        "aws_request_id",
        "client_context",
        "eventbus_context",
        "function_name",
        "function_version",
        "identity",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "memory_limit_in_mb",
    )

    def __init__(
        self,
        function_name: str = "function",
        *,
        timeout: float = 3.0,
        memory_limit_in_mb: int = 128,
        function_version: str = "$LATEST",
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
        aws_request_id: str | None = None,
        remaining_time: Callable[[], float] | None = None,
        eventbus_context: Context | None = None,
    ) -> None:
        _check_function_name(function_name)
        _check_positive("timeout", timeout)
        _check_memory(memory_limit_in_mb)
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.memory_limit_in_mb = str(memory_limit_in_mb)
        self.aws_request_id = aws_request_id or _request_id(_new_id())
        self.log_group_name = f"/aws/lambda/{function_name}"
        day = datetime.now(UTC).strftime("%Y/%m/%d")
        self.log_stream_name = f"{day}/[{function_version}]{_new_id()}"
        self.identity: object = None
        self.client_context: object = None
        self.eventbus_context = eventbus_context
        if remaining_time is None:
            deadline = time.monotonic() + timeout
            remaining_time = functools.partial(_until, deadline)
        self._remaining = remaining_time

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation times out (never negative)."""
        return max(0, int(self._remaining() * 1000))

    def log(self, message: str) -> None:
        """Write *message* to standard output, as the runtime's ``context.log`` does."""
        sys.stdout.write(message)
        sys.stdout.flush()

    def __repr__(self) -> str:
        return (
            f"LambdaContext(function_name={self.function_name!r}, "
            f"aws_request_id={self.aws_request_id!r})"
        )


def _until(deadline: float) -> float:
    return deadline - time.monotonic()


def _check_function_name(name: object) -> None:
    if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
        raise ValueError(
            f"function_name must be a Lambda function name (1-64 letters, digits, '-' or '_'), "
            f"got {name!r}"
        )


def _check_positive(what: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{what} must be a number of seconds > 0, got {value!r}")


def _check_memory(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"memory_limit_in_mb must be an int >= 1, got {value!r}")


def _default_function_name(func: Callable[..., Any]) -> str:
    name = getattr(func, "__name__", None) or type(func).__name__
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]
    return cleaned or "function"


# -- partial batch responses -----------------------------------------------------------


def item_identifiers(payload: Mapping[str, Any]) -> list[str | None]:
    """The ``itemIdentifier`` of each record of a rendered payload, or None where it has none.

    SQS records are identified by ``messageId``, Kinesis records by
    ``kinesis.sequenceNumber`` and DynamoDB Streams records by
    ``dynamodb.SequenceNumber``: the services whose event source mappings
    accept a partial batch response.
    """
    out: list[str | None] = []
    for record in payload.get("Records") or ():
        identifier: object = None
        if isinstance(record, Mapping):
            if "messageId" in record:
                identifier = record["messageId"]
            elif isinstance(record.get("kinesis"), Mapping):
                identifier = record["kinesis"].get("sequenceNumber")
            elif isinstance(record.get("dynamodb"), Mapping):
                identifier = record["dynamodb"].get("SequenceNumber")
        out.append(identifier if isinstance(identifier, str) else None)
    return out


def read_batch_response(
    response: object, identifiers: Sequence[str | None], function: str
) -> list[int] | None:
    """Read a ``{"batchItemFailures": [...]}`` response against the payload's records.

    Returns:
        The indexes of the failed records (every record with a listed
        identifier), ``[]`` when the response lists none, or ``None`` when
        the response is not a partial batch response.

    Raises:
        BatchItemFailure: the response is malformed or names an identifier
            that is not in the batch; Lambda then fails the whole batch.
    """
    if not isinstance(response, Mapping) or "batchItemFailures" not in response:
        return None
    failures = response["batchItemFailures"]
    if failures is None:
        return []
    if not isinstance(failures, list | tuple):
        raise BatchItemFailure(
            f"function {function!r} returned batchItemFailures that is not a list "
            f"({type(failures).__name__}); the whole batch failed"
        )
    positions: dict[str, list[int]] = {}
    for index, identifier in enumerate(identifiers):
        if identifier is not None:
            positions.setdefault(identifier, []).append(index)
    failed: set[int] = set()
    for i, item in enumerate(failures):
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(identifier, str) or identifier not in positions:
            raise BatchItemFailure(
                f"function {function!r} returned batchItemFailures[{i}] = {item!r:.80}, whose "
                "itemIdentifier names no record of the batch (expected an SQS messageId, a "
                "Kinesis sequenceNumber or a DynamoDB SequenceNumber); as on Lambda, the "
                "whole batch failed"
            )
        failed.update(positions[identifier])
    return sorted(failed)


# -- LambdaHandler -----------------------------------------------------------------------


@final
class LambdaHandler:
    """An existing AWS Lambda function, wrapped to be a bus handler.

    ``def handler(event, context)`` (or ``async def``) receives what Lambda
    would send it: each event rendered with :func:`~eventbus.aws.to_lambda_event`
    -- the whole batch in one payload for a batch subscription, as an event
    source mapping does for SQS, Kinesis and DynamoDB Streams -- and a
    :class:`LambdaContext`::

        bus.subscribe(ObjectCreated, LambdaHandler(app.lambda_handler))
        bus.subscribe(QueueMessage, LambdaHandler(worker.handler), batch=Batching(10, 1.0))

    A plain ``def`` runs in a worker thread. When the function returns
    ``{"batchItemFailures": [{"itemIdentifier": ...}]}``, the records named
    (by SQS ``messageId``, Kinesis ``sequenceNumber`` or DynamoDB
    ``SequenceNumber``) fail: for a batch the handler returns
    :class:`~eventbus.BatchResult` with their event ids, so only they are
    retried; a single event named as failed raises
    :class:`~eventbus.BatchItemFailure`. An identifier not in the batch
    fails the whole batch, as on Lambda. Any other return value is passed
    through (``bus.invoke`` returns it): an API Gateway proxy response
    (``statusCode``, ``headers``, ``body``, ``isBase64Encoded``) for an
    :class:`~eventbus.http.HttpRequest`, the trigger payload with its
    ``response`` filled in for a Cognito User Pool trigger.

    EventBridge, API Gateway, CloudWatch Logs and Cognito never batch: in a
    batch of such events the function runs once per event; the events whose
    run raised fail (the whole batch, when all do).

    The subscription is named after the function (its ``__qualname__``),
    or *function_name* when given.

    Args:
        func: the Lambda function, ``(event, context)``.
        function_name: the name the context reports (default: the
            function's ``__name__``).
        memory_limit_in_mb: the memory size the context reports.
        timeout: the function's timeout in seconds, enforced on the bus
            clock (the subscription's ``timeout`` applies too; the shorter
            wins) and reported by ``get_remaining_time_in_millis()``;
            ``None`` (default) enforces none and reports the time left of
            the subscription's timeout, or of Lambda's 15 minutes.
        function_version: the version the context reports.
        region, account: used in the function's ARN and in rendered payloads.

    Raises:
        TypeError: *func* is not callable or does not take ``(event, context)``.
        ValueError: an option is invalid.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        function_name: str | None = None,
        memory_limit_in_mb: int = 128,
        timeout: float | None = None,
        function_version: str = "$LATEST",
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        if not callable(func):
            raise TypeError(
                f"LambdaHandler() takes a Lambda function 'def handler(event, context)', "
                f"got {type(func).__name__}"
            )
        _check_arity(func)
        if function_name is not None:
            _check_function_name(function_name)
        if timeout is not None:
            _check_positive("timeout", timeout)
        _check_memory(memory_limit_in_mb)
        self.func = func
        self.function_name = function_name or _default_function_name(func)
        self.memory_limit_in_mb = memory_limit_in_mb
        self.timeout = None if timeout is None else float(timeout)
        self.function_version = function_version
        self.region = region
        self.account = account
        self._async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004
        )
        # The bus names a subscription after its handler's __qualname__.
        qualname = getattr(func, "__qualname__", None)
        self.__qualname__ = (
            function_name
            if function_name is not None
            else qualname
            if isinstance(qualname, str)
            else self.function_name
        )
        self.__name__ = self.function_name

    def __repr__(self) -> str:
        return f"LambdaHandler({self.func!r}, function_name={self.function_name!r})"

    async def __call__(self, event: Event | Sequence[Event], ctx: Context | None = None) -> Any:
        """Run the function on *event* (or a batch) as Lambda would; see the class docs."""
        if isinstance(event, Event):
            return await self._single(event, ctx)
        events = list(event)
        if events and all(is_single_event(e) for e in events):
            return await self._one_by_one(events, ctx)
        payload = to_lambda_event(events, region=self.region, account=self.account)
        response = await self._run(payload, ctx)
        failed = read_batch_response(response, item_identifiers(payload), self.function_name)
        if failed is None or not failed:
            return response
        return BatchResult(failed=[events[i].id for i in failed])

    async def _single(self, event: Event, ctx: Context | None) -> Any:
        payload = to_lambda_event([event], region=self.region, account=self.account)
        response = await self._run(payload, ctx)
        if read_batch_response(response, item_identifiers(payload), self.function_name):
            raise BatchItemFailure(
                f"function {self.function_name!r} reported event {event.id} as failed "
                "(batchItemFailures)"
            )
        return response

    async def _one_by_one(self, events: list[Event], ctx: Context | None) -> Any:
        failed: list[str] = []
        first_error: Exception | None = None
        results: list[Any] = []
        for event in events:
            try:
                results.append(await self._single(event, ctx))
            except Exception as exc:
                failed.append(event.id)
                first_error = first_error or exc
                if ctx is not None:
                    ctx.logger.warning(
                        "function %r failed on event %s: %s: %s",
                        self.function_name,
                        event.id,
                        type(exc).__name__,
                        exc,
                    )
        if first_error is not None and len(failed) == len(events):
            raise first_error
        return BatchResult(failed=failed) if failed else results

    def _context(self, ctx: Context | None) -> LambdaContext:
        clock: Clock = ctx.clock if ctx is not None else RealClock()
        budget = min(
            self.timeout if self.timeout is not None else math.inf,
            ctx.remaining_time() if ctx is not None else math.inf,
        )
        if budget == math.inf:
            budget = MAX_TIMEOUT
        if isinstance(clock, RealClock):
            # The function may read the time left from a worker thread, where
            # the event loop's clock cannot be read.
            remaining: Callable[[], float] = functools.partial(_until, time.monotonic() + budget)
        else:
            remaining = functools.partial(_left_on, clock, clock.now() + budget)
        return LambdaContext(
            self.function_name,
            timeout=budget,
            memory_limit_in_mb=self.memory_limit_in_mb,
            function_version=self.function_version,
            region=self.region,
            account=self.account,
            aws_request_id=_request_id(ctx.invocation_id) if ctx is not None else None,
            remaining_time=remaining,
            eventbus_context=ctx,
        )

    async def _run(self, payload: dict[str, Any], ctx: Context | None) -> Any:
        context = self._context(ctx)
        if self.timeout is None:
            return await self._call(payload, context, abandon=False)
        clock: Clock = ctx.clock if ctx is not None else RealClock()
        with clock.deadline_scope(clock.now() + self.timeout) as scope:
            result = await self._call(payload, context, abandon=True)
        if scope.cancel_called:
            raise HandlerTimeout(
                f"function {self.function_name!r}: Task timed out after {self.timeout:.2f} "
                "seconds (LambdaHandler timeout); make it faster or raise timeout=..."
            )
        return result

    async def _call(self, payload: dict[str, Any], context: LambdaContext, *, abandon: bool) -> Any:
        if self._async:
            return await self.func(payload, context)
        call = functools.partial(self.func, payload, context)
        # A thread cannot be interrupted: on timeout we stop waiting for it.
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=abandon)


def _left_on(clock: Clock, deadline: float) -> float:
    return deadline - clock.now()


def _check_arity(func: Callable[..., Any]) -> None:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return
    params = list(signature.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if len(positional) < 2 or len(required) > 2:
        raise TypeError(
            f"LambdaHandler() needs a Lambda function taking (event, context); "
            f"{getattr(func, '__qualname__', func)!r} takes {len(positional)} positional "
            "parameter(s). For an eventbus handler (event) or (event, ctx), subscribe it directly"
        )
