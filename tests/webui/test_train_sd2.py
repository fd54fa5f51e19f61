"""SD2 in a real WebUI: with the tiny SD2 (v-prediction, OpenCLIP) checkpoint loaded, a run from the
API trains UNet and text encoder, the WebUI's Lora loader matches every module of the file (the
fused attention included) and the text-encoder part alone changes the image, and the model is left
exactly as it was."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from .test_train import SETTINGS, txt2img, wait_for_run


@pytest.fixture(scope="module")
def sd2_loaded(webui, tiny_sd2_checkpoint: Path) -> Iterator[None]:
    models = webui.data_dir / "models" / "Stable-diffusion"
    models.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".yaml"):
        shutil.copy(tiny_sd2_checkpoint.with_suffix(suffix), models)
    webui.post("/sdapi/v1/refresh-checkpoints", {})
    previous = webui.get("/sdapi/v1/options")["sd_model_checkpoint"]
    webui.post("/sdapi/v1/options", {"sd_model_checkpoint": tiny_sd2_checkpoint.name})
    try:
        yield
    finally:
        webui.post("/sdapi/v1/options", {"sd_model_checkpoint": previous})


def test_sd2_run_trains_unet_and_text_encoder_the_loader_reads(webui, sd2_loaded, dataset) -> None:
    info = webui.get("/lora-lab/v1/info")
    assert info["model_family"] == "sd2-v" and info["checkpoint"].startswith("tiny-sd2-v")
    before = webui.get("/lora-lab/v1/model/fingerprint")
    webui.post("/lora-lab/v1/train", {"dataset_dir": str(dataset), "name": "t2sd2", **SETTINGS,
                                      "te_lr": 1e-3})
    status = wait_for_run(webui)
    assert status["state"] == "finished", status
    assert webui.get("/lora-lab/v1/model/fingerprint") == before
    report = webui.get("/lora-lab/v1/train/verify/t2sd2")
    assert report["matched_modules"] == report["file_modules"] > 9 * 6, report
    plain = txt2img(webui, "ohwx, red square")
    assert np.abs(plain - txt2img(webui, "ohwx, red square <lora:t2sd2:1>")).mean() > 0.5
    assert webui.get("/lora-lab/v1/model/fingerprint") == before  # the merge is taken out again


def test_sd2_text_encoder_lora_alone_changes_the_image(webui, sd2_loaded, dataset) -> None:
    before = webui.get("/lora-lab/v1/model/fingerprint")
    webui.post("/lora-lab/v1/train", {"dataset_dir": str(dataset), "name": "t2sd2te", **SETTINGS,
                                      "unet_lr": 0.0, "te_lr": 5e-3, "epochs": 1})
    status = wait_for_run(webui)
    assert status["state"] == "finished", status
    assert webui.get("/lora-lab/v1/model/fingerprint") == before
    report = webui.get("/lora-lab/v1/train/verify/t2sd2te")
    assert report["matched_modules"] == report["file_modules"] == 9 * 6, report
    plain = txt2img(webui, "ohwx, red square")
    assert np.abs(plain - txt2img(webui, "ohwx, red square <lora:t2sd2te:1>")).mean() > 0.5
