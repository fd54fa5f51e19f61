"""Automatic scores for a sweep: the measures on constructed tag-probability arrays with known
answers, and the whole path (tiny tagger, a rendered sweep, the CLI)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lora_lab.sweep.scores import (
    adherence, artefact, characteristic_tags, f_beta, fidelity, rank_correlation, score_cell, spread,
)

TRAIN = np.array([[0.9, 0.8, 0.1, 0.0, 0.6],
                  [0.95, 0.7, 0.0, 0.2, 0.1],
                  [0.85, 0.9, 0.5, 0.1, 0.0]])


def test_characteristic_tags_are_those_most_training_images_share() -> None:
    assert characteristic_tags(TRAIN).tolist() == [True, True, False, False, False]


def test_an_image_identical_to_a_training_image_has_full_fidelity() -> None:
    chars = characteristic_tags(TRAIN)
    assert fidelity(TRAIN[1], TRAIN, chars) == pytest.approx(1.0)
    unrelated = np.array([0.0, 0.0, 0.0, 0.9, 0.0])
    assert fidelity(unrelated, TRAIN, chars) < 0.5


def test_adherence_is_the_share_of_the_prompts_tags_found() -> None:
    image = np.array([0.9, 0.1, 0.6, 0.2, 0.5])
    assert adherence(image, [2, 3]) == 0.5 and adherence(image, [2, 4]) == 1.0 and adherence(image, []) is None


def test_a_weight_zero_cell_equals_the_baseline_and_has_zero_influence() -> None:
    baseline = np.array([[0.2, 0.7, 0.1, 0.4, 0.3], [0.6, 0.1, 0.8, 0.2, 0.0]])
    cell = score_cell(baseline.copy(), TRAIN, characteristic_tags(TRAIN), [[2], [2]], baseline)
    assert cell.influence == pytest.approx(0.0, abs=1e-12) and cell.diversity == pytest.approx(1.0)


def test_identical_images_across_seeds_have_zero_diversity_and_are_gated_as_collapsed() -> None:
    baseline = np.array([[0.2, 0.7, 0.1, 0.4, 0.3], [0.6, 0.1, 0.8, 0.2, 0.0]])
    same = np.stack([TRAIN[0], TRAIN[0]])
    assert spread(same) == pytest.approx(0.0, abs=1e-12)
    cell = score_cell(same, TRAIN, characteristic_tags(TRAIN), [[2], [2]], baseline)
    assert cell.diversity == pytest.approx(0.0, abs=1e-12) and cell.score == 0 and "collapsed" in cell.gated


def test_blank_images_gate_the_cell_and_fbeta_balances_the_two() -> None:
    assert artefact(np.full((8, 8, 3), 255)) == "blank or uniform image"
    assert artefact(np.array([[np.nan, 1.0]])) == "non-finite pixels"
    noisy = np.random.default_rng(0).integers(0, 255, (8, 8, 3))
    assert artefact(noisy) is None
    assert f_beta(1.0, 1.0) == 1.0 and f_beta(0.9, 0.1) < 0.2 and f_beta(0.5, None) == 0.5
    cell = score_cell(TRAIN[:2], TRAIN, characteristic_tags(TRAIN), [[], []], problems=[None, "blank or uniform image"])
    assert cell.score == 0 and cell.gated == "blank or uniform image"


def test_rank_correlation() -> None:
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert rank_correlation([1, 2], [1, 2]) is None


# --- the whole path --------------------------------------------------------------------------------

def pattern(seed: int, side: int = 48) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(base).resize((side, side), Image.Resampling.BICUBIC)


@pytest.fixture
def scored_sweep(tmp_path: Path):
    from .test_review_tab import make_sweep

    manifest = make_sweep(tmp_path)
    for cell in manifest.cells:  # textured images: a solid colour is gated as blank
        for i, image in enumerate(cell.images):
            seed = 1000 * i + (0 if cell.lora is None else 10 * (cell.row or 0) + int(10 * (cell.weight or 0)))
            pattern(seed).save(manifest.resolve(image.file))
    data = tmp_path / "train"
    data.mkdir()
    for i in range(3):
        pattern(i).save(data / f"{i}.png")
    return manifest, data


def test_scoring_a_sweep_stores_every_cell_and_a_shortlist(scored_sweep, tiny_tagger_dir: Path) -> None:
    from lora_lab.sweep.scoring import load_scores, score_sweep, shortlist

    manifest, data = scored_sweep
    document = score_sweep(manifest, tiny_tagger_dir, data)
    assert load_scores(manifest) == json.loads(json.dumps(document))
    from lora_lab.sweep.manifest import load_manifest

    on_disk = load_manifest(manifest.path)  # stored in the manifest beside each cell and image
    lora_cell = next(c for c in on_disk.cells if c.lora is not None)
    assert lora_cell.scores["score"] == document["cells"][str(lora_cell.index)]["score"]
    assert all(image.scores is not None and "fidelity" in image.scores for image in lora_cell.images)
    assert load_scores(on_disk) == json.loads(json.dumps(document))
    assert set(document["cells"]) == {str(c.index) for c in manifest.cells}
    baseline = next(c for c in manifest.cells if c.lora is None)
    assert document["cells"][str(baseline.index)]["influence"] is None
    lora_cells = [document["cells"][str(c.index)] for c in manifest.cells if c.lora is not None]
    assert all(0 <= e["fidelity"] <= 1 and e["influence"] is not None for e in lora_cells)
    assert all(len(e["images"]) == 2 for e in lora_cells)
    best = shortlist(manifest, document)
    assert 1 <= len(best) <= 3 and best == sorted(best, key=lambda b: -b["score"])


def test_the_cli_prints_the_table_and_json(scored_sweep, tiny_tagger_dir: Path, capsys) -> None:
    from lora_lab.cli import main

    manifest, data = scored_sweep
    assert main(["sweep", "score", str(manifest.folder), "--tagger", str(tiny_tagger_dir),
                 "--dataset", str(data)]) == 0
    out = capsys.readouterr().out
    assert "score" in out and "fidelity" in out and "alice-000002 @ 1.0" in out and "shortlist:" in out
    assert main(["sweep", "score", str(manifest.path), "--tagger", str(tiny_tagger_dir), "--dataset", str(data),
                 "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["beta"] == 1.0 and "shortlist" in document


def test_without_a_tagger_or_training_images_the_message_says_what_to_do(scored_sweep, tmp_path: Path,
                                                                        capsys) -> None:
    from lora_lab.cli import main

    manifest, data = scored_sweep
    assert main(["sweep", "score", str(manifest.path), "--home", str(tmp_path / "empty")]) == 2
    assert "no tagger installed" in capsys.readouterr().err


def test_the_api_rescores_as_a_job_and_serves_the_scores(scored_sweep, tiny_tagger_dir: Path) -> None:
    import shutil
    import time

    from lora_lab.hosts.standalone.app import Server
    from lora_lab.hosts.standalone.host import StandaloneHost
    from lora_lab.sweep.review import set_ratings

    from .test_api_dataset import call

    manifest, data = scored_sweep
    home = manifest.folder.parents[1]  # make_sweep puts the sweep under <home>/sweeps
    shutil.copytree(tiny_tagger_dir, home / "models" / "taggers" / "tiny")
    server = Server(StandaloneHost(None, home=home), allow=[data]).start()
    try:
        api = server.url + "lora-lab/v1/sweep"
        assert call(f"{api}/scores?path={manifest.path}")[0] == 404
        status, job = call(f"{api}/rescore", {"path": str(manifest.path), "dataset": str(data)})
        assert status == 200, job
        deadline = time.time() + 60
        while job["running"] and time.time() < deadline:
            time.sleep(0.1)
            job = call(server.url + f"lora-lab/v1/jobs/{job['id']}")[1]
        assert job["error"] is None, job
        lora_cells = [c for c in manifest.cells if c.lora is not None]
        set_ratings(manifest, {c.images[0].file: ("hit" if i % 2 else "miss") for i, c in enumerate(lora_cells)})
        status, view = call(f"{api}/scores?path={manifest.path}")
        assert status == 200 and len(view["cells"]) == len(manifest.cells) and view["shortlist"]
        assert "agreement" in view
    finally:
        server.stop()


def test_the_review_tab_scores_and_shows_the_score_map_and_shortlist(scored_sweep, tiny_tagger_dir: Path) -> None:
    import shutil

    from lora_lab.glue.tabs.review_tab import open_sweep, rescore
    from lora_lab.hosts.standalone.host import StandaloneHost

    from .test_review_tab import value

    manifest, data = scored_sweep
    home = manifest.folder.parents[1]
    shutil.copytree(tiny_tagger_dir, home / "models" / "taggers" / "tiny")
    run = manifest.rows[0].file  # the run file names the dataset, as LoRA Lab's trainer writes it
    Path(run).with_name("alice.lora_lab.json").write_text(json.dumps({"config": {"dataset_dir": str(data)}}))
    before = open_sweep(str(manifest.path))
    assert "Not scored yet" in value(before[5])
    host = StandaloneHost(None, home=home)
    after = rescore(lambda: host, str(manifest.path), 0, 0, "")
    assert "scored 7 cell(s)" in value(after[0])
    shown = value(after[5])
    assert "Score (F1 of fidelity and adherence)" in shown and "Review these first" in shown
    assert all(f"lora-lab-{m}" in shown for m in ("fidelity", "adherence", "diversity", "influence"))
    assert "proxies measured with a tagger" in value(after[5])


def _fake_scores(manifest, best_cell: int) -> dict:
    return {"cells": {str(c.index): {"score": 0.9 if c.index == best_cell else 0.4, "gated": None}
                      for c in manifest.cells if c.lora is not None}}


def test_scores_suggest_before_ratings_and_break_ties_after() -> None:
    import tempfile

    from lora_lab.sweep.review import hit_rates, recommend, set_ratings

    from .test_review_tab import make_sweep

    manifest = make_sweep(Path(tempfile.mkdtemp()))
    best = next(c for c in manifest.cells if c.lora == "alice-000002" and c.weight == 1.0)
    scores = _fake_scores(manifest, best.index)
    suggestion = recommend(manifest, hit_rates(manifest, {}), scores)
    assert (suggestion.lora, suggestion.weight) == ("alice-000002", 1.0)
    assert "nothing is rated yet" in suggestion.reason and "automatic score" in suggestion.reason
    tie = {c.images[0].file: "hit" for c in manifest.cells if c.lora is not None}  # every cell 100 %
    set_ratings(manifest, tie)
    chosen = recommend(manifest, hit_rates(manifest, tie), scores)
    assert (chosen.lora, chosen.weight) == ("alice-000002", 1.0) and "breaks the tie" in chosen.reason
    without = recommend(manifest, hit_rates(manifest, tie))
    assert (without.lora, without.weight) == ("alice-000001", 0.5)  # the earlier epoch, the lower weight


def test_promote_writes_the_chosen_weight_into_the_card(tmp_path: Path) -> None:
    from lora_lab.sweep.review import set_ratings
    from lora_lab.sweep.review_data import promote_file

    from .test_review_tab import make_sweep

    manifest = make_sweep(tmp_path)
    best = next(c for c in manifest.cells if c.lora == "alice-000002" and c.weight == 0.5)
    set_ratings(manifest, {best.images[0].file: "hit"})
    Path(manifest.rows[1].file).with_suffix(".json").write_text('{"activation text": "alice"}', encoding="utf-8")
    _, paths = promote_file(manifest, "alice-v1", tmp_path / "Lora")
    card = json.loads(paths[0].with_suffix(".json").read_text(encoding="utf-8"))
    assert card == {"activation text": "alice", "preferred weight": 0.5}
