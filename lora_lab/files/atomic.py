"""Atomic, durable file replacement for many files at once.

Each file is written to a temporary sibling, the temporaries are flushed to disk, then each is
renamed over its target (atomic on POSIX and Windows) and the folders are synced. A reader sees
the old bytes or the new bytes, never a mix. A few files are flushed with one fsync each; a batch
with one `os.sync()` (per-file fsync makes a 10 000-caption edit take seconds). The journal, which
can restore the old bytes after a crash, renames as it goes and flushes once at the end.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

TMP_MARK = ".lora_lab-tmp-"
FSYNC_EACH_UP_TO = 8  # beyond this many files one os.sync() is cheaper than an fsync per file


class WriteRefused(Exception):
    """A file we must not write (read-only, not a regular file); nothing was written."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class WritesRefused(WriteRefused):
    """Several files refused at once; `path`/`reason` are the first's, `refused` lists them all."""

    def __init__(self, refused: list[WriteRefused]) -> None:
        super().__init__(refused[0].path, refused[0].reason)
        self.refused = refused
        if len(refused) > 1:
            self.args = (f"{refused[0]} (and {len(refused) - 1} more file(s) refused)",)


def check_writable(path: str | os.PathLike[str],
                   writable_dirs: dict[str, bool] | None = None) -> os.stat_result | None:
    """Refuse what a user would not expect us to overwrite; returns the file's lstat (None if new).

    The read-only bit is honoured even for root, who could write anyway."""
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise WriteRefused(Path(path), "is a symlink; edit its target instead")
        if not stat.S_ISREG(st.st_mode):
            raise WriteRefused(Path(path), "is not a regular file")
        if not st.st_mode & 0o222 or not os.access(path, os.W_OK):
            raise WriteRefused(Path(path), "is read-only")
    folder = os.path.dirname(path) or "."
    cache = writable_dirs if writable_dirs is not None else {}
    if folder not in cache:
        cache[folder] = os.path.isdir(folder) and os.access(folder, os.W_OK)
    if not cache[folder]:
        raise WriteRefused(Path(path), "its folder is missing or not writable")
    return st


def _sync_dir(folder: str) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_files(contents: dict[Path, bytes | None],
                  checked: dict[Path, os.stat_result | None] | None = None,
                  flush_first: bool = True) -> None:
    """Set every path to its bytes (None deletes it). Checks all paths before writing any.

    `checked`: each path's `check_writable` result, when the caller has just done the checks.
    `flush_first=False`: rename each file as soon as it is written and flush everything once at
    the end (faster). Only for callers that can put the old bytes back after a crash (the
    journal); a reader still never sees a partly written file."""
    dirs: dict[str, bool] = {}
    if checked is None:
        checked = {path: check_writable(path, dirs) for path in contents}
    else:
        for path in contents:
            dirs.setdefault(os.path.dirname(path) or ".", True)
    umask_mode = _default_mode()
    temps: list[tuple[str, str]] = []
    written: list[str] = []
    join, split, chmod, rename = os.path.join, os.path.split, os.chmod, os.replace
    try:
        for path, data in contents.items():
            if data is None:
                continue
            target = os.fspath(path)
            folder, name = split(target)
            tmp = join(folder, temp_name(name))
            with open(tmp, "wb") as f:
                f.write(data)
            st = checked[path]
            if st is not None and stat.S_IMODE(st.st_mode) != umask_mode:
                chmod(tmp, stat.S_IMODE(st.st_mode))
            if flush_first:
                temps.append((tmp, target))
            else:
                rename(tmp, target)
                written.append(target)
        if flush_first:
            _flush([tmp for tmp, _ in temps])
            for tmp, target in temps:
                rename(tmp, target)
            temps = []
        for path, data in contents.items():
            if data is None and checked[path] is not None:
                os.unlink(path)
    finally:
        for tmp, _ in temps:  # only left when something failed before the renames
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    if written:
        _flush(written)
    for folder in dirs:
        _sync_dir(folder)


def temp_name(name: str) -> str:
    """The temporary sibling's name for a file called `name`.

    A fixed name: a leftover can only be ours from an interrupted run (its target is intact).
    Long names are shortened with a hash so the temporary stays within the 255-byte limit."""
    if len(name.encode("utf-8", "surrogateescape")) > 200:
        digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        name = f"{name[:60]}-{digest}"
    return f".{name}{TMP_MARK}"


def _flush(paths: list[str]) -> None:
    if not paths:
        return
    if len(paths) > FSYNC_EACH_UP_TO and hasattr(os, "sync"):
        os.sync()
        return
    for path in paths:
        with open(path, "rb+") as f:
            os.fsync(f.fileno())


@functools.cache
def _default_mode() -> int:
    # read once: os.umask can only be read by setting it, which races with other threads
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: Path, data: bytes) -> None:
    replace_files({Path(path): data})


def read_bytes_or_none(paths: Iterable[Path]) -> dict[Path, bytes | None]:
    out: dict[Path, bytes | None] = {}
    for path in paths:
        try:
            with open(path, "rb") as f:
                out[path] = f.read()
        except FileNotFoundError:
            out[path] = None
    return out
