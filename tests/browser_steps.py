"""What a person does in the LoRA Lab tab, as browser steps shared by the standalone (tier 1),
A1111 (tier 2) and Forge Neo (tier 3) tests: gradio 3.41 and 4.40 pages alike."""
from __future__ import annotations

from pathlib import Path

from PIL import Image


def field(browser, elem_id: str):
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, f"#{elem_id} textarea, #{elem_id} input")


def replace_text(element, text: str) -> None:
    """Type `text` over whatever the field holds (a dropdown may come pre-filled)."""
    from selenium.webdriver.common.keys import Keys

    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(text)


def click_tab(browser, container_id: str, label: str) -> None:
    from selenium.webdriver.common.by import By

    buttons = browser.find_elements(By.CSS_SELECTOR, f"#{container_id} button")
    next(b for b in buttons if b.text.strip() == label).click()


def open_lora_lab(browser, url: str, timeout: float = 240) -> None:
    """Load a WebUI page and open its LoRA Lab tab (the top tab bar differs between gradio 3 and 4)."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, timeout).until(lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('#tabs button'))"
        ".some(b => b.textContent.trim() === 'LoRA Lab' && b.offsetParent !== null)"))
    click_tab(browser, "tabs", "LoRA Lab")


def open_sub_tab(browser, label: str) -> None:
    """Wait for LoRA Lab's sub-tabs (Auto, Dataset, Train, Review) and open one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 120).until(lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, "#lora_lab_tabs button")
                                                 if b.text.strip() == label])
    click_tab(browser, "lora_lab_tabs", label)


def tag_folder_then_edit_and_undo(browser, folder: Path, model_name: str) -> None:
    """Tag three images with a trigger, add a tag to every caption, undo it; checks the files."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    for i, colour in enumerate(["red", "blue", "white"]):
        Image.new("RGB", (96, 64), colour).save(folder / f"pic {i}.png")
    wait = WebDriverWait(browser, 120)
    open_sub_tab(browser, "Dataset")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lora_lab_ds_folder textarea, #lora_lab_ds_folder input"))
    field(browser, "lora_lab_ds_folder").send_keys(str(folder))
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_tag_refresh").click()
    model = field(browser, "lora_lab_tag_model")
    model.click()
    replace_text(model, model_name)
    model.send_keys(Keys.ENTER)
    field(browser, "lora_lab_tag_trigger").send_keys("ohwx")
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_tag_start").click()
    wait.until(lambda d: "tagged 3 of 3" in d.find_element(By.CSS_SELECTOR, "#lora_lab_tag_status").text)
    tagged = {p.name: p.read_bytes() for p in folder.glob("*.txt")}
    assert len(tagged) == 3 and all(b.startswith(b"ohwx, ") for b in tagged.values())

    click_tab(browser, "lora_lab_ds_tabs", "Edit captions")
    field(browser, "lora_lab_edit_tags").send_keys("extra tag")
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_edit_apply").click()
    wait.until(lambda d: "changed 3" in d.find_element(By.CSS_SELECTOR, "#lora_lab_edit_status").text)
    assert all(p.read_text().endswith("extra tag") for p in folder.glob("*.txt"))
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_edit_undo").click()
    wait.until(lambda d: "undid" in d.find_element(By.CSS_SELECTOR, "#lora_lab_edit_status").text)
    assert {p.name: p.read_bytes() for p in folder.glob("*.txt")} == tagged


def open_train_tab_in_webui(browser, url: str, folder: Path) -> None:
    """Two 64 px images in `folder` (a kohya `3_ohwx` folder is typical); the WebUI page open on
    LoRA Lab → Train."""
    folder.mkdir(parents=True)
    for i, colour in enumerate(["teal", "navy"]):
        Image.new("RGB", (64, 64), colour).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(f"ohwx, {colour}")
    open_lora_lab(browser, url)
    click_tab(browser, "lora_lab_tabs", "Train")


TINY_AUTO_SETTINGS = "resolution=64\nmin_bucket_reso=64\ndim=4\nalpha=4\nunet_lr=0.001\nepochs=2\nsave_every_n_epochs=1"


def run_auto_panel(browser, dataset: Path, name: str, out: Path, tagger: str = "", samples: int | None = None) -> str:
    """Fill the Auto sub-tab for the tiny model (quick budget, 2 sampling steps, 2 epochs), start it
    and wait for the recommendation; returns the stage log."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_sub_tab(browser, "Auto")
    field(browser, "lora_lab_auto_dataset").send_keys(str(dataset))
    field(browser, "lora_lab_auto_name").send_keys(name)
    browser.find_element(By.XPATH, "//*[@id='lora_lab_auto_budget']//label[contains(., 'quick')]").click()
    browser.find_element(By.XPATH, "//*[@id='lora_lab_auto_advanced']//*[contains(text(), 'Advanced')]").click()
    field(browser, "lora_lab_auto_out").send_keys(str(out))
    if tagger:
        field(browser, "lora_lab_auto_tagger").send_keys(tagger)
    steps = field(browser, "lora_lab_auto_steps")
    steps.clear()
    steps.send_keys("2")
    if samples:
        field(browser, "lora_lab_auto_samples").send_keys(str(samples))
    field(browser, "lora_lab_auto_settings").send_keys(TINY_AUTO_SETTINGS)
    browser.find_element(By.CSS_SELECTOR, "#lora_lab_auto_start").click()
    WebDriverWait(browser, 600).until(
        lambda d: "Recommended" in d.find_element(By.CSS_SELECTOR, "#lora_lab_auto_status").text
        or "error" in d.find_element(By.CSS_SELECTOR, "#lora_lab_auto_status").get_attribute("innerHTML"))
    log = browser.find_element(By.CSS_SELECTOR, "#lora_lab_auto_log").text
    status = browser.find_element(By.CSS_SELECTOR, "#lora_lab_auto_status").text
    assert "Recommended" in status, f"{status}\n{log}"
    return log
