"""Object keys: validation, and the safe mapping of a key to a path under a root directory."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from .._exceptions import InvalidObjectKey

__all__ = [
    "META_DIR",
    "InvalidObjectKey",
    "check_key",
    "is_temp_name",
    "key_for_path",
    "path_for_key",
]

#: The folder, directly under a disk store's root, that holds sidecars and old versions.
META_DIR: Final = ".eventbus"
#: Temporary files of atomic writes start with this (and are never objects).
TEMP_PREFIX: Final = ".~eventbus-"
MAX_KEY_BYTES: Final = 1024
MAX_SEGMENT_BYTES: Final = 255

_DRIVE: Final = re.compile(r"[A-Za-z]:")
_FIX: Final = (
    "object keys are relative paths such as 'photos/2024/cat.jpg': non-empty "
    "'/'-separated segments, none of them '.' or '..'"
)


def check_key(key: object, *, what: str = "key") -> str:
    """Return *key* if it is a valid object key.

    A key is a non-empty string of at most 1024 UTF-8 bytes. So that every
    key maps to a file inside a disk store's root, it must also be a
    relative, normalised, ``/``-separated path: no leading ``/``, no empty,
    ``.`` or ``..`` segment, no backslash, no NUL or other control
    character, no drive letter (``C:``), no segment over 255 bytes, and
    the first segment is not ``.eventbus`` (reserved for sidecars). Both
    backends apply the same rules, so code moves between them unchanged.

    Raises:
        TypeError: *key* is not a string.
        InvalidObjectKey: it breaks one of the rules (the message says which).
    """
    if not isinstance(key, str):
        raise TypeError(f"{what} must be a string, got {type(key).__name__}")
    if not key:
        raise InvalidObjectKey(f"{what} is empty; {_FIX}")
    shown = repr(key)[:80]
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidObjectKey(
            f"{what} {shown} is not valid Unicode text (lone surrogates); {_FIX}"
        ) from None
    if size > MAX_KEY_BYTES:
        raise InvalidObjectKey(f"{what} {shown} is {size} bytes; the limit is {MAX_KEY_BYTES}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise InvalidObjectKey(f"{what} {shown} contains a NUL or control character; {_FIX}")
    if "\\" in key:
        raise InvalidObjectKey(f"{what} {shown} contains a backslash; use '/' between segments")
    if key.startswith("/"):
        raise InvalidObjectKey(f"{what} {shown} is an absolute path; drop the leading '/'")
    segments = key.split("/")
    if _DRIVE.match(segments[0]):
        raise InvalidObjectKey(f"{what} {shown} starts with a drive letter; {_FIX}")
    for segment in segments:
        if segment in ("", ".", ".."):
            label = "an empty" if not segment else f"a {segment!r}"
            raise InvalidObjectKey(f"{what} {shown} has {label} segment; {_FIX}")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidObjectKey(
                f"{what} {shown} has a segment over {MAX_SEGMENT_BYTES} bytes, "
                "longer than a file name may be"
            )
        if segment.startswith(TEMP_PREFIX):
            raise InvalidObjectKey(
                f"{what} {shown}: segments starting with {TEMP_PREFIX!r} are reserved "
                "for temporary files"
            )
    if segments[0] == META_DIR:
        raise InvalidObjectKey(
            f"{what} {shown}: the top-level folder {META_DIR!r} is reserved for the "
            "store's own records; choose another prefix"
        )
    return key


def path_for_key(root: Path, key: str) -> Path:
    """The path of *key* (already checked) under *root*; never outside it.

    Raises:
        InvalidObjectKey: the path would resolve outside *root* (defence in
            depth: :func:`check_key` already refuses such keys).
    """
    path = root.joinpath(*key.split("/"))
    if os.path.commonpath([root, path]) != str(root):
        raise InvalidObjectKey(f"key {key!r:.80} would leave the store's root directory")
    return path


def key_for_path(root: Path, path: Path) -> str | None:
    """The object key of *path* under *root*, or None if it is no object's path."""
    try:
        relative = path.relative_to(root)
    except ValueError:
        return None
    key = "/".join(relative.parts)
    try:
        return check_key(key)
    except InvalidObjectKey:
        return None


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of the stores' temporary files."""
    return name.startswith(TEMP_PREFIX)
