"""ObjectStore: the same behaviour in memory and on disk, plus the disk backend's own guarantees."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import Bus, BusClosed, Event
from eventbus.sources._object_keys import check_key, path_for_key
from eventbus.sources.objects import (
    InvalidObjectKey,
    ObjectCreated,
    ObjectNotFound,
    ObjectRemoved,
    ObjectStore,
)
from eventbus.testing import FakeClock

BAD_KEYS = [
    "",
    "/etc/passwd",
    "../outside",
    "a/../../outside",
    "a/./b",
    "a//b",
    "dir/",
    ".",
    "..",
    "a\\..\\b",
    "..\\outside",
    "nul\x00byte",
    "line\nbreak",
    "C:/windows",
    ".eventbus/objects/x",
    "a/" + "x" * 256,
    "k" * 1025,
    "a/.~eventbus-123",
]


@contextlib.asynccontextmanager
async def running(clock: FakeClock) -> AsyncIterator[tuple[Bus, list[Event]]]:
    """A running bus on *clock*, and the object events it delivers, in order."""
    events: list[Event] = []

    async def record(event: Event) -> None:
        events.append(event)

    async with Bus(clock=clock) as bus:
        bus.subscribe((ObjectCreated, ObjectRemoved), record, name="recorder")
        yield bus, events


@pytest.fixture(params=["memory", "disk"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    """None for the memory backend, a fresh directory for the disk backend."""
    return None if request.param == "memory" else tmp_path / "bucket"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def names_under(folder: Path) -> list[str]:
    """The names of every file and folder under *folder*."""
    return [p.name for p in folder.rglob("*")]


async def test_put_publishes_object_created_with_every_field(
    fake_clock: FakeClock, root: Path | None
) -> None:
    """put() publishes ObjectCreated with size, MD5 etag, metadata, type, sequencer and source."""
    async with running(fake_clock) as (bus, seen):
        store = ObjectStore(bus, "photos", root=root)
        returned = await store.put(
            "cats/tom.jpg", b"meow", content_type="image/jpeg", metadata={"Owner": "ann"}
        )
        await bus.drain()
        assert seen == [returned]
        assert returned.bucket == "photos"
        assert returned.key == "cats/tom.jpg"
        assert returned.size == 4
        assert returned.etag == md5(b"meow")
        assert returned.version_id is None
        assert returned.metadata == {"owner": "ann"}
        assert returned.content_type == "image/jpeg"
        assert returned.reason == "Put"
        assert returned.source == "eventbus.objects/photos"
        assert returned.time == fake_clock.wall()
        assert returned.sequencer is not None
        assert re.fullmatch(r"[0-9A-F]{16}", returned.sequencer)


async def test_put_reads_a_file_like_body(fake_clock: FakeClock, root: Path | None) -> None:
    """A binary file-like body is read to its end."""
    async with running(fake_clock) as (bus, _seen):
        store = ObjectStore(bus, "b", root=root)
        data = os.urandom(3 << 20)
        event = await store.put("big.bin", io.BytesIO(data))
        assert (event.size, event.etag) == (len(data), md5(data))
        assert (await store.get("big.bin")).body == data


async def test_content_type_is_guessed_from_the_key(
    fake_clock: FakeClock, root: Path | None
) -> None:
    """Without content_type the extension decides, else application/octet-stream."""
    async with running(fake_clock) as (bus, _seen):
        store = ObjectStore(bus, "b", root=root)
        assert (await store.put("a.png", b"x")).content_type == "image/png"
        assert (await store.put("noext", b"x")).content_type == "application/octet-stream"


async def test_get_and_head_describe_the_object(fake_clock: FakeClock, root: Path | None) -> None:
    """get() returns body and info; head() the same info."""
    async with running(fake_clock) as (bus, _seen):
        store = ObjectStore(bus, "b", root=root)
        await store.put("k.txt", b"hello", metadata={"a": "1"})
        got = await store.get("k.txt")
        assert got.body == b"hello"
        info = await store.head("k.txt")
        assert info == got.info
        assert (info.bucket, info.key, info.size, info.etag) == ("b", "k.txt", 5, md5(b"hello"))
        assert info.content_type == "text/plain"
        assert info.metadata == {"a": "1"}
        assert info.last_modified == fake_clock.wall()
        assert info.is_latest
        assert not info.delete_marker
        assert await store.exists("k.txt")
        assert not await store.exists("other")


async def test_missing_objects_raise_object_not_found(
    fake_clock: FakeClock, root: Path | None
) -> None:
    """get/head of an unknown key raise ObjectNotFound, a LookupError."""
    async with running(fake_clock) as (bus, _seen):
        store = ObjectStore(bus, "b", root=root)
        with pytest.raises(ObjectNotFound, match="no object 'nope' in bucket 'b'"):
            await store.get("nope")
        with pytest.raises(LookupError):
            await store.head("nope")


async def test_overwrite_replaces_and_sequencer_grows(
    fake_clock: FakeClock, root: Path | None
) -> None:
    """An unversioned put replaces the object; sequencers strictly increase."""
    async with running(fake_clock) as (bus, seen):
        store = ObjectStore(bus, "b", root=root)
        first = await store.put("k", b"one")
        second = await store.put("k", b"two")
        removed = await store.delete("k")
        await bus.drain()
        assert removed is not None
        sequencers = [first.sequencer or "", second.sequencer or "", removed.sequencer or ""]
        assert sequencers == sorted(sequencers)
        assert len(set(sequencers)) == 3
        assert [type(e) for e in seen] == [ObjectCreated, ObjectCreated, ObjectRemoved]


async def test_delete_publishes_object_removed(fake_clock: FakeClock, root: Path | None) -> None:
    """delete() removes the object and publishes ObjectRemoved(reason='Delete')."""
    async with running(fake_clock) as (bus, seen):
        store = ObjectStore(bus, "b", root=root)
        await store.put("k", b"x")
        event = await store.delete("k")
        await bus.drain()
        assert event is not None
        assert seen[-1] == event
        assert (event.bucket, event.key, event.version_id, event.reason) == (
            "b",
            "k",
            None,
            "Delete",
        )
        assert event.source == "eventbus.objects/b"
        assert not await store.exists("k")


async def test_delete_of_a_missing_key_publishes_nothing(
    fake_clock: FakeClock, root: Path | None
) -> None:
    """Deleting what is not there returns None and publishes nothing."""
    async with running(fake_clock) as (bus, seen):
        store = ObjectStore(bus, "b", root=root)
        assert await store.delete("ghost") is None
        await bus.drain()
        assert seen == []


async def test_list_filters_by_prefix_in_key_order(
    fake_clock: FakeClock, root: Path | None
) -> None:
    """list(prefix) returns the matching current objects sorted by key."""
    async with running(fake_clock) as (bus, _seen):
        store = ObjectStore(bus, "b", root=root)
        for key in ["logs/b", "logs/a", "img/x", "logs/c/d"]:
            await store.put(key, key.encode())
        listing = await store.list("logs/")
        assert [o.key for o in listing.objects] == ["logs/a", "logs/b", "logs/c/d"]
        assert not listing.truncated
        assert listing.next_token is None
        assert [o.key for o in (await store.list()).objects] == [
            "img/x",
            "logs/a",
            "logs/b",
            "logs/c/d",
        ]


async def test_list_paginates(fake_clock: FakeClock, root: Path | None) -> None:
    """limit= splits the listing into pages chained by next_token."""
    async with running(fake_clock) as (bus, _seen):
        store = ObjectStore(bus, "b", root=root)
        for i in range(5):
            await store.put(f"k{i}", b"x")
        keys: list[str] = []
        page = await store.list(limit=2)
        pages = 1
        keys += [o.key for o in page.objects]
        while page.next_token:
            page = await store.list(limit=2, token=page.next_token)
            keys += [o.key for o in page.objects]
            pages += 1
        assert keys == [f"k{i}" for i in range(5)]
        assert pages == 3
        with pytest.raises(ValueError, match="limit must be an int >= 1"):
            await store.list(limit=0)


async def test_copy_publishes_created_with_reason_copy(
    fake_clock: FakeClock, root: Path | None
) -> None:
    """copy() duplicates content, type and metadata and publishes reason 'Copy'."""
    async with running(fake_clock) as (bus, seen):
        store = ObjectStore(bus, "b", root=root)
        await store.put("src.txt", b"data", metadata={"m": "v"})
        event = await store.copy("src.txt", "dst/copy.txt")
        await bus.drain()
        assert seen[-1] == event
        assert (event.key, event.reason, event.size, event.etag) == (
            "dst/copy.txt",
            "Copy",
            4,
            md5(b"data"),
        )
        assert event.metadata == {"m": "v"}
        assert event.content_type == "text/plain"
        assert (await store.get("dst/copy.txt")).body == b"data"
        replaced = await store.copy(
            "src.txt", "other", metadata={"n": "w"}, content_type="text/csv"
        )
        assert (replaced.metadata, replaced.content_type) == ({"n": "w"}, "text/csv")


async def test_copy_between_stores(fake_clock: FakeClock, root: Path | None) -> None:
    """copy(from_store=other) reads from another bucket and publishes in this one."""
    async with running(fake_clock) as (bus, _seen):
        src = ObjectStore(bus, "src", root=None if root is None else root / "src")
        dst = ObjectStore(bus, "dst", root=None if root is None else root / "dst")
        await src.put("a", b"x")
        event = await dst.copy("a", "b", from_store=src)
        assert (event.bucket, event.source) == ("dst", "eventbus.objects/dst")
        with pytest.raises(ObjectNotFound):
            await dst.copy("missing", "c", from_store=src)


async def test_versioned_puts_keep_every_version(fake_clock: FakeClock, root: Path | None) -> None:
    """Each put in a versioned bucket gets a new version_id; old ones stay readable."""
    async with running(fake_clock) as (bus, seen):
        store = ObjectStore(bus, "b", root=root, versioning=True)
        one = await store.put("k", b"one")
        two = await store.put("k", b"two")
        assert one.version_id
        assert two.version_id
        assert one.version_id != two.version_id
        assert (await store.get("k")).body == b"two"
        assert (await store.get("k", version_id=one.version_id)).body == b"one"
        versions = await store.versions("k")
        assert [v.version_id for v in versions] == [two.version_id, one.version_id]
        assert [v.is_latest for v in versions] == [True, False]
        await bus.drain()
        assert [e.version_id for e in seen if isinstance(e, ObjectCreated)] == [
            one.version_id,
            two.version_id,
        ]


async def test_versioned_delete_creates_a_delete_marker(
    fake_clock: FakeClock, root: Path | None
) -> None:
    """delete() without version_id adds a marker: reason 'DeleteMarkerCreated'."""
    async with running(fake_clock) as (bus, _seen):
        store = ObjectStore(bus, "b", root=root, versioning=True)
        put = await store.put("k", b"one")
        marker = await store.delete("k")
        assert marker is not None
        assert marker.reason == "DeleteMarkerCreated"
        assert marker.version_id
        assert marker.version_id != put.version_id
        with pytest.raises(ObjectNotFound, match="delete marker"):
            await store.get("k")
        assert (await store.list()).objects == ()
        assert (await store.get("k", version_id=put.version_id)).body == b"one"
        versions = await store.versions("k")
        assert [(v.version_id, v.delete_marker) for v in versions] == [
            (marker.version_id, True),
            (put.version_id, False),
        ]


async def test_deleting_a_version_removes_it_for_good(
    fake_clock: FakeClock, root: Path | None
) -> None:
    """delete(version_id=...) removes that version: reason 'Delete'; the next one becomes current."""
    async with running(fake_clock) as (bus, seen):
        store = ObjectStore(bus, "b", root=root, versioning=True)
        one = await store.put("k", b"one")
        marker = await store.delete("k")
        assert marker is not None
        undone = await store.delete("k", version_id=marker.version_id)
        assert undone is not None
        assert (undone.reason, undone.version_id) == ("Delete", marker.version_id)
        assert (await store.get("k")).body == b"one"
        gone = await store.delete("k", version_id=one.version_id)
        assert gone is not None
        assert gone.reason == "Delete"
        assert await store.versions("k") == ()
        assert await store.delete("k", version_id=one.version_id) is None
        await bus.drain()
        assert [getattr(e, "reason", None) for e in seen] == [
            "Put",
            "DeleteMarkerCreated",
            "Delete",
            "Delete",
        ]


async def test_version_ids_need_a_versioned_bucket(
    fake_clock: FakeClock, root: Path | None
) -> None:
    """version_id on an unversioned bucket is a ValueError saying how to enable versioning."""
    async with running(fake_clock) as (bus, _seen):
        store = ObjectStore(bus, "b", root=root)
        await store.put("k", b"x")
        with pytest.raises(ValueError, match=r"versioning=True"):
            await store.get("k", version_id="abc")
        with pytest.raises(ValueError, match="not versioned"):
            await store.delete("k", version_id="abc")


async def test_concurrent_writes_publish_in_sequencer_order(
    fake_clock: FakeClock, root: Path | None
) -> None:
    """Events reach subscribers in the order of their sequencers, even from concurrent writers."""
    async with running(fake_clock) as (bus, seen):
        store = ObjectStore(bus, "b", root=root)
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(store.put, f"k{i % 3}", str(i).encode())
        await bus.drain()
    sequencers = [getattr(e, "sequencer", "") for e in seen]
    assert len(seen) == 20
    assert sequencers == sorted(sequencers)


async def test_reads_do_not_wait_for_blocked_publishers(root: Path | None) -> None:
    """While writers wait for queue room, reads still answer and events keep their order."""
    gate = anyio.Event()
    handled: list[str] = []

    async def slow(event: ObjectCreated) -> None:
        await gate.wait()
        handled.append(event.key)

    async with Bus() as bus:
        bus.subscribe(ObjectCreated, slow, queue_size=1)
        store = ObjectStore(bus, "b", root=root)
        await store.put("k1", b"1")  # taken by the handler
        await store.put("k2", b"2")  # fills the queue
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.put, "k3", b"3")  # stored; waits for room
            tg.start_soon(store.put, "k4", b"4")  # stored; waits for k3's turn
            await anyio.wait_all_tasks_blocked()
            with anyio.fail_after(10):
                assert (await store.get("k4")).body == b"4"
                assert len((await store.list()).objects) == 4
            gate.set()
        await bus.drain()
    assert handled == ["k1", "k2", "k3", "k4"]


async def test_reading_versions_and_markers(fake_clock: FakeClock, root: Path | None) -> None:
    """head(version_id=...) describes old versions; a marker has no content."""
    async with running(fake_clock) as (bus, _seen):
        store = ObjectStore(bus, "b", root=root, versioning=True)
        one = await store.put("k", b"one")
        await store.put("k", b"two")
        old = await store.head("k", version_id=one.version_id)
        assert (old.size, old.is_latest) == (3, False)
        marker = await store.delete("k")
        assert marker is not None
        with pytest.raises(ObjectNotFound, match="is a delete marker"):
            await store.get("k", version_id=marker.version_id)
        with pytest.raises(ObjectNotFound, match="has no version 'nope'"):
            await store.get("k", version_id="nope")
        assert await store.versions("never") == ()


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_are_refused_before_anything_is_written(
    fake_clock: FakeClock, root: Path | None, key: str
) -> None:
    """Keys that are empty, absolute, escaping or malformed raise InvalidObjectKey."""
    async with running(fake_clock) as (bus, seen):
        store = ObjectStore(bus, "b", root=root)
        with pytest.raises(InvalidObjectKey):
            await store.put(key, b"x")
        with pytest.raises(ValueError, match="key"):  # InvalidObjectKey is a ValueError
            await store.get(key)
        await bus.drain()
        assert seen == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"body": "text"}, TypeError, r"encode text first"),
        ({"body": 42}, TypeError, "bytes or a binary file-like"),
        ({"metadata": {"n": 1}}, TypeError, r"metadata\['n'\] must be a string"),
        ({"metadata": {"bad key": "v"}}, ValueError, "metadata key"),
        ({"metadata": {"A": "1", "a": "2"}}, ValueError, "case-insensitive"),
        ({"content_type": "nonsense"}, ValueError, "not a media type"),
    ],
)
async def test_bad_put_arguments_fail_early(
    fake_clock: FakeClock,
    root: Path | None,
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    """Bad bodies, metadata and content types fail with a message saying what to do."""
    async with running(fake_clock) as (bus, _seen):
        store = ObjectStore(bus, "b", root=root)
        args: dict[str, Any] = {"body": b"x", **kwargs}
        with pytest.raises(error, match=match):
            await store.put("k", **args)
        assert not await store.exists("k")


async def test_constructor_checks_its_arguments(fake_clock: FakeClock, tmp_path: Path) -> None:
    """A bad bus, bucket name or root is refused at construction."""
    async with running(fake_clock) as (bus, _seen):
        with pytest.raises(TypeError, match=r"needs an eventbus\.Bus"):
            ObjectStore(object(), "b")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="bucket is 1 to 255 characters"):
            ObjectStore(bus, "bad/name")
        (tmp_path / "file").write_bytes(b"")
        with pytest.raises(ValueError, match="is a file, not a directory"):
            ObjectStore(bus, "b", root=tmp_path / "file")


async def test_writes_need_a_running_bus(root: Path | None) -> None:
    """Writing outside the bus's block raises BusClosed and stores nothing."""
    bus = Bus()
    store = ObjectStore(bus, "b", root=root)
    with pytest.raises(BusClosed, match="nothing was changed"):
        await store.put("k", b"x")
    assert not await store.exists("k")


# -- the disk backend ------------------------------------------------------------------


async def test_disk_objects_are_plain_files_without_leftovers(
    fake_clock: FakeClock, tmp_path: Path
) -> None:
    """The disk store writes root/key atomically and leaves no temporary files."""
    async with running(fake_clock) as (bus, _seen):
        store = ObjectStore(bus, "b", root=tmp_path)
        await store.put("a/b/c.txt", b"content")
        await store.put("a/b/c.txt", b"newer")
        assert (tmp_path / "a" / "b" / "c.txt").read_bytes() == b"newer"
        assert not [n for n in names_under(tmp_path) if n.startswith(".~eventbus-")]
        await store.delete("a/b/c.txt")
        assert not (tmp_path / "a").exists()  # emptied folders are pruned


async def test_disk_store_survives_reopening(fake_clock: FakeClock, tmp_path: Path) -> None:
    """A new store on the same root sees objects with their metadata and type."""
    async with running(fake_clock) as (bus, _seen):
        first = ObjectStore(bus, "b", root=tmp_path)
        put = await first.put("k.bin", b"abc", metadata={"x": "y"}, content_type="image/png")
        again = ObjectStore(bus, "b", root=tmp_path)
        info = await again.head("k.bin")
        assert (info.etag, info.size, info.metadata, info.content_type) == (
            put.etag,
            3,
            {"x": "y"},
            "image/png",
        )
        later = await again.put("k.bin", b"abcd")
        assert put.sequencer is not None
        assert later.sequencer is not None
        assert later.sequencer > put.sequencer


async def test_disk_versions_survive_reopening(fake_clock: FakeClock, tmp_path: Path) -> None:
    """Versions and delete markers are kept in sidecars across reopening."""
    async with running(fake_clock) as (bus, _seen):
        first = ObjectStore(bus, "b", root=tmp_path, versioning=True)
        one = await first.put("k", b"one")
        await first.put("k", b"two")
        assert (tmp_path / "k").read_bytes() == b"two"  # the current version is visible
        await first.delete("k")
        assert not (tmp_path / "k").exists()
        again = ObjectStore(bus, "b", root=tmp_path, versioning=True)
        assert len(await again.versions("k")) == 3
        assert (await again.get("k", version_id=one.version_id)).body == b"one"
        with pytest.raises(ValueError, match="created with versioning=True"):
            await ObjectStore(bus, "b", root=tmp_path).list()


async def test_files_placed_by_others_become_objects(fake_clock: FakeClock, tmp_path: Path) -> None:
    """Files already under an unversioned root are listed with their MD5."""
    async with running(fake_clock) as (bus, _seen):
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "readme.md").write_bytes(b"# hi")
        store = ObjectStore(bus, "b", root=tmp_path)
        [info] = (await store.list()).objects
        assert (info.key, info.etag, info.size) == ("docs/readme.md", md5(b"# hi"), 4)


async def test_symlinks_on_the_way_are_refused(fake_clock: FakeClock, tmp_path: Path) -> None:
    """A folder that is a symlink (possibly leading outside) is never written through."""
    async with running(fake_clock) as (bus, _seen):
        root, outside = tmp_path / "root", tmp_path / "outside"
        root.mkdir()
        outside.mkdir()
        (root / "link").symlink_to(outside, target_is_directory=True)
        store = ObjectStore(bus, "b", root=root)
        with pytest.raises(InvalidObjectKey, match="symbolic link"):
            await store.put("link/x", b"x")
        assert list(outside.iterdir()) == []


async def test_an_object_cannot_also_be_a_folder_on_disk(
    fake_clock: FakeClock, tmp_path: Path
) -> None:
    """'a' and 'a/b' cannot both exist on disk; the error says why."""
    async with running(fake_clock) as (bus, _seen):
        store = ObjectStore(bus, "b", root=tmp_path)
        await store.put("a", b"x")
        with pytest.raises(InvalidObjectKey, match="cannot also be a folder"):
            await store.put("a/b", b"y")


# -- generated keys never leave the root ---------------------------------------------------

FRAGMENTS = st.sampled_from(
    ["a", "b.txt", ".", "..", "/", "//", "\\", "\x00", ":", "C:", "~", " ", "é", "\n", ".eventbus"]
)
KEYS = st.one_of(st.lists(FRAGMENTS, max_size=8).map("".join), st.text(max_size=24))


def files_outside(base: Path, root: Path) -> list[Path]:
    """Everything under *base* that is not *root* or inside it."""
    return [p for p in base.rglob("*") if p != root and root not in p.parents]


@given(key=KEYS)
@settings(max_examples=200, deadline=None)
def test_generated_keys_are_refused_or_stay_under_the_root(key: str) -> None:
    """Any key is either refused with InvalidObjectKey or stored as a file inside the root."""
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        root = base / "root"

        async def scenario() -> bool:
            async with Bus() as bus:
                store = ObjectStore(bus, "b", root=root)
                try:
                    await store.put(key, b"payload")
                except InvalidObjectKey:
                    return False
                assert (await store.get(key)).body == b"payload"
                return True

        stored = anyio.run(scenario)
        assert files_outside(base, root) == []
        if stored:
            path = root.joinpath(*key.split("/"))
            assert path.read_bytes() == b"payload"
            assert os.path.realpath(path).startswith(os.path.realpath(root) + os.sep)


@given(key=KEYS)
@settings(max_examples=1000)
def test_accepted_keys_map_to_normalised_paths_inside_the_root(key: str) -> None:
    """check_key accepts only keys whose path is normalised and below the root."""
    root = Path("/srv/bucket")
    try:
        check_key(key)
    except InvalidObjectKey:
        return
    path = path_for_key(root, key)
    assert os.path.normpath(path) == str(path)
    assert root in path.parents


# -- watching a directory -------------------------------------------------------------------


class Recorder:
    """Collects events and lets a test wait, without sleeping, until a condition holds."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = anyio.Event()

    async def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, predicate: Callable[[list[Event]], bool]) -> None:
        with anyio.fail_after(15):
            while not predicate(self.events):
                await self._changed.wait()


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def has(kind: type[Event], key: str, **fields: object) -> Callable[[list[Event]], bool]:
    def test(events: list[Event]) -> bool:
        return any(
            isinstance(e, kind)
            and getattr(e, "key", None) == key
            and all(getattr(e, k) == v for k, v in fields.items())
            for e in events
        )

    return test


async def test_watch_publishes_changes_made_by_other_programs(tmp_path: Path) -> None:
    """Files created, rewritten and removed by others give ObjectCreated / ObjectRemoved."""
    pytest.importorskip("watchfiles")
    recorder = Recorder()
    async with Bus() as bus:
        bus.subscribe((ObjectCreated, ObjectRemoved), recorder, name="recorder")
        async with ObjectStore.watch(bus, "inbox", tmp_path, debounce=0.05) as watcher:
            assert watcher.source == "eventbus.objects/inbox"
            write(tmp_path / "in" / "a.txt", b"first")
            await recorder.wait_for(has(ObjectCreated, "in/a.txt", etag=md5(b"first")))
            write(tmp_path / "in" / "a.txt", b"second!")
            await recorder.wait_for(has(ObjectCreated, "in/a.txt", etag=md5(b"second!")))
            (tmp_path / "in" / "a.txt").unlink()
            await recorder.wait_for(has(ObjectRemoved, "in/a.txt"))
    created = [e for e in recorder.events if isinstance(e, ObjectCreated)]
    assert created[-1].size == 7
    assert created[-1].bucket == "inbox"
    assert created[-1].reason == "Put"
    assert created[-1].content_type == "text/plain"
    assert created[-1].source == "eventbus.objects/inbox"
    removed = [e for e in recorder.events if isinstance(e, ObjectRemoved)]
    assert removed[-1].reason == "Delete"
    sequencers = [getattr(e, "sequencer", "") for e in recorder.events]
    assert sequencers == sorted(sequencers)


async def test_watch_can_announce_existing_files(tmp_path: Path) -> None:
    """emit_existing=True publishes ObjectCreated for the files present at start."""
    pytest.importorskip("watchfiles")
    write(tmp_path / "old.bin", b"old")
    recorder = Recorder()
    async with Bus() as bus:
        bus.subscribe(ObjectCreated, recorder, name="recorder")
        async with ObjectStore.watch(bus, "inbox", tmp_path, emit_existing=True):
            await recorder.wait_for(has(ObjectCreated, "old.bin", size=3))


def test_watch_without_watchfiles_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without watchfiles, watch() raises an ImportError naming the extra to install."""
    monkeypatch.setitem(sys.modules, "watchfiles", None)
    bus = Bus()
    with pytest.raises(ImportError, match=re.escape("pip install 'eventbus[watch]'")):
        ObjectStore.watch(bus, "inbox", tmp_path)
