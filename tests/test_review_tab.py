"""The Review sub-tab and the /lora-lab/v1/sweep API on a sweep written by the sweep core: the tab's
handlers called as gradio calls them, the routes through the real standalone server, and marking
a hit by keyboard in headless chromium."""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save_file

from lora_lab.glue.tabs import review_tab
from lora_lab.sweep.review_data import open_sweep
from lora_lab.sweep.family import find_family
from lora_lab.sweep.manifest import SweepManifest, new_manifest
from lora_lab.sweep.plan import build_plan
from lora_lab.sweep.review import load_ratings

MESSAGE, CELL, IMAGE, STRIP, GALLERY, RATES, ADVICE, FINAL, PATH, AT_CELL, AT_IMAGE = range(11)


def write_lora(path: Path, epoch: int | None) -> None:
    meta = {"ss_output_name": "alice", "ss_session_id": "run1", "ss_training_started_at": "1700000000"}
    if epoch is not None:
        meta["ss_epoch"] = str(epoch)
    if epoch in (1, 3):  # what LoRA Lab's trainer writes after each epoch (epoch 2: validation off)
        meta.update(lora_lab_stable_loss=f"{0.2 / epoch:.6f}", lora_lab_val_loss=f"{0.3 / epoch:.6f}")
    save_file({"lora_unet_x.lora_down.weight": np.full((2, 4), epoch or 9, np.float32)}, str(path), meta)


def make_sweep(home: Path, rendered_cells: int | None = None) -> SweepManifest:
    """alice (epochs 1, 2 + final 3) × weights 0.5, 1 + baseline, 2 seeds, one checkpoint; images
    are solid colours so each file differs. `rendered_cells` leaves the rest unrendered."""
    lora_dir = home / "Lora"
    lora_dir.mkdir(parents=True)
    for epoch in (1, 2):
        write_lora(lora_dir / f"alice-{epoch:06d}.safetensors", epoch)
    write_lora(lora_dir / "alice.safetensors", 3)
    plan = build_plan(find_family(lora_dir, "alice"), [0.5, 1.0], ["photo of alice"], [10, 11], baseline=True,
                      checkpoints=["tiny.safetensors"])
    folder = home / "sweeps" / "00001-alice"
    (folder / "images").mkdir(parents=True)
    manifest = new_manifest(plan, folder / "sweep.json")
    for cell in plan.cells[:rendered_cells]:
        for i, (_, seed) in enumerate(cell.images):
            file = folder / "images" / f"{cell.index:04d}-{seed}.png"
            Image.new("RGB", (16, 16), (cell.index * 20, i * 100, 50)).save(file)
            manifest.record_image(cell.index, i, file, f"photo of alice\nSeed: {seed}")
    manifest.save()
    return manifest


@pytest.fixture
def sweep(tmp_path: Path) -> SweepManifest:
    return make_sweep(tmp_path)


NO_CHANGE = gr.update()


def value(update: Any) -> Any:
    return update.get("value") if isinstance(update, dict) else update


def cell_of(manifest: SweepManifest, label: str) -> int:
    return next(c.index for c in manifest.cells if c.label == label)


def test_opening_a_sweep_shows_its_first_cell_and_an_empty_heat_map(sweep: SweepManifest) -> None:
    out = review_tab.open_sweep(str(sweep.folder))  # the folder is enough

    assert "alice: 7 of 7 cells rendered" in out[MESSAGE]
    assert out[CELL]["choices"][0] == "1. no LoRA" and value(out[CELL]) == "1. no LoRA"
    assert value(out[IMAGE]) == str(sweep.image_path(0, 0)) and "not rated" in out[IMAGE]["label"]
    assert [caption for _, caption in value(out[GALLERY])] == ["seed 10", "seed 11"]
    assert "epoch 1" in out[RATES] and "no LoRA" in out[RATES] and "lora-lab-best" not in out[RATES]
    assert "Rate images" in out[ADVICE]
    assert value(out[FINAL]) == "alice-best"
    assert (out[PATH], out[AT_CELL], out[AT_IMAGE]) == (str(sweep.path.resolve()), 0, 0)


def test_marking_saves_beside_the_manifest_moves_on_and_updates_the_recommendation(
        sweep: SweepManifest) -> None:
    path = str(sweep.path)
    cell = cell_of(sweep, "epoch 2 @ 0.5")

    first = review_tab.mark(path, cell, 0, "hit")
    second = review_tab.mark(path, first[AT_CELL], first[AT_IMAGE], "miss")

    assert (first[AT_CELL], first[AT_IMAGE]) == (cell, 1)  # next image of the same cell
    assert first[GALLERY] == NO_CHANGE  # same cell: the gallery is not sent again
    assert (second[AT_CELL], second[AT_IMAGE]) == (cell + 1, 0)  # then the next cell
    assert second[GALLERY]["value"]
    files = [image.file for image in sweep.cells[cell].images]
    assert load_ratings(sweep) == {files[0]: "hit", files[1]: "miss"}
    assert "50%" in second[RATES] and "lora-lab-best" in second[RATES]
    assert "Recommended: epoch 2 at weight 0.5" in second[ADVICE]
    assert "&lt;lora:alice-000002:0.5&gt;" in second[ADVICE]


def test_ratings_survive_a_restart_and_can_be_cleared(sweep: SweepManifest) -> None:
    from lora_lab.sweep import review_data

    review_tab.mark(str(sweep.path), 1, 0, "hit")
    review_data._cache.clear()  # what a restart forgets
    reopened = review_tab.view(str(sweep.path), 1, 0)
    assert "lora-lab-hit lora-lab-current" in reopened[STRIP] and "· hit" in reopened[IMAGE]["label"]

    review_tab.mark(str(sweep.path), 1, 0, "unrated")
    assert load_ratings(sweep) == {}


def test_keys_step_across_cells_and_skip_unrendered_ones(tmp_path: Path) -> None:
    manifest = make_sweep(tmp_path, rendered_cells=3)
    path = str(manifest.path)

    back = review_tab.step(path, 0, 0, -1)
    on = review_tab.step(path, 2, 1, 1)  # last rendered image: stays
    picked = review_tab.pick_cell(path, "5. epoch 2 @ 0.5 (not rendered)", 0)

    assert (back[AT_CELL], back[AT_IMAGE]) == (0, 0)
    assert (on[AT_CELL], on[AT_IMAGE]) == (2, 1)
    assert "(not rendered)" in picked[CELL]["choices"][4]
    assert value(picked[IMAGE]) is None and value(picked[GALLERY]) == []
    refused = review_tab.mark(path, 4, 0, "hit")
    assert "was not rendered" in refused[MESSAGE] and refused[AT_CELL] == NO_CHANGE


def test_bad_input_gives_a_message_and_changes_nothing(sweep: SweepManifest, tmp_path: Path) -> None:
    missing = review_tab.open_sweep(str(tmp_path / "nowhere" / "sweep.json"))
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    broken = review_tab.open_sweep(str(tmp_path / "broken.json"))
    empty = review_tab.mark("", 0, 0, "hit")

    assert "does not exist" in missing[MESSAGE] and "lora-lab-error" in missing[MESSAGE]
    assert "not valid JSON" in broken[MESSAGE]
    assert "enter the path" in empty[MESSAGE]
    for out in (missing, broken, empty):
        assert all(update == NO_CHANGE for update in out[1:])


def test_promote_copies_the_recommended_epoch_and_touches_nothing_else(sweep: SweepManifest,
                                                                       standalone_home: Any) -> None:
    host, home = standalone_home
    lora_dir = home / "Lora"
    before = {p.name: p.read_bytes() for p in lora_dir.iterdir()}
    cell = cell_of(sweep, "epoch 1 @ 1")
    review_tab.mark(str(sweep.path), cell, 0, "hit")

    done = review_tab.promote(lambda: host, str(sweep.path), "alice-best", review_tab.PROMOTE_MODES[0])
    again = review_tab.promote(lambda: host, str(sweep.path), "alice-best", review_tab.PROMOTE_MODES[0])

    assert "Copied epoch 1" in done and "alice-best.safetensors" in done
    assert (lora_dir / "alice-best.safetensors").read_bytes() == before["alice-000001.safetensors"]
    assert {p.name: p.read_bytes() for p in lora_dir.iterdir() if p.name in before} == before
    assert "not overwriting" in again and "lora-lab-error" in again


@pytest.fixture
def standalone_home(tmp_path: Path) -> Any:
    from lora_lab.hosts.standalone.host import StandaloneHost

    return StandaloneHost(None, home=tmp_path), tmp_path


def test_recent_sweeps_are_found_where_the_host_keeps_them(sweep: SweepManifest,
                                                           standalone_home: Any) -> None:
    host, home = standalone_home
    assert review_tab.recent_sweeps(lambda: host, "")["choices"] == [str(sweep.path.resolve())]
    assert review_tab.recent_sweeps(lambda: host, str(home / "Lora"))["choices"] == []


# --- the API, through the real standalone server ---------------------------------------------------

@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, SweepManifest]]:
    from lora_lab.hosts.standalone.app import Server
    from lora_lab.hosts.standalone.host import StandaloneHost

    manifest = make_sweep(tmp_path)
    running = Server(StandaloneHost(None, home=tmp_path)).start()
    try:
        yield running.url + "lora-lab/v1/sweep", manifest
    finally:
        running.stop()


def call(url: str, payload: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
            kind = response.headers.get("content-type", "")
            return response.status, json.loads(body) if "json" in kind else body
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_sweep_routes(server: tuple[str, SweepManifest]) -> None:
    base, manifest = server
    q = urllib.parse.urlencode({"path": str(manifest.folder)})
    first = manifest.cells[cell_of(manifest, "epoch 2 @ 1")].images[0].file

    status, families = call(f"{base}/families")
    assert status == 200 and [f["key"] for f in families["families"]] == ["alice@run1"]
    assert [f["name"] for f in families["families"][0]["files"]] == ["alice-000001", "alice-000002", "alice"]
    assert call(f"{base}/sweeps")[1]["sweeps"] == [str(manifest.path.resolve())]
    status, doc = call(f"{base}/manifest?{q}")
    assert status == 200 and doc["family"] == "alice" and len(doc["cells"]) == 7

    status, saved = call(f"{base}/ratings", {"path": str(manifest.path), "ratings": {first: "hit"}})
    assert status == 200 and saved["ratings"] == {first: "hit"}
    assert call(f"{base}/ratings?{q}")[1]["ratings"] == {first: "hit"}
    status, rates = call(f"{base}/hit-rates?{q}")
    assert status == 200 and rates["recommendation"]["tag"] == "<lora:alice-000002:1>"
    assert rates["hit_rates"]["matrix"][1][1]["rate"] == 1.0

    status, image = call(f"{base}/file?{q}&" + urllib.parse.urlencode({"name": first}))
    assert status == 200 and image.startswith(b"\x89PNG")
    status, promoted = call(f"{base}/promote",
                            {"path": str(manifest.path), "final_name": "alice-v1", "move": True})
    assert status == 200 and promoted["promoted"] == "epoch 2"
    assert promoted["files"] == [str(manifest.rows[1].file).replace("alice-000002", "alice-v1")]
    assert not Path(manifest.rows[1].file).exists()


def test_sweep_routes_refuse_bad_input_with_the_reason(server: tuple[str, SweepManifest]) -> None:
    base, manifest = server
    q = urllib.parse.urlencode({"path": str(manifest.path)})

    missing = str(manifest.path.parent.parent / "nowhere" / "sweep.json")
    assert call(f"{base}/manifest?path={missing}") == (404, {"detail": f"{missing} does not exist"})
    assert call(f"{base}/manifest?path=/nowhere/sweep.json")[0] == 403  # outside the allowed folders
    status, bad = call(f"{base}/ratings", {"path": str(manifest.path), "ratings": {"x.png": "hit"}})
    assert status == 400 and "not an image of this sweep" in bad["detail"]
    status, bad = call(f"{base}/file?{q}&name=../../Lora/alice.safetensors")
    assert status == 400 and "not a file of the sweep" in bad["detail"]
    status, bad = call(f"{base}/promote", {"path": str(manifest.path), "final_name": "x"})
    assert status == 400 and "nothing is rated yet" in bad["detail"]
    status, bad = call(f"{base}/promote", {"path": str(manifest.path), "final_name": "../x", "row": 0})
    assert status == 400 and "cannot be a LoRA name" in bad["detail"]
    assert sorted(p.name for p in Path(manifest.rows[0].file).parent.iterdir()) == [
        "alice-000001.safetensors", "alice-000002.safetensors", "alice.safetensors"]


# --- keyboard, in a real browser ------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.mark.browser
def test_marking_a_hit_by_keyboard(tmp_path: Path) -> None:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("Debian chromium/chromium-driver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from lora_lab.hosts.standalone.app import Server
    from lora_lab.hosts.standalone.host import StandaloneHost

    manifest = make_sweep(tmp_path)
    server = Server(StandaloneHost(None, home=tmp_path)).start()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(server.url)
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, "#lora_lab_tabs button")
                              if b.text.strip() == "Review"])[0].click()
        load = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#lora_lab_review_load"))
        wait.until(lambda d: load.is_displayed())
        field = driver.find_element(By.CSS_SELECTOR, "#lora_lab_review_path textarea")
        field.send_keys(str(manifest.path))
        load.click()
        message = (By.CSS_SELECTOR, "#lora_lab_review_message")
        wait.until(lambda d: "7 of 7 cells" in d.find_element(*message).text)

        field.send_keys("h")  # typing in a field must not rate
        driver.find_element(By.CSS_SELECTOR, "#lora_lab_review_strip").click()  # focus out of the field
        driver.switch_to.active_element.send_keys("h")
        wait.until(lambda d: "marked hit" in d.find_element(*message).text)
    finally:
        driver.quit()
        server.stop()
    assert load_ratings(open_sweep(manifest.path)) == {manifest.cells[0].images[0].file: "hit"}


def test_review_shows_each_epochs_validation_loss(sweep: SweepManifest) -> None:
    from lora_lab.sweep.review_data import report
    from lora_lab.sweep.review_html import heatmap

    result = report(sweep)
    assert result.losses == [{"stable": 0.2, "val": 0.3}, {"stable": None, "val": None},
                             {"stable": pytest.approx(0.066667), "val": 0.1}]
    page = heatmap(result.rates, result.recommendation, result.losses)
    assert "loss stable / val" in page and "0.2000 / 0.3000" in page and "– / –" in page
    assert result.to_json()["epoch_losses"][0] == {"stable": 0.2, "val": 0.3}
