"""`python -m lora_lab train` and `python -m lora_lab demo` on the standalone host."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_lab.cli import main
from lora_lab.devtools.sample_dataset import build_sample_dataset


def test_train_command(tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = build_sample_dataset(tmp_path / "data", images=2, repeats=2)
    (tmp_path / "run.toml").write_text('resolution = 64\nmin_bucket_reso = 64\nmax_bucket_reso = 128\n'
                                       'dim = 8\nte_lr = 0.0\nepochs = 5\n', encoding="utf-8")
    rc = main(["train", "--checkpoint", str(tiny_checkpoint), "--home", str(tmp_path / "home"),
               "--dataset", str(dataset), "--output-dir", str(tmp_path / "out"), "--name", "cli",
               "--config", str(tmp_path / "run.toml"), "--epochs", "2", "--dim", "2", "--alpha", "1",
               "--preset", "style", "--set", "save_precision=fp32", "--flip"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "finished: 8 steps" in out and "cli-000001.safetensors" in out
    run = json.loads((tmp_path / "out" / "cli.lora_lab.json").read_text(encoding="utf-8"))
    config = run["config"]
    assert (config["epochs"], config["dim"], config["alpha"], config["te_lr"]) == (2, 2, 1.0, 0.0)
    assert (config["preset"], config["flip"], config["save_precision"]) == ("style", True, "fp32")


def test_train_command_reports_bad_settings(tiny_checkpoint: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["train", "--checkpoint", str(tiny_checkpoint), "--dataset", str(tmp_path),
               "--name", "x", "--output-dir", str(tmp_path / "out"), "--dim", "0", "--resolution", "100"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "dim must be > 0" in err and "resolution must be a multiple of 64" in err


def test_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "tagged 8 of 8 image(s)" in out and "finished: 32 steps" in out
    lora = tmp_path / "lora"
    assert {p.name for p in lora.iterdir()} >= {"lldemo.safetensors", "lldemo.json",
                                                 "lldemo.preview.png", "lldemo.lora_lab.json"}
    caption = next((tmp_path / "dataset" / "4_lldemo").glob("*.txt")).read_text(encoding="utf-8")
    assert caption.startswith("lldemo, ")


def test_train_command_on_an_sd2_checkpoint_without_its_yaml(tiny_sd2_checkpoint: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    bare = tmp_path / "sd2-768-v.safetensors"  # no yaml beside it: the kind must be said
    bare.symlink_to(tiny_sd2_checkpoint)
    dataset = build_sample_dataset(tmp_path / "data", images=2, repeats=1)
    args = ["train", "--checkpoint", str(bare), "--home", str(tmp_path / "home"), "--dataset",
            str(dataset), "--output-dir", str(tmp_path / "out"), "--name", "cli2", "--epochs", "1",
            "--dim", "2", "--resolution", "64", "--set", "min_bucket_reso=64", "--set", "max_bucket_reso=64"]
    assert main(args) == 2
    assert "is an SD2 checkpoint" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("*.safetensors"))
    config = ["--model-config", str(tiny_sd2_checkpoint.with_suffix(".yaml"))]
    assert main(args + config) == 0, capsys.readouterr().out
    run = json.loads((tmp_path / "out" / "cli2.lora_lab.json").read_text(encoding="utf-8"))
    assert run["family"] == "sd2-v" and run["result"]["state"] == "finished"
