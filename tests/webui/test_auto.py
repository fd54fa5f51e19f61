"""The Auto panel in a real WebUI, as a person uses it: a folder of images in, the flow trains on
the loaded tiny checkpoint and renders its sweep with the WebUI's own pipeline; each sweep image
equals a plain txt2img with the same prompt (its `<lora:…:w>` tag included) and seed."""
from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lora_lab.devtools.sample_dataset import build_sample_dataset
from lora_lab.devtools.tiny_tagger import build_tiny_tagger
from tests.browser_steps import click_tab, run_auto_panel

pytestmark = pytest.mark.browser


def test_auto_panel_runs_the_flow_and_its_images_equal_plain_txt2img(webui, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    build_tiny_tagger(webui.data_dir / "models" / "lora_lab" / "taggers" / "tiny-auto")
    before = webui.get("/lora-lab/v1/model/fingerprint")
    dataset = build_sample_dataset(tmp_path / "ds", trigger="llwebui", images=6, repeats=1, captions=False)
    browser.get(webui.url)
    WebDriverWait(browser, 240).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#tabs > .tab-nav button"))
    click_tab(browser, "tabs", "LoRA Lab")
    log = run_auto_panel(browser, dataset, "webuiauto", tmp_path / "run", tagger="tiny-auto")
    assert "✓ training" in log and "✓ sweep" in log and "Traceback" not in log
    assert webui.get("/lora-lab/v1/model/fingerprint") == before, "training left the model as it was"

    report = json.loads((tmp_path / "run" / "report.json").read_text())
    lora_dir = webui.data_dir / "models" / "Lora" / "webuiauto"
    assert Path(report["recommendation"]["file"]).parent == lora_dir
    manifest = json.loads(Path(report["manifest"]).read_text())
    render = manifest["parameters"]["render"]
    baseline = manifest["cells"][0]
    lora_cell = next(c for c in manifest["cells"] if c["lora"] is not None and c["weight"] == 1.0)
    for cell in (baseline, lora_cell):
        image = cell["images"][0]
        prompt = cell["prompts"][image["prompt"]]
        assert (cell["lora"] is None) == ("<lora:" not in prompt)
        plain = webui.post("/sdapi/v1/txt2img", {
            "prompt": prompt, "negative_prompt": manifest["negative_prompt"], "seed": image["seed"],
            "steps": render["steps"], "cfg_scale": render["cfg_scale"], "width": render["width"],
            "height": render["height"], "sampler_name": "Euler", "batch_size": 1})["images"][0]
        by_hand = np.asarray(Image.open(io.BytesIO(base64.b64decode(plain))).convert("RGB"))
        swept = np.asarray(Image.open(Path(report["manifest"]).parent / image["file"]).convert("RGB"))
        assert np.array_equal(by_hand, swept), cell["label"]
    webui.post("/sdapi/v1/txt2img", {"prompt": "x", "steps": 1, "width": 64, "height": 64})  # unmerge the LoRA
    shutil.rmtree(lora_dir)  # the session's other tests list the Lora folder's families
    webui.post("/sdapi/v1/refresh-loras", {})
