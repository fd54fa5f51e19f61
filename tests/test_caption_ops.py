"""Batch caption edits: exact results, exact undo/redo, refusals that write nothing."""
from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from lora_lab.cli import main
from lora_lab.dataset import caption_ops as ops
from lora_lab.dataset.caption_edits import caption_stats, suggest_intrinsic, tag_frequency
from lora_lab.dataset.captions import CaptionSet, load_captions, parse_caption
from lora_lab.dataset.journal import Journal
from lora_lab.dataset.tag_filter import FilterSyntaxError, parse_filter, tag_filter

BOM = b"\xef\xbb\xbf"
DATASET: dict[str, bytes | None] = {
    "a.png": b"1girl, girl, smile, 1girl\n",
    "b.jpg": BOM + b"trig, A photo of a girl in a field. 1girl, long_hair\r\n",
    "c.webp": b"solo,  girl ,, hat",
    "d.png": None,
    "e.png": b"caf\xe9, girl",  # not UTF-8: never touched
    "f.png": b"ohwx ||| zeta, alpha, girl",
}
CAPTIONS = {Path(n).stem + ".txt": d for n, d in DATASET.items() if d is not None}


def make(root: Path, dataset: dict[str, bytes | None] = DATASET) -> Path:
    root.mkdir(exist_ok=True)
    for name, data in dataset.items():
        (root / name).write_bytes(b"")
        if data is not None:
            (root / name).with_suffix(".txt").write_bytes(data)
    return root


def captions_on_disk(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("*.txt"))}


def changed(**new: bytes) -> dict[str, bytes]:
    return {**CAPTIONS, **{f"{k}.txt": v for k, v in new.items()}}


OPS: list[tuple[str, Callable[[CaptionSet], ops.OpResult], dict[str, bytes]]] = [
    ("add end", lambda c: ops.add_tags(c, "new tag"), changed(
        a=b"1girl, girl, smile, 1girl, new tag\n",
        b=BOM + b"trig, A photo of a girl in a field. 1girl, long_hair, new tag\r\n",
        c=b"solo, girl, hat, new tag", d=b"new tag", f=b"ohwx ||| zeta, alpha, girl, new tag")),
    ("add start", lambda c: ops.add_tags(c, ["x", "smile"], at="start"), changed(
        a=b"x, 1girl, girl, smile, 1girl\n",
        b=BOM + b"x, smile, trig, A photo of a girl in a field. 1girl, long_hair\r\n",
        c=b"x, smile, solo, girl, hat", d=b"x, smile", f=b"x, smile, ohwx ||| zeta, alpha, girl")),
    ("trigger", lambda c: ops.set_trigger(c, "trig"), changed(
        a=b"trig, 1girl, girl, smile, 1girl\n", c=b"trig, solo, girl, hat", d=b"trig",
        f=b"trig, ohwx ||| zeta, alpha, girl")),
    ("remove", lambda c: ops.remove_tags(c, "girl"), changed(
        a=b"1girl, smile, 1girl\n", c=b"solo, hat", f=b"ohwx ||| zeta, alpha")),
    ("remove regex", lambda c: ops.remove_tags(c, [r"\d.*", "ha."], regex=True), changed(
        a=b"girl, smile\n", b=BOM + b"trig, A photo of a girl in a field. long_hair\r\n",
        c=b"solo, girl")),
    ("replace", lambda c: ops.replace_tag(c, "girl", "woman"), changed(
        a=b"1girl, woman, smile, 1girl\n", c=b"solo, woman, hat", f=b"ohwx ||| zeta, alpha, woman")),
    ("replace regex", lambda c: ops.replace_tag(c, r"^long_(\w+)", r"long \1", regex=True), changed(
        b=BOM + b"trig, A photo of a girl in a field. 1girl, long hair\r\n")),
    ("dedupe", lambda c: ops.dedupe_tags(c), changed(a=b"1girl, girl, smile\n")),
    ("sort", lambda c: ops.sort_tags(c, keep_tokens=1), changed(
        a=b"1girl, 1girl, girl, smile\n", f=b"ohwx ||| alpha, girl, zeta")),
    ("normalize", lambda c: ops.normalize(c), changed(c=b"solo, girl, hat")),
]


@pytest.mark.parametrize(("label", "op", "expected"), OPS, ids=[o[0] for o in OPS])
def test_batch_op_result_and_exact_undo_redo(tmp_path: Path, label: str,
                                             op: Callable[[CaptionSet], ops.OpResult],
                                             expected: dict[str, bytes]) -> None:
    root = make(tmp_path / "data")
    captions = load_captions(root)
    result = op(captions)
    assert captions_on_disk(root) == expected
    assert sorted(p.name for p in result.changed) == \
        sorted(n for n in expected if expected[n] != CAPTIONS.get(n))
    assert [p.path.name for p in result.problems] == ["e.txt"]
    assert result.journal_id is not None
    journal = Journal(root)
    assert [h["files"] for h in journal.history()] == [len(result.changes)]
    journal.undo()
    assert captions_on_disk(root) == CAPTIONS
    journal.redo()
    assert captions_on_disk(root) == expected


def test_trigger_is_idempotent(tmp_path: Path) -> None:
    root = make(tmp_path / "data")
    first = ops.add_tags(load_captions(root), [], first="trig")
    after = captions_on_disk(root)
    again = ops.add_tags(load_captions(root), [], first="trig")
    assert first.changes and not again.changes and again.journal_id is None
    assert captions_on_disk(root) == after
    assert all(data.lstrip(BOM).startswith(b"trig, ") or data == b"trig"
               for name, data in after.items() if name != "e.txt")
    assert len(Journal(root).history()) == 1


def test_trigger_moves_an_existing_trigger_to_the_front_once(tmp_path: Path) -> None:
    root = make(tmp_path / "data", {"a.png": b"1girl, Trig, solo, trig"})
    ops.set_trigger(load_captions(root), "trig")
    assert (root / "a.txt").read_bytes() == b"trig, 1girl, solo"


def test_replace_is_tag_aware(tmp_path: Path) -> None:
    root = make(tmp_path / "data", {"a.png": b"1girl, girl, girls, cat girl, Girl"})
    ops.replace_tag(load_captions(root), "girl", "woman")
    assert (root / "a.txt").read_bytes() == b"1girl, woman, girls, cat girl"


def test_replace_with_an_existing_tag_does_not_duplicate(tmp_path: Path) -> None:
    root = make(tmp_path / "data", {"a.png": b"woman, smile, girl"})
    ops.replace_tag(load_captions(root), "girl", "woman, adult")
    assert (root / "a.txt").read_bytes() == b"woman, smile, adult"


def test_bad_regex_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    root = make(tmp_path / "data")
    with pytest.raises(ValueError, match="invalid regular expression"):
        ops.replace_tag(load_captions(root), "(", "x", regex=True)
    with pytest.raises(ValueError, match="invalid replacement"):
        ops.replace_tag(load_captions(root), "a", r"\2", regex=True)
    assert captions_on_disk(root) == CAPTIONS


def test_filters_select_captions(tmp_path: Path) -> None:
    root = make(tmp_path / "data")
    result = ops.add_tags(load_captions(root), "x", where=parse_filter("1girl AND NOT hat"))
    assert sorted(p.name for p in result.changed) == ["a.txt", "b.txt"]
    assert result.not_selected == 3
    result = ops.remove_tags(load_captions(root), "x", where=tag_filter(["SMILE"], ["zeta"]))
    assert [p.name for p in result.changed] == ["a.txt"]


@pytest.mark.parametrize(("expr", "tags", "match"), [
    ("a AND b OR c", {"c"}, True),
    ("a AND (b OR c)", {"c"}, False),
    ("NOT a AND b", {"b"}, True),
    ("NOT (a OR b)", {"b"}, False),
    ("long hair AND NOT hat", {"long hair"}, True),
    ("Long_Hair", {"long hair"}, True),
    ('"ms. fortune (skullgirls)" OR x', {"ms. fortune (skullgirls)"}, True),
    ('"AND"', {"and"}, True),
])
def test_filter_expressions(expr: str, tags: set[str], match: bool) -> None:
    assert parse_filter(expr).matches(tags) is match


@pytest.mark.parametrize("expr", ["", "a AND", "(a OR b", "a )", 'a AND "b', "AND a"])
def test_filter_syntax_errors(expr: str) -> None:
    with pytest.raises(FilterSyntaxError):
        parse_filter(expr)


def test_stem_collision_refuses_the_whole_op(tmp_path: Path) -> None:
    root = make(tmp_path / "data", {"x.png": b"a", "x.jpg": None, "y.png": b"b"})
    preview = ops.add_tags(load_captions(root), "t", dry_run=True)
    assert [(p.path.name, "x.jpg and x.png" in p.reason) for p in preview.blocked] == [("x.txt", True)]
    with pytest.raises(ops.OpRefused, match="nothing was written") as err:
        ops.add_tags(load_captions(root), "t")
    assert "rename one image" in str(err.value)
    assert captions_on_disk(root) == {"x.txt": b"a", "y.txt": b"b"}
    assert Journal(root).history() == []


def test_read_only_caption_refuses_the_whole_op(tmp_path: Path) -> None:
    root = make(tmp_path / "data")
    (root / "c.txt").chmod(stat.S_IRUSR)
    captions = load_captions(root)
    assert [p.reason for p in ops.add_tags(captions, "t", dry_run=True).blocked] == ["is read-only"]
    with pytest.raises(ops.OpRefused, match="c.txt: is read-only"):
        ops.add_tags(captions, "t")
    assert captions_on_disk(root) == CAPTIONS
    assert Journal(root).history() == []
    ops.add_tags(captions, "t", where=parse_filter("NOT hat"))  # the read-only file is not touched
    assert (root / "c.txt").read_bytes() == CAPTIONS["c.txt"]


def test_dry_run_writes_nothing_and_shows_changes(tmp_path: Path) -> None:
    root = make(tmp_path / "data")
    result = ops.replace_tag(load_captions(root), "girl", "woman", dry_run=True)
    assert captions_on_disk(root) == CAPTIONS and result.journal_id is None
    change = {c.path.name: c for c in result.changes}["a.txt"]
    assert (change.before, change.after) == ("1girl, girl, smile, 1girl", "1girl, woman, smile, 1girl")


def test_caption_set_follows_its_own_edits(tmp_path: Path) -> None:
    root = make(tmp_path / "data")
    captions = load_captions(root)
    ops.add_tags(captions, "x")
    again = ops.add_tags(captions, "x")
    assert again.changes == []
    ops.remove_tags(captions, "x")
    assert captions_on_disk(root) == {**CAPTIONS, "c.txt": b"solo, girl, hat", "d.txt": b""}
    assert len(Journal(root).history()) == 2


def test_frequency_table_and_prune(tmp_path: Path) -> None:
    root = make(tmp_path / "data", {
        "1.png": b"ohwx, 1girl, red hair, smile", "2.png": b"ohwx, 1girl, red_hair",
        "3.png": b"ohwx, 1girl, hat",
        "4.png": b"ohwx, solo, 1girl", "5.png": None})
    captions = load_captions(root)
    table = {c.tag: (c.count, [p.name for p in c.images]) for c in tag_frequency(captions.files)}
    assert table["1girl"] == (4, ["1.png", "2.png", "3.png", "4.png"])
    assert table["red hair"] == (2, ["1.png", "2.png"])  # one tag, two spellings
    suggested = [c.tag for c in suggest_intrinsic(captions.files, 0.5)]
    assert suggested == ["1girl", "red hair"]  # the trigger (in every caption) is not suggested
    assert [c.tag for c in suggest_intrinsic(captions.files, 0.75)] == ["1girl"]
    stats = caption_stats(captions.files)
    assert (stats.images, stats.captioned, stats.trigger) == (5, 4, "ohwx")
    ops.prune_tags(captions, ["1girl"])
    assert captions_on_disk(root)["4.txt"] == b"ohwx, solo"
    assert Journal(root).history()[-1]["name"] == "prune 1girl"


def test_sort_by_frequency_keeps_the_head(tmp_path: Path) -> None:
    root = make(tmp_path / "data", {"1.png": b"t, b, a, c", "2.png": b"t, c", "3.png": b"t, c, a"})
    ops.sort_tags(load_captions(root), keep_tokens=1, by="frequency")
    assert (root / "1.txt").read_bytes() == b"t, c, a, b"


def test_single_caption_edit_is_journalled_and_keeps_the_format(tmp_path: Path) -> None:
    root = make(tmp_path / "data")
    result = ops.edit_caption(root, root / "b.jpg", "trig, woman\n")
    assert (root / "b.txt").read_bytes() == BOM + b"trig, woman\r\n"
    assert result.journal_id and result.changes[0].after == "trig, woman"
    ops.edit_caption(root, root / "d.png", parse_caption("A dog sits on a sofa. dog"))
    assert (root / "d.txt").read_bytes() == b"A dog sits on a sofa. dog"
    journal = Journal(root)
    journal.undo()
    journal.undo()
    assert captions_on_disk(root) == CAPTIONS
    with pytest.raises(ops.OpRefused, match="UTF-8"):
        ops.edit_caption(root, root / "e.png", "fixed")
    assert (root / "e.txt").read_bytes() == CAPTIONS["e.txt"]


def test_cli_edit_stats_undo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make(tmp_path / "data")
    assert main(["captions", str(root), "add", "--trigger", "trig", "--with", "girl"]) == 1  # e.txt untouched
    out = capsys.readouterr()
    assert "changed 3" in out.out and "e.txt" in out.err
    assert main(["captions", str(root), "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["trigger"] == "trig" and stats["problems"][0]["path"].endswith("e.txt")
    assert {"tag": "girl", "count": 3} == {k: v for k, v in stats["tags"][1].items() if k in ("tag", "count")}
    assert main(["captions", str(root), "history"]) == 0
    assert "trigger trig  (3 file(s))" in capsys.readouterr().out
    assert main(["captions", str(root), "undo"]) == 0
    assert captions_on_disk(root) == CAPTIONS
    assert main(["captions", str(root), "undo"]) == 2
    assert "nothing to undo" in capsys.readouterr().err


def test_cli_refusals_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make(tmp_path / "data", {"x.png": b"a", "x.jpg": None})
    assert main(["captions", str(root), "remove", "a"]) == 2
    assert "rename one image" in capsys.readouterr().err
    assert main(["captions", str(root), "stats", "--where", "a AND"]) == 2
    assert "filter" in capsys.readouterr().err
    assert main(["captions", str(tmp_path / "missing"), "stats"]) == 2
    assert main(["captions", str(root), "add"]) == 2
    assert (root / "x.txt").read_bytes() == b"a"


def test_a_caption_edited_elsewhere_since_loading_is_not_overwritten(tmp_path: Path) -> None:
    root = make(tmp_path / "data")
    captions = load_captions(root)
    (root / "a.txt").write_bytes(b"edited in another program")
    with pytest.raises(ops.OpRefused, match="a.txt: changed on disk"):
        ops.add_tags(captions, "x")
    assert captions_on_disk(root) == {**CAPTIONS, "a.txt": b"edited in another program"}
    assert ops.add_tags(load_captions(root), "x").journal_id is not None
