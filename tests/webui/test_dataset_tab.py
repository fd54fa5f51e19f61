"""The Dataset tab inside a real WebUI: tag a folder with a tagger from the WebUI's models folder,
then undo an edit — through the browser, as a person would."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_steps import click_tab, tag_folder_then_edit_and_undo

pytestmark = pytest.mark.browser


def test_tag_then_undo_from_the_dataset_tab(webui, browser, tmp_path: Path) -> None:
    from lora_lab.devtools.tiny_tagger import build_tiny_tagger

    build_tiny_tagger(webui.data_dir / "models" / "lora_lab" / "taggers" / "tiny-webui")
    browser.get(webui.url)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 120).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#tabs > .tab-nav button"))
    click_tab(browser, "tabs", "LoRA Lab")
    tag_folder_then_edit_and_undo(browser, tmp_path, "tiny-webui")


def test_the_header_names_the_loaded_model_on_a_fresh_page(webui, browser) -> None:
    """The tab is built before the WebUI has loaded its model; the header must not keep saying
    'no model loaded' until someone presses Refresh."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(webui.url)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#tabs > .tab-nav button"))
    checkpoint = webui.get("/lora-lab/v1/info")["checkpoint"]
    wait.until(lambda d: checkpoint in d.find_element(By.CSS_SELECTOR, "#lora_lab_status").get_attribute("textContent"))
