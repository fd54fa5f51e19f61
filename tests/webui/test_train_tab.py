"""A run started from the Train tab of a real WebUI, as a person would: settings, Train, done."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_steps import field, open_train_tab_in_webui

pytestmark = pytest.mark.browser


def test_train_tab_run_completes(webui, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    folder = tmp_path / "train" / "3_ohwx"
    before = webui.get("/lora-lab/v1/model/fingerprint")
    open_train_tab_in_webui(browser, webui.url, folder)
    wait = WebDriverWait(browser, 240)
    for name, value in [("dataset_dir", str(folder.parent)), ("name", "t2tab")]:
        field(browser, f"lora_lab_train_{name}").send_keys(value)
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_train_group_output .label-wrap").click()  # folded
    wait.until(lambda d: field(d, "lora_lab_train_preview_every_n_epochs").is_displayed())
    for name, value in [("epochs", "1"), ("resolution", "64"), ("dim", "4"), ("alpha", "4"),
                        ("preview_every_n_epochs", "1")]:
        box = field(browser, f"lora_lab_train_{name}")
        box.clear()
        box.send_keys(value)
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_train_start").click()
    # the WebUI's own progress bar follows the run (it is a WebUI task)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#tab_lora_lab .progressDiv"))
    wait.until(lambda d: "finished" in d.find_element(By.CSS_SELECTOR, "#lora_lab_train_status").text)
    text = browser.find_element(By.CSS_SELECTOR, "#lora_lab_train_status").text
    assert "t2tab.safetensors" in text
    assert (webui.data_dir / "models" / "Lora" / "t2tab.safetensors").is_file()
    assert webui.get("/lora-lab/v1/model/fingerprint") == before
