"""Object stores and their events (the S3 model).

:class:`ObjectStore` is an embedded bucket, kept in memory or in a directory,
whose writes publish :class:`ObjectCreated` and :class:`ObjectRemoved` as S3
event notifications do; :meth:`ObjectStore.watch` publishes the same events
for files that other programs change in a directory.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, final

import anyio
import attrs

from .._bus import Bus
from .._events import Event
from .._exceptions import SerializationError
from .._serialization import cloudevent_json, decode_stored
from .._settle import publish_tracked
from .._sqlite import PRIVATE_FILE_MODE, check_mode
from ._common import Sequencer, check_bus, check_name, ensure_running, run_sync
from ._object_args import check_body, check_content_type, check_limit, check_metadata
from ._object_backends import Backend, DiskBackend, MemoryBackend, Version, guess_type
from ._object_keys import InvalidObjectKey, check_key
from ._object_types import ObjectInfo, ObjectListing, ObjectNotFound, StoredObject
from ._object_watch import ObjectWatcher

logger = logging.getLogger("eventbus.objects")

__all__ = [
    "InvalidObjectKey",
    "ObjectCreated",
    "ObjectInfo",
    "ObjectListing",
    "ObjectNotFound",
    "ObjectRemoved",
    "ObjectStore",
    "ObjectWatcher",
    "StoredObject",
]


@attrs.frozen
class ObjectCreated(Event, type_name="eventbus.ObjectCreated"):
    """An object was written to a bucket (S3 ``ObjectCreated:*``).

    Attributes:
        bucket: the bucket name.
        key: the object key, decoded (never URL-encoded).
        size: the object's size in bytes.
        etag: the entity tag; for single-part uploads the MD5 of the content, in hex.
        version_id: the version written, when the bucket is versioned.
        metadata: user metadata stored with the object.
        content_type: the object's media type, when known.
        sequencer: orders events for the same key (a larger value is later).
        reason: what created it: ``"Put"``, ``"Post"``, ``"Copy"`` or
            ``"CompleteMultipartUpload"`` (S3's ``eventName`` suffix).
    """

    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    content_type: str | None = None
    sequencer: str | None = None
    reason: str = "Put"


@attrs.frozen
class ObjectRemoved(Event, type_name="eventbus.ObjectRemoved"):
    """An object was deleted from a bucket (S3 ``ObjectRemoved:*``).

    Attributes:
        bucket: the bucket name.
        key: the object key, decoded.
        version_id: the version removed, or of the delete marker created.
        sequencer: orders events for the same key.
        reason: ``"Delete"`` or ``"DeleteMarkerCreated"`` (S3's ``eventName`` suffix).
    """

    bucket: str
    key: str
    version_id: str | None = None
    sequencer: str | None = None
    reason: str = "Delete"


@final
class ObjectStore:
    """An embedded bucket whose writes publish S3-style events on a bus.

    ::

        photos = ObjectStore(bus, "photos")                  # in memory
        photos = ObjectStore(bus, "photos", root="var/photos")  # on disk
        await photos.put("cats/tom.jpg", data, content_type="image/jpeg")

    Every write publishes one event with ``source="eventbus.objects/<bucket>"``
    and returns it: :meth:`put` and :meth:`copy` an :class:`ObjectCreated`,
    :meth:`delete` an :class:`ObjectRemoved`. Writes wait while a subscriber's
    queue is full (backpressure), and their events are published in the order
    of their ``sequencer``. Reads never wait for a publisher.

    With ``root=`` the objects are files under that directory (a key's ``/``
    separates folders), written atomically (temporary file, ``fsync``,
    rename), with content type, metadata and versions in JSON sidecars under
    ``root/.eventbus``; files already in an unversioned root become objects.
    Only one store object should use a root at a time. Every operation
    reaches its file from the root one folder at a time and follows no
    symbolic link, so a folder swapped for a link (even while the store is
    open) cannot lead a read, write, delete or listing outside the root:
    such keys raise :class:`InvalidObjectKey`. New files are created with
    *mode* (``0o600``) and new folders, the root included, with the
    matching folder mode (``0o700``).

    With ``versioning=True`` every put keeps a new version; :meth:`delete`
    without ``version_id`` adds a delete marker (``"DeleteMarkerCreated"``),
    with one it removes that version for good (``"Delete"``).

    Every write journals its event before publishing it (on disk, in
    ``root/.eventbus/journal``, in the same folder walk as the object) and
    keeps it there until every subscription that accepted the event has
    *settled* it -- handled it, or dead-lettered it. A write cancelled
    while publishing keeps its event: the next operation on the store
    publishes it, in order. After a crash, the first operation of a store
    opened on the same root (or :meth:`open`) publishes again every
    journaled event that had not settled, with its original id: a
    committed write's event is handled at least once.

    Args:
        bus: the bus to publish on.
        bucket: the bucket name (1-255 letters, digits, ``_ - .``).
        root: a directory for the disk backend; None keeps objects in memory.
        versioning: keep every version, as an S3 bucket with versioning enabled.
        mode: the permission bits of the files the disk backend creates;
            folders get the same bits plus search (``x``) wherever reading
            is allowed: ``0o600`` (the default) gives folders ``0o700``,
            ``0o644`` gives ``0o755``. Existing files and folders keep theirs.

    Raises:
        TypeError, ValueError: an argument is invalid.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       Private files (0600) and folders (0700) by default; the *mode* argument.
    """

    __slots__ = (
        "_backend",
        "_bucket",
        "_bus",
        "_index",
        "_limiter",
        "_lock",
        "_pending",
        "_published",
        "_root",
        "_sequencer",
        "_settled",
        "_versioning",
    )

    def __init__(
        self,
        bus: Bus,
        bucket: str,
        root: str | os.PathLike[str] | None = None,
        versioning: bool = False,
        *,
        mode: int = PRIVATE_FILE_MODE,
    ) -> None:
        self._bus = check_bus("ObjectStore", bus)
        self._bus._add_source(self)
        self._bucket = check_name("ObjectStore", "bucket", bucket)
        if not isinstance(versioning, bool):
            raise TypeError(
                f"ObjectStore(versioning=...) must be True or False, got {versioning!r}"
            )
        self._versioning = versioning
        check_mode("ObjectStore", mode)
        backend: Backend
        if root is None:
            self._root: Path | None = None
            backend = MemoryBackend()
        else:
            if not isinstance(root, str | os.PathLike):
                raise TypeError(
                    f"ObjectStore(root=...) must be a path or None, got {type(root).__name__}"
                )
            self._root = Path(root).resolve()
            if self._root.exists() and not self._root.is_dir():
                raise ValueError(f"ObjectStore(root={str(root)!r}) is a file, not a directory")
            backend = DiskBackend(self._root, bucket, versioning, mode)
        self._backend = backend
        self._limiter = anyio.CapacityLimiter(1) if backend.threaded else None
        self._lock = anyio.Lock()
        # Set when the latest write's event has been published: each write
        # waits for its predecessor's, so events go out in sequencer order
        # without any lock being held while the bus applies backpressure.
        self._published: anyio.Event | None = None
        self._index: dict[str, list[Version]] | None = None
        self._sequencer = Sequencer()
        # Journaled events not yet published (in sequencer order), and the
        # sequencers of published ones that have settled (to forget).
        self._pending: dict[str, Event] = {}
        self._settled: list[str] = []

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return self._bucket

    @property
    def source(self) -> str:
        """The ``source`` of the events this store publishes: ``eventbus.objects/<bucket>``."""
        return f"eventbus.objects/{self._bucket}"

    @property
    def root(self) -> Path | None:
        """The directory of the disk backend (absolute), or None in memory."""
        return self._root

    @property
    def versioning(self) -> bool:
        """Whether every version is kept."""
        return self._versioning

    # -- internals ---------------------------------------------------------------

    async def _load(self) -> dict[str, list[Version]]:
        """The index (call with the lock held); the disk is read on first use.

        The first load also takes the journal: events of a previous run that
        had not settled, published again by the next :meth:`_deliver`.
        """
        if self._index is None:
            index, journaled = await run_sync(self._limiter, self._read_all)
            for sequencer, document in journaled:
                self._sequencer.observe(sequencer)
                try:
                    self._pending[sequencer] = decode_stored(document)
                except SerializationError as exc:
                    logger.error(
                        "object store %s: journaled event %s cannot be decoded (%s); dropped",
                        self._bucket,
                        sequencer,
                        exc,
                    )
                    self._settled.append(sequencer)
            self._index = index
        return self._index

    def _read_all(self) -> tuple[dict[str, list[Version]], list[tuple[str, bytes]]]:
        return self._backend.load(self._sequencer), self._backend.journaled()

    async def _commit(self, event: ObjectCreated | ObjectRemoved, sequencer: str) -> None:
        """Journal *event* and forget the settled ones (call with the lock held)."""
        if self._root is None:  # in memory: the pending events are the journal
            self._settled.clear()
            self._pending[sequencer] = event
            return
        forget, self._settled = self._settled, []
        document = cloudevent_json(event).encode()

        def journal() -> None:
            if forget:
                self._backend.forget(forget)
            self._backend.journal(sequencer, document)

        try:
            await run_sync(self._limiter, journal)
        except BaseException:
            self._settled[:0] = forget
            raise
        self._pending[sequencer] = event

    def _info(self, key: str, version: Version, *, latest: bool = True) -> ObjectInfo:
        return ObjectInfo(
            bucket=self._bucket,
            key=key,
            size=version.size,
            etag=version.etag,
            last_modified=version.last_modified,
            content_type=version.content_type,
            metadata=dict(version.metadata),
            version_id=version.version_id,
            delete_marker=version.delete_marker,
            is_latest=latest,
        )

    def _find(self, index: dict[str, list[Version]], key: str, version_id: str | None) -> Version:
        versions = index.get(key)
        if not versions:
            raise ObjectNotFound(f"no object {key!r:.80} in bucket {self._bucket!r}")
        if version_id is None:
            version = versions[-1]
            if version.delete_marker:
                raise ObjectNotFound(
                    f"object {key!r:.80} in bucket {self._bucket!r} was deleted (its current "
                    "version is a delete marker); pass version_id=... to read an older version"
                )
            return version
        self._check_version_id(version_id)
        for version in versions:
            if version.version_id == version_id:
                if version.delete_marker:
                    raise ObjectNotFound(
                        f"version {version_id!r} of {key!r:.80} is a delete marker, which has no content"
                    )
                return version
        raise ObjectNotFound(
            f"object {key!r:.80} in bucket {self._bucket!r} has no version {version_id!r}"
        )

    def _check_version_id(self, version_id: object) -> None:
        if not isinstance(version_id, str) or not version_id:
            raise TypeError(f"version_id must be a non-empty string, got {version_id!r}")
        if not self._versioning:
            raise ValueError(
                f"bucket {self._bucket!r} is not versioned, so it has no version ids; "
                "create it with ObjectStore(..., versioning=True)"
            )

    def _take_turn(self) -> tuple[anyio.Event | None, anyio.Event]:
        """Queue up to publish (call with the lock held): the predecessor's event and ours."""
        previous, mine = self._published, anyio.Event()
        self._published = mine
        return previous, mine

    async def _publish(self, turn: tuple[anyio.Event | None, anyio.Event]) -> None:
        """Publish the journaled events not yet published, once the previous turn is over."""
        previous, mine = turn
        try:
            if previous is not None:
                await previous.wait()
            while self._pending:
                sequencer = next(iter(self._pending))
                event = self._pending[sequencer]
                await publish_tracked(
                    self._bus, event, functools.partial(self._on_settled, sequencer)
                )
                self._pending.pop(sequencer, None)
        finally:
            mine.set()

    async def _catch_up(self) -> None:
        """Before a read: load on first use, and publish what the journal holds unpublished."""
        if self._index is None:
            async with self._lock:
                await self._load()
        busy = self._published is not None and not self._published.is_set()
        if self._pending and not busy and self._bus.accepting:
            await self._deliver()  # orphaned by a cancelled write or a previous run

    def _on_settled(self, sequencer: str) -> None:
        """The event journaled as *sequencer* has settled: forget it with the next write."""
        self._settled.append(sequencer)  # looked up now: writes swap the list

    async def _deliver(self) -> None:
        """Publish what the journal still holds unpublished (after a crash or a cancel)."""
        if not self._pending:
            return
        async with self._lock:
            turn = self._take_turn()
        await self._publish(turn)

    async def open(self) -> None:
        """Read the root now, and publish again the events a previous run did not see settled.

        Optional: every operation does this on first use. Calling it again
        publishes the events still unpublished (a write cancelled while
        publishing) and forgets those that have settled.

        Raises:
            BusClosed: journaled events wait to be published but the bus is
                not running (they stay in the journal).
            OSError: the disk backend could not read the root.

        .. versionadded:: 0.2
        """
        async with self._lock:
            await self._load()
            if self._settled:
                forget, self._settled = self._settled, []
                try:
                    await run_sync(self._limiter, lambda: self._backend.forget(forget))
                except BaseException:
                    self._settled[:0] = forget
                    raise
        if self._pending:
            ensure_running(self._bus, "ObjectStore.open")
        await self._deliver()

    async def __aenter__(self) -> ObjectStore:
        """``async with store:`` opens it (:meth:`open`).

        .. versionadded:: 0.2
        """
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Forget the journal entries of events that have settled; keep the others."""
        async with self._lock:
            if self._settled and self._index is not None:
                forget, self._settled = self._settled, []
                with anyio.CancelScope(shield=True):
                    await run_sync(self._limiter, lambda: self._backend.forget(forget))

    async def _write(
        self,
        key: str,
        body: bytes | IO[bytes],
        content_type: str | None,
        metadata: Mapping[str, str],
        reason: str,
    ) -> ObjectCreated:
        async with self._lock:
            index = await self._load()
            version_id = secrets.token_hex(16) if self._versioning else None
            size, etag, mtime = await run_sync(
                self._limiter, lambda: self._backend.write(key, version_id, body)
            )
            version = Version(
                version_id=version_id,
                size=size,
                etag=etag,
                last_modified=self._bus.clock.wall(),
                sequencer=self._sequencer.next(),
                content_type=content_type,
                metadata=metadata,
                mtime_ns=mtime,
            )
            versions = [*index.get(key, ()), version] if self._versioning else [version]
            await run_sync(self._limiter, lambda: self._backend.save(key, versions))
            index[key] = versions
            event = ObjectCreated(
                self._bucket,
                key,
                size,
                etag,
                version_id=version_id,
                metadata=dict(metadata),
                content_type=content_type,
                sequencer=version.sequencer,
                reason=reason,
                source=self.source,
                time=version.last_modified,
            )
            await self._commit(event, version.sequencer)
            turn = self._take_turn()
        await self._publish(turn)
        return event

    # -- writes ------------------------------------------------------------------

    async def put(
        self,
        key: str,
        body: bytes | bytearray | memoryview | IO[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectCreated:
        """Store *body* under *key* (replacing it, or adding a version) and publish ``ObjectCreated``.

        Args:
            key: the object key, a relative ``/``-separated path (see :class:`InvalidObjectKey`).
            body: the content: bytes, or a binary file-like object read to its end
                (the disk backend streams it to the file).
            content_type: the media type; default: guessed from the key's extension,
                else ``application/octet-stream``.
            metadata: user metadata, string to string; keys are lower-cased, as S3 does.

        Returns:
            The :class:`ObjectCreated` published (``reason="Put"``).

        Raises:
            InvalidObjectKey: *key* is malformed or would leave the root directory.
            TypeError, ValueError: another argument is invalid.
            BusClosed: the bus is not running (nothing was stored).
            OSError: the disk backend could not write.
        """
        check_key(key)
        data = check_body(body)
        kind = check_content_type(content_type) or guess_type(key)
        meta = check_metadata(metadata)
        ensure_running(self._bus, "ObjectStore.put")
        return await self._write(key, data, kind, meta, "Put")

    async def copy(
        self,
        src_key: str,
        dst_key: str,
        *,
        version_id: str | None = None,
        from_store: ObjectStore | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectCreated:
        """Copy an object to *dst_key* in this bucket and publish ``ObjectCreated`` (``"Copy"``).

        Args:
            src_key: the key to copy from.
            dst_key: the key to copy to.
            version_id: the source version (default: the current one).
            from_store: the store to copy from (default: this one).
            content_type: the copy's media type (default: the source's).
            metadata: the copy's metadata (default: the source's).

        Returns:
            The :class:`ObjectCreated` published.

        Raises:
            ObjectNotFound: the source object or version does not exist.
            InvalidObjectKey: a key is malformed.
            BusClosed: the bus is not running (nothing was copied).
        """
        check_key(src_key, what="src_key")
        check_key(dst_key, what="dst_key")
        if from_store is not None and not isinstance(from_store, ObjectStore):
            raise TypeError(
                f"copy(from_store=...) must be an ObjectStore, got {type(from_store).__name__}"
            )
        kind = check_content_type(content_type)
        meta = None if metadata is None else check_metadata(metadata)
        ensure_running(self._bus, "ObjectStore.copy")
        original = await (from_store or self).get(src_key, version_id=version_id)
        info = original.info
        return await self._write(
            dst_key,
            original.body,
            kind or info.content_type,
            dict(info.metadata) if meta is None else meta,
            "Copy",
        )

    async def delete(self, key: str, *, version_id: str | None = None) -> ObjectRemoved | None:
        """Delete *key* (or one version of it) and publish ``ObjectRemoved``.

        In an unversioned bucket the object is removed (``reason="Delete"``).
        In a versioned one, without *version_id* a delete marker becomes the
        current version, as in S3 -- even when the key has no versions yet --
        (``"DeleteMarkerCreated"``, ``version_id`` = the marker's); with
        *version_id* that version (object or marker) is removed for good
        (``"Delete"``), and the next newer one, if any, becomes current.

        Returns:
            The :class:`ObjectRemoved` published, or None (nothing published)
            when there was nothing to delete.

        Raises:
            InvalidObjectKey: *key* is malformed.
            ValueError: *version_id* given for an unversioned bucket.
            BusClosed: the bus is not running (nothing was deleted).
        """
        check_key(key)
        if version_id is not None:
            self._check_version_id(version_id)
        ensure_running(self._bus, "ObjectStore.delete")
        async with self._lock:
            index = await self._load()
            versions = index.get(key, [])
            marker: str | None = None
            if self._versioning and version_id is None:
                marker = secrets.token_hex(16)
                removed_id: str | None = marker
            else:
                found = [v for v in versions if v.version_id == version_id]
                if not found:
                    return None
                removed_id = version_id
            sequencer = self._sequencer.next()
            now = self._bus.clock.wall()
            if marker is not None:
                stub = Version(marker, 0, "", now, sequencer, delete_marker=True)
                remaining = [*versions, stub]
            else:
                remaining = [v for v in versions if v.version_id != version_id]
            # An unversioned file goes first (a crash then leaves a stale sidecar,
            # which loading drops); a version's record goes first (a crash then
            # leaves an orphan file, which nothing reads).
            if marker is None and not self._versioning:
                await run_sync(self._limiter, lambda: self._backend.discard(key, None))
            await run_sync(self._limiter, lambda: self._backend.save(key, remaining))
            if marker is None and self._versioning:
                await run_sync(self._limiter, lambda: self._backend.discard(key, version_id))
            if remaining:
                index[key] = remaining
            else:
                index.pop(key, None)
            event = ObjectRemoved(
                self._bucket,
                key,
                version_id=removed_id,
                sequencer=sequencer,
                reason="Delete" if marker is None else "DeleteMarkerCreated",
                source=self.source,
                time=now,
            )
            await self._commit(event, sequencer)
            turn = self._take_turn()
        await self._publish(turn)
        return event

    # -- reads -------------------------------------------------------------------

    async def get(self, key: str, *, version_id: str | None = None) -> StoredObject:
        """Read an object's content and description.

        Raises:
            ObjectNotFound: no such key or version, or the current version is a delete marker.
            InvalidObjectKey: *key* is malformed.
        """
        check_key(key)
        await self._catch_up()
        async with self._lock:
            version = self._find(await self._load(), key, version_id)
            body = await run_sync(
                self._limiter, lambda: self._backend.read(key, version.version_id)
            )
        return StoredObject(self._info(key, version), body)

    async def head(self, key: str, *, version_id: str | None = None) -> ObjectInfo:
        """Describe an object without reading its content.

        Raises:
            ObjectNotFound: no such key or version, or the current version is a delete marker.
            InvalidObjectKey: *key* is malformed.
        """
        check_key(key)
        await self._catch_up()
        async with self._lock:
            index = await self._load()
            version = self._find(index, key, version_id)
            latest = index[key][-1] is version
        return self._info(key, version, latest=latest)

    async def exists(self, key: str) -> bool:
        """Whether *key* has a current version that is not a delete marker."""
        check_key(key)
        await self._catch_up()
        async with self._lock:
            versions = (await self._load()).get(key)
        return versions is not None and bool(versions) and not versions[-1].delete_marker

    async def versions(self, key: str) -> tuple[ObjectInfo, ...]:
        """Every version of *key*, delete markers included, newest first (empty if none)."""
        check_key(key)
        await self._catch_up()
        async with self._lock:
            versions = (await self._load()).get(key, [])
            count = len(versions)
            return tuple(
                self._info(key, v, latest=i == count - 1)
                for i, v in reversed(list(enumerate(versions)))
            )

    @staticmethod
    def watch(
        bus: Bus,
        bucket: str,
        directory: str | os.PathLike[str],
        *,
        debounce: float = 0.2,
        emit_existing: bool = False,
        force_polling: bool | None = None,
    ) -> ObjectWatcher:
        """Publish object events for files other programs change in *directory*.

        Needs the optional ``watchfiles`` package (``pip install 'eventbus[watch]'``);
        :class:`ObjectWatcher` describes the options and the events.

        Raises:
            ImportError: ``watchfiles`` is not installed.
            TypeError, ValueError: an argument is invalid.
        """
        return ObjectWatcher(
            bus,
            bucket,
            directory,
            debounce=debounce,
            emit_existing=emit_existing,
            force_polling=force_polling,
        )

    async def list(
        self, prefix: str = "", *, limit: int | None = None, token: str | None = None
    ) -> ObjectListing:
        """List current objects whose keys start with *prefix*, in key order.

        Delete markers and old versions are left out. Without *limit* every
        match comes in one page; with it, at most *limit* per page, and the
        listing's ``next_token`` (opaque) fetches the next page::

            page = await store.list("logs/", limit=100)
            while page.next_token:
                page = await store.list("logs/", limit=100, token=page.next_token)

        Raises:
            TypeError, ValueError: *prefix*, *limit* or *token* is invalid.
        """
        if not isinstance(prefix, str):
            raise TypeError(f"list(prefix=...) must be a string, got {type(prefix).__name__}")
        check_limit(limit)
        if token is not None and not isinstance(token, str):
            raise TypeError(f"list(token=...) must be the next_token of a listing, got {token!r}")
        await self._catch_up()
        async with self._lock:
            index = await self._load()
            keys = sorted(
                k
                for k, vs in index.items()
                if k.startswith(prefix)
                and not vs[-1].delete_marker
                and (token is None or k > token)
            )
            page = keys if limit is None else keys[:limit]
            infos = tuple(self._info(k, index[k][-1]) for k in page)
        more = limit is not None and len(keys) > limit
        return ObjectListing(infos, page[-1] if more and page else None)

    def __repr__(self) -> str:
        where = "memory" if self._root is None else str(self._root)
        return (
            f"<ObjectStore {self._bucket!r} in {where}{' versioned' if self._versioning else ''}>"
        )
