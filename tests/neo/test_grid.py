"""The LoRA Lab grid script in the real Forge Neo's txt2img, over the epoch files of a run trained
there: every cell is rendered and recorded, and a cell equals, pixel for pixel, a plain
/sdapi/v1/txt2img with its prompt, <lora:…:w> tag and seeds; a file rewritten under a name Neo has
already applied serves its new weights."""
from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from lora_lab.sweep.grid_args import GridArgs
from lora_lab.sweep.manifest import SweepManifest, load_manifest

from .conftest import T2I
from .test_train import SETTINGS, wait_for_run

BASE = {**T2I, "seed": 100, "batch_size": 2}


@pytest.fixture(scope="module")
def family(neo, tmp_path_factory: pytest.TempPathFactory) -> str:
    from PIL import Image as _Image

    folder = tmp_path_factory.mktemp("neo-grid-data") / "5_ohwx"
    folder.mkdir()
    for i, colour in enumerate(["red", "blue"]):
        _Image.new("RGB", (64, 64), colour).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(f"ohwx, {colour} square")
    neo.post("/lora-lab/v1/train", {"dataset_dir": str(folder.parent), "name": "neogrid", **SETTINGS,
                                    "unet_lr": 1e-2, "te_lr": 0.0, "preview_every_n_epochs": 0})
    assert wait_for_run(neo)["state"] == "finished"
    return "neogrid"


def pixels(encoded: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"), dtype=np.int16)


def file_pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def run_grid(neo, **changes: Any) -> tuple[dict[str, Any], SweepManifest]:
    args = GridArgs(**{"family": "neogrid", "weights": "0.5, 1", "seeds": 2, **changes})
    script_args = [args.family, list(args.epochs), args.weights, list(args.checkpoints), args.baseline,
                   args.seeds, args.showcase, args.showcase_count, args.showcase_seed, args.wildcards]
    response = neo.post("/sdapi/v1/txt2img", {**BASE, "script_name": "lora lab grid", "script_args": script_args})
    info = json.loads(response["info"])
    return response, load_manifest(info["extra_generation_params"]["LoRA Lab manifest"])


def images_of(manifest: SweepManifest, lora: str | None, weight: float | None) -> list[np.ndarray]:
    cell = next(c for c in manifest.cells if c.lora == lora and c.weight == weight)
    return [file_pixels(manifest.image_path(cell.index, i)) for i in range(len(cell.images))]


def test_grid_cells_equal_plain_txt2img_pixel_for_pixel(neo, family: str) -> None:
    _, manifest = run_grid(neo)
    assert [r.lora for r in manifest.rows] == ["neogrid-000001", "neogrid"]
    assert [c.label for c in manifest.columns] == ["no LoRA", "0.5", "1"]
    assert len(manifest.cells) == 5 and all(c.done for c in manifest.cells)
    plain = [pixels(i) for i in neo.post("/sdapi/v1/txt2img", BASE)["images"][-2:]]
    assert all(np.array_equal(a, b) for a, b in zip(images_of(manifest, None, None), plain))
    by_hand = neo.post("/sdapi/v1/txt2img", {**BASE, "prompt": f"{BASE['prompt']} <lora:neogrid-000001:0.5>"})
    assert all(np.array_equal(pixels(a), b)
               for a, b in zip(by_hand["images"][-2:], images_of(manifest, "neogrid-000001", 0.5)))
    assert np.abs(images_of(manifest, "neogrid", 1.0)[0] - plain[0]).mean() > 0.5


def test_a_rewritten_lora_file_is_not_served_stale(neo, family: str) -> None:
    """Neo applies a LoRA again only when the set of (file, weight) changes; the grid makes it read
    the files again, so a file replaced under the same name shows its new weights."""
    lora_dir = Path(neo.get("/lora-lab/v1/train/status")["files"][-1]).parent
    epoch1 = lora_dir / "neogrid-000001.safetensors"
    kept = epoch1.read_bytes()
    _, first = run_grid(neo, epochs=("neogrid-000001",), baseline=False, weights="1", seeds=1)
    shutil.copy(lora_dir / "neogrid.safetensors", epoch1)
    try:
        _, second = run_grid(neo, epochs=("neogrid-000001",), baseline=False, weights="1", seeds=1)
        _, final = run_grid(neo, epochs=("neogrid",), baseline=False, weights="1", seeds=1)
    finally:
        epoch1.write_bytes(kept)  # the family as trained, for the tests after this one
    assert not np.array_equal(images_of(first, "neogrid-000001", 1.0)[0], images_of(second, "neogrid-000001", 1.0)[0])
    assert np.array_equal(images_of(second, "neogrid-000001", 1.0)[0], images_of(final, "neogrid", 1.0)[0])


def test_xyz_plot_gets_epoch_and_weight_axes(neo, family: str) -> None:
    info = neo.get("/sdapi/v1/script-info")
    xyz = next(s for s in info if s["name"] == "x/y/z plot" and not s["is_img2img"])
    axes = xyz["args"][0]["choices"]
    epoch, weight = axes.index("[LoRA Lab] epoch"), axes.index("[LoRA Lab] weight")
    # Neo's X/Y/Z has a row count before the margin (A1111's has not)
    args = [weight, "0.5, 1", [], epoch, "1, final", [], 0, "", [], True, True, False, False, False, False,
            False, 0, 0, False]
    response = neo.post("/sdapi/v1/txt2img", {**BASE, "batch_size": 1, "prompt": f"{BASE['prompt']} <lora:neogrid:1>",
                                              "script_name": "x/y/z plot", "script_args": args})
    cells = [pixels(image) for image in response["images"][-4:]]  # x fastest: (0.5, e1) (1, e1) (0.5, fin) …
    by_hand = neo.post("/sdapi/v1/txt2img", {**BASE, "batch_size": 1,
                                             "prompt": f"{BASE['prompt']} <lora:neogrid-000001:0.5>"})
    assert np.array_equal(cells[0], pixels(by_hand["images"][0]))
    assert np.abs(cells[0] - cells[1]).mean() > 0.5 and np.abs(cells[1] - cells[3]).mean() > 0.5


def test_checkpoints_are_swept_through_neos_reload_and_the_current_one_is_restored(neo, family: str) -> None:
    """A second SDXL checkpoint (the same file with its UNet's output layer negated): the grid loads
    each through Neo's own reload path and puts the selected one back."""
    from safetensors.torch import load_file, save_file

    current = neo.get("/lora-lab/v1/info")["checkpoint"]
    source = next(Path(p["filename"]) for p in neo.get("/sdapi/v1/sd-models") if p["title"].startswith(current))
    folder = neo.data_dir / "models" / "Stable-diffusion"
    folder.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(source))
    tensors["model.diffusion_model.out.2.weight"] = -tensors["model.diffusion_model.out.2.weight"]
    save_file(tensors, str(folder / "neo-other.safetensors"), {"format": "pt"})
    del tensors
    neo.post("/sdapi/v1/refresh-checkpoints", {})
    before = pixels(neo.post("/sdapi/v1/txt2img", {**BASE, "batch_size": 1})["images"][0])

    _, manifest = run_grid(neo, weights="1", epochs=("neogrid",), seeds=1,
                           checkpoints=(current, "neo-other.safetensors"))

    assert manifest.checkpoints == [current, "neo-other.safetensors"] and all(c.done for c in manifest.cells)
    first, other = (file_pixels(manifest.image_path(c.index, 0)) for c in manifest.cells if c.lora is None)
    assert np.abs(first - other).mean() > 0.5  # the second checkpoint was really used
    assert neo.get("/lora-lab/v1/info")["checkpoint"] == current
    assert np.array_equal(pixels(neo.post("/sdapi/v1/txt2img", {**BASE, "batch_size": 1})["images"][0]), before)
