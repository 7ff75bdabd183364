"""Object events for a directory that other programs write: :class:`ObjectWatcher`."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Final, final

import anyio
import anyio.abc
import anyio.to_thread

from .._bus import Bus
from .._events import Event
from ._common import Sequencer, check_bus, check_name
from ._object_backends import CHUNK, guess_type, md5
from ._object_keys import META_DIR, key_for_path

__all__ = ["ObjectWatcher"]

logger = logging.getLogger("eventbus")

_INSTALL: Final = (
    "ObjectStore.watch() needs the optional 'watchfiles' package; "
    "install it with: pip install 'eventbus[watch]'"
)


def _import_watchfiles() -> Any:
    """The ``watchfiles`` module, imported only when a watcher is made (an optional extra)."""
    try:
        return importlib.import_module("watchfiles")
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc


def _fingerprint(path: Path) -> tuple[int, str] | None:
    """Size and MD5 of a regular file, or None when it is gone, a link or unreadable."""
    try:
        if path.is_symlink() or not path.is_file():
            return None
        digest = md5()
        size = 0
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("object watcher: cannot read %s: %s", path, exc)
        return None
    return size, str(digest.hexdigest())


@final
class ObjectWatcher:
    """Publishes :class:`~eventbus.ObjectCreated` / :class:`~eventbus.ObjectRemoved` for a directory.

    Made by :meth:`ObjectStore.watch`. Each file under *directory* is an
    object whose key is its relative path with ``/`` separators (files
    whose paths are not valid keys, links, and ``.eventbus`` are left out).
    When a file appears or its content changes, an ``ObjectCreated``
    (``reason="Put"``, ``size``, ``etag`` = MD5, ``content_type`` guessed
    from the extension, ``sequencer``) is published; when it disappears, an
    ``ObjectRemoved`` (``reason="Delete"``). Changes are collected for
    *debounce* seconds and compared with the last content seen, so a file
    written in several steps gives one event, and touching a file without
    changing it gives none. ``source`` is ``eventbus.objects/<bucket>``.

    Run it as an async context manager, which returns once the directory is
    being watched::

        async with ObjectStore.watch(bus, "inbox", "incoming/"):
            ...

    or in your own task group: ``await tg.start(watcher.run)``.

    Args:
        bus: the bus to publish on.
        bucket: the bucket name the events carry.
        directory: the directory to watch (it must exist).
        debounce: seconds to gather changes before publishing them.
        emit_existing: also publish ``ObjectCreated`` for the files present at start.
        force_polling: poll instead of using the OS's notifications (for
            network file systems); None lets ``watchfiles`` decide.

    Raises:
        ImportError: ``watchfiles`` is not installed (``pip install 'eventbus[watch]'``).
        TypeError, ValueError: an argument is invalid, or *directory* is not a directory.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        bus: Bus,
        bucket: str,
        directory: str | os.PathLike[str],
        *,
        debounce: float = 0.2,
        emit_existing: bool = False,
        force_polling: bool | None = None,
    ) -> None:
        self._watchfiles = _import_watchfiles()
        self._bus = check_bus("ObjectStore.watch", bus)
        self._bucket = check_name("ObjectStore.watch", "bucket", bucket)
        if not isinstance(directory, str | os.PathLike):
            raise TypeError(f"watch(directory=...) must be a path, got {type(directory).__name__}")
        self._root = Path(directory).resolve()
        if not self._root.is_dir():
            raise ValueError(f"watch(directory={str(directory)!r}): no such directory")
        if isinstance(debounce, bool) or not isinstance(debounce, int | float) or debounce < 0:
            raise ValueError(f"watch(debounce=...) must be seconds >= 0, got {debounce!r}")
        self._debounce_ms = max(1, round(debounce * 1000))
        self._emit_existing = bool(emit_existing)
        self._force_polling = force_polling
        self._known: dict[str, str] = {}
        self._sequencer = Sequencer()
        self._stop = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None

    @property
    def source(self) -> str:
        """The ``source`` of the events: ``eventbus.objects/<bucket>``."""
        return f"eventbus.objects/{self._bucket}"

    @property
    def directory(self) -> Path:
        """The watched directory (absolute)."""
        return self._root

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Watch until :meth:`stop` or cancellation; report ``started`` once watching.

        Raises:
            BusClosed: the bus closed while there were changes to publish.
        """
        changes = self._watchfiles.awatch(
            self._root,
            watch_filter=None,
            debounce=self._debounce_ms,
            step=min(50, self._debounce_ms),
            stop_event=self._stop,
            rust_timeout=250,
            yield_on_timeout=True,
            force_polling=self._force_polling,
        )
        started = False
        async for batch in changes:
            if not started:
                # The OS watch exists before the first batch (or timeout) is
                # yielded: from here on no change is missed.
                events = await anyio.to_thread.run_sync(self._snapshot)
                task_status.started()
                started = True
            else:
                paths = {Path(p) for _, p in batch}
                if not paths:
                    continue
                events = await anyio.to_thread.run_sync(self._reconcile, paths)
            for event in events:
                await self._bus.publish(event)

    def stop(self) -> None:
        """Ask :meth:`run` to return (after the batch it is publishing, if any)."""
        self._stop.set()

    async def __aenter__(self) -> ObjectWatcher:
        if self._tg is not None:
            raise RuntimeError(
                "this watcher is already running; make a new one with ObjectStore.watch()"
            )
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            await tg.start(self.run)
        except BaseException as exc:
            tg.cancel_scope.cancel()
            await tg.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg = self._tg
        if tg is None:  # pragma: no cover - __aenter__ failed
            return None
        self.stop()
        tg.cancel_scope.cancel()
        return await tg.__aexit__(exc_type, exc, tb)

    # -- the directory's state ---------------------------------------------------------

    def _files(self, top: Path) -> Iterable[tuple[str, Path]]:
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            if here == self._root and META_DIR in dirnames:
                dirnames.remove(META_DIR)
            for name in filenames:
                path = here / name
                key = key_for_path(self._root, path)
                if key is not None:
                    yield key, path

    def _snapshot(self) -> list[Event]:
        events: list[Event] = []
        for key, path in sorted(self._files(self._root)):
            seen = _fingerprint(path)
            if seen is None:
                continue
            self._known[key] = seen[1]
            if self._emit_existing:
                events.append(self._created(key, *seen))
        return events

    def _reconcile(self, paths: set[Path]) -> list[Event]:
        candidates: set[str] = set()
        for path in paths:
            try:
                relative = "/".join(path.relative_to(self._root).parts)
            except ValueError:
                continue
            candidates.update(
                k for k in self._known if k == relative or k.startswith(relative + "/")
            )
            if path.is_dir() and not path.is_symlink():
                candidates.update(k for k, _ in self._files(path))
            else:
                key = key_for_path(self._root, path)
                if key is not None:
                    candidates.add(key)
        events: list[Event] = []
        for key in sorted(candidates):
            seen = _fingerprint(self._root.joinpath(*key.split("/")))
            if seen is None:
                if self._known.pop(key, None) is not None:
                    events.append(self._removed(key))
            elif self._known.get(key) != seen[1]:
                self._known[key] = seen[1]
                events.append(self._created(key, *seen))
        return events

    def _created(self, key: str, size: int, etag: str) -> Event:
        from .objects import ObjectCreated

        return ObjectCreated(
            self._bucket,
            key,
            size,
            etag,
            content_type=guess_type(key),
            sequencer=self._sequencer.next(),
            reason="Put",
            source=self.source,
            time=self._bus.clock.wall(),
        )

    def _removed(self, key: str) -> Event:
        from .objects import ObjectRemoved

        return ObjectRemoved(
            self._bucket,
            key,
            sequencer=self._sequencer.next(),
            reason="Delete",
            source=self.source,
            time=self._bus.clock.wall(),
        )

    def __repr__(self) -> str:
        return f"<ObjectWatcher {self._bucket!r} on {str(self._root)!r}>"
