"""The standalone LoRA Lab page in a real browser: Debian's headless chromium via chromedriver."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.browser

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium and chromium-driver (.ci/run does)")
        pytest.skip("Debian chromium/chromium-driver not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="lora-lab-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", "--window-size=1280,900", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # no driver download
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


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
