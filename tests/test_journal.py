"""The undo journal: exact bytes back, refusals before any write, recovery after a crash."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from lora_lab.files.atomic import TMP_MARK, WriteRefused, WritesRefused, replace_files, temp_name
from lora_lab.dataset.journal import LIMIT, Journal, JournalError, Operation

ROOT = Path(__file__).resolve().parents[1]


def files_in(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file()}


def test_undo_redo_restore_exact_bytes_including_created_and_deleted(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_bytes(b"\xef\xbb\xbfold\r\n")
    (tmp_path / "gone.txt").write_bytes(b"bye")
    before = files_in(tmp_path)
    journal = Journal(tmp_path)
    with journal.operation("edit") as op:
        op.write(tmp_path / "keep.txt", b"new")
        op.write(tmp_path / "gone.txt", None)
        op.write(tmp_path / "born.txt", b"hello")
    after = files_in(tmp_path)
    assert after == {"keep.txt": b"new", "born.txt": b"hello"}
    assert [h["name"] for h in journal.history()] == ["edit"]
    journal.undo()
    assert files_in(tmp_path) == before
    assert [h["name"] for h in Journal(tmp_path).redoable()] == ["edit"]
    Journal(tmp_path).redo()
    assert files_in(tmp_path) == after
    with pytest.raises(JournalError, match="nothing to redo"):
        journal.redo()


def test_only_changed_files_are_recorded(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"same")
    journal = Journal(tmp_path)
    assert journal.commit(Operation("noop", {tmp_path / "a.txt": b"same"})) is None
    assert journal.history() == []
    entry = journal.commit(Operation("one", {tmp_path / "a.txt": b"same", tmp_path / "b.txt": b"b"}))
    assert entry is not None and list(entry.files) == ["b.txt"]


def test_known_before_bytes_are_what_undo_restores(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"old")
    op = Operation("edit")
    op.write(tmp_path / "a.txt", b"new", before=b"old")
    Journal(tmp_path).commit(op)
    Journal(tmp_path).undo()
    assert (tmp_path / "a.txt").read_bytes() == b"old"


def test_a_new_operation_drops_the_redo_list(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    for i in range(2):
        journal.commit(Operation(f"op{i}", {tmp_path / "a.txt": str(i).encode()}))
    journal.undo()
    journal.commit(Operation("other", {tmp_path / "a.txt": b"x"}))
    assert journal.redoable() == []
    assert [h["name"] for h in journal.history()] == ["op0", "other"]


def test_only_the_last_limit_operations_are_kept(tmp_path: Path) -> None:
    assert LIMIT == 50
    journal = Journal(tmp_path, limit=3)
    for i in range(5):
        journal.commit(Operation(f"op{i}", {tmp_path / "a.txt": str(i).encode()}))
    assert [h["name"] for h in journal.history()] == ["op2", "op3", "op4"]
    assert len(list(journal.dir.glob("*.op"))) == 3
    for _ in range(3):
        journal.undo()
    assert (tmp_path / "a.txt").read_bytes() == b"1"
    with pytest.raises(JournalError, match="nothing to undo"):
        journal.undo()


def test_undo_refused_when_a_file_changed_outside(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.commit(Operation("edit", {tmp_path / "a.txt": b"ours", tmp_path / "b.txt": b"ours"}))
    (tmp_path / "b.txt").write_bytes(b"someone else")
    with pytest.raises(JournalError, match="changed outside LoRA Lab"):
        journal.undo()
    assert (tmp_path / "a.txt").read_bytes() == b"ours"
    assert (tmp_path / "b.txt").read_bytes() == b"someone else"
    journal.undo(force=True)
    assert not (tmp_path / "a.txt").exists() and not (tmp_path / "b.txt").exists()


def test_read_only_and_symlinked_files_are_refused_before_any_write(tmp_path: Path) -> None:
    for name in ("a.txt", "ro.txt", "target.txt"):
        (tmp_path / name).write_bytes(b"old")
    (tmp_path / "ro.txt").chmod(stat.S_IRUSR)
    (tmp_path / "link.txt").symlink_to(tmp_path / "target.txt")
    journal = Journal(tmp_path)
    op = Operation("edit", {tmp_path / n: b"new" for n in ("a.txt", "ro.txt", "link.txt")})
    with pytest.raises(WritesRefused) as err:
        journal.commit(op)
    assert isinstance(err.value, WriteRefused)
    assert {(r.path.name, r.reason) for r in err.value.refused} == {
        ("ro.txt", "is read-only"), ("link.txt", "is a symlink; edit its target instead")}
    assert {n: (tmp_path / n).read_bytes() for n in ("a.txt", "ro.txt", "target.txt")} == \
        {"a.txt": b"old", "ro.txt": b"old", "target.txt": b"old"}
    assert journal.history() == []


def test_undo_of_a_file_made_read_only_is_refused_whole(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.commit(Operation("edit", {tmp_path / "a.txt": b"a", tmp_path / "b.txt": b"b"}))
    (tmp_path / "b.txt").chmod(stat.S_IRUSR)
    with pytest.raises(WritesRefused, match="b.txt: is read-only"):
        journal.undo()
    assert files_in(tmp_path) == {"a.txt": b"a", "b.txt": b"b"}
    assert len(journal.history()) == 1


def test_files_outside_the_dataset_are_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(JournalError, match="outside the dataset"):
        Journal(tmp_path / "data").commit(Operation("x", {tmp_path / "elsewhere.txt": b"x"}))
    assert not (tmp_path / "elsewhere.txt").exists()


def test_a_failure_mid_write_puts_every_file_back(tmp_path: Path) -> None:
    names = ["a.txt", "b.txt", "c.txt"]
    for name in names:
        (tmp_path / name).write_bytes(b"old " + name.encode())
    (tmp_path / temp_name("b.txt")).mkdir()  # something in the way of b's temporary file
    journal = Journal(tmp_path)
    with pytest.raises(IsADirectoryError):
        journal.commit(Operation("edit", {tmp_path / n: b"new" for n in names}))
    assert {n: (tmp_path / n).read_bytes() for n in names} == {n: b"old " + n.encode() for n in names}
    assert journal.history() == [] and list(journal.dir.glob("*.op")) == []


CRASH = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from lora_lab.dataset.journal import Journal, Operation
    root = Path({data!r})
    real_replace, renames = os.replace, []
    def replace(src, dst):  # the power goes out after two caption files were renamed
        if str(dst).endswith(".txt"):
            renames.append(dst)
            if len(renames) == 3:
                os._exit(9)
        real_replace(src, dst)
    journal = Journal(root)
    if {undo!r}:
        os.replace = replace
        journal.undo()
    else:
        os.replace = replace
        journal.commit(Operation("edit", {{root / f"{{i}}.txt": b"new" for i in range(5)}}))
""")


def _crash(data: Path, undo: bool) -> None:
    script = CRASH.format(root=str(ROOT), data=str(data), undo=undo)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr


def test_a_commit_cut_short_by_a_crash_is_rolled_back_on_next_open(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"{i}.txt").write_bytes(f"old {i}".encode())
    _crash(tmp_path, undo=False)
    assert sum((tmp_path / f"{i}.txt").read_bytes() == b"new" for i in range(5)) == 2
    journal = Journal(tmp_path)
    assert [(tmp_path / f"{i}.txt").read_bytes() for i in range(5)] == [f"old {i}".encode() for i in range(5)]
    assert journal.history() == []
    assert not any(TMP_MARK in p.name for p in tmp_path.iterdir())


def test_an_undo_cut_short_by_a_crash_is_rolled_back_on_next_open(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"{i}.txt").write_bytes(f"old {i}".encode())
    Journal(tmp_path).commit(Operation("edit", {tmp_path / f"{i}.txt": b"new" for i in range(5)}))
    _crash(tmp_path, undo=True)
    journal = Journal(tmp_path)
    assert all((tmp_path / f"{i}.txt").read_bytes() == b"new" for i in range(5))
    assert [h["name"] for h in journal.history()] == ["edit"]
    journal.undo()
    assert all((tmp_path / f"{i}.txt").read_bytes() == f"old {i}".encode() for i in range(5))


def test_a_pack_dropped_just_before_a_crash_is_deleted_not_replayed(tmp_path: Path) -> None:
    journal = Journal(tmp_path, limit=2)
    first = journal.commit(Operation("op0", {tmp_path / "a.txt": b"0"}))
    journal.commit(Operation("op1", {tmp_path / "a.txt": b"1"}))
    assert first is not None
    saved = journal.dir / f"{first.id}.op"
    pack = saved.read_bytes()
    journal.commit(Operation("op2", {tmp_path / "a.txt": b"2"}))  # drops op0's pack
    saved.write_bytes(pack)  # as if the crash came between saving the state and deleting it
    reopened = Journal(tmp_path, limit=2)
    assert (tmp_path / "a.txt").read_bytes() == b"2"
    assert not saved.exists()
    assert [h["name"] for h in reopened.history()] == ["op1", "op2"]


def test_concurrent_operations_are_serialised(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for i in range(5):
                Journal(tmp_path).commit(Operation(f"{name}{i}", {tmp_path / f"{name}.txt": str(i).encode()}))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    journal = Journal(tmp_path)
    assert len(journal.history()) == 10
    for _ in range(10):
        journal.undo()
    assert not (tmp_path / "a.txt").exists() and not (tmp_path / "b.txt").exists()


def test_replace_files_keeps_permissions_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"old")
    target.chmod(0o640)
    long_name = tmp_path / ("x" * 250 + ".txt")
    replace_files({target: b"new", long_name: b"long"})
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert long_name.read_bytes() == b"long"
    assert sorted(os.listdir(tmp_path)) == sorted([target.name, long_name.name])
