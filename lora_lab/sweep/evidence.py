"""What training measured about each epoch file of a sweep: the validation losses the trainer
wrote into the file's metadata (read from the safetensors header alone)."""
from __future__ import annotations

from pathlib import Path

from ..safetensors_header import HeaderError, read_metadata
from .family import float_or_none
from .manifest import SweepManifest

KEYS = {"stable": "lora_lab_stable_loss", "val": "lora_lab_val_loss"}
TRAIN_KEY = "lora_lab_train_loss"  # the epoch's mean training loss (files saved at an epoch's end)


def file_metadata(path: Path) -> dict[str, str]:
    """The file's metadata; empty when it cannot be read (any more)."""
    try:
        return read_metadata(Path(path))
    except (OSError, HeaderError):
        return {}


def epoch_losses(manifest: SweepManifest) -> list[dict[str, float | None]]:
    """Per row: {"stable": …, "val": …}; None where the file has no such number (another trainer,
    validation off, no holdout) or cannot be read any more."""
    out = []
    for row in manifest.rows:
        meta = file_metadata(Path(row.file))
        out.append({name: float_or_none(meta.get(key)) for name, key in KEYS.items()})
    return out

