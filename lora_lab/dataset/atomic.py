"""Atomic, durable file replacement for many files at once.

Each file is written to a temporary sibling, all of them are flushed to disk with one `os.sync()`
(per-file fsync makes a 10 000-caption edit take seconds), then each is renamed over its target
(atomic on POSIX and Windows) and the folders are synced. A reader sees the old bytes or the new
bytes, never a mix.
"""
from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

TMP_MARK = ".lora_lab-tmp-"


class WriteRefused(Exception):
    """A file we must not write (read-only, not a regular file); nothing was written."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def check_writable(path: Path, writable_dirs: dict[str, bool] | None = None) -> os.stat_result | None:
    """Refuse what a user would not expect us to overwrite; returns the file's lstat (None if new).

    The read-only bit is honoured even for root, who could write anyway."""
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise WriteRefused(path, "is a symlink; edit its target instead")
        if not stat.S_ISREG(st.st_mode):
            raise WriteRefused(path, "is not a regular file")
        if not st.st_mode & 0o222 or not os.access(path, os.W_OK):
            raise WriteRefused(path, "is read-only")
    folder = os.path.dirname(path) or "."
    cache = writable_dirs if writable_dirs is not None else {}
    if folder not in cache:
        cache[folder] = os.access(folder, os.W_OK)
    if not cache[folder]:
        raise WriteRefused(path, "its folder is not writable")
    return st


def _sync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_files(contents: dict[Path, bytes | None]) -> None:
    """Set every path to its bytes (None deletes it). Checks all paths before writing any."""
    dirs: dict[str, bool] = {}
    stats = {path: check_writable(path, dirs) for path in contents}
    umask_mode = _default_mode()
    temps: list[tuple[str, str]] = []
    try:
        for path, data in contents.items():
            if data is None:
                continue
            target = os.fspath(path)
            folder, name = os.path.split(target)
            # A fixed name: a leftover can only be ours from an interrupted run (its target is intact).
            tmp = os.path.join(folder, f".{name}{TMP_MARK}")
            with open(tmp, "wb") as f:
                f.write(data)
            st = stats[path]
            if st is not None and stat.S_IMODE(st.st_mode) != umask_mode:
                os.chmod(tmp, stat.S_IMODE(st.st_mode))
            temps.append((tmp, target))
        if temps:
            if hasattr(os, "sync"):
                os.sync()
            else:  # pragma: no cover - Windows
                for tmp, _ in temps:
                    with open(tmp, "rb+") as f:
                        os.fsync(f.fileno())
        for tmp, target in temps:
            os.replace(tmp, target)
        temps = []
        for path, data in contents.items():
            if data is None and stats[path] is not None:
                os.unlink(path)
    finally:
        for tmp, _ in temps:  # only left when something failed before the renames
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    for folder in dirs:
        _sync_dir(Path(folder))


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: Path, data: bytes) -> None:
    replace_files({Path(path): data})


def read_bytes_or_none(paths: Iterable[Path]) -> dict[Path, bytes | None]:
    out: dict[Path, bytes | None] = {}
    for path in paths:
        try:
            out[path] = path.read_bytes()
        except FileNotFoundError:
            out[path] = None
    return out
