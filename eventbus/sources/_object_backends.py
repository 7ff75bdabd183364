"""Where an :class:`~eventbus.ObjectStore` keeps its bytes: in memory, or in a directory.

Both backends hold the same records -- for every key, its versions oldest
first (one version when the bucket is not versioned) -- and are driven by
the store under its lock, so they need no locking of their own.

Disk layout under ``root``::

    photos/cat.jpg                    the object (the current version's bytes)
    .eventbus/bucket.json             {"format": 1, "bucket": ..., "versioning": ...}
    .eventbus/objects/ab/abcd...json  per key (by SHA-256): its versions' metadata
    .eventbus/versions/abcd.../<id>   per version of a versioned bucket: its bytes

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
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, Protocol, TypeAlias, final

import attrs

from ._common import Sequencer
from ._object_keys import (
    META_DIR,
    TEMP_PREFIX,
    InvalidObjectKey,
    is_temp_name,
    key_for_path,
    path_for_key,
    prepare_parent,
)

__all__ = ["Backend", "Body", "DiskBackend", "MemoryBackend", "Version", "guess_type", "md5"]

logger = logging.getLogger("eventbus")

Body: TypeAlias = bytes | IO[bytes]
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


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(target: Path, body: Body) -> tuple[int, str]:
    """Write *body* to *target* via a temporary file, fsync and rename; return size and MD5."""
    temp = target.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
    digest = md5()
    size = 0
    try:
        with open(temp, "xb") as out:
            if isinstance(body, bytes):
                out.write(body)
                digest.update(body)
                size = len(body)
            else:
                while chunk := body.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(target.parent)
    return size, digest.hexdigest()


def _file_md5(path: Path) -> str:
    digest = md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return str(digest.hexdigest())


@final
class DiskBackend:
    """Objects as files under *root*, metadata in JSON sidecars (see the module docstring)."""

    threaded = True

    def __init__(self, root: Path, bucket: str, versioning: bool) -> None:
        self.root = root
        self.bucket = bucket
        self.versioning = versioning
        self.meta = root / META_DIR

    # -- paths ----------------------------------------------------------------

    @staticmethod
    def _hash(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    def _sidecar(self, key: str) -> Path:
        h = self._hash(key)
        return self.meta / "objects" / h[:2] / f"{h}.json"

    def _version_file(self, key: str, version_id: str) -> Path:
        return self.meta / "versions" / self._hash(key) / version_id

    def _data_path(self, key: str, version_id: str | None) -> Path:
        if version_id is None:
            path = path_for_key(self.root, key)
            if path.is_symlink():
                raise InvalidObjectKey(f"key {key!r:.80} is a symbolic link on disk; not read")
            return path
        return self._version_file(key, version_id)

    # -- Backend ----------------------------------------------------------------

    def load(self, sequencer: Sequencer) -> dict[str, list[Version]]:
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_config()
        index: dict[str, list[Version]] = {}
        objects = self.meta / "objects"
        if objects.is_dir():
            for sidecar in objects.glob("*/*.json"):
                try:
                    record = json.loads(sidecar.read_text("utf-8"))
                    key = record["key"]
                    versions = [Version.from_json(v) for v in record["versions"]]
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    logger.warning(
                        "object store %s: skipping unreadable %s: %s", self.bucket, sidecar, exc
                    )
                    continue
                index[key] = versions
        if not self.versioning:
            index = self._reconcile(index, sequencer)
        for versions in index.values():
            for version in versions:
                sequencer.observe(version.sequencer)
        return index

    def _check_config(self) -> None:
        config = self.meta / "bucket.json"
        if config.exists():
            stored = json.loads(config.read_text("utf-8"))
            if bool(stored.get("versioning")) != self.versioning:
                raise ValueError(
                    f"ObjectStore(root={str(self.root)!r}) was created with "
                    f"versioning={bool(stored.get('versioning'))}; open it with the same setting "
                    "(a bucket's versioning cannot be switched on this backend)"
                )
            return
        self.meta.mkdir(exist_ok=True)
        data = {"format": FORMAT, "bucket": self.bucket, "versioning": self.versioning}
        _atomic_write(config, json.dumps(data).encode())

    def _reconcile(
        self, index: dict[str, list[Version]], sequencer: Sequencer
    ) -> dict[str, list[Version]]:
        """The files are the truth of an unversioned bucket; sidecars only add metadata."""
        found: dict[str, list[Version]] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            here = Path(dirpath)
            if here == self.root and META_DIR in dirnames:
                dirnames.remove(META_DIR)
            for name in filenames:
                if is_temp_name(name):
                    continue
                path = here / name
                key = key_for_path(self.root, path)
                info = os.lstat(path)
                if key is None or not os.path.isfile(path) or os.path.islink(path):
                    continue
                known = index.get(key)
                if (
                    known
                    and known[-1].size == info.st_size
                    and known[-1].mtime_ns == info.st_mtime_ns
                ):
                    found[key] = known
                    continue
                modified = datetime.fromtimestamp(info.st_mtime, UTC)
                found[key] = [
                    Version(
                        version_id=None,
                        size=info.st_size,
                        etag=_file_md5(path),
                        last_modified=modified,
                        sequencer=sequencer.next(),
                        content_type=guess_type(key),
                        mtime_ns=info.st_mtime_ns,
                    )
                ]
        for key in index.keys() - found.keys():
            with contextlib.suppress(OSError):
                os.unlink(self._sidecar(key))
        return found

    def check_writable(self, key: str) -> None:
        prepare_parent(self.root, key)

    def write(self, key: str, version_id: str | None, body: Body) -> tuple[int, str, int | None]:
        target = prepare_parent(self.root, key)
        if version_id is None:
            size, etag = _atomic_write(target, body)
            return size, etag, os.lstat(target).st_mtime_ns
        version_file = self._version_file(key, version_id)
        version_file.parent.mkdir(parents=True, exist_ok=True)
        size, etag = _atomic_write(version_file, body)
        return size, etag, None

    def read(self, key: str, version_id: str | None) -> bytes:
        return self._data_path(key, version_id).read_bytes()

    def save(self, key: str, versions: list[Version]) -> None:
        sidecar = self._sidecar(key)
        if not versions:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sidecar)
        else:
            sidecar.parent.mkdir(parents=True, exist_ok=True)
            record = {"key": key, "versions": [v.to_json() for v in versions]}
            _atomic_write(sidecar, json.dumps(record, ensure_ascii=False).encode("utf-8"))
        if self.versioning:
            self._refresh_view(key, versions)

    def _refresh_view(self, key: str, versions: list[Version]) -> None:
        """Show the current version of a versioned key at its plain path (or nothing)."""
        view = path_for_key(self.root, key)
        current = versions[-1] if versions else None
        if current is None or current.delete_marker or current.version_id is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(view)
            self._prune(view.parent)
            return
        view = prepare_parent(self.root, key)
        source = self._version_file(key, current.version_id)
        temp = view.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
        try:
            os.link(source, temp)
        except OSError:  # no hard links here: copy instead
            with open(source, "rb") as f:
                _atomic_write(temp, f)
        os.replace(temp, view)
        _fsync_dir(view.parent)

    def discard(self, key: str, version_id: str | None) -> None:
        path = self._data_path(key, version_id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        if version_id is None:
            self._prune(path.parent)
        else:
            with contextlib.suppress(OSError):
                path.parent.rmdir()

    def _prune(self, folder: Path) -> None:
        """Remove folders left empty by a delete, up to (not including) the root."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent
