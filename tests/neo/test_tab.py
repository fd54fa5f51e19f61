"""The LoRA Lab tab inside the real Forge Neo (gradio 4.40), through the browser as a person uses
it: tag a folder and undo a caption edit, the header names the loaded model, and Auto goes from a
folder of images to a recommendation on Neo's loaded model, its sweep images equal to plain
txt2img."""
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
from tests.browser_steps import open_lora_lab, run_auto_panel, tag_folder_then_edit_and_undo

from .conftest import T2I

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def tagger(neo) -> str:
    build_tiny_tagger(neo.data_dir / "models" / "lora_lab" / "taggers" / "tiny-neo")
    return "tiny-neo"


def test_tag_then_undo_from_the_dataset_tab(neo, browser, tagger: str, tmp_path: Path) -> None:
    open_lora_lab(browser, neo.url)
    tag_folder_then_edit_and_undo(browser, tmp_path, tagger)


def test_the_header_names_the_loaded_model(neo, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_lora_lab(browser, neo.url)
    checkpoint = neo.get("/lora-lab/v1/info")["checkpoint"]
    WebDriverWait(browser, 60).until(
        lambda d: checkpoint in d.find_element(By.CSS_SELECTOR, "#lora_lab_status").get_attribute("textContent"))
    browser.save_screenshot(str(neo.data_dir / "lora-lab-tab.png"))


def test_auto_panel_runs_the_flow_on_neos_model(neo, browser, tagger: str, tmp_path: Path) -> None:
    neo.post("/sdapi/v1/txt2img", T2I)  # a model Neo has just (re)loaded settles at its first generation
    before = neo.get("/lora-lab/v1/model/fingerprint")
    dataset = build_sample_dataset(tmp_path / "ds", trigger="llneo", images=4, repeats=1, captions=False)
    open_lora_lab(browser, neo.url)
    log = run_auto_panel(browser, dataset, "neoauto", tmp_path / "run", tagger=tagger, samples=4)
    assert "✓ training" in log and "✓ sweep" in log and "Traceback" not in log
    assert neo.get("/lora-lab/v1/model/fingerprint") == before, "training left the model as it was"

    report = json.loads((tmp_path / "run" / "report.json").read_text())
    manifest = json.loads(Path(report["manifest"]).read_text())
    render = manifest["parameters"]["render"]
    lora_cell = next(c for c in manifest["cells"] if c["lora"] is not None and c["weight"] == 1.0)
    image = lora_cell["images"][0]
    plain = neo.post("/sdapi/v1/txt2img", {
        "prompt": lora_cell["prompts"][image["prompt"]], "negative_prompt": manifest["negative_prompt"],
        "seed": image["seed"], "steps": render["steps"], "cfg_scale": render["cfg_scale"],
        "width": render["width"], "height": render["height"], "sampler_name": "Euler", "batch_size": 1})
    by_hand = np.asarray(Image.open(io.BytesIO(base64.b64decode(plain["images"][0]))).convert("RGB"))
    swept = np.asarray(Image.open(Path(report["manifest"]).parent / image["file"]).convert("RGB"))
    assert np.array_equal(by_hand, swept)
    shutil.rmtree(neo.data_dir / "models" / "Lora" / "neoauto")
