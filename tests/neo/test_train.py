"""Training in the real Forge Neo 2.26 against the SDXL model it has loaded, from the API: UNet and
UNet + CLIP-L + bigG runs finish, leave the model exactly as found (also after Stop), write files
every module of which Neo's own Lora loader matches, and change Neo's output; the trainer's
conditioning equals Neo's get_learned_conditioning."""
from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tests.webui.test_train import wait_for_run  # noqa: F401  (polls /train/status in any host)

from .conftest import T2I

SETTINGS = {"epochs": 2, "save_every_n_epochs": 1, "resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128,
            "dim": 4, "alpha": 4, "preview_every_n_epochs": 1, "preview_steps": 2, "preview_size": 64}


def txt2img(neo, prompt: str) -> np.ndarray:
    body = neo.post("/sdapi/v1/txt2img", {**T2I, "prompt": prompt})
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(body["images"][0]))), dtype=np.int16)


def test_lora_lab_is_registered_as_the_neo_host(neo) -> None:
    info = neo.get("/lora-lab/v1/info")
    assert info["host"] == "forge-neo" and info["host_version"] == "2.26", info
    assert info["model_family"] == "sdxl" and info["checkpoint"].startswith("neo-sdxl"), info
    assert "lora lab grid" in [s.lower() for s in neo.get("/sdapi/v1/scripts")["txt2img"]]


def test_unet_run_leaves_the_model_as_found_and_neos_loader_matches_every_module(neo, dataset: Path) -> None:
    before = neo.get("/lora-lab/v1/model/fingerprint")
    neo.post("/lora-lab/v1/train", {"dataset_dir": str(dataset), "name": "neoxl", **SETTINGS,
                                    "unet_lr": 5e-3, "te_lr": 0.0})
    status = wait_for_run(neo)
    assert status["state"] == "finished", status
    assert [Path(f).name for f in status["files"]] == ["neoxl-000001.safetensors", "neoxl.safetensors"]
    assert not [n for n in status["notes"] if "preview" in n and "failed" in n], status["notes"]
    assert neo.get("/lora-lab/v1/model/fingerprint") == before
    report = neo.get("/lora-lab/v1/train/verify/neoxl")
    assert report["matched_modules"] == report["file_modules"] > 100, report
    plain = txt2img(neo, "ohwx, red square")
    assert np.abs(plain - txt2img(neo, "ohwx, red square <lora:neoxl:1>")).mean() > 0.5
    assert neo.get("/lora-lab/v1/model/fingerprint") == before  # the merged LoRA is taken out again


def test_unet_and_both_text_encoders_with_conv_layers(neo, dataset: Path) -> None:
    before = neo.get("/lora-lab/v1/model/fingerprint")
    neo.post("/lora-lab/v1/train", {"dataset_dir": str(dataset), "name": "neoxlte", **SETTINGS, "epochs": 1,
                                    "unet_lr": 5e-3, "te_lr": 1e-3, "conv_dim": 4, "conv_alpha": 4,
                                    "preview_every_n_epochs": 0})
    status = wait_for_run(neo)
    assert status["state"] == "finished", status
    assert neo.get("/lora-lab/v1/model/fingerprint") == before
    report = neo.get("/lora-lab/v1/train/verify/neoxlte")
    assert report["matched_modules"] == report["file_modules"], report
    plain = txt2img(neo, "ohwx, red square")
    assert np.abs(plain - txt2img(neo, "ohwx, red square <lora:neoxlte:1>")).mean() > 0.5


def test_a_stopped_run_leaves_the_model_as_found(neo, dataset: Path) -> None:
    before = neo.get("/lora-lab/v1/model/fingerprint")
    neo.post("/lora-lab/v1/train", {"dataset_dir": str(dataset), "name": "neostop", **SETTINGS, "epochs": 20,
                                    "unet_lr": 5e-3, "te_lr": 1e-3, "preview_every_n_epochs": 0})
    deadline = time.time() + 120
    while neo.get("/lora-lab/v1/train/status").get("step", 0) < 2 and time.time() < deadline:
        time.sleep(0.2)
    assert neo.post("/lora-lab/v1/train/interrupt", {})["interrupted"]
    assert wait_for_run(neo)["state"] == "interrupted"
    assert neo.get("/lora-lab/v1/model/fingerprint") == before


def test_our_conditioning_equals_neos_get_learned_conditioning(neo) -> None:
    body = neo.get("/lora-lab/v1/model/conditioning-check?width=64&height=64")
    assert body["crossattn_max_diff"] < 1e-5 and body["vector_max_diff"] < 1e-5, body


def test_a_failed_run_leaves_the_model_as_found_and_says_why(neo, dataset: Path) -> None:
    """A learning rate far too high: the run stops at the step its loss stops being a number, names
    the rates to lower, and Neo's model is exactly as before."""
    before = neo.get("/lora-lab/v1/model/fingerprint")
    neo.post("/lora-lab/v1/train", {"dataset_dir": str(dataset), "name": "neofail", **SETTINGS,
                                    "unet_lr": 1e12, "te_lr": 1e-4, "preview_every_n_epochs": 0})
    status = wait_for_run(neo)
    assert status["state"] == "failed" and "lower the learning rates" in status["message"], status
    assert neo.get("/lora-lab/v1/model/fingerprint") == before
