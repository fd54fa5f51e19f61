"""SDXL in a real WebUI: with the tiny SDXL checkpoint switched in, runs from the API train the UNet
and UNet + CLIP-L + bigG, the WebUI's Lora loader matches every module of each file, a LoRA on the
text encoders alone changes the image (the WebUI applies our lora_te1/lora_te2 keys), our
conditioning equals the WebUI's own get_learned_conditioning, and the model is left as it was."""
from __future__ import annotations

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
