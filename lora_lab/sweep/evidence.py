"""What training measured about each epoch file of a sweep: the validation losses the trainer
wrote into the file's metadata (read from the safetensors header alone)."""
from __future__ import annotations

from pathlib import Path

from ..files.lora_files import LOSS_KEYS, file_metadata
from .family import float_or_none
from .manifest import SweepManifest


def epoch_losses(manifest: SweepManifest) -> list[dict[str, float | None]]:
    """Per row: {"stable": …, "val": …}; None where the file has no such number (another trainer,
    validation off, no holdout) or cannot be read any more."""
    out = []
    for row in manifest.rows:
        meta = file_metadata(Path(row.file))
        out.append({name: float_or_none(meta.get(key)) for name, key in LOSS_KEYS.items()})
    return out

