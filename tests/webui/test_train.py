"""Training inside a real WebUI: from the API and from the Train tab, Interrupt, the model left
exactly as it was, and files the WebUI's own Lora loader reads completely."""
from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

SETTINGS = {"epochs": 2, "save_every_n_epochs": 1, "resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128, "dim": 4, "alpha": 4,
            "unet_lr": 1e-3, "te_lr": 1e-4, "preview_every_n_epochs": 1, "preview_steps": 2,
            "preview_size": 64}


def wait_for_run(webui, timeout: float = 300) -> dict:
    deadline = time.time() + timeout
    status = webui.get("/lora-lab/v1/train/status")
    while status.get("running") and time.time() < deadline:
        time.sleep(0.5)
        status = webui.get("/lora-lab/v1/train/status")
    return status


def txt2img(webui, prompt: str) -> np.ndarray:
    body = webui.post("/sdapi/v1/txt2img", {"prompt": prompt, "seed": 7, "steps": 4, "width": 64,
                                             "height": 64, "sampler_name": "Euler"})
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(body["images"][0]))), dtype=np.int16)


def test_api_run_leaves_the_model_unchanged_and_the_loader_matches_every_module(webui, dataset) -> None:
    before = webui.get("/lora-lab/v1/model/fingerprint")
    started = webui.post("/lora-lab/v1/train", {"dataset_dir": str(dataset), "name": "t2api", **SETTINGS})
    status = wait_for_run(webui)
    assert status["state"] == "finished", status
    names = [Path(f).name for f in status["files"]]
    assert names == ["t2api-000001.safetensors", "t2api.safetensors"] and started["name"] == "t2api"
    assert webui.get("/lora-lab/v1/model/fingerprint") == before
    report = webui.get("/lora-lab/v1/train/verify/t2api")
    assert report["matched_modules"] == report["file_modules"] > 0, report
    plain = txt2img(webui, "ohwx, red square")
    with_lora = txt2img(webui, "ohwx, red square <lora:t2api:1>")
    assert np.abs(plain - with_lora).mean() > 0.5
    # the generation left the LoRA merged into the weights; the next run takes it out first
    webui.post("/lora-lab/v1/train", {"dataset_dir": str(dataset), "name": "t2api-b", **SETTINGS, "epochs": 1})
    assert wait_for_run(webui)["state"] == "finished"
    assert webui.get("/lora-lab/v1/model/fingerprint") == before


def test_interrupt_saves_the_last_good_state(webui, dataset) -> None:
    webui.post("/lora-lab/v1/train", {"dataset_dir": str(dataset), "name": "t2stop", **SETTINGS,
                                      "epochs": 200, "preview_every_n_epochs": 0})
    deadline = time.time() + 120
    while webui.get("/lora-lab/v1/train/status").get("step", 0) < 3 and time.time() < deadline:
        time.sleep(0.2)
    assert webui.post("/lora-lab/v1/train/interrupt", {})["interrupted"]
    status = wait_for_run(webui)
    assert status["state"] == "interrupted" and status["files"]
    before_next = webui.get("/lora-lab/v1/model/fingerprint")
    assert before_next["patched_forwards"] == 0 and before_next["hooks"] == 0
