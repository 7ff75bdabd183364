"""``python -m eventbus demo``: a small pipeline that shows what the bus does.

Uploads land in a bucket (``ObjectCreated`` events). Four subscriptions react:

* ``thumbnails`` (4 workers) makes a thumbnail of each image and publishes a
  follow-up ``ThumbnailReady`` event through its context (correlated);
* ``catalog`` only sees PNG files (an EventBridge ``where`` pattern) and keeps them in
  upload order per user (``ordered_by``);
* ``audit`` is a plain ``def`` handler: it runs in a worker thread;
* ``virus-scan`` fails on one infected file: the bus retries it with
  exponential backoff, then dead-letters it -- nothing is silently lost.

Then it prints the metrics table, whose rows satisfy the accounting identity
``accepted == succeeded + dead_lettered + in_flight + queued + waiting_retry``,
and ends with the bill: what the run would cost as AWS Lambda invocations.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
from typing import TextIO

import anyio
import anyio.lowlevel
import attrs

from ._bus import Bus
from ._context import Context
from ._events import Event
from ._metering import Metering
from ._retry import ExponentialBackoff
from .sources.objects import ObjectCreated

__all__ = ["main"]


@attrs.frozen
class ThumbnailReady(Event, type_name="eventbus.demo.ThumbnailReady"):
    """A thumbnail was made for an uploaded image."""

    bucket: str
    key: str
    source_key: str


class VirusFound(Exception):
    """The scanner recognised a test signature."""


_UPLOADS = [
    ("alice/cat.png", 20_480),
    ("bob/report.pdf", 88_000),
    ("alice/dog.png", 15_000),
    ("carol/eicar.com", 68),
    ("bob/chart.png", 9_100),
    ("alice/notes.txt", 1_200),
]


class _Quiet(logging.Formatter):
    """Log lines without tracebacks: the demo prints its own summary."""

    def formatException(self, ei: object) -> str:
        return ""

    def format(self, record: logging.LogRecord) -> str:
        record.exc_text = ""
        saved, record.exc_info = record.exc_info, None
        try:
            return super().format(record)
        finally:
            record.exc_info = saved


async def run(out: TextIO) -> int:
    """Run the demo pipeline, writing its story to *out*; return the exit code."""
    lock = threading.Lock()

    def say(kind: str, text: str) -> None:
        with lock:
            print(f"  {kind:<12} {text}", file=out)

    retry = ExponentialBackoff(max_attempts=3, initial=0.02, multiplier=2, jitter=False)
    async with Bus(retry=retry, metering=Metering()) as bus:

        async def thumbnails(event: ObjectCreated, ctx: Context) -> None:
            if not event.key.endswith(".png"):
                return
            thumb = event.key.replace(".png", ".thumb.png")
            await anyio.lowlevel.checkpoint()  # the real work would await I/O here
            receipt = await ctx.publish(
                ThumbnailReady(bucket=event.bucket, key=thumb, source_key=event.key)
            )
            say(
                "thumbnail",
                f"{event.key} -> {thumb} (follow-up to {len(receipt.subscriptions)} sub)",
            )

        async def catalog(event: ObjectCreated) -> None:
            say("catalog", f"{event.key} catalogued ({event.size:,} bytes)")

        def audit(event: ObjectCreated) -> None:
            on_loop = "loop thread" if threading.get_ident() == loop_thread else "worker thread"
            say("audit", f"{event.key} recorded from a {on_loop}")

        async def virus_scan(event: ObjectCreated, ctx: Context) -> None:
            if "eicar" in event.key:
                say("virus-scan", f"{event.key}: attempt {ctx.attempt} found a signature, raising")
                raise VirusFound(f"EICAR test signature in s3://{event.bucket}/{event.key}")

        async def notify(event: ThumbnailReady) -> None:
            say(
                "notify",
                f"{event.key} ready (correlation {event.correlation_id[:8] if event.correlation_id else '-'})",
            )

        loop_thread = threading.get_ident()
        bus.subscribe(ObjectCreated, thumbnails, name="thumbnails", concurrency=4)
        bus.subscribe(
            ObjectCreated,
            catalog,
            name="catalog",
            where={"key": [{"suffix": ".png"}]},  # an EventBridge pattern
            ordered_by=lambda e: e.key.split("/", 1)[0],
        )
        bus.subscribe(ObjectCreated, audit, name="audit")
        bus.subscribe(ObjectCreated, virus_scan, name="virus-scan")
        bus.subscribe(ThumbnailReady, notify, name="notify")

        print(
            "eventbus demo: six uploads to bucket 'photos' fan out to four subscriptions\n",
            file=out,
        )
        for key, size in _UPLOADS:
            etag = hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()
            event = ObjectCreated("photos", key, size, etag, source="eventbus.objects/photos")
            receipt = await bus.publish(event)
            say("publish", f"{key} -> {', '.join(receipt.subscriptions)}")
        await bus.drain()

        letters = list(bus.dead_letters)
        print(file=out)
        for letter in letters:
            say(
                "dead-letter",
                f"{letter.subscription}: {getattr(letter.event, 'key', letter.event.id)} after "
                f"{letter.attempts} attempts [{letter.condition}] {letter.error.error_type}: "
                f"{letter.error.error_message}",
            )
        print(file=out)
        _print_metrics(bus, out)
        balanced = all(m.balanced for m in bus.metrics().values())
        usage = bus.usage()
    print(
        f"\n{len(_UPLOADS)} uploads, {len(letters)} dead letter(s); "
        f"accounting identity holds: {'yes' if balanced else 'NO'}",
        file=out,
    )
    print(f"\nthe bill, as AWS Lambda would charge these invocations:\n{usage.bill()}", file=out)
    return 0 if balanced and len(letters) == 1 else 1


def _print_metrics(bus: Bus, out: TextIO) -> None:
    columns = (
        "accepted",
        "succeeded",
        "errors",
        "retries",
        "dead_lettered",
        "in_flight",
        "queued",
        "waiting_retry",
    )
    header = (
        f"  {'subscription':<12}"
        + "".join(f"{c:>14}" for c in columns)
        + f"{'p50 ms':>10}{'p99 ms':>10}"
    )
    print(header, file=out)
    print("  " + "-" * (len(header) - 2), file=out)
    for name, m in bus.metrics().items():
        row = f"  {name:<12}" + "".join(f"{getattr(m, c):>14}" for c in columns)
        row += f"{m.duration_p50 * 1000:>10.3f}{m.duration_p99 * 1000:>10.3f}"
        print(row, file=out)


def main(out: TextIO | None = None) -> int:
    """Entry point of ``python -m eventbus demo``."""
    stream = out if out is not None else sys.stdout
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_Quiet("  log          %(message)s"))
    log = logging.getLogger("eventbus")
    previous = log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        return anyio.run(run, stream)
    finally:
        log.removeHandler(handler)
        log.propagate = previous
