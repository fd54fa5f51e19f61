"""The one-run flow (`auto`) on the tiny model and tagger, standalone: every stage runs, the JSON
matches the files, a second run resumes, an interrupt in any stage is continued, and `--ab
captions` trains two variants on identical plans."""
from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pytest

from lora_lab.auto.context import Refused
from lora_lab.auto.flow import run_auto
from lora_lab.auto.options import AutoOptions
from lora_lab.devtools.sample_dataset import build_sample_dataset
from lora_lab.host.progress import RecordingProgress
from lora_lab.hosts.standalone.host import StandaloneHost

TINY = {"resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128, "dim": 4, "alpha": 4.0,
        "unet_lr": 1e-3, "te_lr": 1e-4, "mixed_precision": "no", "validation_images": 2}
STAGES = ["checks", "tagging", "pruning", "plan", "training", "sweep", "scores"]


class StopIn(RecordingProgress):
    """Sets the host's interrupt once job `job` reports step `after` or later."""

    def __init__(self, job: str | None = None, after: int = 1) -> None:
        super().__init__()
        self.target, self.after = job, after
        self.host: StandaloneHost | None = None

    def update(self, step, total=None, text="", image=None) -> None:
        super().update(step, total, text, image)
        if self.host is not None and self.job == self.target and step >= self.after:
            self.host.interrupt.set()


@pytest.fixture
def host_factory(tiny_checkpoint: Path, tmp_path: Path):
    def make(progress: RecordingProgress | None = None) -> StandaloneHost:
        progress = progress or RecordingProgress()
        host = StandaloneHost(tiny_checkpoint, home=tmp_path / "home", progress=progress, threads=1)
        if isinstance(progress, StopIn):
            progress.host = host
        return host
    return make


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = build_sample_dataset(tmp_path / "ds", trigger="lltest", images=8, repeats=1, captions=False)
    (root / "1_lltest" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return root


def options(dataset: Path, tmp_path: Path, tagger: Path, name: str = "autotest", **extra) -> AutoOptions:
    return AutoOptions(dataset=dataset, name=name, out=tmp_path / "run", budget="quick", tagger=str(tagger),
                       sweep_steps=2, samples_per_epoch=8, epochs=4, train=dict(TINY), **extra)


def quiet(lines: list[str]):
    return lines.append


def test_whole_flow_json_matches_files_and_second_run_skips(host_factory, dataset, tmp_path, tiny_tagger_dir):
    said: list[str] = []
    opts = options(dataset, tmp_path, tiny_tagger_dir)
    doc = run_auto(host_factory(), opts, "tiny", quiet(said))
    assert doc["state"] == "finished"
    assert [s["name"] for s in doc["stages"]] == STAGES + ["report"]
    assert all(s["state"] == "done" for s in doc["stages"])
    # the bad image is named with its reason and left out; every other image was tagged trigger first
    assert [Path(b["path"]).name for b in doc["dataset"]["left_out"]] == ["broken.png"]
    captions = sorted((tmp_path / "run" / "images").glob("*.txt"))
    assert len(captions) == 8 and all(c.read_text().startswith("lltest") for c in captions)
    assert not list((dataset / "1_lltest").glob("*.txt")), "the person's folder is never written"
    # plan: repeats from the budget, folders as kohya reads them
    assert doc["plan"]["folder"] == "1_lltest" and doc["plan"]["epochs"] == 4
    # epochs: one per saved file, losses from the files themselves
    files = [Path(e["file"]) for e in doc["epochs"]]
    assert [f.name for f in files] == ["autotest-000002.safetensors", "autotest.safetensors"]
    assert all(f.is_file() for f in files) and [e["epoch"] for e in doc["epochs"]] == [2, 4]
    assert all(e["train_loss"] is not None and e["stable_loss"] is not None for e in doc["epochs"])
    assert [e["epoch"] for e in doc["loss_curve"]] == [1, 2, 3, 4], "the chart has every epoch, saved or not"
    assert doc["loss_curve"][1]["train_loss"] == pytest.approx(doc["epochs"][0]["train_loss"], abs=1e-6)
    # cells: baseline + 2 files × 3 weights, each scored; the images are on disk
    assert len(doc["cells"]) == 7 and doc["cells"][0]["lora"] is None
    assert {(c["epoch"], c["weight"]) for c in doc["cells"][1:]} == {(e, w) for e in (2, 4) for w in (0.6, 0.8, 1.0)}
    assert all(c["scores"]["score"] is not None for c in doc["cells"][1:])
    manifest = json.loads(Path(doc["manifest"]).read_text())
    assert all((Path(doc["manifest"]).parent / i["file"]).is_file() for c in manifest["cells"] for i in c["images"])
    assert manifest["pages"], "the labelled grid pages are drawn"
    # shortlist and recommendation name a real file and its tag
    rec = doc["recommendation"]
    assert Path(rec["file"]).is_file() and rec["prompt_tag"] == f"<lora:{rec['lora']}:{rec['weight']:g}>"
    assert doc["shortlist"][0]["lora"] == rec["lora"]
    # the report is one self-contained page with the evidence in it
    page = Path(doc["report"]).read_text()
    assert "data:image/jpeg;base64," in page and "<svg" in page and html.escape(rec["prompt_tag"]) in page
    assert "src=\"http" not in page and "<script" not in page
    assert json.loads((tmp_path / "run" / "report.json").read_text())["recommendation"] == rec
    # in-domain (training captions) and out-of-domain (showcase) prompts in the influence map
    assert {r["domain"] for r in doc["influence_map"]["rows"]} == {"in", "out"}

    # the same command again: nothing is redone
    stamps = {f: f.stat().st_mtime_ns for f in files}
    again = run_auto(host_factory(), opts, "tiny", quiet(said := []))
    assert again["state"] == "finished"
    assert sum(line.startswith("✓") and "done before" in line for line in said) == len(STAGES)
    assert {f: f.stat().st_mtime_ns for f in files} == stamps
    assert again["recommendation"] == rec


@pytest.mark.parametrize("stage", STAGES)
def test_interrupt_in_any_stage_is_continued(stage, host_factory, dataset, tmp_path, tiny_tagger_dir):
    jobs = {"checks": ("Checking images", 1), "tagging": ("Tagging", 1), "training": ("Training", 17),
            "sweep": ("Sweep", 1)}
    opts = options(dataset, tmp_path, tiny_tagger_dir, name=f"stop{stage}")
    progress = StopIn(*jobs.get(stage, (None, 0)))
    host = host_factory(progress)
    said: list[str] = []

    def say(text: str) -> None:  # stages with no progress of their own: a stop asked for as they start
        said.append(text)
        if text == f"▶ {stage}" and stage not in jobs:
            host.interrupt.set()

    doc = run_auto(host, opts, "tiny", say)
    assert doc["state"] == "interrupted"
    states = {s["name"]: s["state"] for s in doc["stages"]}
    assert states[stage] == "interrupted"
    before = STAGES[:STAGES.index(stage)]
    assert all(states[name] == "done" for name in before)
    assert any("Run the same command again" in line for line in said)

    said.clear()
    doc = run_auto(host_factory(), opts, "tiny", said.append)
    assert doc["state"] == "finished"
    assert all(s["state"] == "done" for s in doc["stages"])
    assert sum("done before" in line for line in said) == len(before)
    if stage == "training":  # stopped in epoch 3 of 4: continued from the epoch-2 file
        assert any("continuing from stoptraining-000002.safetensors" in line for line in said)
        assert [e["epoch"] for e in doc["loss_curve"]] == [2, 3, 4]  # epoch 1's loss was in no file
    if stage == "sweep":  # the first cell was kept
        assert any("(1 kept from before)" in line for line in said)
    assert len(doc["cells"]) == 7 and Path(doc["report"]).is_file()


def test_ab_captions_trains_two_variants_on_one_plan(host_factory, dataset, tmp_path, tiny_tagger_dir):
    opts = options(dataset, tmp_path, tiny_tagger_dir, name="abtest", ab_captions=True)
    doc = run_auto(host_factory(), opts, "tiny", [].append)
    assert doc["state"] == "finished"
    first, second = doc["variants"]
    assert (first["variant"], second["variant"]) == ("captioned", "captionless")
    assert {k: v for k, v in first["plan"].items() if k != "settings"} == \
        {k: v for k, v in second["plan"].items() if k != "settings"}
    differs = {k for k in first["plan"]["settings"] if first["plan"]["settings"][k] != second["plan"]["settings"][k]}
    assert differs == {"name", "dataset_dir"}, "same seed, steps and settings; only the files differ"
    run = tmp_path / "run"
    assert list((run / "train-captioned" / "1_lltest").glob("*.txt"))
    assert not list((run / "train-captionless" / "1_lltest").glob("*.txt"))
    assert {c["lora"] for c in first["cells"][1:]} == {"abtest-captioned-000002", "abtest-captioned"}
    assert {c["lora"] for c in second["cells"][1:]} == {"abtest-captionless-000002", "abtest-captionless"}
    assert first["prompts"] == second["prompts"]
    assert doc["comparison"]["verdict"] and set(doc["comparison"]["measures"]["fidelity"]) == {"captioned", "captionless"}
    assert "Captioned vs captionless" in Path(doc["report"]).read_text()


def test_bad_input_is_refused_before_any_stage(host_factory, dataset, tmp_path, tiny_tagger_dir):
    host = host_factory()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Refused, match="no images"):
        run_auto(host, options(empty, tmp_path, tiny_tagger_dir), "tiny", [].append)
    with pytest.raises(Refused, match="dataset folder not found"):
        run_auto(host, options(tmp_path / "nowhere", tmp_path, tiny_tagger_dir), "tiny", [].append)
    lora = host.lora_dir()
    lora.mkdir(parents=True)
    shutil.copyfile(dataset / "1_lltest" / "shape_000.png", lora / "taken-000002.safetensors")
    with pytest.raises(Refused, match="choose another --name"):
        run_auto(host, options(dataset, tmp_path, tiny_tagger_dir, name="taken"), "tiny", [].append)
    assert not (tmp_path / "run").exists(), "nothing is written when refused"
    with pytest.raises(Refused, match="tagger"):
        run_auto(host, options(dataset, tmp_path, tmp_path / "no-tagger"), "tiny", [].append)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "mine.txt").write_text("x")
    with pytest.raises(Refused, match="not a LoRA Lab auto run"):
        run_auto(host, options(dataset, tmp_path, tiny_tagger_dir), "tiny", [].append)


def test_cli_json_is_one_object_on_stdout_and_a_bad_checkpoint_is_refused(tmp_path, dataset, capsys) -> None:
    from lora_lab.cli import main

    home = tmp_path / "home"
    common = ["auto", str(dataset), "--home", str(home), "--budget", "quick", "--samples-per-epoch", "8",
              "--epochs", "2", "--sweep-steps", "2", "--set", "dim=4", "--set", "alpha=4"]
    not_a_model = tmp_path / "notes.safetensors"
    not_a_model.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    assert main([*common, "--name", "bad", "--checkpoint", str(not_a_model), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a Stable Diffusion checkpoint" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()

    assert main([*common, "--name", "clijson", "--tiny", "--out", str(tmp_path / "run"), "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # the stage lines went to stderr
    assert doc["state"] == "finished" and "✓ training" in captured.err
    assert set(doc) >= {"stages", "plan", "epochs", "cells", "shortlist", "recommendation", "report"}
    assert {"epoch", "weight", "checkpoint", "scores"} <= set(doc["cells"][1])
    assert set(doc["cells"][1]["scores"]) == {"fidelity", "adherence", "diversity", "influence", "score"}
    assert {"file", "weight", "why"} <= set(doc["recommendation"]) and Path(doc["report"]).is_file()


def _variant(key: str, adherence_out: float, fidelity: float, score: float) -> dict:
    scores = {"fidelity": fidelity, "adherence": 0.5, "influence": 0.3, "score": score, "diversity": 1.0}
    return {"variant": key, "cells": [{"scores": {}}, {"scores": scores}], "shortlist": [{"cell": 1}],
            "best_by_domain": {"adherence": {"in": 0.9, "out": adherence_out}, "fidelity": {"in": 0.9, "out": 0.8},
                               "influence": {"in": 0.5, "out": 0.2}}}


def test_the_ab_verdict_says_which_side_leads_and_calls_a_tie_level() -> None:
    from lora_lab.auto.summary import compare

    split = compare([_variant("captioned", 0.70, 0.60, 0.64), _variant("captionless", 0.40, 0.80, 0.53)])
    assert split["better"] == "captioned"
    assert split["verdict"].startswith("Captioned follows prompts outside the training data better (adherence 0.70 vs 0.40)")
    assert "captionless holds the trained look better (fidelity 0.80 vs 0.60)" in split["verdict"]
    level = compare([_variant("captioned", 0.5, 0.7, 0.6), _variant("captionless", 0.5, 0.7, 0.6)])
    assert level["better"] is None and "about equally" in level["verdict"] and "level" in level["verdict"]
    assert split["measures"]["adherence_out_of_domain"] == {"captioned": 0.70, "captionless": 0.40}


def test_other_settings_are_refused_and_fresh_starts_over(host_factory, dataset, tmp_path, tiny_tagger_dir) -> None:
    opts = options(dataset, tmp_path, tiny_tagger_dir, name="again")
    opts.epochs = 2
    assert run_auto(host_factory(), opts, "tiny", [].append)["state"] == "finished"
    host = host_factory()
    mine = host.lora_dir() / "again"
    other = host.lora_dir() / "again" / "someone-else.safetensors"
    other.write_bytes(b"not ours")
    changed = options(dataset, tmp_path, tiny_tagger_dir, name="again")  # 4 epochs now
    with pytest.raises(Refused, match="epochs.*--fresh"):
        run_auto(host, changed, "tiny", [].append)
    said: list[str] = []
    doc = run_auto(host, changed, "tiny", said.append, fresh=True)
    assert doc["state"] == "finished" and not any("done before" in line for line in said)
    assert [e["epoch"] for e in doc["epochs"]] == [2, 4]
    assert other.read_bytes() == b"not ours", "only the run's own files are deleted"
    assert {p.name for p in mine.glob("again*.safetensors")} == {"again-000002.safetensors", "again.safetensors"}
