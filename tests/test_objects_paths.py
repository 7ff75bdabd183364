"""ObjectStore on disk: a folder swapped for a symbolic link never leads outside the root."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import Bus
from eventbus.sources.objects import InvalidObjectKey, ObjectNotFound, ObjectStore

OPERATIONS = ["get", "head", "delete", "put", "copy", "list", "reopen"]


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every entry under *folder*: its mode and, for files, a digest of the content."""
    out: dict[str, tuple[int, str]] = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[str(path.relative_to(folder))] = (info.st_mode, digest)
    return out


def plant_outside(outside: Path, key: str) -> None:
    """Files outside the root at the paths the key would reach through a swapped folder."""
    parts = key.split("/")
    for cut in range(len(parts)):
        target = outside.joinpath(*parts[cut:])
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.write_bytes(b"outside: must never be read, written or removed")


def swap_for_link(root: Path, folder: str, outside: Path) -> None:
    """Replace folder *folder* under *root* by a symbolic link to *outside*."""
    shutil.rmtree(root / folder)
    (root / folder).symlink_to(outside, target_is_directory=True)


async def attempt(store: ObjectStore, operation: str, key: str) -> bytes | None:
    """Run *operation* on *key*; return bytes read, if any. Refusals are fine."""
    try:
        if operation == "get":
            return (await store.get(key)).body
        if operation == "head":
            await store.head(key)
        elif operation == "delete":
            await store.delete(key)
        elif operation == "put":
            await store.put(key, b"new content")
        elif operation == "copy":
            await store.copy(key, "elsewhere/copy")
            return (await store.get("elsewhere/copy")).body
        elif operation == "list":
            await store.list()
        elif operation == "reopen":
            async with Bus() as bus:
                again = ObjectStore(bus, "b", root=store.root)
                for info in (await again.list()).objects:
                    body = (await again.get(info.key)).body
                    if body.startswith(b"outside"):
                        return body
    except (InvalidObjectKey, ObjectNotFound):
        return None
    return None


async def swapped_scenario(base: Path, key: str, depth: int, operation: str) -> None:
    root, outside = base / "root", base / "outside"
    outside.mkdir()
    plant_outside(outside, key)
    before = snapshot(outside)
    async with Bus() as bus:
        store = ObjectStore(bus, "b", root=root)
        await store.put(key, b"inside")
        swap_for_link(root, "/".join(key.split("/")[:depth]), outside)
        body = await attempt(store, operation, key)
    assert body is None or not body.startswith(b"outside"), f"{operation} read outside the root"
    assert snapshot(outside) == before, f"{operation} changed something outside the root"


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("depth", [1, 2])
async def test_a_swapped_folder_leads_nowhere(tmp_path: Path, operation: str, depth: int) -> None:
    """After a folder on a key's path becomes a link outside, nothing outside is touched."""
    await swapped_scenario(tmp_path, "a/b/c.txt", depth, operation)


async def test_get_through_a_swapped_folder_is_refused(tmp_path: Path) -> None:
    """get() names the symbolic link instead of reading through it."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "x").write_bytes(b"secret")
    async with Bus() as bus:
        store = ObjectStore(bus, "b", root=root)
        await store.put("a/x", b"inside")
        swap_for_link(root, "a", outside)
        with pytest.raises(InvalidObjectKey, match="symbolic link"):
            await store.get("a/x")


async def test_delete_through_a_swapped_folder_removes_nothing_outside(tmp_path: Path) -> None:
    """delete() refuses the link; the outside file with the same name survives."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "x").write_bytes(b"keep me")
    async with Bus() as bus:
        store = ObjectStore(bus, "b", root=root)
        await store.put("a/x", b"inside")
        swap_for_link(root, "a", outside)
        with pytest.raises(InvalidObjectKey, match="symbolic link"):
            await store.delete("a/x")
    assert (outside / "x").read_bytes() == b"keep me"


async def test_a_swapped_metadata_folder_is_refused(tmp_path: Path) -> None:
    """The sidecar folder swapped for a link is not written through either."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    async with Bus() as bus:
        store = ObjectStore(bus, "b", root=root, versioning=True)
        await store.put("k", b"v1")
        swap_for_link(root, ".eventbus", outside)
        with pytest.raises(InvalidObjectKey, match="symbolic link"):
            await store.put("k", b"v2")
        with pytest.raises(InvalidObjectKey, match="symbolic link"):
            await store.get("k", version_id=(await store.head("k")).version_id or "")
    assert list(outside.iterdir()) == []


async def test_a_final_name_swapped_for_a_link_is_not_read(tmp_path: Path) -> None:
    """An object file replaced by a link to a file outside is refused on read."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    async with Bus() as bus:
        store = ObjectStore(bus, "b", root=root)
        await store.put("a/x", b"inside")
        (root / "a" / "x").unlink()
        (root / "a" / "x").symlink_to(outside / "secret")
        with pytest.raises(InvalidObjectKey, match="symbolic link"):
            await store.get("a/x")


SEGMENTS = st.text(
    alphabet=st.characters(whitelist_categories=("Ll", "Nd"), whitelist_characters="._-é"),
    min_size=1,
    max_size=8,
).filter(lambda s: s not in (".", "..") and not s.startswith(".~eventbus-"))


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(SEGMENTS, min_size=2, max_size=4),
    cut=st.integers(min_value=1, max_value=3),
    operation=st.sampled_from(OPERATIONS),
)
def test_any_key_shape_stays_inside(parts: list[str], cut: int, operation: str) -> None:
    """Whatever the key and whichever folder on its path is swapped, nothing outside changes."""
    key = "/".join(parts)
    depth = min(cut, len(parts) - 1)
    with tempfile.TemporaryDirectory() as folder:
        anyio.run(swapped_scenario, Path(folder), key, depth, operation)


# -- file modes -------------------------------------------------------------------------------


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


async def test_files_and_folders_are_private_by_default(tmp_path: Path) -> None:
    """A new root, its folders, objects and sidecars are 0700 and 0600."""
    root = tmp_path / "new" / "root"
    async with Bus() as bus:
        store = ObjectStore(bus, "b", root=root, versioning=True)
        await store.put("a/b/c.txt", b"x")
    assert mode_of(root) == 0o700
    for path in root.rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        assert mode_of(path) == expected, path


async def test_a_mode_the_user_passes_is_used(tmp_path: Path) -> None:
    """mode=0o644 gives files 0o644 and folders 0o755, whatever the umask."""
    root = tmp_path / "root"
    old = os.umask(0o077)
    try:
        async with Bus() as bus:
            store = ObjectStore(bus, "b", root=root, mode=0o644)
            await store.put("a/c.txt", b"x")
    finally:
        os.umask(old)
    assert mode_of(root / "a") == 0o755
    assert mode_of(root / "a" / "c.txt") == 0o644


async def test_an_existing_root_keeps_its_mode(tmp_path: Path) -> None:
    """A root folder the user made is not re-permissioned."""
    root = tmp_path / "root"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    async with Bus() as bus:
        store = ObjectStore(bus, "b", root=root)
        await store.put("x", b"x")
    assert mode_of(root) == 0o755
    assert mode_of(root / "x") == 0o600


@pytest.mark.parametrize("mode", [-1, 0o1000, "0600", 6.0, True])
def test_an_invalid_mode_is_refused(mode: object) -> None:
    """mode must be permission bits (an int from 0 to 0o777)."""
    with pytest.raises((TypeError, ValueError), match=r"mode=\.\.\."):
        ObjectStore(Bus(), "b", mode=mode)  # type: ignore[arg-type]
