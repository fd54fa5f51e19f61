from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from lora_lab.sweep.family import EpochFile, LoraFamily, read_safetensors_metadata
from lora_lab.sweep.manifest import SweepManifest, load_manifest, new_manifest
from lora_lab.sweep.plan import build_plan
from lora_lab.sweep.review import (
    HIT, MISS, ReviewError, Tally, hit_rates, load_ratings, promote, ratings_path, recommend, set_ratings,
)


def sweep(tmp_path: Path, seeds: int = 4) -> SweepManifest:
    """2 checkpoints × 3 epochs × weights 0.5, 1 (+ baseline), 1 prompt × `seeds` seeds."""
    files = tuple(EpochFile(tmp_path / f"alice-{e:06d}.safetensors", f"alice-{e:06d}", "epoch", e,
                            None, "alice", "1", None) for e in (1, 2, 3))
    plan = build_plan(LoraFamily("alice", "1", files), [0, 0.5, 1.0], ["photo of alice"], list(range(seeds)),
                      checkpoints=["a", "b"])
    manifest = new_manifest(plan, tmp_path / "sweep" / "sweep.json")
    manifest.folder.mkdir()
    for cell in plan.cells:
        for i in range(len(cell.images)):
            manifest.record_image(cell.index, i, manifest.folder / f"{cell.index}-{i}.png")
    manifest.save()
    return manifest


def images_of(manifest: SweepManifest, checkpoint: str, row: int | None, weight: float | None) -> list[str]:
    cell = next(c for c in manifest.cells if (c.checkpoint, c.row, c.weight) == (checkpoint, row, weight))
    return [image.file for image in cell.images]  # type: ignore[misc]


def rate(manifest: SweepManifest, checkpoint: str, row: int | None, weight: float | None, hits: int,
         misses: int) -> None:
    files = images_of(manifest, checkpoint, row, weight)
    set_ratings(manifest, {f: HIT for f in files[:hits]} | {f: MISS for f in files[hits:hits + misses]})


def test_ratings_are_saved_beside_the_manifest_and_survive_a_restart(tmp_path: Path) -> None:
    manifest = sweep(tmp_path)
    first, second = images_of(manifest, "a", 0, 0.5)[:2]
    set_ratings(manifest, {first: HIT, second: MISS})
    set_ratings(manifest, {second: "unrated"})

    reloaded = load_manifest(manifest.path)

    assert ratings_path(reloaded) == manifest.folder / "sweep.ratings.json"
    assert load_ratings(reloaded) == {first: HIT}
    assert not [p for p in manifest.folder.iterdir() if p.name.startswith(".")]


def test_ratings_for_unknown_images_or_values_are_refused(tmp_path: Path) -> None:
    manifest = sweep(tmp_path)
    image = images_of(manifest, "a", 0, 0.5)[0]
    with pytest.raises(ReviewError, match="not an image of this sweep"):
        set_ratings(manifest, {"other/1.png": HIT})
    with pytest.raises(ReviewError, match="not a rating"):
        set_ratings(manifest, {image: "great"})
    assert load_ratings(manifest) == {}


def test_hit_rates_per_epoch_weight_and_checkpoint(tmp_path: Path) -> None:
    manifest = sweep(tmp_path)
    rate(manifest, "a", 0, 0.5, hits=3, misses=1)
    rate(manifest, "b", 0, 0.5, hits=1, misses=3)
    rate(manifest, "a", 2, 1.0, hits=2, misses=0)
    rate(manifest, "a", None, None, hits=1, misses=1)

    rates = hit_rates(manifest, load_ratings(manifest))

    assert rates.rows == ("epoch 1", "epoch 2", "epoch 3")
    assert rates.weights == (0.5, 1.0)
    assert rates.matrix[0][0] == Tally(hits=4, misses=4, unrated=0)
    assert rates.matrix[0][0].rate == 0.5
    assert rates.matrix[2][1] == Tally(hits=2, misses=0, unrated=6)
    assert rates.matrix[1][0].rate is None
    assert rates.by_checkpoint["a"][0][0].rate == 0.75
    assert rates.by_checkpoint["b"][0][0].rate == 0.25
    assert rates.checkpoint_total("a") == Tally(hits=5, misses=1, unrated=18)
    assert rates.baseline == Tally(hits=1, misses=1, unrated=6)
    assert rates.to_json()["matrix"][0][0]["rate"] == 0.5


def test_recommendation_takes_the_best_rate(tmp_path: Path) -> None:
    manifest = sweep(tmp_path)
    assert recommend(manifest, hit_rates(manifest, {})) is None
    rate(manifest, "a", 0, 0.5, hits=1, misses=3)
    rate(manifest, "a", 1, 1.0, hits=3, misses=1)

    rec = recommend(manifest, hit_rates(manifest, load_ratings(manifest)))

    assert rec is not None
    assert (rec.lora, rec.weight, rec.epoch) == ("alice-000002", 1.0, 2)
    assert rec.file == str(tmp_path / "alice-000002.safetensors")
    assert "3 of 4 rated images were hits (75%)" in rec.reason
    assert rec.to_json()["tag"] == "<lora:alice-000002:1>"


def test_ties_go_to_the_earlier_epoch_then_the_lower_weight(tmp_path: Path) -> None:
    manifest = sweep(tmp_path)
    rate(manifest, "a", 2, 0.5, hits=2, misses=2)
    rate(manifest, "a", 1, 1.0, hits=2, misses=2)
    rate(manifest, "b", 1, 0.5, hits=1, misses=1)  # 1/2 == 2/4: a tie by rate, not by count

    rec = recommend(manifest, hit_rates(manifest, load_ratings(manifest)))

    assert rec is not None and (rec.lora, rec.weight) == ("alice-000002", 0.5)
    assert "2 other setting(s) tie" in rec.reason


def test_advice_when_higher_weights_score_worse_or_the_baseline_is_as_good(tmp_path: Path) -> None:
    manifest = sweep(tmp_path)
    rate(manifest, "a", 0, 0.5, hits=3, misses=1)
    rate(manifest, "a", 0, 1.0, hits=1, misses=3)
    rate(manifest, "a", None, None, hits=4, misses=0)

    rec = recommend(manifest, hit_rates(manifest, load_ratings(manifest)))

    assert rec is not None and rec.weight == 0.5
    assert any("too strong" in a and "0.5 or lower" in a for a in rec.advice)
    assert any("Without the LoRA" in a for a in rec.advice)
    assert any("not rated yet" in a for a in rec.advice)


def write_lora(path: Path) -> Path:
    save_file({"w": np.ones((2, 2), np.float16)}, str(path), metadata={"ss_output_name": "alice"})
    return path


def test_promote_copies_the_file_and_its_sidecars_and_leaves_the_rest(tmp_path: Path) -> None:
    chosen = write_lora(tmp_path / "alice-000004.safetensors")
    other = write_lora(tmp_path / "alice.safetensors")
    (tmp_path / "alice-000004.preview.png").write_bytes(b"png")
    (tmp_path / "alice-000004.json").write_text('{"activation text": "alice"}')
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    made = promote(chosen, "alice_final")

    assert [p.name for p in made] == ["alice_final.safetensors", "alice_final.json",
                                      "alice_final.preview.png"]
    assert read_safetensors_metadata(made[0]) == {"ss_output_name": "alice"}
    assert made[0].read_bytes() == before["alice-000004.safetensors"]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p not in made} == before
    assert other.exists()


def test_promote_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    chosen = write_lora(tmp_path / "alice-000004.safetensors")
    (tmp_path / "alice-000004.png").write_bytes(b"preview")
    (tmp_path / "keep.png").write_bytes(b"someone else's")

    with pytest.raises(ReviewError, match="not overwriting keep.png"):
        promote(chosen, "keep")

    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["alice-000004.png", "alice-000004.safetensors", "keep.png"]
    assert (tmp_path / "keep.png").read_bytes() == b"someone else's"


def test_promote_can_rename_instead_of_copy(tmp_path: Path) -> None:
    chosen = write_lora(tmp_path / "alice-000004.safetensors")
    data = chosen.read_bytes()
    (tmp_path / "alice-000004.txt").write_text("notes")

    made = promote(chosen, "alice_final.safetensors", move=True)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice_final.safetensors", "alice_final.txt"]
    assert made[0].read_bytes() == data


@pytest.mark.parametrize("name", ["", "  ", "../up", "a/b", "x:y", ".hidden", "<lora>"])
def test_promote_refuses_names_that_break_paths_or_tags(tmp_path: Path, name: str) -> None:
    chosen = write_lora(tmp_path / "alice-000004.safetensors")
    with pytest.raises(ReviewError, match="cannot be a LoRA name"):
        promote(chosen, name)
    assert os.listdir(tmp_path) == ["alice-000004.safetensors"]


def test_promote_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReviewError, match="does not exist"):
        promote(tmp_path / "gone.safetensors", "x")
