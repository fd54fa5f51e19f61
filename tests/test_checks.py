"""The dataset check on a generated corpus with every kind of problem a user's folder has."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lora_lab.cli import main
from lora_lab.dataset.checks import check_dataset
from lora_lab.host.progress import InterruptEvent, RecordingProgress


def picture(seed: int, width: int, height: int) -> Image.Image:
    """A smooth random picture: distinct per seed, stable under resizing and recompression."""
    grid = np.random.default_rng(seed).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC)


def save(im: Image.Image, path: Path, caption: str | None = "ohwx, smile", **kwargs) -> Path:
    im.save(path, **kwargs)
    if caption is not None:
        path.with_suffix(".txt").write_text(caption, encoding="utf-8")
    return path


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    save(picture(1, 640, 512), d / "a.jpg", quality=92)
    save(picture(2, 512, 768), d / "b.png")
    shutil.copyfile(d / "a.jpg", d / "c_copy.jpg")  # exact duplicate
    (d / "c_copy.txt").write_text("ohwx", encoding="utf-8")
    # near duplicate: b shrunk and recompressed as JPEG
    save(picture(2, 512, 768).resize((358, 538), Image.Resampling.LANCZOS), d / "d_near.jpg", quality=70)
    save(picture(5, 200, 300), d / "e_small.jpg")
    data = (d / "b.png").read_bytes()
    save_bytes = d / "f_truncated.png"
    save_bytes.write_bytes(data[: len(data) // 2])
    (d / "f_truncated.txt").write_text("x", encoding="utf-8")
    (d / "g_text.jpg").write_text("this is not an image", encoding="utf-8")
    save(picture(8, 512, 512), d / "h_nocap.jpg", caption=None)
    save(picture(9, 512, 512), d / "i_emptycap.jpg", caption="  , \n")
    save(picture(10, 512, 512), d / "j.png")
    save(picture(11, 512, 512), d / "j.jpg")  # shares j.txt with j.png
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    save(picture(12, 768, 512), d / "k_rotated.jpg", exif=exif)
    return d


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def by_kind(report, kind: str) -> dict[str, str]:
    return {i.path.name: i.message for i in report.issues if i.kind == kind}


def test_every_problem_is_found_with_its_reason(corpus: Path) -> None:
    before = fingerprint(corpus)
    report = check_dataset(corpus, resolution=512)

    assert report.files_seen == 12
    assert set(by_kind(report, "unreadable")) == {"f_truncated.png", "g_text.jpg"}
    assert "not an image" in by_kind(report, "unreadable")["g_text.jpg"]
    assert "truncated" in by_kind(report, "unreadable")["f_truncated.png"] \
        or "corrupt" in by_kind(report, "unreadable")["f_truncated.png"]

    exact = [i for i in report.issues if i.kind == "exact_duplicate"]
    assert [(i.path.name, i.related.name) for i in exact] == [("c_copy.jpg", "a.jpg")]
    near = [i for i in report.issues if i.kind == "near_duplicate"]
    assert [(i.path.name, i.related.name) for i in near] == [("d_near.jpg", "b.png")]

    small = by_kind(report, "too_small")
    assert set(small) == {"e_small.jpg"}
    assert "shorter side 200 px is below 256" in small["e_small.jpg"]
    assert "under a quarter of 512×512" in small["e_small.jpg"]

    assert set(by_kind(report, "missing_caption")) == {"h_nocap.jpg"}
    assert set(by_kind(report, "empty_caption")) == {"i_emptycap.jpg"}
    collisions = [i for i in report.issues if i.kind == "caption_collision"]
    assert [(i.path.name, i.related.name) for i in collisions] == [("j.png", "j.jpg")]
    assert report.has_errors

    assert fingerprint(corpus) == before  # reads only


def test_buckets_follow_the_image_shape_after_exif_rotation(corpus: Path) -> None:
    report = check_dataset(corpus, resolution=512)
    entries = {e.path.name: e for e in report.images}
    assert entries["a.jpg"].bucket == (576, 448)
    assert entries["b.png"].bucket == (384, 640)
    assert (entries["k_rotated.jpg"].width, entries["k_rotated.jpg"].height) == (512, 768)
    assert entries["k_rotated.jpg"].bucket == (384, 640)
    assert entries["e_small.jpg"].scale > 1.5
    histogram = report.buckets
    assert sum(histogram.values()) == len(report.images) == 10
    assert histogram[(512, 512)] == 4


def test_a_resized_copy_of_a_rotated_photo_is_still_a_near_duplicate(tmp_path: Path) -> None:
    upright = picture(3, 512, 768)
    save(upright, tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 8
    # stored turned a quarter, with EXIF saying how to turn it back
    save(upright.transpose(Image.Transpose.ROTATE_270).resize((600, 400)), tmp_path / "phone.jpg",
         exif=exif, quality=80)
    report = check_dataset(tmp_path)
    assert [(i.path.name, i.related.name) for i in report.issues if i.kind == "near_duplicate"] \
        == [("upright.png", "phone.jpg")]


def test_clean_dataset_has_no_issues_and_distinct_images_are_not_near_duplicates(tmp_path: Path) -> None:
    for seed in range(40):
        save(picture(100 + seed, 512 + 64 * (seed % 3), 512), tmp_path / f"img{seed:02}.jpg")
    report = check_dataset(tmp_path, resolution=512)
    assert report.issues == []
    assert not report.has_errors


def test_recursive_and_caption_extension(tmp_path: Path) -> None:
    save(picture(1, 512, 512), tmp_path / "top.png", caption=None)
    (tmp_path / "top.caption").write_text("ohwx", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    save(picture(2, 512, 512), tmp_path / "sub" / "inner.png", caption=None)
    flat = check_dataset(tmp_path, caption_ext=".caption")
    assert [e.path.name for e in flat.images] == ["top.png"] and flat.issues == []
    deep = check_dataset(tmp_path, recursive=True, caption_ext=".caption")
    assert sorted(e.path.name for e in deep.images) == ["inner.png", "top.png"]
    assert by_kind(deep, "missing_caption") == {"inner.png": "no caption file inner.caption"}


def test_progress_and_interrupt(corpus: Path) -> None:
    progress = RecordingProgress()
    check_dataset(corpus, progress=progress)
    assert progress.total == 12 and progress.step == 12 and not progress.active

    stop = InterruptEvent()
    stop.set()
    report = check_dataset(corpus, interrupt=stop)
    assert report.interrupted
    assert len(report.images) < 10


def test_report_serialises(corpus: Path) -> None:
    data = json.loads(json.dumps(check_dataset(corpus).to_dict()))
    assert data["counts"]["exact_duplicate"] == 1
    assert {"width": 512, "height": 512, "count": 4} in data["buckets"]
    assert all(set(i) == {"kind", "path", "message", "related", "error"} for i in data["issues"])


def test_check_command(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(corpus), "--json"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["counts"]["near_duplicate"] == 1

    clean = tmp_path / "clean"
    clean.mkdir()
    save(picture(1, 512, 512), clean / "one.png")
    assert main(["check", str(clean)]) == 0
    assert "issues: none" in capsys.readouterr().out
    save(picture(2, 512, 512), clean / "two.png", caption=None)
    assert main(["check", str(clean)]) == 1
    assert main(["check", str(tmp_path / "missing")]) == 2


def test_flat_pictures_that_merely_share_a_layout_are_not_near_duplicates(tmp_path: Path) -> None:
    """Any two flat images hash alike in dHash (no brightness steps); colour and shape tell them apart."""
    from PIL import ImageDraw

    def flat(name: str, colour: str, shape: str, size: int = 256) -> Image.Image:
        im = Image.new("RGB", (size, size), "white")
        draw = ImageDraw.Draw(im)
        box = (size // 4, size // 4, 3 * size // 4, 3 * size // 4)
        (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=colour)
        im.save(tmp_path / name)
        return im

    circle = flat("red_circle.png", "red", "circle")
    flat("green_square.png", "green", "square")
    flat("red_square.png", "red", "square")
    flat("blue_circle.png", "blue", "circle")
    Image.new("RGB", (300, 200), "navy").save(tmp_path / "navy.png")
    Image.new("RGB", (300, 200), "orange").save(tmp_path / "orange.png")
    circle.resize((180, 180), Image.Resampling.LANCZOS).save(tmp_path / "red_circle_small.jpg", quality=70)
    report = check_dataset(tmp_path, resolution=512)
    near = sorted((i.path.name, i.related.name) for i in report.issues if i.kind == "near_duplicate")
    assert near == [("red_circle_small.jpg", "red_circle.png")]


def test_every_image_file_is_counted_jfif_included_and_an_undecodable_one_is_named(tmp_path: Path) -> None:
    Image.new("RGB", (300, 300), "red").save(tmp_path / "a.png")
    Image.new("RGB", (300, 300), "green").save(tmp_path / "b.jfif", format="JPEG")
    (tmp_path / "c.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40)
    report = check_dataset(tmp_path, resolution=256)
    assert (report.to_dict()["files_seen"], report.to_dict()["readable"]) == (3, 2)
    assert [(i.path.name, i.kind) for i in report.issues if i.kind == "unreadable"] == [("c.heic", "unreadable")]
