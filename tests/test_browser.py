"""The standalone LoRA Lab page in a real browser: Debian's headless chromium via chromedriver."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser_steps import tag_folder_then_edit_and_undo

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page_url(tiny_checkpoint) -> Iterator[str]:
    from lora_lab.glue.standalone_app import Server
    from lora_lab.host.standalone import StandaloneHost

    server = Server(StandaloneHost(tiny_checkpoint)).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_tab_renders_and_refresh_works(browser, page_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page_url)
    wait = WebDriverWait(browser, 60)
    status = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#tab_lora_lab #lora_lab_status")))
    assert "LoRA Lab" in status.text and "tiny-sd1.safetensors (sd1)" in status.text
    assert browser.execute_script("return typeof window.LoraLab === 'object'")
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_refresh").click()
    wait.until(lambda d: "host: standalone" in d.find_element(By.CSS_SELECTOR, "#lora_lab_status").text)


@pytest.fixture(scope="module")
def dataset_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from lora_lab.devtools.tiny_tagger import build_tiny_tagger
    from lora_lab.glue.standalone_app import Server
    from lora_lab.host.standalone import StandaloneHost

    home = tmp_path_factory.mktemp("home")
    build_tiny_tagger(home / "models" / "taggers" / "tiny")
    server = Server(StandaloneHost(home=home)).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_dataset_tab_tags_a_folder_and_undoes_an_edit(browser, dataset_page: str, tmp_path) -> None:
    browser.get(dataset_page)
    tag_folder_then_edit_and_undo(browser, tmp_path, "tiny")
