"""What an :class:`~eventbus.ObjectStore` returns: descriptions, contents, listings, errors."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import final

import attrs

from .._exceptions import ObjectNotFound

__all__ = ["ObjectInfo", "ObjectListing", "ObjectNotFound", "StoredObject"]


@final
@attrs.frozen
class ObjectInfo:
    """What :meth:`ObjectStore.head` tells about one version of an object.

    Attributes:
        bucket: the bucket name.
        key: the object key.
        size: the size in bytes (0 for a delete marker).
        etag: the MD5 of the content, in hex (``""`` for a delete marker).
        last_modified: when this version was written (the bus clock's wall time).
        content_type: the media type.
        metadata: user metadata (keys in lower case).
        version_id: the version id, or None in an unversioned bucket.
        delete_marker: this version is a delete marker (only from :meth:`ObjectStore.versions`).
        is_latest: this version is the key's current one.

    .. versionadded:: 0.1
    """

    bucket: str
    key: str
    size: int
    etag: str
    last_modified: datetime
    content_type: str | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    version_id: str | None = None
    delete_marker: bool = False
    is_latest: bool = True


@final
@attrs.frozen
class StoredObject:
    """An object's content and description, returned by :meth:`ObjectStore.get`.

    Attributes:
        info: the version's :class:`ObjectInfo`.
        body: its bytes.

    .. versionadded:: 0.1
    """

    info: ObjectInfo
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")


@final
@attrs.frozen
class ObjectListing:
    """One page of :meth:`ObjectStore.list`.

    Attributes:
        objects: the current versions of the keys on this page, in key order.
        next_token: pass it as ``token=`` to get the next page; None on the last page.

    .. versionadded:: 0.1
    """

    objects: tuple[ObjectInfo, ...]
    next_token: str | None = None

    @property
    def truncated(self) -> bool:
        """Whether more pages follow."""
        return self.next_token is not None
