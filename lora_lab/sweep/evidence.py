"""What training measured about each epoch file of a sweep: the validation losses the trainer
wrote into the file's metadata (read from the safetensors header alone)."""
from __future__ import annotations

from pathlib import Path

from ..safetensors_header import HeaderError, read_metadata
from .family import float_or_none
from .manifest import SweepManifest

KEYS = {"stable": "lora_lab_stable_loss", "val": "lora_lab_val_loss"}


def epoch_losses(manifest: SweepManifest) -> list[dict[str, float | None]]:
    """Per row: {"stable": …, "val": …}; None where the file has no such number (another trainer,
    validation off, no holdout) or cannot be read any more."""
    out = []
    for row in manifest.rows:
        try:
            meta = read_metadata(Path(row.file))
        except (OSError, HeaderError):
            meta = {}
        out.append({name: float_or_none(meta.get(key)) for name, key in KEYS.items()})
    return out

