"""Checks of an object store's arguments, so that bad input fails before anything is written."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import IO, Final

__all__ = ["check_body", "check_content_type", "check_limit", "check_metadata"]

_META_KEY: Final = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_MEDIA_TYPE: Final = re.compile(r"[\w.+\-]+/[\w.+\-]+(\s*;.*)?", re.ASCII)


def _printable(text: str) -> bool:
    return not any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def check_body(body: object) -> bytes | IO[bytes]:
    """Bytes as ``bytes``; a readable binary file as itself.

    Raises:
        TypeError: text, or anything else that is not bytes or a binary file.
    """
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        raise TypeError("put() takes bytes, not str; encode text first, e.g. body.encode('utf-8')")
    read = getattr(body, "read", None)
    if callable(read):
        if isinstance(getattr(body, "encoding", None), str):
            raise TypeError("put() takes a binary file, not a text file; open it with mode 'rb'")
        return body  # type: ignore[return-value]
    raise TypeError(
        f"put() takes bytes or a binary file-like object (with .read()), got {type(body).__name__}"
    )


def check_content_type(content_type: object) -> str | None:
    """A media type such as ``image/png`` (parameters allowed), or None.

    Raises:
        TypeError, ValueError: it is not a string of that form.
    """
    if content_type is None:
        return None
    if not isinstance(content_type, str):
        raise TypeError(f"content_type must be a string, got {type(content_type).__name__}")
    if not _MEDIA_TYPE.fullmatch(content_type) or not _printable(content_type):
        raise ValueError(
            f"content_type {content_type!r:.80} is not a media type such as 'image/png' "
            "or 'text/plain; charset=utf-8'"
        )
    return content_type


def check_metadata(metadata: object) -> dict[str, str]:
    """User metadata as a new dict with lower-cased keys.

    Raises:
        TypeError: not a mapping of strings to strings.
        ValueError: a key is not 1-128 letters, digits, ``_ - .``, a value has
            control characters, or two keys differ only in case.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping of str to str, got {type(metadata).__name__}")
    out: dict[str, str] = {}
    for name, value in metadata.items():
        if not isinstance(name, str) or not _META_KEY.fullmatch(name):
            raise ValueError(
                f"metadata key {name!r:.60} must be 1-128 letters, digits, '_', '-' or '.'"
            )
        if not isinstance(value, str):
            raise TypeError(
                f"metadata[{name!r}] must be a string, got {type(value).__name__}; "
                "convert numbers and dates to text"
            )
        if not _printable(value):
            raise ValueError(f"metadata[{name!r}] contains a control character")
        lower = name.lower()
        if lower in out:
            raise ValueError(f"metadata keys are case-insensitive; {name!r} is given twice")
        out[lower] = value
    return out


def check_limit(limit: object) -> None:
    """A page size: None or an int >= 1.

    Raises:
        ValueError: anything else.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be an int >= 1 or None, got {limit!r}")
