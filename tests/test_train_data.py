"""Training settings and the training set: validation, presets, config files, kohya folders,
captions per draw, buckets and batches."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image

from lora_lab.devtools.sample_dataset import build_sample_dataset
from lora_lab.train.config import PRESETS, TrainConfig, TrainConfigError, load_config_file
from lora_lab.train.data import epoch_batches, load_dataset, process_caption
from lora_lab.train.optim import lr_factor


def config(dataset: Path, **kw: object) -> TrainConfig:
    base = {"name": "t", "resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128}
    return TrainConfig(dataset_dir=dataset, **{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("changes, words", [
    ({"dim": 0}, "dim must be > 0"),
    ({"unet_lr": -1e-4}, "learning rates must be >= 0"),
    ({"unet_lr": 0.0, "te_lr": 0.0}, "nothing would be trained"),
    ({"resolution": 100}, "resolution must be a multiple of 64"),
    ({"resume_from": Path("x.ckpt")}, "only .safetensors"),
    ({"resume_from": Path("x.pt")}, "only .safetensors"),
    ({"optimizer": "lion"}, "needs the lion_pytorch package"),
    ({"name": "../evil"}, "it becomes a file name"),
    ({"network_dropout": 1.0}, "network_dropout must be in [0, 1)"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
])
def test_bad_values_are_named(tmp_path: Path, changes: dict, words: str) -> None:
    with pytest.raises(TrainConfigError) as info:
        config(tmp_path, **changes).validate()
    assert words in str(info.value)


def test_presets_and_file_round_trip(tmp_path: Path) -> None:
    character = TrainConfig.from_preset("character", tmp_path, "c")
    assert (character.keep_tokens, character.prepend_trigger, character.unet_lr) == (1, True, 1e-4)
    assert (character.dim, character.alpha) == (64, 64.0)
    assert TrainConfig.from_preset("style", tmp_path, "s").te_lr == 0
    assert set(PRESETS) == {"character", "style", "concept"}
    with pytest.raises(TrainConfigError, match="preset 'x'"):
        TrainConfig.from_preset("x", tmp_path, "x")

    (tmp_path / "run.toml").write_text('dataset_dir = "data"\nname = "n"\ndim = 16\nflip = true\n'
                                       'unet_lr = 2e-4\nclip_skip = 2\n', encoding="utf-8")
    cfg = TrainConfig.from_dict(load_config_file(tmp_path / "run.toml"))
    assert cfg.dataset_dir == tmp_path / "data"  # relative to the file
    assert (cfg.dim, cfg.flip, cfg.unet_lr, cfg.clip_skip) == (16, True, 2e-4, 2)
    (tmp_path / "run.json").write_text(json.dumps(cfg.to_dict()), encoding="utf-8")
    assert TrainConfig.from_dict(load_config_file(tmp_path / "run.json")) == cfg
    with pytest.raises(TrainConfigError, match="unknown setting"):
        TrainConfig.from_dict({"dataset_dir": "d", "name": "n", "dimm": 3})
    with pytest.raises(TrainConfigError, match="dim: 'many'"):
        TrainConfig.from_dict({"dataset_dir": "d", "name": "n", "dim": "many"})


def test_kohya_folders_captions_and_buckets(tmp_path: Path) -> None:
    root = build_sample_dataset(tmp_path, trigger="ohwx", images=6, repeats=3)
    other = tmp_path / "2_zz token"
    other.mkdir()
    Image.new("RGB", (64, 64), "red").save(other / "plain.png")  # no caption: the trigger is its caption
    (tmp_path / "notes").mkdir()  # no repeat count: ignored, as kohya does
    ds = load_dataset(config(root))
    assert [(s.repeats, s.trigger) for s in ds.subsets] == [(2, "zz token"), (3, "ohwx")]
    assert ds.num_train_images == 6 * 3 + 2
    plain = next(it for it in ds.items if it.path.name == "plain.png")
    assert plain.caption == "zz token"
    assert any("ignored notes/" in n for n in ds.notes)
    assert {it.bucket for it in ds.items} == {(64, 64)}  # at 64 px there is one bucket
    freq = ds.tag_frequency()
    assert freq["3_ohwx"]["ohwx"] == 6 and freq["2_zz token"] == {"zz token": 1}
    assert ds.dataset_dirs()["3_ohwx"] == {"n_repeats": 3, "img_count": 6}

    for batch_size in (1, 2, 4):
        cfg = config(root, batch_size=batch_size, resolution=256, max_bucket_reso=512)
        ds = load_dataset(cfg)
        batches = epoch_batches(ds, cfg, random.Random(0))
        assert len(batches) == ds.plan.batches_per_epoch
        assert sum(len(b) for b in batches) == ds.num_train_images
        assert all(len({d.item.bucket for d in b}) == 1 for b in batches)
        assert len({it.bucket for it in ds.items}) == 2  # the wider shapes have their own bucket


def test_caption_processing_keeps_the_trigger_first(tmp_path: Path) -> None:
    folder = tmp_path / "1_ohwx"
    folder.mkdir()
    Image.new("RGB", (64, 64)).save(folder / "a.png")
    (folder / "a.txt").write_text("red, ohwx, round, shiny, small\nsecond line ignored", encoding="utf-8")
    Image.new("RGB", (64, 64)).save(folder / "b.png")
    (folder / "b.txt").write_text("fixed one, fixed two ||| x, y, z", encoding="utf-8")
    cfg = config(tmp_path, prepend_trigger=True, keep_tokens=1, shuffle_caption=True, tag_dropout=0.3)
    ds = load_dataset(cfg)
    a, b = ds.items
    assert a.caption == "ohwx, red, round, shiny, small"
    assert (b.items[:b.fixed], b.fixed) == (["ohwx", "fixed one", "fixed two"], 3)
    rng = random.Random(1)
    draws = [process_caption(a, cfg, rng) for _ in range(50)]
    assert all(d.startswith("ohwx") for d in draws)
    assert len(set(draws)) > 10  # shuffled and dropped
    assert all(process_caption(b, cfg, rng).startswith("ohwx, fixed one, fixed two") for _ in range(20))
    dropped = [process_caption(a, config(tmp_path, caption_dropout=0.5), rng) for _ in range(200)]
    assert 50 < dropped.count("") < 150


def test_dataset_problems_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainConfigError, match="dataset folder not found"):
        load_dataset(config(tmp_path / "missing"))
    (tmp_path / "1_x").mkdir()
    with pytest.raises(TrainConfigError, match="no images to train on"):
        load_dataset(config(tmp_path))
    Image.new("RGB", (64, 64)).save(tmp_path / "1_x" / "a.png")
    (tmp_path / "1_x" / "a.txt").write_bytes(b"caf\xe9")
    with pytest.raises(TrainConfigError, match="not valid UTF-8"):
        load_dataset(config(tmp_path))


def test_schedules() -> None:
    assert [lr_factor("constant", 2, 10, 1)(s) for s in (0, 1, 2, 9)] == [0.0, 0.5, 1.0, 1.0]
    cosine = lr_factor("cosine", 0, 10, 1)
    assert cosine(0) == 1.0 and abs(cosine(5) - 0.5) < 1e-9 and cosine(10) == 0.0
    assert lr_factor("linear", 0, 10, 1)(5) == 0.5
    restarts = lr_factor("cosine_with_restarts", 0, 10, 2)
    assert restarts(0) == 1.0 and abs(restarts(5) - 1.0) < 1e-9 and restarts(4) < 0.2
