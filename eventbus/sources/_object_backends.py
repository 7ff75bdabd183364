"""Where an :class:`~eventbus.ObjectStore` keeps its bytes: in memory, or in a directory.

Both backends hold the same records -- for every key, its versions oldest
first (one version when the bucket is not versioned) -- and are driven by
the store under its lock, so they need no locking of their own.

Disk layout under ``root``::

    photos/cat.jpg                    the object (the current version's bytes)
    .eventbus/bucket.json             {"format": 1, "bucket": ..., "versioning": ...}
    .eventbus/objects/ab/abcd...json  per key (by SHA-256): its versions' metadata
    .eventbus/versions/abcd.../<id>   per version of a versioned bucket: its bytes
    .eventbus/journal/<sequencer>.json  per write whose event has not settled: the CloudEvent

Every file is written to a temporary name in the same folder, flushed with
``fsync`` and renamed over the target, so a reader sees the old or the new
content, never a mix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mimetypes
import os
import stat
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, Protocol, TypeAlias, final

import attrs

from .._sqlite import PRIVATE_FILE_MODE, dir_mode_for
from ._common import Sequencer
from ._object_fs import DIR_FLAGS, lstat, open_dirs, open_file, read_file, replace_file, write_file
from ._object_keys import META_DIR, InvalidObjectKey, is_temp_name, key_for_path

__all__ = ["Backend", "Body", "DiskBackend", "MemoryBackend", "Version", "guess_type", "md5"]

logger = logging.getLogger("eventbus")

Body: TypeAlias = bytes | IO[bytes]
_JOURNAL: Final = [META_DIR, "journal"]
CHUNK: Final = 1 << 20
FORMAT: Final = 1


def md5() -> Any:
    """A new MD5 hash, used only as S3's entity tag (not for security)."""
    return hashlib.md5(usedforsecurity=False)


def guess_type(key: str) -> str:
    """A media type from the key's extension, else ``application/octet-stream``."""
    kind, _ = mimetypes.guess_type(key, strict=False)
    return kind or "application/octet-stream"


@attrs.frozen
class Version:
    """One version of an object (or a delete marker), as a backend records it."""

    version_id: str | None
    size: int
    etag: str
    last_modified: datetime
    sequencer: str
    content_type: str | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    delete_marker: bool = False
    mtime_ns: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The sidecar form."""
        data = attrs.asdict(self)
        data["last_modified"] = self.last_modified.isoformat()
        data["metadata"] = dict(self.metadata)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Version:
        """Read the sidecar form back."""
        fields = dict(data)
        fields["last_modified"] = datetime.fromisoformat(fields["last_modified"])
        return cls(**fields)


class Backend(Protocol):
    """**Protocol:** the storage behind an object store (internal).

    ``threaded`` says whether its methods block on I/O (and so run in a
    worker thread).
    """

    threaded: bool

    def load(self, sequencer: Sequencer) -> dict[str, list[Version]]:
        """Every key's versions, oldest first."""
        ...

    def check_writable(self, key: str) -> None:
        """Raise InvalidObjectKey if *key* cannot be stored (before anything is written)."""
        ...

    def write(self, key: str, version_id: str | None, body: Body) -> tuple[int, str, int | None]:
        """Store the bytes of a version; return size, MD5 hex and the file's mtime (disk)."""
        ...

    def read(self, key: str, version_id: str | None) -> bytes:
        """The bytes of a version."""
        ...

    def save(self, key: str, versions: list[Version]) -> None:
        """Persist *key*'s records (an empty list forgets the key)."""
        ...

    def discard(self, key: str, version_id: str | None) -> None:
        """Drop the bytes of a version."""
        ...

    def journal(self, sequencer: str, document: bytes) -> None:
        """Keep a write's event (CloudEvents JSON) until it has settled."""
        ...

    def forget(self, sequencers: Sequence[str]) -> None:
        """Drop the journal entries of events that have settled."""
        ...

    def journaled(self) -> list[tuple[str, bytes]]:
        """The journal entries, oldest first."""
        ...


def _read_all(body: Body) -> bytes:
    if isinstance(body, bytes):
        return body
    chunks = []
    while chunk := body.read(CHUNK):
        chunks.append(bytes(chunk))
    return b"".join(chunks)


@final
class MemoryBackend:
    """Bytes in a dict; records live only in the store's index."""

    threaded = False

    def __init__(self) -> None:
        self._data: dict[tuple[str, str | None], bytes] = {}
        self._journal: dict[str, bytes] = {}

    def load(self, sequencer: Sequencer) -> dict[str, list[Version]]:
        return {}

    def check_writable(self, key: str) -> None:
        return None

    def write(self, key: str, version_id: str | None, body: Body) -> tuple[int, str, int | None]:
        data = _read_all(body)
        self._data[key, version_id] = data
        digest = md5()
        digest.update(data)
        return len(data), str(digest.hexdigest()), None

    def read(self, key: str, version_id: str | None) -> bytes:
        return self._data[key, version_id]

    def save(self, key: str, versions: list[Version]) -> None:
        return None

    def discard(self, key: str, version_id: str | None) -> None:
        self._data.pop((key, version_id), None)

    def journal(self, sequencer: str, document: bytes) -> None:
        self._journal[sequencer] = document

    def forget(self, sequencers: Sequence[str]) -> None:
        for sequencer in sequencers:
            self._journal.pop(sequencer, None)

    def journaled(self) -> list[tuple[str, bytes]]:
        return sorted(self._journal.items())


def _md5_of(fd: int) -> str:
    digest = md5()
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return str(digest.hexdigest())


@final
class DiskBackend:
    """Objects as files under *root*, metadata in JSON sidecars (see the module docstring).

    Every path is reached from the root one folder at a time without
    following links (:mod:`._object_fs`), for every operation. New files
    get *mode*, new folders :func:`dir_mode_for` of it.
    """

    threaded = True

    def __init__(
        self, root: Path, bucket: str, versioning: bool, mode: int = PRIVATE_FILE_MODE
    ) -> None:
        self.root = root
        self.bucket = bucket
        self.versioning = versioning
        self.mode = mode
        self.dir_mode = dir_mode_for(mode)

    # -- paths ----------------------------------------------------------------

    @staticmethod
    def _hash(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    def _sidecar(self, key: str) -> tuple[list[str], str]:
        h = self._hash(key)
        return [META_DIR, "objects", h[:2]], f"{h}.json"

    def _version_dir(self, key: str) -> list[str]:
        return [META_DIR, "versions", self._hash(key)]

    def _dirs(self, parts: list[str], key: str, *, create: bool) -> Any:
        return open_dirs(self.root, parts, key=key, create_mode=self.dir_mode if create else None)

    @staticmethod
    def _split(key: str) -> tuple[list[str], str]:
        *folders, name = key.split("/")
        return folders, name

    # -- Backend ----------------------------------------------------------------

    def load(self, sequencer: Sequencer) -> dict[str, list[Version]]:
        if not self.root.exists():
            self.root.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.root, self.dir_mode)
                os.chmod(self.root, self.dir_mode)  # exactly, whatever the umask
        self._check_config()
        index: dict[str, list[Version]] = {}
        try:
            with self._dirs([META_DIR, "objects"], "", create=False) as objects:
                for shard in sorted(os.listdir(objects.fd)):
                    try:
                        shard_fd = os.open(shard, DIR_FLAGS, dir_fd=objects.fd)
                    except OSError:
                        continue
                    try:
                        for name in sorted(os.listdir(shard_fd)):
                            if name.endswith(".json"):
                                self._load_sidecar(shard_fd, f"{shard}/{name}", name, index)
                    finally:
                        os.close(shard_fd)
        except FileNotFoundError:
            pass
        if not self.versioning:
            index = self._reconcile(index, sequencer)
        for versions in index.values():
            for version in versions:
                sequencer.observe(version.sequencer)
        return index

    def _load_sidecar(
        self, shard_fd: int, shown: str, name: str, index: dict[str, list[Version]]
    ) -> None:
        try:
            record = json.loads(read_file(shard_fd, name, shown).decode("utf-8"))
            key = record["key"]
            versions = [Version.from_json(v) for v in record["versions"]]
        except (OSError, ValueError, KeyError, TypeError, InvalidObjectKey) as exc:
            logger.warning("object store %s: skipping unreadable %s: %s", self.bucket, shown, exc)
            return
        index[key] = versions

    def _check_config(self) -> None:
        with self._dirs([META_DIR], "", create=True) as meta:
            try:
                stored = json.loads(read_file(meta.fd, "bucket.json", "bucket.json"))
            except FileNotFoundError:
                data = {"format": FORMAT, "bucket": self.bucket, "versioning": self.versioning}
                write_file(meta.fd, "bucket.json", json.dumps(data).encode(), self.mode)
                return
        if bool(stored.get("versioning")) != self.versioning:
            raise ValueError(
                f"ObjectStore(root={str(self.root)!r}) was created with "
                f"versioning={bool(stored.get('versioning'))}; open it with the same setting "
                "(a bucket's versioning cannot be switched on this backend)"
            )

    def _reconcile(
        self, index: dict[str, list[Version]], sequencer: Sequencer
    ) -> dict[str, list[Version]]:
        """The files are the truth of an unversioned bucket; sidecars only add metadata."""
        found: dict[str, list[Version]] = {}
        with self._dirs([], "", create=False) as top:
            walk = os.fwalk(".", dir_fd=top.fd, follow_symlinks=False)
            for dirpath, dirnames, filenames, dir_fd in walk:
                if dirpath == "." and META_DIR in dirnames:
                    dirnames.remove(META_DIR)
                for name in filenames:
                    if is_temp_name(name):
                        continue
                    key = key_for_path(self.root, self.root / dirpath / name)
                    if key is None:
                        continue
                    try:
                        fd = open_file(dir_fd, name, key)
                    except (OSError, InvalidObjectKey):
                        continue  # a link, a socket, or gone meanwhile
                    info = os.fstat(fd)
                    known = index.get(key)
                    if (
                        known
                        and known[-1].size == info.st_size
                        and known[-1].mtime_ns == info.st_mtime_ns
                    ):
                        os.close(fd)
                        found[key] = known
                        continue
                    found[key] = [
                        Version(
                            version_id=None,
                            size=info.st_size,
                            etag=_md5_of(fd),
                            last_modified=datetime.fromtimestamp(info.st_mtime, UTC),
                            sequencer=sequencer.next(),
                            content_type=guess_type(key),
                            mtime_ns=info.st_mtime_ns,
                        )
                    ]
        for key in index.keys() - found.keys():
            self.save(key, [])
        return found

    def check_writable(self, key: str) -> None:
        folders, name = self._split(key)
        with self._dirs(folders, key, create=True) as parent:
            self._check_target(parent.fd, name, key)

    @staticmethod
    def _check_target(parent: int, name: str, key: str) -> None:
        info = lstat(parent, name)
        if info is None:
            return
        if stat.S_ISDIR(info.st_mode):
            raise InvalidObjectKey(
                f"key {key!r:.80} is a folder of other objects on disk, so it cannot also be "
                "an object"
            )
        if stat.S_ISLNK(info.st_mode):
            raise InvalidObjectKey(f"key {key!r:.80} is a symbolic link on disk; remove it first")

    def write(self, key: str, version_id: str | None, body: Body) -> tuple[int, str, int | None]:
        digest = md5()
        if version_id is None:
            folders, name = self._split(key)
            with self._dirs(folders, key, create=True) as parent:
                self._check_target(parent.fd, name, key)
                size = write_file(parent.fd, name, body, self.mode, digest)
                info = lstat(parent.fd, name)
            return size, digest.hexdigest(), None if info is None else info.st_mtime_ns
        with self._dirs(self._version_dir(key), key, create=True) as folder:
            size = write_file(folder.fd, version_id, body, self.mode, digest)
        return size, digest.hexdigest(), None

    def read(self, key: str, version_id: str | None) -> bytes:
        if version_id is None:
            folders, name = self._split(key)
        else:
            folders, name = self._version_dir(key), version_id
        with self._dirs(folders, key, create=False) as parent:
            return read_file(parent.fd, name, key)

    def save(self, key: str, versions: list[Version]) -> None:
        folders, name = self._sidecar(key)
        if not versions:
            with (
                contextlib.suppress(FileNotFoundError),
                self._dirs(folders, key, create=False) as shard,
            ):
                os.unlink(name, dir_fd=shard.fd)
        else:
            record = {"key": key, "versions": [v.to_json() for v in versions]}
            data = json.dumps(record, ensure_ascii=False).encode("utf-8")
            with self._dirs(folders, key, create=True) as shard:
                write_file(shard.fd, name, data, self.mode)
        if self.versioning:
            self._refresh_view(key, versions)

    def _refresh_view(self, key: str, versions: list[Version]) -> None:
        """Show the current version of a versioned key at its plain path (or nothing)."""
        folders, name = self._split(key)
        current = versions[-1] if versions else None
        if current is None or current.delete_marker or current.version_id is None:
            with (
                contextlib.suppress(FileNotFoundError),
                self._dirs(folders, key, create=False) as parent,
            ):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=parent.fd)
                parent.prune()
            return
        with (
            self._dirs(self._version_dir(key), key, create=False) as source,
            self._dirs(folders, key, create=True) as parent,
        ):
            self._check_target(parent.fd, name, key)
            replace_file(source.fd, current.version_id, parent.fd, name, self.mode)

    def discard(self, key: str, version_id: str | None) -> None:
        if version_id is None:
            folders, name = self._split(key)
        else:
            folders, name = self._version_dir(key), version_id
        with (
            contextlib.suppress(FileNotFoundError),
            self._dirs(folders, key, create=False) as parent,
        ):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=parent.fd)
            if version_id is None:
                parent.prune()
            else:
                with contextlib.suppress(OSError):
                    os.rmdir(parent.names[-1], dir_fd=parent.fds[-2])

    # -- the journal of events not yet settled --------------------------------------

    def journal(self, sequencer: str, document: bytes) -> None:
        with self._dirs(_JOURNAL, sequencer, create=True) as folder:
            write_file(folder.fd, f"{sequencer}.json", document, self.mode)

    def forget(self, sequencers: Sequence[str]) -> None:
        with (
            contextlib.suppress(FileNotFoundError),
            self._dirs(_JOURNAL, "", create=False) as folder,
        ):
            for sequencer in sequencers:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{sequencer}.json", dir_fd=folder.fd)

    def journaled(self) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        try:
            with self._dirs(_JOURNAL, "", create=False) as folder:
                for name in sorted(os.listdir(folder.fd)):
                    if not name.endswith(".json") or is_temp_name(name):
                        continue
                    try:
                        out.append((name.removesuffix(".json"), read_file(folder.fd, name, name)))
                    except (OSError, InvalidObjectKey) as exc:
                        logger.warning(
                            "object store %s: skipping unreadable journal entry %s: %s",
                            self.bucket,
                            name,
                            exc,
                        )
        except FileNotFoundError:
            pass
        return out
