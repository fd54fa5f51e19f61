"""SDXL in a real WebUI: with the tiny SDXL checkpoint switched in, runs from the API train the UNet
and UNet + CLIP-L + bigG, the WebUI's Lora loader matches every module of each file, a LoRA on the
text encoders alone changes the image (the WebUI applies our lora_te1/lora_te2 keys), our
conditioning equals the WebUI's own get_learned_conditioning, and the model is left as it was."""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from .test_train import SETTINGS, txt2img, wait_for_run


@pytest.fixture(scope="module")
def sdxl_loaded(webui, tiny_sdxl_checkpoint: Path) -> Iterator[None]:
    models = webui.data_dir / "models" / "Stable-diffusion"
    models.mkdir(parents=True, exist_ok=True)
    shutil.copytree(tiny_sdxl_checkpoint.parent / "tiny-sdxl-clip", models / "tiny-sdxl-clip", dirs_exist_ok=True)
    shutil.copy(tiny_sdxl_checkpoint, models)
    yaml = tiny_sdxl_checkpoint.with_suffix(".yaml").read_text(encoding="utf-8")
    (models / "tiny-sdxl.yaml").write_text(yaml.replace(str(tiny_sdxl_checkpoint.parent), str(models)),
                                           encoding="utf-8")
    webui.post("/sdapi/v1/refresh-checkpoints", {})
    previous = webui.get("/sdapi/v1/options")["sd_model_checkpoint"]
    webui.post("/sdapi/v1/options", {"sd_model_checkpoint": tiny_sdxl_checkpoint.name})
    try:
        yield
    finally:
        webui.post("/sdapi/v1/options", {"sd_model_checkpoint": previous})


def test_sdxl_unet_run_from_the_api_is_read_by_the_webuis_loader(webui, sdxl_loaded, dataset) -> None:
    info = webui.get("/lora-lab/v1/info")
    assert info["model_family"] == "sdxl" and info["checkpoint"].startswith("tiny-sdxl")
    before = webui.get("/lora-lab/v1/model/fingerprint")
    webui.post("/lora-lab/v1/train", {"dataset_dir": str(dataset), "name": "t2xl", **SETTINGS, "te_lr": 0.0,
                                      "conv_dim": 4, "conv_alpha": 4, "unet_lr": 5e-3})
    status = wait_for_run(webui)
    assert status["state"] == "finished", status
    assert webui.get("/lora-lab/v1/model/fingerprint") == before
    report = webui.get("/lora-lab/v1/train/verify/t2xl")
    assert report["matched_modules"] == report["file_modules"] > 20, report
    plain = txt2img(webui, "ohwx, red square")
    assert np.abs(plain - txt2img(webui, "ohwx, red square <lora:t2xl:1>")).mean() > 0.5
    assert webui.get("/lora-lab/v1/model/fingerprint") == before  # the merge is taken out again


def test_sdxl_text_encoder_lora_alone_changes_the_image(webui, sdxl_loaded, dataset) -> None:
    before = webui.get("/lora-lab/v1/model/fingerprint")
    webui.post("/lora-lab/v1/train", {"dataset_dir": str(dataset), "name": "t2xlte", **SETTINGS,
                                      "unet_lr": 0.0, "te_lr": 5e-3, "te2_lr": 5e-3, "epochs": 1})
    status = wait_for_run(webui)
    assert status["state"] == "finished", status
    assert webui.get("/lora-lab/v1/model/fingerprint") == before
    report = webui.get("/lora-lab/v1/train/verify/t2xlte")
    assert report["matched_modules"] == report["file_modules"] == 1 * 6 + 10 * 6, report
    plain = txt2img(webui, "ohwx, red square")
    assert np.abs(plain - txt2img(webui, "ohwx, red square <lora:t2xlte:1>")).mean() > 0.5


def test_our_conditioning_equals_the_webuis_get_learned_conditioning(webui, sdxl_loaded) -> None:
    body = webui.get("/lora-lab/v1/model/conditioning-check")
    print("conditioning vs the WebUI:", body)
    assert body["crossattn_max_diff"] < 1e-4 and body["vector_max_diff"] < 1e-4, body


def test_grid_sweeps_two_epochs_by_two_weights_with_a_baseline_on_sdxl(webui, sdxl_loaded, dataset) -> None:
    """The LoRA Lab grid script on the SDXL model, over the epoch files of a UNet + both text
    encoders run."""
    from .test_grid import cell, images_of, run_grid

    # UNet + CLIP-L + bigG in one run this time
    webui.post("/lora-lab/v1/train", {"dataset_dir": str(dataset), "name": "xlgrid", **SETTINGS, "te_lr": 1e-3,
                                      "conv_dim": 4, "conv_alpha": 4, "unet_lr": 5e-3, "preview_every_n_epochs": 0})
    assert wait_for_run(webui)["state"] == "finished"
    report = webui.get("/lora-lab/v1/train/verify/xlgrid")
    assert report["matched_modules"] == report["file_modules"] > 6 + 60, report
    webui.post("/sdapi/v1/refresh-loras", {})
    families = {f["name"]: f for f in webui.get("/lora-lab/v1/sweep/families")["families"]}
    assert "xlgrid" in families
    response, manifest = run_grid(webui, family="xlgrid", weights="0.5, 1", seeds=1)
    assert [r.lora for r in manifest.rows] == ["xlgrid-000001", "xlgrid"]
    assert [c.label for c in manifest.columns] == ["no LoRA", "0.5", "1"]
    assert all(c.done for c in manifest.cells) and len(manifest.cells) == 1 + 2 * 2  # one baseline cell
    notes = json.loads(response["info"])["extra_generation_params"].get("LoRA Lab notes", "")
    assert "trained on" not in notes, notes  # an SDXL LoRA on an SDXL model: no base-model warning
    baseline = images_of(manifest, cell(manifest, None, None))[0]
    assert np.abs(baseline - images_of(manifest, cell(manifest, "xlgrid", 1.0))[0]).mean() > 0.5


@pytest.mark.browser
def test_train_tab_on_sdxl_defaults_to_1024_and_runs(webui, browser, sdxl_loaded, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser_steps import field, open_train_tab_in_webui

    folder = tmp_path / "train" / "3_ohwx"
    before = webui.get("/lora-lab/v1/model/fingerprint")
    open_train_tab_in_webui(browser, webui.url, folder)
    wait = WebDriverWait(browser, 240)
    assert field(browser, "lora_lab_train_resolution").get_attribute("value") == "1024"  # SDXL's size
    for name, value in [("dataset_dir", str(folder.parent)), ("name", "t2xltab")]:
        field(browser, f"lora_lab_train_{name}").send_keys(value)
    for name, value in [("epochs", "1"), ("resolution", "64"), ("dim", "4"), ("alpha", "4")]:
        box = field(browser, f"lora_lab_train_{name}")
        box.clear()
        box.send_keys(value)
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_train_start").click()
    wait.until(lambda d: "finished" in d.find_element(By.CSS_SELECTOR, "#lora_lab_train_status").text)
    assert (webui.data_dir / "models" / "Lora" / "t2xltab.safetensors").is_file()
    assert webui.get("/lora-lab/v1/model/fingerprint") == before
