"""Undo/redo with exact bytes for every change LoRA Lab makes to a dataset's files.

Each operation is one pack file in `<dataset>/.lora_lab/journal/` holding the before and after bytes
of every file it touches; it is written (and synced) before any target file changes. `state.json`
lists the applied and undone operations and, while an undo or redo is under way, which one
(`moving`). After a crash, the next `Journal(root)` puts things back as they were:
- a pack newer than every listed one is a commit cut short: its files get their old bytes back
  (ids grow with time; an older unlisted pack was being dropped and is only deleted);
- a `moving` entry is an undo/redo cut short: its files get the bytes they had before it.
The last `limit` applied operations can be undone. Everything runs under a lock (threads and
processes), so the WebUI and the command line can work on the same dataset.
"""
from __future__ import annotations

import contextlib
import json
import os
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..files.atomic import (WriteRefused, WritesRefused, check_writable, read_bytes_or_none, replace_files,
                     temp_name, write_atomic)
from .images import STATE_DIR

LIMIT = 50
_HEADER = struct.Struct("<Q")


class JournalError(Exception):
    pass


@dataclass
class Entry:
    id: str
    name: str
    time: float
    files: dict[str, tuple[bytes | None, bytes | None]]  # relative path -> (before, after)

    @property
    def summary(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "time": self.time, "files": len(self.files)}


def _pack(entry: Entry) -> bytes:
    blobs: list[bytes] = []
    offset = 0
    index = []
    for rel, (before, after) in sorted(entry.files.items()):
        spans = []
        for data in (before, after):
            if data is None:
                spans.append(None)
            else:
                spans.append([offset, len(data)])
                blobs.append(data)
                offset += len(data)
        index.append([rel, spans[0], spans[1]])
    header = json.dumps({"id": entry.id, "name": entry.name, "time": entry.time, "files": index},
                        ensure_ascii=False).encode("utf-8")
    return _HEADER.pack(len(header)) + header + b"".join(blobs)


def _unpack(data: bytes) -> Entry:
    (n,) = _HEADER.unpack_from(data)
    header = json.loads(data[_HEADER.size: _HEADER.size + n].decode("utf-8"))
    base = _HEADER.size + n

    def span(s: list[int] | None) -> bytes | None:
        return None if s is None else data[base + s[0]: base + s[0] + s[1]]

    files = {rel: (span(b), span(a)) for rel, b, a in header["files"]}
    return Entry(header["id"], header["name"], header["time"], files)


_UNREAD = object()


@dataclass
class Operation:
    """Changes staged for one journalled operation; `Journal.operation` commits them."""
    name: str
    changes: dict[Path, bytes | None] = field(default_factory=dict)
    # bytes the caller has just read from each file, so the commit need not read them again
    known: dict[Path, bytes | None] = field(default_factory=dict)

    def write(self, path: Path, data: bytes | None, before: bytes | None | object = _UNREAD) -> None:
        """Stage `path` to become `data` (None: deleted). `before`: its current bytes (None: it
        does not exist), if the caller just read them."""
        path = path if isinstance(path, Path) else Path(path)
        self.changes[path] = data
        if before is not _UNREAD:
            self.known[path] = before  # type: ignore[assignment]


class _DatasetLock:
    """Re-entrant within a thread, exclusive across threads and processes (a lock file)."""

    _registry: dict[str, _DatasetLock] = {}
    _registry_lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self.thread_lock = threading.RLock()
        self.depth = 0
        self.fd: int | None = None

    @classmethod
    def for_dir(cls, folder: Path) -> _DatasetLock:
        with cls._registry_lock:
            key = os.path.normcase(os.fspath(folder))
            if key not in cls._registry:
                cls._registry[key] = cls(folder / "lock")
            return cls._registry[key]

    @contextmanager
    def held(self) -> Iterator[None]:
        with self.thread_lock:
            if self.depth == 0:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
                _lock_fd(self.fd)
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
                if self.depth == 0 and self.fd is not None:
                    os.close(self.fd)  # closing releases the lock
                    self.fd = None


def _lock_fd(fd: int) -> None:
    if os.name == "posix":
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
    else:  # pragma: no cover - Windows
        import msvcrt

        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # retries for ~10 s before raising
                return
            except OSError:
                continue


def _check_all(paths: dict[Path, bytes | None]) -> dict[Path, os.stat_result | None]:
    """check_writable for every path; raises WritesRefused listing all refusals."""
    dirs: dict[str, bool] = {}
    checked: dict[Path, os.stat_result | None] = {}
    refused: list[WriteRefused] = []
    for path in paths:
        try:
            checked[path] = check_writable(path, dirs)
        except WriteRefused as e:
            refused.append(e)
    if refused:
        raise WritesRefused(refused)
    return checked


class Journal:
    def __init__(self, root: Path, limit: int = LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"the journal keeps at least one operation, got limit={limit}")
        self.root = Path(root).resolve()
        self.dir = self.root / STATE_DIR / "journal"
        self.limit = limit
        self._lock = _DatasetLock.for_dir(self.dir)
        if self.dir.is_dir():
            with self._lock.held():
                self._recover()

    # state ---------------------------------------------------------------------------------
    def _state(self) -> dict:
        try:
            state = json.loads((self.dir / "state.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            state = {}
        state.setdefault("applied", [])
        state.setdefault("undone", [])
        state.setdefault("moving", None)
        return state

    def _save_state(self, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.dir / "state.json", json.dumps(state).encode("utf-8"))

    def _pack_path(self, op_id: str) -> Path:
        return self.dir / f"{op_id}.op"

    def _load(self, op_id: str) -> Entry:
        return _unpack(self._pack_path(op_id).read_bytes())

    def _summary(self, op_id: str) -> dict[str, object]:
        with open(self._pack_path(op_id), "rb") as f:  # the header only, not the saved bytes
            (n,) = _HEADER.unpack(f.read(_HEADER.size))
            header = json.loads(f.read(n).decode("utf-8"))
        return {"id": header["id"], "name": header["name"], "time": header["time"],
                "files": len(header["files"])}

    def _put(self, files: dict[Path, bytes | None], what: str) -> None:
        """Give files these bytes, writing only those that differ (a rollback after a failure at
        file 3 of 10 000 rewrites 2)."""
        now = read_bytes_or_none(files)
        differ = {path: data for path, data in files.items() if now[path] != data}
        try:
            replace_files(differ)
        except (OSError, WriteRefused) as e:
            raise JournalError(f"could not put back the files of {what}: {e}. Fix the cause and "
                               "open the dataset again; the journal keeps the bytes until then") from e
        for path in files:  # a crash mid-write can leave one temporary behind
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(os.path.dirname(path), temp_name(os.path.basename(path))))

    def _recover(self) -> None:
        state = self._state()
        moving = state["moving"]
        if moving:  # an undo/redo cut short: back to the bytes the files had before it
            op_id, direction = moving
            entry = self._load(op_id)
            self._put({self.root / rel: (a if direction == "undo" else b)
                       for rel, (b, a) in entry.files.items()},
                      f"the interrupted {direction} of '{entry.name}'")
            state["moving"] = None
            self._save_state(state)
        known = set(state["applied"]) | set(state["undone"])
        newest = max(known, default="")
        for pack in sorted(self.dir.glob("*.op")):
            if pack.stem in known:
                continue
            if pack.stem > newest:  # a commit cut short: put the old bytes back
                entry = _unpack(pack.read_bytes())
                self._put({self.root / rel: before for rel, (before, _) in entry.files.items()},
                          f"the interrupted operation '{entry.name}'")
            pack.unlink()  # older ones were dropped (limit, redo list) just before a crash

    def _relative(self, path: Path) -> str:
        s = os.fspath(path)
        prefix = os.fspath(self.root) + os.sep
        if s.startswith(prefix) and f"{os.sep}." not in s[len(prefix) - 1:]:
            return s[len(prefix):]  # the common case, without relpath's cost
        rel = os.path.relpath(os.path.abspath(s), self.root)
        if rel == os.curdir or rel.startswith(os.pardir) or os.path.isabs(rel):
            raise JournalError(f"{path} is outside the dataset {self.root}")
        return rel

    # public --------------------------------------------------------------------------------
    def history(self) -> list[dict[str, object]]:
        """Applied operations, oldest first (the last one is what `undo` reverts)."""
        if not self.dir.is_dir():
            return []
        with self._lock.held():
            return [self._summary(i) for i in self._state()["applied"]]

    def redoable(self) -> list[dict[str, object]]:
        """Undone operations, the next `redo` first."""
        if not self.dir.is_dir():
            return []
        with self._lock.held():
            return [self._summary(i) for i in reversed(self._state()["undone"])]

    def commit(self, operation: Operation) -> Entry | None:
        """Apply the staged changes; files whose bytes would not change are left alone.
        Raises WritesRefused (a WriteRefused listing every refusal; nothing written) if a file
        must not be written."""
        with self._lock.held():
            unread = [p for p in operation.changes if p not in operation.known]
            current = read_bytes_or_none(unread) if unread else {}
            current.update((p, b) for p, b in operation.known.items() if p in operation.changes)
            files: dict[str, tuple[bytes | None, bytes | None]] = {}
            targets: dict[Path, bytes | None] = {}
            for path, after in operation.changes.items():
                before = current[path]
                if before == after:
                    continue
                files[self._relative(path)] = (before, after)
                targets[path] = after
            if not files:
                return None
            checked = _check_all(targets)  # before anything is recorded or written
            state = self._state()
            newest = max(state["applied"] + state["undone"], default="0")
            op_id = f"{max(time.time_ns(), int(newest) + 1):020d}"  # newer than all, whatever the clock
            entry = Entry(op_id, operation.name, time.time(), files)
            self.dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self._pack_path(op_id), _pack(entry))
            try:
                replace_files(targets, checked, flush_first=False)  # the pack can undo a crash
            except BaseException:
                self._put({self.root / rel: before for rel, (before, _) in files.items()},
                          f"the failed operation '{operation.name}'")
                self._pack_path(op_id).unlink()
                raise
            applied = state["applied"] + [op_id]
            dropped = state["undone"] + applied[:-self.limit]
            state["applied"], state["undone"] = applied[-self.limit:], []
            self._save_state(state)
            for old_id in dropped:  # after the state: a crash here leaves only packs recovery deletes
                self._pack_path(old_id).unlink(missing_ok=True)
            return entry

    @contextmanager
    def operation(self, name: str) -> Iterator[Operation]:
        op = Operation(name)
        yield op
        self.commit(op)

    def _move(self, direction: str, force: bool) -> Entry:
        source, target = ("applied", "undone") if direction == "undo" else ("undone", "applied")
        if not self.dir.is_dir():
            raise JournalError(f"nothing to {direction}")
        with self._lock.held():
            state = self._state()
            if not state[source]:
                raise JournalError(f"nothing to {direction}")
            entry = self._load(state[source][-1])
            paths = {self.root / rel: rel for rel in entry.files}
            now = read_bytes_or_none(paths)
            if not force:
                expected = 1 if direction == "undo" else 0  # index in (before, after)
                changed = [rel for path, rel in paths.items() if now[path] != entry.files[rel][expected]]
                if changed:
                    raise JournalError(
                        f"{len(changed)} file(s) changed outside LoRA Lab since '{entry.name}' "
                        f"(e.g. {changed[0]}); nothing was changed. Use force to overwrite them.")
            wanted = 0 if direction == "undo" else 1
            new = {path: entry.files[rel][wanted] for path, rel in paths.items()}
            checked = _check_all(new)
            state["moving"] = [entry.id, direction]
            self._save_state(state)
            try:
                replace_files(new, checked, flush_first=False)  # `moving` can undo a crash
            except BaseException:
                self._put(now, f"the failed {direction} of '{entry.name}'")
                state["moving"] = None
                self._save_state(state)
                raise
            state[source].pop()
            state[target].append(entry.id)
            state["moving"] = None
            self._save_state(state)
            return entry

    def undo(self, force: bool = False) -> Entry:
        return self._move("undo", force)

    def redo(self, force: bool = False) -> Entry:
        return self._move("redo", force)
