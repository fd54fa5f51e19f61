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


def test_the_demo_runs_auto_from_any_folder_says_what_it_is_and_keeps_quiet(tmp_path: Path) -> None:
    """As a newcomer runs it: the installed command, outside the checkout, default output folder."""
    import subprocess
    import sys

    env = {**__import__("os").environ, "LORA_LAB_HOME": str(tmp_path / "home")}
    run = subprocess.run([sys.executable, "-m", "lora_lab", "demo"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    demo = tmp_path / "home" / "demo"
    assert (demo / "home" / "Lora" / "lldemo" / "lldemo.safetensors").is_file()
    assert (demo / "run" / "report.html").is_file()
    caption = next((demo / "run" / "images").glob("*.txt")).read_text(encoding="utf-8")
    assert caption.startswith("lldemo, ")
    assert not list((demo / "dataset").rglob("*.txt")), "the sample dataset itself is left uncaptioned"
    assert "tiny random stand-in" in run.stdout and "python -m lora_lab auto" in run.stdout
    assert "Recommended: <lora:lldemo" in run.stdout and "Report:" in run.stdout and "Next:" in run.stdout
    assert not (tmp_path / "lora_lab_demo").exists()
    noise = ("DiffusionWrapper", "making attention", "xformers", "pkg_resources", "rank_zero", "Warning")
    assert not [line for line in (run.stdout + run.stderr).splitlines() if any(n in line for n in noise)]


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


def test_bad_images_are_listed_before_training_and_left_out(tiny_checkpoint: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A truncated JPEG, an empty PNG and a text file named .jpg: one rule for all three."""
    import io

    from PIL import Image

    dataset = build_sample_dataset(tmp_path / "data", images=2, repeats=1)
    folder = next(p for p in dataset.iterdir() if p.is_dir())
    jpeg = io.BytesIO()
    Image.effect_noise((96, 96), 40).convert("RGB").save(jpeg, "JPEG", quality=95)
    (folder / "trunc.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture", encoding="utf-8")
    rc = main(["train", "--checkpoint", str(tiny_checkpoint), "--home", str(tmp_path / "home"),
               "--dataset", str(dataset), "--output-dir", str(tmp_path / "out"), "--name", "bad",
               "--resolution", "64", "--set", "min_bucket_reso=64", "--set", "max_bucket_reso=128",
               "--epochs", "1", "--dim", "2", "--te-lr", "0"])
    out = capsys.readouterr().out
    assert rc == 0, out
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert any("trunc.jpg" in n and "truncated" in n for n in notes), out
    assert any("empty.png" in n and "empty" in n for n in notes), out
    assert any("notes.jpg" in n and "not an image" in n for n in notes), out
    assert out.index("note: ") < out.index("finished:")
    assert (tmp_path / "out" / "bad.safetensors").is_file()


def test_the_train_tabs_status_shows_the_runs_notes() -> None:
    from lora_lab.train.status_view import status_html

    html = status_html({"name": "x", "state": "training", "epoch": 1, "epochs": 2, "step": 1,
                        "total_steps": 4, "notes": ["skipped trunc.jpg: truncated or corrupt file"]})
    assert "skipped trunc.jpg: truncated or corrupt file" in html and "lora-lab-notes" in html


def test_train_help_describes_each_flag_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "TrainConfig." not in out
    assert "--epochs N passes over the dataset (default: 10)" in out
    assert "--te-lr F text-encoder learning rate (0: train the UNet only; SDXL: CLIP-L) (default: 5e-05)" in out
    assert "default: cuda when available, else cpu" in out


def test_a_preview_prompt_turns_previews_on_and_the_device_defaults_to_the_best() -> None:
    import torch

    from lora_lab.cli import build_parser
    from lora_lab.commands.common import best_device
    from lora_lab.commands.train import settings_from_args

    args = build_parser().parse_args(["train", "--checkpoint", "m.safetensors", "--dataset", "d",
                                      "--name", "n", "--preview-prompt", "ohwx, smiling"])
    assert settings_from_args(args)["preview_every_n_epochs"] == 1
    args = build_parser().parse_args(["train", "--checkpoint", "m.safetensors", "--dataset", "d",
                                      "--name", "n", "--preview-prompt", "x", "--preview-every", "3"])
    assert settings_from_args(args)["preview_every_n_epochs"] == 3
    assert args.device is None and best_device() == ("cuda" if torch.cuda.is_available() else "cpu")


def test_a_missing_checkpoint_leaves_no_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = build_sample_dataset(tmp_path / "data", images=1, repeats=1)
    rc = main(["train", "--checkpoint", str(tmp_path / "nope.safetensors"), "--dataset", str(dataset),
               "--name", "x", "--output-dir", str(tmp_path / "out" / "lora"), "--resolution", "64"])
    assert rc != 0
    assert "nope.safetensors" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_presets_and_defaults_follow_the_model_family() -> None:
    from lora_lab.cli import build_parser
    from lora_lab.commands.train import settings_from_args

    args = build_parser().parse_args(["train", "--checkpoint", "m.safetensors", "--dataset", "d", "--name", "n",
                                      "--preset", "character"])
    sdxl = settings_from_args(args, "sdxl")
    assert (sdxl["resolution"], sdxl["te_lr"], sdxl["keep_tokens"]) == (1024, 0.0, 1)  # UNet only, at 1024
    assert "resolution" not in settings_from_args(args, "sd1")
    args = build_parser().parse_args(["train", "--checkpoint", "m.safetensors", "--dataset", "d", "--name", "n",
                                      "--resolution", "768", "--te2-lr", "1e-5", "--size-conditioning", "bucket"])
    chosen = settings_from_args(args, "sdxl")
    assert (chosen["resolution"], chosen["te2_lr"], chosen["size_conditioning"]) == (768, 1e-5, "bucket")
