"""Files under a store's root reached one folder at a time, following no link (internal).

Every operation of the disk backend opens the root, then each folder on the
way with ``O_NOFOLLOW | O_DIRECTORY`` relative to the folder before it
(``openat``), and finally works on the last name relative to the last
folder. A folder swapped for a symbolic link at any moment -- even after the
store opened, even between two operations -- makes the open fail instead of
leading outside the root, so nothing outside it is read, written, renamed or
unlinked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Final, TypeAlias

from ._object_keys import TEMP_PREFIX, InvalidObjectKey

__all__ = ["Dirs", "open_dirs", "open_file", "read_file", "replace_file", "write_file"]

Body: TypeAlias = bytes | IO[bytes]
CHUNK: Final = 1 << 20

_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | _CLOEXEC
_CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC


class Dirs:
    """The open folders from the root down to one folder (closes them all on exit)."""

    __slots__ = ("fds", "names")

    def __init__(self) -> None:
        self.fds: list[int] = []
        self.names: list[str] = []

    @property
    def fd(self) -> int:
        """The deepest folder."""
        return self.fds[-1]

    def close(self) -> None:
        while self.fds:
            os.close(self.fds.pop())

    def prune(self) -> None:
        """Remove the folders below the root that are left empty, deepest first."""
        for depth in range(len(self.names), 0, -1):
            try:
                os.rmdir(self.names[depth - 1], dir_fd=self.fds[depth - 1])
            except OSError:
                return


def _refuse(parent: int, name: str, shown: str, key: str) -> InvalidObjectKey:
    try:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except OSError:
        return InvalidObjectKey(f"key {key!r:.80}: {shown} changed while being opened")
    if stat.S_ISLNK(info.st_mode):
        return InvalidObjectKey(
            f"key {key!r:.80}: {shown} is a symbolic link; the disk store follows no links, "
            "so that every read and write stays under its root"
        )
    return InvalidObjectKey(
        f"key {key!r:.80}: {shown} is an object, so it cannot also be a folder on disk; "
        "the disk backend maps '/' to folders"
    )


def _mkdir(parent: int, name: str, mode: int) -> None:
    try:
        os.mkdir(name, mode, dir_fd=parent)
    except FileExistsError:
        return
    fd = os.open(name, DIR_FLAGS, dir_fd=parent)
    try:
        os.fchmod(fd, mode)  # exactly *mode*, whatever the umask
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_dirs(
    root: Path, parts: Sequence[str], *, key: str, create_mode: int | None = None
) -> Iterator[Dirs]:
    """Open *root* and then each folder of *parts* below it, following no link.

    Args:
        root: the store's root (absolute, resolved when the store was made).
        parts: the folder names below the root, outermost first.
        key: the object key, for error messages.
        create_mode: create missing folders with this mode; ``None``
            raises ``FileNotFoundError`` for a missing one instead.

    Raises:
        InvalidObjectKey: a folder on the way is a symbolic link or a file.
        FileNotFoundError: a folder is missing and *create_mode* is None.
    """
    dirs = Dirs()
    try:
        try:
            dirs.fds.append(os.open(root, DIR_FLAGS))
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise InvalidObjectKey(
                    f"the store's root {str(root)!r} is no longer a folder (a symbolic link or "
                    "a file replaced it); nothing is read or written through it"
                ) from None
            raise
        for depth, name in enumerate(parts):
            parent = dirs.fd
            try:
                fd = os.open(name, DIR_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                if create_mode is None:
                    raise
                _mkdir(parent, name, create_mode)
                try:
                    fd = os.open(name, DIR_FLAGS, dir_fd=parent)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise _refuse(parent, name, "/".join(parts[: depth + 1]), key) from None
                    raise
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _refuse(parent, name, "/".join(parts[: depth + 1]), key) from None
                raise
            dirs.fds.append(fd)
            dirs.names.append(name)
        yield dirs
    finally:
        dirs.close()


def open_file(parent: int, name: str, key: str) -> int:
    """Open the file *name* in folder *parent* for reading, refusing a link or a folder.

    Raises:
        InvalidObjectKey: it is a symbolic link or a folder.
        FileNotFoundError: it does not exist.
    """
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=parent)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidObjectKey(
                f"key {key!r:.80} is a symbolic link on disk; not read"
            ) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidObjectKey(f"key {key!r:.80} is not a regular file on disk; not read")
    return fd


def read_file(parent: int, name: str, key: str) -> bytes:
    """The bytes of file *name* in folder *parent* (no link followed)."""
    fd = open_file(parent, name, key)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def write_file(parent: int, name: str, body: Body, mode: int, digest: object = None) -> int:
    """Write *body* to a temporary file in *parent*, fsync it and rename it over *name*.

    Args:
        digest: a hash object updated with the bytes written, or None.

    Returns:
        The number of bytes written.
    """
    temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    size = 0
    update = getattr(digest, "update", None)
    fd = os.open(temp, _CREATE_FLAGS, mode, dir_fd=parent)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)  # exactly *mode*, whatever the umask
            if isinstance(body, bytes):
                out.write(body)
                if update is not None:
                    update(body)
                size = len(body)
            else:
                while chunk := body.read(CHUNK):
                    out.write(chunk)
                    if update is not None:
                        update(chunk)
                    size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=parent)
        raise
    fsync_dir(parent)
    return size


def replace_file(source_parent: int, source: str, parent: int, name: str, mode: int) -> None:
    """Make *name* in *parent* show the bytes of *source* (a hard link, else a copy)."""
    temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    try:
        os.link(source, temp, src_dir_fd=source_parent, dst_dir_fd=parent, follow_symlinks=False)
    except OSError:  # no hard links here: copy instead
        fd = open_file(source_parent, source, name)
        with os.fdopen(fd, "rb") as f:
            write_file(parent, name, f, mode)
        return
    try:
        os.replace(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=parent)
        raise
    fsync_dir(parent)


def fsync_dir(fd: int) -> None:
    with contextlib.suppress(OSError):  # not every file system syncs folders
        os.fsync(fd)


def lstat(parent: int, name: str) -> os.stat_result | None:
    """``lstat`` of *name* in *parent*, or None when it does not exist."""
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None
