"""Thumbnails: an upload triggers a handler, a table records the result, a topic tells the world.

    uploads (ObjectStore) --ObjectCreated--> make_thumbnail
        writes thumbnails/<key> to the same bucket and a row to the catalog
    catalog (Table) --TableChange--> announce
        publishes a message on the "image-ready" topic
    image-ready (Topic) --TopicMessage--> notify_user

Run it with ``python examples/thumbnails.py``. The bucket and the table live
in a temporary directory (on disk and in SQLite), so every source is used
with its durable backend.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio
import attrs

from eventbus import Bus, ObjectCreated, TableChange, TopicMessage
from eventbus.sources.objects import ObjectStore
from eventbus.sources.tables import Table
from eventbus.sources.topics import Topic

THUMBNAIL_PREFIX = "thumbnails/"


@attrs.frozen
class Summary:
    """What happened, for the caller (and the test) to check."""

    thumbnails: dict[str, int]  # thumbnail key -> size in bytes
    catalog: list[dict[str, object]]  # the catalog's rows
    notifications: list[str]  # messages the topic subscriber received
    log: list[str]  # every line printed


def shrink(image: bytes) -> bytes:
    """A stand-in for real image scaling: keep every fourth byte."""
    return image[::4]


async def run(workdir: Path) -> Summary:
    """Wire the pipeline up in *workdir*, upload two photos and wait until all is handled."""
    log: list[str] = []
    notifications: list[str] = []

    def say(line: str) -> None:
        log.append(line)
        print(line)

    async with Bus() as bus:
        uploads = ObjectStore(bus, "uploads", root=workdir / "uploads")
        catalog = Table(bus, "catalog", key="image", path=workdir / "catalog.db")
        ready = Topic(bus, "image-ready")

        async def make_thumbnail(event: ObjectCreated) -> None:
            original = await uploads.get(event.key)
            small = shrink(original.body)
            thumb_key = THUMBNAIL_PREFIX + event.key
            await uploads.put(thumb_key, small, content_type=original.info.content_type)
            say(
                f"thumbnailer: {event.key} ({event.size} bytes) -> {thumb_key} ({len(small)} bytes)"
            )
            await catalog.put(
                {"image": event.key, "etag": event.etag, "thumbnail": thumb_key, "size": len(small)}
            )

        async def announce(change: TableChange) -> None:
            row = change.new_image or {}
            say(f"catalog: {change.op} #{change.sequence_number} {row.get('image')}")
            await ready.publish(
                {"image": row.get("image"), "thumbnail": row.get("thumbnail")},
                attributes={"kind": "thumbnail", "size": row.get("size", 0)},
                subject="Thumbnail ready",
            )

        async def notify_user(message: TopicMessage) -> None:
            notifications.append(message.message)
            say(f"subscriber: {message.subject}: {message.message}")

        # Only originals make thumbnails; the thumbnails' own events are skipped.
        bus.subscribe(
            ObjectCreated,
            make_thumbnail,
            where=lambda e: e.source == uploads.source and not e.key.startswith(THUMBNAIL_PREFIX),
        )
        bus.subscribe(
            TableChange,
            announce,
            where=lambda c: c.source == catalog.source and c.op != "REMOVE",
        )
        ready.subscribe(
            notify_user, filter_policy=lambda attributes: attributes["kind"] == "thumbnail"
        )

        async with catalog:
            for key, size in [("photos/cat.jpg", 4000), ("photos/dog.png", 2400)]:
                created = await uploads.put(
                    key, bytes(range(256)) * (size // 256) + b"\0" * (size % 256)
                )
                say(f"uploaded {created.key} ({created.size} bytes, etag {created.etag[:8]}...)")
            await bus.drain()
            rows = await catalog.scan()
        listing = await uploads.list(THUMBNAIL_PREFIX)
    thumbnails = {info.key: info.size for info in listing.objects}
    say(
        f"done: {len(thumbnails)} thumbnails, {len(rows)} catalog rows, {len(notifications)} notifications"
    )
    return Summary(thumbnails, rows, notifications, log)


async def main(workdir: Path | None = None) -> Summary:
    """Run the pipeline in *workdir*, or in a temporary directory that is removed afterwards."""
    if workdir is not None:
        return await run(workdir)
    with tempfile.TemporaryDirectory() as folder:
        return await run(Path(folder))


if __name__ == "__main__":
    anyio.run(main)
