"""Evidence during training: after every epoch a deterministic loss on a fixed subset of the
training images ("stable loss") and on held-out images, in the status, the run file and each epoch
file's metadata."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open

from lora_lab.devtools.sample_dataset import build_sample_dataset
from lora_lab.train import TrainConfig, train
from lora_lab.train.config import TrainConfigError
from lora_lab.train.data import holdout_count, load_dataset
from lora_lab.train.loop import TrainStatus


def config(dataset: Path, out: Path, **kw) -> TrainConfig:
    values = dict(dataset_dir=dataset, name="val", output_dir=out, epochs=2, resolution=64, min_bucket_reso=64,
                  max_bucket_reso=128, dim=4, alpha=4, unet_lr=1e-3, te_lr=0.0, preview_every_n_epochs=0,
                  save_precision="fp32")
    return TrainConfig(**{**values, **kw})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sample_dataset(tmp_path_factory.mktemp("val") / "data", images=6, repeats=2)


def test_holdout_counts_percentages_and_folders(dataset: Path, tmp_path: Path) -> None:
    assert [holdout_count(s, 10) for s in ("2", "10%", "25%", "0", "100%", "50")] == [2, 1, 2, 0, 9, 9]
    data = load_dataset(config(dataset, tmp_path, holdout="2"))
    assert len(data.items) == 4 and len(data.holdout) == 2
    assert {i.index for i in data.items}.isdisjoint({i.index for i in data.holdout})
    assert data.num_train_images == 8 and any("held out" in n and "12 → 8" in n for n in data.notes)
    again = load_dataset(config(dataset, tmp_path, holdout="2"))
    assert [i.path for i in again.holdout] == [i.path for i in data.holdout]  # seeded
    folder = load_dataset(config(dataset, tmp_path, holdout=str(next(dataset.iterdir()))))
    assert len(folder.items) == 6 and len(folder.holdout) == 6 and folder.holdout[0].index >= 6
    with pytest.raises(TrainConfigError, match="holdout"):
        config(dataset, tmp_path, holdout="some").validate()


def test_validation_loss_is_bit_identical_for_the_same_run_and_moves_with_the_lora(
        standalone_host, dataset: Path, tmp_path: Path) -> None:
    runs = []
    for i, lr in enumerate((1e-3, 1e-3, 5e-3)):
        status = TrainStatus()
        result = train(standalone_host, config(dataset, tmp_path / f"out{i}", holdout="2", unet_lr=lr), status)
        assert result.state == "finished", result.message
        runs.append((status, result))
    (a, ra), (b, _), (c, _) = runs
    assert len(a.stable_losses) == len(a.val_losses) == 2 and a.epoch_end_steps == [8, 16]
    assert a.stable_losses == b.stable_losses and a.val_losses == b.val_losses  # bit-identical
    assert a.stable_losses != c.stable_losses and a.val_losses != c.val_losses  # another LoRA, another loss
    with safe_open(str(ra.files[0]), framework="pt") as f:
        meta = f.metadata()
    assert float(meta["lora_lab_stable_loss"]) == pytest.approx(a.stable_losses[0], abs=1e-6)
    assert float(meta["lora_lab_val_loss"]) == pytest.approx(a.val_losses[0], abs=1e-6)
    run_file = json.loads((tmp_path / "out0" / "val.lora_lab.json").read_text(encoding="utf-8"))
    assert run_file["result"]["val_losses"] == a.val_losses


def test_without_holdout_only_the_stable_loss_and_validation_can_be_turned_off(
        standalone_host, dataset: Path, tmp_path: Path) -> None:
    status = TrainStatus()
    assert train(standalone_host, config(dataset, tmp_path / "a"), status).state == "finished"
    assert len(status.stable_losses) == 2 and status.val_losses == [None, None]
    off = TrainStatus()
    assert train(standalone_host, config(dataset, tmp_path / "b", validation=False), off).state == "finished"
    assert off.stable_losses == [] and off.val_losses == []


def test_the_chart_shows_the_epoch_losses() -> None:
    from lora_lab.train.status_view import status_html

    html = status_html({"name": "x", "state": "training", "epoch": 2, "epochs": 2, "step": 4, "total_steps": 4,
                        "loss_history": [1.0, 0.9, 0.95, 0.8], "epoch_losses": [0.95, 0.87],
                        "epoch_end_steps": [2, 4], "stable_losses": [0.9, 0.85], "val_losses": [0.97, 0.93]})
    assert "lora-lab-stable" in html and "lora-lab-val" in html and "val loss" in html
