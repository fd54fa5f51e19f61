"""The standalone LoRA Lab page in a real browser: Debian's headless chromium via chromedriver."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_steps import tag_folder_then_edit_and_undo

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page_url(tiny_checkpoint) -> Iterator[str]:
    from lora_lab.hosts.standalone.app import Server
    from lora_lab.hosts.standalone.host import StandaloneHost

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
    from lora_lab.hosts.standalone.app import Server
    from lora_lab.hosts.standalone.host import StandaloneHost

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


@pytest.fixture(scope="module")
def tiny_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m lora_lab ui --tiny`, as a newcomer starts it."""
    from lora_lab.cli import build_parser
    from lora_lab.commands.ui import tiny_host
    from lora_lab.hosts.standalone.app import Server

    home = tmp_path_factory.mktemp("tiny-home")
    host = tiny_host(build_parser().parse_args(["ui", "--tiny", "--home", str(home)]))
    server = Server(host).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_ui_tiny_offers_the_tiny_tagger_and_a_missing_tagger_is_said_once(browser, tiny_page: str,
                                                                         tmp_path) -> None:
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser_steps import field, open_sub_tab, replace_text

    Image.new("RGB", (64, 64), "red").save(tmp_path / "a.png")
    browser.get(tiny_page)
    wait = WebDriverWait(browser, 60)
    open_sub_tab(browser, "Dataset")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lora_lab_tag_refresh"))
    # the one installed tagger is chosen on page load, and the refresh button is text, not an emoji
    wait.until(lambda d: field(d, "lora_lab_tag_model").get_attribute("value") == "tiny")
    assert browser.find_element(By.CSS_SELECTOR, "#lora_lab_tag_refresh").text == "Refresh"
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_tag_refresh").click()
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_tag_model input").click()
    wait.until(lambda d: [o for o in d.find_elements(By.CSS_SELECTOR, "#lora_lab_tag_model li")
                          if o.text.replace("✓", "").strip() == "tiny"])  # ✓: the chosen one
    field(browser, "lora_lab_ds_folder").send_keys(str(tmp_path))
    model = field(browser, "lora_lab_tag_model")
    replace_text(model, "no-such-tagger")
    model.send_keys(Keys.ENTER)
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_tag_start").click()
    wait.until(lambda d: "no-such-tagger" in d.find_element(By.CSS_SELECTOR, "#lora_lab_tag_status").text)
    text = browser.find_element(By.CSS_SELECTOR, "#lora_lab_tag_status").text
    assert text.count("no tagger model") == 1 and "Traceback" not in text


def test_the_standalone_review_tab_says_where_sweeps_come_from(browser, tiny_page: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser_steps import click_tab

    browser.get(tiny_page)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lora_lab_tabs button"))
    click_tab(browser, "lora_lab_tabs", "Review")
    note = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#lora_lab_review_standalone"))
    wait.until(lambda d: note.is_displayed())
    assert "LoRA Lab grid" in note.text and "Auto" in note.text


def test_after_tagging_the_summary_counts_the_captions_and_tag_bars_have_length(
        browser, dataset_page: str, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser_steps import click_tab

    browser.get(dataset_page)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lora_lab_ds_load"))
    tag_folder_then_edit_and_undo(browser, tmp_path, "tiny")  # leaves 3 tagged captions
    summary = "#lora_lab_ds_summary"
    wait.until(lambda d: "3 captioned" in d.find_element(By.CSS_SELECTOR, summary).text)
    click_tab(browser, "lora_lab_ds_tabs", "Tags")
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_freq_show").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lora_lab_freq_table .lora-lab-bar"))
    widths = [b.size["width"] for b in browser.find_elements(By.CSS_SELECTOR, "#lora_lab_freq_table .lora-lab-bar")]
    assert max(widths) > 100  # the most frequent tag's bar spans its column, not a 2 px tick


def test_the_train_tab_shows_the_basics_and_folds_the_rest(browser, tiny_page: str, tmp_path) -> None:
    """Basics visible, the rest in collapsed groups, GPU options hidden on a CPU host, the dataset
    taken from the Dataset sub-tab, the plan beside the Train button."""
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.browser_steps import click_tab, field

    folder = tmp_path / "3_ohwx"
    folder.mkdir()
    for i in range(2):
        Image.new("RGB", (64, 64), "red").save(folder / f"{i}.png")
    browser.get(tiny_page)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lora_lab_tabs button"))
    click_tab(browser, "lora_lab_tabs", "Dataset")
    field(browser, "lora_lab_ds_folder").send_keys(str(tmp_path), Keys.ENTER)
    click_tab(browser, "lora_lab_tabs", "Train")
    wait.until(lambda d: field(d, "lora_lab_train_dataset_dir").get_attribute("value") == str(tmp_path))
    for name in ("name", "epochs", "save_every_n_epochs", "resolution", "dim", "alpha", "unet_lr", "te_lr"):
        assert field(browser, f"lora_lab_train_{name}").is_displayed(), name
    for name in ("optimizer", "keep_tokens", "conv_dim", "output_dir"):
        assert not browser.find_element(By.CSS_SELECTOR, f"#lora_lab_train_{name}").is_displayed(), name
    assert not browser.find_elements(By.XPATH, "//*[contains(text(), 'Advanced: gpu')]")
    assert not browser.find_element(By.CSS_SELECTOR, "#lora_lab_train_gradient_checkpointing").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_train_group_steps .label-wrap").click()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#lora_lab_train_optimizer").is_displayed())
    epochs = field(browser, "lora_lab_train_epochs")
    epochs.clear()
    epochs.send_keys("4")
    plan = "#lora_lab_train_actions #lora_lab_train_plan"
    wait.until(lambda d: "24 steps" in d.find_element(By.CSS_SELECTOR, plan).text)  # 2 × 3 × 4


def test_loss_chart_has_axes_and_status_shows_an_eta() -> None:
    from lora_lab.train.status_view import loss_chart_svg, status_html

    svg = loss_chart_svg([1.0, 0.8, 0.9, 0.7], [0.85])
    assert ">loss</text>" in svg and ">step</text>" in svg and ">4</text>" in svg and ">1.000</text>" in svg
    line = status_html({"name": "x", "state": "training", "epoch": 1, "epochs": 2, "step": 5,
                        "total_steps": 50, "eta_seconds": 42.0})
    assert "ETA 42 s" in line


def test_the_eta_ignores_the_warm_up_of_the_first_step() -> None:
    from lora_lab.host.progress import EtaClock

    clock = EtaClock()
    assert clock.remaining(1, 100, now=7.0) is None  # the first step took 7 s of warm-up
    assert clock.remaining(2, 100, now=7.5) == pytest.approx(0.5 * 98)
    assert clock.remaining(11, 100, now=12.0) == pytest.approx(0.5 * 89)


def test_the_auto_panel_runs_the_flow_and_shows_the_report(browser, tiny_page: str, tmp_path) -> None:
    """The first sub-tab: a folder and a name in, the flow runs, the recommendation and the report
    come back; the report then opens in the Review tab beside its sweep."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from lora_lab.devtools.sample_dataset import build_sample_dataset
    from tests.browser_steps import field, open_sub_tab, run_auto_panel

    dataset = build_sample_dataset(tmp_path / "ds", trigger="llpanel", images=6, repeats=1, captions=False)
    browser.get(tiny_page)
    wait = WebDriverWait(browser, 300)
    log = run_auto_panel(browser, dataset, "panel", tmp_path / "run")
    assert "✓ checks" in log and "✓ scores" in log and "Traceback" not in log
    assert browser.find_elements(By.CSS_SELECTOR, "#lora_lab_auto_report iframe")
    assert (tmp_path / "run" / "report.html").is_file()
    browser.save_screenshot(str(Path(os.environ.get("LORA_LAB_SHOTS", tmp_path)) / "auto-panel.png"))

    open_sub_tab(browser, "Review")
    field(browser, "lora_lab_review_path").send_keys(str(tmp_path / "run" / "sweep-main"))
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_review_load").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lora_lab_review_auto_report iframe"))
