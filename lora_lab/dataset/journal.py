"""Undo/redo with exact bytes for every change LoRA Lab makes to a dataset's files.

Each operation is one pack file in `<dataset>/.lora_lab/journal/` holding the before and after bytes
of every file it touches; it is written (and synced) before any target file changes. `state.json`
lists the applied and undone operations. An operation whose pack exists but is in neither list was
interrupted mid-way and is rolled back when the journal is next opened. The last `limit` applied
operations can be undone.
"""
from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import check_writable, read_bytes_or_none, replace_files, write_atomic
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


@dataclass
class Operation:
    """Changes staged for one journalled operation; `Journal.operation` commits them."""
    name: str
    changes: dict[Path, bytes | None] = field(default_factory=dict)

    def write(self, path: Path, data: bytes | None) -> None:
        self.changes[Path(path)] = data


class Journal:
    def __init__(self, root: Path, limit: int = LIMIT) -> None:
        self.root = Path(root).resolve()
        self.dir = self.root / STATE_DIR / "journal"
        self.limit = limit
        self._recover()

    # state ---------------------------------------------------------------------------------
    def _state(self) -> dict[str, list[str]]:
        try:
            return json.loads((self.dir / "state.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"applied": [], "undone": []}

    def _save_state(self, state: dict[str, list[str]]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.dir / "state.json", json.dumps(state).encode("utf-8"))

    def _load(self, op_id: str) -> Entry:
        return _unpack((self.dir / f"{op_id}.op").read_bytes())

    def _recover(self) -> None:
        if not self.dir.is_dir():
            return
        state = self._state()
        known = set(state["applied"]) | set(state["undone"])
        for pack in sorted(self.dir.glob("*.op")):
            if pack.stem not in known:  # interrupted before it was recorded: put the old bytes back
                entry = _unpack(pack.read_bytes())
                replace_files({self.root / rel: before for rel, (before, _) in entry.files.items()})
                pack.unlink()

    # public --------------------------------------------------------------------------------
    def history(self) -> list[dict[str, object]]:
        """Applied operations, oldest first (the last one is what `undo` reverts)."""
        return [self._load(i).summary for i in self._state()["applied"]]

    def redoable(self) -> list[dict[str, object]]:
        return [self._load(i).summary for i in reversed(self._state()["undone"])]

    def commit(self, operation: Operation) -> Entry | None:
        """Apply the staged changes; files whose bytes would not change are left alone."""
        current = read_bytes_or_none(operation.changes)
        files: dict[str, tuple[bytes | None, bytes | None]] = {}
        root = os.fspath(self.root)
        for path, after in operation.changes.items():
            if current[path] == after:
                continue
            rel = os.path.relpath(os.path.abspath(path), root)
            if rel.startswith(".."):
                raise JournalError(f"{path} is outside the dataset {self.root}")
            files[rel] = (current[path], after)
        if not files:
            return None
        dirs: dict[str, bool] = {}
        for rel in files:  # refuse before the journal records anything
            check_writable(self.root / rel, dirs)
        entry = Entry(f"{time.time_ns():020d}", operation.name, time.time(), files)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.dir / f"{entry.id}.op", _pack(entry))
        replace_files({self.root / rel: after for rel, (_, after) in files.items()})
        state = self._state()
        for dropped in state["undone"]:
            (self.dir / f"{dropped}.op").unlink(missing_ok=True)
        state["undone"] = []
        state["applied"].append(entry.id)
        while len(state["applied"]) > self.limit:
            (self.dir / f"{state['applied'].pop(0)}.op").unlink(missing_ok=True)
        self._save_state(state)
        return entry

    @contextmanager
    def operation(self, name: str) -> Iterator[Operation]:
        op = Operation(name)
        yield op
        self.commit(op)

    def _move(self, source: str, target: str, use_after: bool, force: bool) -> Entry:
        state = self._state()
        if not state[source]:
            raise JournalError("nothing to undo" if source == "applied" else "nothing to redo")
        entry = self._load(state[source][-1])
        expected_now = {self.root / rel: (a if not use_after else b) for rel, (b, a) in entry.files.items()}
        if not force:
            now = read_bytes_or_none(expected_now)
            changed = [os.path.relpath(p, self.root) for p, data in expected_now.items() if now[p] != data]
            if changed:
                raise JournalError(
                    f"{len(changed)} file(s) changed outside LoRA Lab since '{entry.name}' "
                    f"(e.g. {changed[0]}); nothing was changed. Use force to overwrite them.")
        replace_files({self.root / rel: (a if use_after else b) for rel, (b, a) in entry.files.items()})
        state[source].pop()
        state[target].append(entry.id)
        self._save_state(state)
        return entry

    def undo(self, force: bool = False) -> Entry:
        return self._move("applied", "undone", use_after=False, force=force)

    def redo(self, force: bool = False) -> Entry:
        return self._move("undone", "applied", use_after=True, force=force)
