"""Object-store events (the S3 notification model)."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .._events import Event

__all__ = ["ObjectCreated", "ObjectRemoved"]


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
