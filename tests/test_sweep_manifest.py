from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from lora_lab.sweep.family import EpochFile, LoraFamily
from lora_lab.sweep.manifest import ManifestError, SweepManifest, load_manifest, new_manifest
from lora_lab.sweep.pages import layout_pages
from lora_lab.sweep.plan import SweepPlan, build_plan


def small_plan() -> SweepPlan:
    files = tuple(EpochFile(Path(f"/loras/alice-{e:06d}.safetensors"), f"alice-{e:06d}", "epoch", e, None,
                            "alice", "1", None) for e in (1, 2))
    return build_plan(LoraFamily("alice", "1", files), [0, 0.5, 1], ["photo of alice, <lora:alice:1>"],
                      [11, 12], checkpoints=["sd15.safetensors"], negative_prompt="blurry")


def rendered(tmp_path: Path, done_cells: int | None = None) -> SweepManifest:
    plan = small_plan()
    manifest = new_manifest(plan, tmp_path / "sweep" / "sweep.json", {"steps": 20, "sampler": "Euler a"})
    manifest.folder.mkdir()
    for cell in plan.cells[:done_cells]:
        for i, (prompt, seed) in enumerate(cell.images):
            file = manifest.folder / "images" / f"{cell.index:04d}-{i}.png"
            file.parent.mkdir(exist_ok=True)
            Image.new("RGB", (8, 8)).save(file)
            infotext = f"{cell.prompts[prompt]}\nSeed: {seed}, Lora hashes: x"
            manifest.record_image(cell.index, i, file, infotext)
    manifest.add_page(manifest.folder / "page-1.png", layout_pages(plan, (8, 8))[0])
    manifest.save()
    return manifest


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    manifest = rendered(tmp_path)

    loaded = load_manifest(manifest.path)

    assert loaded.to_json() == manifest.to_json()
    cell = loaded.cells[1]
    assert (cell.checkpoint, cell.lora, cell.weight) == ("sd15.safetensors", "alice-000001", 0.5)
    assert cell.seeds == [11, 12]
    assert cell.prompts == ["photo of alice, <lora:alice-000001:0.5>"]
    assert cell.images[1].file == "images/0001-1.png"
    assert "Seed: 12" in cell.images[1].infotext
    assert loaded.rows[0].file == "/loras/alice-000001.safetensors"
    assert loaded.columns[0].weight is None and loaded.cells[0].row is None
    assert loaded.pages[0].cells == [c.index for c in loaded.cells]
    assert loaded.parameters == {"steps": 20, "sampler": "Euler a"}


def test_the_folder_can_be_moved(tmp_path: Path) -> None:
    manifest = rendered(tmp_path)
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(str(manifest.folder), moved)

    loaded = load_manifest(moved / "sweep.json")

    path = loaded.image_path(2, 0)
    assert path is not None and path.is_file() and moved in path.parents


def test_an_interrupted_sweep_loads_with_the_missing_cells_marked(tmp_path: Path) -> None:
    loaded = load_manifest(rendered(tmp_path, done_cells=3).path)

    assert [c.done for c in loaded.cells] == [True, True, True, False, False]
    assert loaded.image_path(4, 0) is None
    assert loaded.load_image(4, 0) is None
    image = loaded.load_image(2, 1)
    assert image is not None and image.size == (8, 8)


def test_only_listed_files_are_served(tmp_path: Path) -> None:
    manifest = rendered(tmp_path)
    assert manifest.listed_file("images/0001-0.png") == manifest.folder / "images" / "0001-0.png"
    assert manifest.listed_file("page-1.png") == manifest.folder / "page-1.png"
    for stored in ("../../etc/passwd", "sweep.json", "/etc/passwd"):
        with pytest.raises(ManifestError, match="not a file of the sweep"):
            manifest.listed_file(stored)


def test_saving_leaves_no_temporary_files(tmp_path: Path) -> None:
    manifest = rendered(tmp_path)
    manifest.save()
    assert sorted(p.name for p in manifest.folder.iterdir()) == ["images", "sweep.json"]


def _edit(path: Path, change) -> None:  # noqa: ANN001 - a function that edits the parsed document
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["cells"][2].__setitem__("weight", "high"),
     r"cells\[2\]\.weight: expected float or null, got 'high'"),
    (lambda d: d["cells"][1]["images"][0].pop("seed"), r"cells\[1\]\.images\[0\]\.seed: missing"),
    (lambda d: d["cells"][1].__setitem__("row", 7), r"cells\[1\]\.row: 7 is out of range"),
    (lambda d: d["cells"][1]["images"][0].__setitem__("prompt", 3),
     r"images\[0\]\.prompt: 3 is out of range"),
    (lambda d: d["pages"][0]["slots"][0].pop(), r"pages\[0\]\.slots\[0\]: expected \[cell, image"),
    (lambda d: d["seeds"].append(True), r"seeds\[2\]: expected int"),
    (lambda d: d["cells"][0].__setitem__("row", 0), r"cells\[0\]: only baseline cells"),
    (lambda d: d.__setitem__("version", 99), "newer LoRA Lab"),
    (lambda d: d.__setitem__("schema", "other"), "not a LoRA Lab sweep manifest"),
])
def test_bad_manifests_name_the_field(tmp_path: Path, change, message: str) -> None:  # noqa: ANN001
    manifest = rendered(tmp_path)
    _edit(manifest.path, change)
    with pytest.raises(ManifestError, match=message):
        load_manifest(manifest.path)


def test_unreadable_manifest_files(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(tmp_path / "bad.json")
