"""Building kohya N_name folders without ever touching the originals, and reading them back."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from lora_lab.cli import main
from lora_lab.dataset.layout import (GroupSpec, build_layout, parse_repeat_folder, read_groups,
                                     split_groups)


@pytest.mark.parametrize(("name", "parsed"), [
    ("10_ohwx", (10, "ohwx")),
    ("3_ohwx woman", (3, "ohwx woman")),
    ("5_a_b", (5, "a_b")),
    ("10", (10, "")),
    ("007_x", (7, "x")),
    ("0_ohwx", None),
    ("ohwx", None),
    ("x_10", None),
    ("10x_y", None),
    ("-1_x", None),
    ("1.5_x", None),
])
def test_parse_repeat_folder(name: str, parsed: tuple[int, str] | None) -> None:
    assert parse_repeat_folder(name) == parsed


def make_source(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (64, 64), (i * 40, 10, 200)).save(folder / f"img{i}.png")
        if i != n - 1:  # the last one has no caption
            (folder / f"img{i}.txt").write_text(f"ohwx, pose {i}", encoding="utf-8")
    return folder


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.iterdir())}


def test_link_layout_with_primary_and_supporting_groups(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    before = snapshot(source)
    groups = split_groups(source, "ohwx", 10, supporting=["img3.png"], supporting_repeats=3)
    assert [(g.folder_name, len(g.images)) for g in groups] == [("10_ohwx", 3), ("3_ohwx", 1)]

    result = build_layout(tmp_path / "train", groups)
    assert result.applied and not result.conflicts
    primary, supporting = tmp_path / "train" / "10_ohwx", tmp_path / "train" / "3_ohwx"
    assert sorted(p.name for p in primary.iterdir()) == [
        "img0.png", "img0.txt", "img1.png", "img1.txt", "img2.png", "img2.txt"]
    assert sorted(p.name for p in supporting.iterdir()) == ["img3.png"]
    # images are hard links; captions are copies, so editing one never edits the original
    assert os.path.samefile(primary / "img0.png", source / "img0.png")
    assert not os.path.samefile(primary / "img0.txt", source / "img0.txt")
    assert (primary / "img0.txt").read_bytes() == (source / "img0.txt").read_bytes()
    assert (result.count("link"), result.count("copy")) == (4, 3)
    assert snapshot(source) == before  # nothing moved, renamed or changed

    (primary / "img0.txt").write_text("edited", encoding="utf-8")
    assert (source / "img0.txt").read_text(encoding="utf-8") == "ohwx, pose 0"


def test_copy_mode_and_rerun_is_a_no_op(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    groups = split_groups(source, "ohwx woman", 20)
    first = build_layout(tmp_path / "train", groups, mode="copy")
    copied = tmp_path / "train" / "20_ohwx woman" / "img1.png"
    assert not os.path.samefile(copied, source / "img1.png")
    assert copied.read_bytes() == (source / "img1.png").read_bytes()
    assert first.count("copy") == 7

    again = build_layout(tmp_path / "train", groups, mode="copy")
    assert again.applied and again.count("present") == 7 and again.count("copy") == 0


def test_a_different_existing_file_stops_everything(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    folder = tmp_path / "train" / "10_ohwx"
    folder.mkdir(parents=True)
    (folder / "img2.txt").write_text("someone's own caption", encoding="utf-8")

    result = build_layout(tmp_path / "train", split_groups(source, "ohwx", 10))
    assert not result.applied
    assert [(c.dest.name, "different file" in c.reason) for c in result.conflicts] == [("img2.txt", True)]
    assert sorted(p.name for p in folder.iterdir()) == ["img2.txt"]  # nothing else written
    assert (folder / "img2.txt").read_text(encoding="utf-8") == "someone's own caption"
    assert "Nothing written" in result.text()


def test_two_sources_with_one_name_conflict(tmp_path: Path) -> None:
    a = make_source(tmp_path / "a", 1)
    b = make_source(tmp_path / "b", 1)
    groups = [GroupSpec("ohwx", 5, (a / "img0.png", b / "img0.png"))]
    result = build_layout(tmp_path / "train", groups)
    assert not result.applied and not (tmp_path / "train").exists()
    assert {c.dest.name for c in result.conflicts} == {"img0.png"}


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    result = build_layout(tmp_path / "train", split_groups(source, "ohwx", 10), dry_run=True)
    assert not result.applied and not (tmp_path / "train").exists()
    assert result.count("link") == 4 and "Would build" in result.text()


def test_cross_device_link_falls_back_to_copy(tmp_path: Path) -> None:
    if not os.access("/dev/shm", os.W_OK) or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second filesystem (/dev/shm)")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        source = make_source(Path(other) / "src", 2)
        result = build_layout(tmp_path / "train", split_groups(source, "ohwx", 10))
        assert result.applied and result.count("link") == 0 and result.count("copy") == 3
        assert (tmp_path / "train" / "10_ohwx" / "img0.png").read_bytes() \
            == (source / "img0.png").read_bytes()


def test_unknown_supporting_image_is_refused(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        split_groups(source, "ohwx", 10, supporting=["nope.png"])
    with pytest.raises(ValueError, match="repeats"):
        split_groups(source, "ohwx", 0)[0].folder_name


def test_read_groups_round_trip(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    build_layout(tmp_path / "train", split_groups(source, "ohwx woman", 10, ["img3.png"], 2))
    (tmp_path / "train" / "log").mkdir()
    scan = read_groups(tmp_path / "train")
    assert [(g.repeats, g.name, [p.name for p in g.images]) for g in scan.groups] == [
        (10, "ohwx woman", ["img0.png", "img1.png", "img2.png"]), (2, "ohwx woman", ["img3.png"])]
    assert [p.name for p in scan.ignored] == ["log"]


def test_layout_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make_source(tmp_path / "src")
    (source / "extra").mkdir()
    Image.new("RGB", (64, 64)).save(source / "extra" / "side.png")
    args = ["layout", str(source), str(tmp_path / "train"), "--name", "ohwx", "--repeats", "12",
            "--supporting", "extra", "--supporting-repeats", "2", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["applied"] and [Path(f).name for f in out["folders"]] == ["12_ohwx", "2_ohwx"]
    (tmp_path / "train" / "12_ohwx" / "img0.png").unlink()
    (tmp_path / "train" / "12_ohwx" / "img0.png").write_bytes(b"other")
    assert main(args[:-1]) == 3
    assert "Nothing written" in capsys.readouterr().out
