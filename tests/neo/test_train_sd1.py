"""SD1.5 in the real Forge Neo: with neo-sd1 selected, a UNet + text-encoder run on Neo's loaded
model leaves it as found, Neo's Lora loader matches every module of the file (kohya's
diffusers-style SD1 names), and the LoRA changes Neo's output."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from .conftest import CHECKPOINT
from .test_train import SETTINGS, txt2img, wait_for_run


@pytest.fixture(scope="module")
def sd1_selected(neo) -> Iterator[None]:
    neo.post("/sdapi/v1/options", {"sd_model_checkpoint": "neo-sd1.safetensors"})
    txt2img(neo, "settle")  # Neo's first generation on a model settles its state
    try:
        yield
    finally:
        neo.post("/sdapi/v1/options", {"sd_model_checkpoint": CHECKPOINT})
        txt2img(neo, "settle")


def test_sd1_unet_and_text_encoder_run(neo, sd1_selected, dataset: Path) -> None:
    info = neo.get("/lora-lab/v1/info")
    assert info["model_family"] == "sd1" and info["checkpoint"].startswith("neo-sd1"), info
    before = neo.get("/lora-lab/v1/model/fingerprint")
    neo.post("/lora-lab/v1/train", {"dataset_dir": str(dataset), "name": "neosd1", **SETTINGS,
                                    "unet_lr": 2e-3, "te_lr": 2e-4})
    status = wait_for_run(neo)
    assert status["state"] == "finished", status
    assert neo.get("/lora-lab/v1/model/fingerprint") == before
    report = neo.get("/lora-lab/v1/train/verify/neosd1")
    assert report["matched_modules"] == report["file_modules"] > 50, report
    plain = txt2img(neo, "ohwx, red square")
    assert np.abs(plain - txt2img(neo, "ohwx, red square <lora:neosd1:1>")).mean() > 0.5
    body = neo.get("/lora-lab/v1/model/conditioning-check?width=64&height=64")
    assert body["family"] == "sd1" and body["crossattn_max_diff"] < 1e-5, body
