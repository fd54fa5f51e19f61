"""The "LoRA Lab grid" script and the X/Y/Z axes in a real WebUI, driven through /sdapi/v1/txt2img
with three epoch files of a random LoRA for the tiny checkpoint."""
from __future__ import annotations

import base64
import io
import json
import shutil
import threading
import urllib.error
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import load_file, save_file

from lora_lab.devtools.tiny_lora import write_epochs
from lora_lab.devtools.webui_runner import WebUI
from lora_lab.sweep.grid_args import GridArgs
from lora_lab.sweep.manifest import SweepManifest, load_manifest

PROMPT = "a photo of a cat"
BASE = {"prompt": PROMPT, "negative_prompt": "", "seed": 100, "steps": 4, "width": 64, "height": 64,
        "sampler_name": "Euler", "cfg_scale": 7, "batch_size": 2}
FILES = ["tinylora-000001", "tinylora-000002", "tinylora"]


@pytest.fixture(scope="module")
def lora(webui: WebUI, tiny_checkpoint: Path) -> Iterator[str]:
    write_epochs(tiny_checkpoint, webui.data_dir / "models" / "Lora", "tinylora", 3)
    webui.post("/sdapi/v1/refresh-loras", {})
    yield "tinylora"
    # The WebUI leaves the last LoRA merged into the weights; a generation without one takes it
    # out, so the session's later tests find the model as it was.
    txt2img(webui, batch_size=1)


def txt2img(webui: WebUI, **fields: Any) -> dict[str, Any]:
    return webui.post("/sdapi/v1/txt2img", {**BASE, **fields})


def pixels(encoded: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"), dtype=np.int16)


def file_pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def grid_args(**changes: Any) -> list[Any]:
    args = GridArgs(**{"family": "tinylora", "weights": "0.5, 1, 1.5", "seeds": 2, **changes})
    return [args.family, list(args.epochs), args.weights, list(args.checkpoints), args.baseline, args.seeds,
            args.showcase, args.showcase_count, args.showcase_seed, args.wildcards]


def run_grid(webui: WebUI, **changes: Any) -> tuple[dict[str, Any], SweepManifest]:
    fields = {k: changes.pop(k) for k in list(changes) if k in BASE}
    response = txt2img(webui, script_name="lora lab grid", script_args=grid_args(**changes), **fields)
    info = json.loads(response["info"])
    return response, load_manifest(info["extra_generation_params"]["LoRA Lab manifest"])


def cell(manifest: SweepManifest, lora: str | None, weight: float | None,
         checkpoint: str | None = None) -> int:
    return next(c.index for c in manifest.cells
                if c.lora == lora and c.weight == weight and checkpoint in (None, c.checkpoint))


def images_of(manifest: SweepManifest, index: int) -> list[np.ndarray]:
    return [file_pixels(manifest.image_path(index, i)) for i in range(len(manifest.cells[index].images))]


def test_the_test_lora_loads_and_each_epoch_changes_the_image(webui: WebUI, lora: str) -> None:
    plain = pixels(txt2img(webui, batch_size=1)["images"][0])
    tagged = [pixels(txt2img(webui, batch_size=1, prompt=f"{PROMPT} <lora:{name}:1>")["images"][0])
              for name in FILES]

    assert all(np.abs(image - plain).mean() > 2 for image in tagged)
    assert np.abs(tagged[0] - tagged[1]).mean() > 2 and np.abs(tagged[1] - tagged[2]).mean() > 2


def test_grid_of_3_epochs_by_3_weights_with_a_baseline(webui: WebUI, lora: str) -> None:
    response, manifest = run_grid(webui)

    assert [r.lora for r in manifest.rows] == FILES
    assert [c.label for c in manifest.columns] == ["no LoRA", "0.5", "1", "1.5"]
    assert len(manifest.cells) == 10 and all(c.done for c in manifest.cells)
    assert all(c.seeds == [100, 101] for c in manifest.cells)
    info = json.loads(response["info"])
    pages = info["index_of_first_image"]
    assert pages >= 1 and len(response["images"]) == pages + 20 and len(manifest.pages) == pages
    assert all(manifest.resolve(p.file).is_file() for p in manifest.pages)
    assert "Script: LoRA Lab grid" in info["infotexts"][0] and "LoRA Lab weights" in info["infotexts"][0]
    image_info = manifest.cells[cell(manifest, "tinylora-000002", 1.5)].images[1].infotext
    assert "<lora:tinylora-000002:1.5>" in image_info and "Seed: 101" in image_info
    assert "Lora hashes" in image_info
    assert "Lora hashes" not in manifest.cells[cell(manifest, None, None)].images[0].infotext

    # the baseline is a plain generation with the same seeds
    baseline = images_of(manifest, cell(manifest, None, None))
    plain = [pixels(image) for image in txt2img(webui)["images"][-2:]]
    assert all(np.array_equal(a, b) for a, b in zip(baseline, plain))
    # every epoch × weight cell differs from the baseline and from its neighbours
    grid = {(c.lora, c.weight): images_of(manifest, c.index)[0] for c in manifest.cells}
    for (lora_name, weight), image in grid.items():
        if lora_name is not None:
            assert np.abs(image - baseline[0]).mean() > 1, (lora_name, weight)
    assert np.abs(grid[("tinylora-000001", 1.0)] - grid[("tinylora-000002", 1.0)]).mean() > 1
    assert np.abs(grid[("tinylora-000001", 0.5)] - grid[("tinylora-000001", 1.5)]).mean() > 1
    # a cell equals the same tag rendered by hand
    by_hand = txt2img(webui, prompt=f"{PROMPT} <lora:tinylora-000002:0.5>")["images"][-2:]
    assert all(np.array_equal(pixels(a), b)
               for a, b in zip(by_hand, images_of(manifest, cell(manifest, "tinylora-000002", 0.5))))


def test_interrupt_returns_the_finished_cells_as_a_partial_grid(webui: WebUI, lora: str) -> None:
    result: dict[str, Any] = {}

    def sweep() -> None:
        result["response"], result["manifest"] = run_grid(webui, weights="0.2-1.4 [7]")

    thread = threading.Thread(target=sweep)
    thread.start()
    progress = "/sdapi/v1/progress?skip_current_image=true"
    while thread.is_alive() and webui.get(progress)["state"]["job_no"] < 3:
        threading.Event().wait(0.2)
    webui.post("/sdapi/v1/interrupt", {})
    thread.join()

    manifest: SweepManifest = result["manifest"]
    done = [c for c in manifest.cells if c.done]
    assert 2 <= len(done) < len(manifest.cells) == 22
    pages = json.loads(result["response"]["info"])["index_of_first_image"]
    assert len(result["response"]["images"]) == pages + 2 * len(done)
    assert manifest.pages and all(manifest.resolve(p.file).is_file() for p in manifest.pages)
    assert not any(image.file for c in manifest.cells if not c.done for image in c.images)


@pytest.fixture(scope="module")
def second_checkpoint(webui: WebUI, tiny_checkpoint: Path) -> str:
    """The tiny model with its UNet output layer scaled: another checkpoint, same architecture."""
    folder = webui.data_dir / "models" / "Stable-diffusion"
    folder.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(tiny_checkpoint))
    key = "model.diffusion_model.out.2.weight"
    tensors[key] = tensors[key] * -1.0
    save_file(tensors, str(folder / "tiny-other.safetensors"), {"format": "pt"})
    shutil.copy(tiny_checkpoint.with_suffix(".yaml"), folder / "tiny-other.yaml")
    webui.post("/sdapi/v1/refresh-checkpoints", {})
    return "tiny-other.safetensors"


def test_checkpoints_are_swept_and_the_current_one_is_restored(webui: WebUI, lora: str,
                                                               second_checkpoint: str) -> None:
    current = webui.get("/lora-lab/v1/info")["checkpoint"]
    before = pixels(txt2img(webui, batch_size=1)["images"][0])

    _, manifest = run_grid(webui, weights="1", epochs=("tinylora",), checkpoints=(current, second_checkpoint))

    assert manifest.checkpoints == [current, second_checkpoint] and all(c.done for c in manifest.cells)
    first, other = (images_of(manifest, cell(manifest, None, None, c))[0] for c in manifest.checkpoints)
    assert np.abs(first - other).mean() > 1  # the second checkpoint was really used
    assert webui.get("/lora-lab/v1/info")["checkpoint"] == current
    option = webui.get("/sdapi/v1/options")["sd_model_checkpoint"]
    assert option.startswith(current.removesuffix(".safetensors"))
    assert np.array_equal(pixels(txt2img(webui, batch_size=1)["images"][0]), before)


def test_showcase_prompts_are_expanded_once_and_shared_by_every_cell(webui: WebUI, lora: str) -> None:
    _, manifest = run_grid(webui, weights="1", epochs=("tinylora-000001",), baseline=False, seeds=1,
                           showcase="a {red|green|blue} {cat|dog}", showcase_count=3, showcase_seed=7)

    prompts = manifest.cells[0].prompts  # 3 expansions, those that came out alike kept once
    assert 2 <= len(set(prompts)) == len(prompts) <= 3
    assert all("{" not in p and p.endswith("<lora:tinylora-000001:1>") for p in prompts)
    assert [image.infotext.splitlines()[0] for image in manifest.cells[0].images] == prompts


def test_bad_settings_are_refused_before_anything_renders(webui: WebUI, lora: str) -> None:
    for changes, reason in (({"family": "nosuch"}, "no LoRA named 'nosuch'"),
                            ({"weights": "0.5-1"}, "a range needs a count or a step"),
                            ({"checkpoints": ("missing.ckpt",)}, "unknown checkpoint 'missing.ckpt'")):
        with pytest.raises(urllib.error.HTTPError) as failed:
            run_grid(webui, **changes)
        assert failed.value.code == 400 and reason in json.load(failed.value)["detail"]


def test_xyz_plot_gets_epoch_and_weight_axes(webui: WebUI, lora: str) -> None:
    info = webui.get("/sdapi/v1/script-info")
    xyz = next(s for s in info if s["name"] == "x/y/z plot" and not s["is_img2img"])
    axes = xyz["args"][0]["choices"]
    epoch, weight = axes.index("[LoRA Lab] epoch"), axes.index("[LoRA Lab] weight")
    args = [weight, "0.5, 1", [], epoch, "1, final", [], 0, "", [], True, True, False, False, False, False,
            False, 0, False]

    response = txt2img(webui, batch_size=1, prompt=f"{PROMPT} <lora:tinylora:1>", script_name="x/y/z plot",
                       script_args=args)

    cells = [pixels(image) for image in response["images"][-4:]]  # x fastest: (0.5, e1) (1, e1) (0.5, fin) …
    by_hand = pixels(txt2img(webui, batch_size=1, prompt=f"{PROMPT} <lora:tinylora-000001:0.5>")["images"][0])
    assert np.array_equal(cells[0], by_hand)
    assert np.abs(cells[0] - cells[1]).mean() > 1 and np.abs(cells[1] - cells[3]).mean() > 1


def test_the_review_api_finds_rates_and_recommends_a_sweep(webui: WebUI, lora: str) -> None:
    _, manifest = run_grid(webui, weights="0.5, 1", epochs=("tinylora-000002",), baseline=False, seeds=1)
    base = "/lora-lab/v1/sweep"

    assert str(manifest.path.resolve()) in webui.get(f"{base}/sweeps")["sweeps"]
    assert [f["key"] for f in webui.get(f"{base}/families")["families"]] == ["tinylora@tinylora-0"]
    image = manifest.cells[cell(manifest, "tinylora-000002", 1.0)].images[0].file
    webui.post(f"{base}/ratings", {"path": str(manifest.path), "ratings": {image: "hit"}})
    rates = webui.get(f"{base}/hit-rates?" + urllib.parse.urlencode({"path": str(manifest.path)}))
    assert rates["recommendation"]["tag"] == "<lora:tinylora-000002:1>"


def test_the_script_inputs_are_in_the_txt2img_ui(webui: WebUI) -> None:
    ids = {c["props"].get("elem_id") for c in webui.get("/config")["components"]}
    names = ("family", "refresh", "epochs", "weights", "seeds", "baseline", "checkpoints", "showcase",
             "showcase_count", "showcase_seed", "wildcards")
    assert {f"script_lora_lab_grid_{name}" for name in names} <= ids  # txt2img only: no tab in the ids
    assert {"lora_lab_review_hit", "lora_lab_review_rates", "lora_lab_review_promote"} <= ids


@pytest.mark.browser
def test_a_rendered_sweep_is_scored_in_the_webui(webui: WebUI, lora: str, browser, tmp_path: Path) -> None:
    """Score a real grid's images with a tagger from the WebUI's models folder, through the API;
    the Review tab then shows the score maps and the shortlist."""
    import time

    from lora_lab.devtools.tiny_tagger import build_tiny_tagger

    build_tiny_tagger(webui.data_dir / "models" / "lora_lab" / "taggers" / "tiny-scores")
    _, manifest = run_grid(webui, weights="1", seeds=2)
    train = tmp_path / "train"
    train.mkdir()
    for i, image in enumerate(manifest.cells[0].images):  # stand-in training images
        Image.open(manifest.resolve(image.file)).save(train / f"{i}.png")
    job = webui.post("/lora-lab/v1/sweep/rescore", {"path": str(manifest.path), "tagger": "tiny-scores",
                                                    "dataset": str(train)})
    deadline = time.time() + 120
    while job["running"] and time.time() < deadline:
        time.sleep(0.2)
        job = webui.get(f"/lora-lab/v1/jobs/{job['id']}")
    assert job["error"] is None, job
    view = webui.get("/lora-lab/v1/sweep/scores?" + urllib.parse.urlencode({"path": str(manifest.path)}))
    assert set(view["cells"]) == {str(c.index) for c in manifest.cells}
    assert all(view["cells"][str(c.index)]["influence"] is not None for c in manifest.cells if c.lora)
    assert view["shortlist"]

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser_steps import click_tab, field

    browser.get(webui.url)
    wait = WebDriverWait(browser, 120)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#tabs > .tab-nav button"))
    click_tab(browser, "tabs", "LoRA Lab")
    click_tab(browser, "lora_lab_tabs", "Review")
    field(browser, "lora_lab_review_path").send_keys(str(manifest.path))
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_review_load").click()
    wait.until(lambda d: "Review these first" in d.find_element(By.CSS_SELECTOR, "#lora_lab_review_rates").text)
    shown = browser.find_element(By.CSS_SELECTOR, "#lora_lab_review_rates").text
    assert "Score (F1 of fidelity and adherence)" in shown and "Influence" in shown
