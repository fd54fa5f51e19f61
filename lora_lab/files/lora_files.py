"""The files a training run leaves in the Lora folder — the contract between the trainer that writes
them and the sweep, review and Auto that read them:
- `NAME-000002.safetensors` per epoch (sd-scripts' pattern) and `NAME.safetensors` for the final
  one; a run stopped early (Stop, an error) leaves `NAME-step00000128.safetensors`, never the final name;
- in each file's metadata, sd-scripts' `ss_*` keys plus LoRA Lab's losses (`LOSS_KEYS`);
- `NAME.lora_lab.json`, the run file: settings, step plan and how the run went."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .jsonfile import JsonFileError, read_json
from .safetensors_header import HeaderError, read_metadata

EPOCH_NAME = re.compile(r"^(?P<base>.+)-(?P<epoch>\d{6})$")
STEP_NAME = re.compile(r"^(?P<base>.+)-step(?P<steps>\d{8})$")
RUN_FILE_SUFFIX = ".lora_lab.json"

TRAIN_LOSS_KEY = "lora_lab_train_loss"  # the epoch's mean training loss (files saved at an epoch's end)
LOSS_KEYS = {"stable": "lora_lab_stable_loss", "val": "lora_lab_val_loss"}  # the evidence grids read
STOPPED_KEY = "lora_lab_stopped"  # in a step file: why the run ended there ("interrupted at step 128 of 680")


def epoch_stem(name: str, epoch: int | None) -> str:
    """`name-000002` for an epoch file, `name` for the final one."""
    return name if epoch is None else f"{name}-{epoch:06d}"


def step_stem(name: str, steps: int) -> str:
    """`name-step00000128`: the state of a run stopped before its end (kohya's step-save pattern)."""
    return f"{name}-step{steps:08d}"


def epoch_of(stem: str) -> int | None:
    """The epoch a file stem names (`name-000002` → 2); None for any other stem."""
    m = EPOCH_NAME.match(stem)
    return int(m["epoch"]) if m else None


def epoch_files(folder: Path, name: str) -> list[Path]:
    """LoRA `name`'s epoch files in `folder` in epoch order, the final file last when there is one."""
    numbered = sorted(folder.glob(f"{name}-[0-9][0-9][0-9][0-9][0-9][0-9].safetensors"))
    final = folder / f"{name}.safetensors"
    return numbered + ([final] if final.is_file() else [])


def run_file(folder: Path, name: str) -> Path:
    return folder / f"{name}{RUN_FILE_SUFFIX}"


def read_run_file(folder: Path, name: str) -> dict[str, Any] | None:
    """The run file of LoRA `name` in `folder`; None when there is none or it cannot be read."""
    try:
        data = read_json(run_file(folder, name))
    except (JsonFileError, OSError):
        return None
    return data if isinstance(data, dict) else None


def file_metadata(path: Path) -> dict[str, str]:
    """A LoRA file's metadata; empty when it cannot be read (any more)."""
    try:
        return read_metadata(Path(path))
    except (OSError, HeaderError):
        return {}
