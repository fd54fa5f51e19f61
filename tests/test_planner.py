"""Steps arithmetic as sd-scripts counts it, and the advice a plan gets."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from lora_lab.cli import main
from lora_lab.dataset.planner import GroupCount, plan

ONE = [GroupCount("ohwx", 10, 20)]


@pytest.mark.parametrize(("groups", "batch", "accum", "epochs", "per_epoch", "batches", "steps", "total"), [
    (ONE, 1, 1, 10, 200, 200, 200, 2000),
    (ONE, 2, 1, 10, 200, 100, 100, 1000),
    (ONE, 3, 1, 10, 200, 67, 67, 670),  # the last batch is partial
    (ONE, 3, 2, 10, 200, 67, 34, 340),  # accumulation counts optimizer steps
    (ONE, 1, 4, 15, 200, 200, 50, 750),
    ([GroupCount("ohwx", 10, 20), GroupCount("ohwx", 3, 10)], 1, 1, 12, 230, 230, 230, 2760),
    ([GroupCount("a", 1, 7)], 8, 1, 1, 7, 1, 1, 1),
])
def test_steps_table(groups: list[GroupCount], batch: int, accum: int, epochs: int, per_epoch: int,
                     batches: int, steps: int, total: int) -> None:
    p = plan(groups, batch_size=batch, grad_accum=accum, epochs=epochs)
    assert (p.samples_per_epoch, p.batches_per_epoch, p.steps_per_epoch, p.total_steps) \
        == (per_epoch, batches, steps, total)
    assert not p.bucket_exact


def test_influence_share_per_group() -> None:
    p = plan([GroupCount("ohwx", 10, 20), GroupCount("ohwx", 3, 10)])
    assert [(g.samples, round(g.share, 4)) for g in p.groups] == [(200, 0.8696), (30, 0.1304)]


@pytest.mark.parametrize(("groups", "batch", "batches"), [
    # partly filled buckets each take a batch of their own
    ([GroupCount("a", 1, 6, {(512, 512): 3, (384, 640): 3})], 2, 4),
    ([GroupCount("a", 2, 6, {(512, 512): 3, (384, 640): 3})], 2, 6),
    # groups share buckets: 1×3 + 1×1 samples in one bucket fill one batch of 4
    ([GroupCount("a", 3, 1, {(512, 512): 1}), GroupCount("b", 1, 1, {(512, 512): 1})], 4, 1),
])
def test_batches_are_counted_per_bucket(groups: list[GroupCount], batch: int, batches: int) -> None:
    p = plan(groups, batch_size=batch)
    assert p.bucket_exact
    assert p.batches_per_epoch == batches


def test_flip_adds_no_steps() -> None:
    plain, flipped = plan(ONE), plan(ONE, flip=True)
    assert flipped.total_steps == plain.total_steps
    assert flipped.to_dict()["flip_doubles_steps"] is False
    assert "not steps" in flipped.text()


@pytest.mark.parametrize(("groups", "epochs", "codes"), [
    ([GroupCount("a", 10, 30)], 10, []),
    ([GroupCount("a", 10, 30)], 5, ["epochs"]),
    ([GroupCount("a", 10, 30)], 40, ["epochs"]),
    ([GroupCount("a", 20, 30)], 10, ["samples_per_epoch"]),
    ([GroupCount("a", 5, 20)], 10, ["samples_per_epoch", "total_steps"]),
    ([GroupCount("a", 10, 5)], 10, ["samples_per_epoch", "total_steps", "few_images"]),
])
def test_advice(groups: list[GroupCount], epochs: int, codes: list[str]) -> None:
    assert [a.code for a in plan(groups, epochs=epochs).advice] == codes


def test_advice_suggests_repeats_toward_the_target() -> None:
    advice = {a.code: a.message for a in plan([GroupCount("a", 10, 10), GroupCount("a", 2, 5)]).advice}
    # 110 samples per epoch; about 300 wanted: 10 → 27, 2 → 5
    assert "10 → 27, 2 → 5" in advice["samples_per_epoch"]


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"grad_accum": 0}, {"epochs": 0}])
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan(ONE, **kwargs)


def test_no_images_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no images"):
        plan(tmp_path)


def write_images(folder: Path, sizes: list[tuple[int, int]]) -> None:
    folder.mkdir(parents=True)
    for i, size in enumerate(sizes):
        Image.new("RGB", size, (i, 90, 160)).save(folder / f"{i}.png")


def test_plan_of_a_training_folder(tmp_path: Path) -> None:
    write_images(tmp_path / "10_ohwx woman", [(512, 512)] * 3 + [(512, 768)] * 2)
    write_images(tmp_path / "3_ohwx", [(768, 512)])
    write_images(tmp_path / "notes", [(512, 512)])
    (tmp_path / "10_ohwx woman" / "broken.png").write_bytes(b"\x89PNG not really")

    p = plan(tmp_path, batch_size=4, resolution=512)
    assert [(g.name, g.repeats, g.images) for g in p.groups] == [("ohwx woman", 10, 5), ("ohwx", 3, 1)]
    # buckets: 512² ×30, 384×640 ×20, 640×384 ×3 → 8 + 5 + 1 batches
    assert p.bucket_exact and p.batches_per_epoch == 14
    assert any("notes/" in n for n in p.notes)
    assert any("broken.png" in n for n in p.notes)

    # without a resolution no header is read: every image file counts, broken or not
    simple = plan(tmp_path, batch_size=4)
    assert not simple.bucket_exact and simple.batches_per_epoch == 16  # ceil(63 / 4)


def test_plain_folder_is_one_group(tmp_path: Path) -> None:
    write_images(tmp_path / "imgs", [(512, 512)] * 4)
    p = plan(tmp_path / "imgs", repeats=25)
    assert [(g.name, g.repeats, g.images) for g in p.groups] == [("imgs", 25, 4)]
    assert p.samples_per_epoch == 100


def test_plan_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_images(tmp_path / "20_ohwx", [(512, 512)] * 15)
    assert main(["plan", str(tmp_path), "--batch-size", "2", "--epochs", "12", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["samples_per_epoch"], out["steps_per_epoch"], out["total_steps"]) == (300, 150, 1800)
    assert out["advice"] == []
    assert main(["plan", str(tmp_path), "--flip"]) == 0
    text = capsys.readouterr().out
    assert "3000 steps" in text and "flip" in text
    assert main(["plan", str(tmp_path), "--batch-size", "0"]) == 2
