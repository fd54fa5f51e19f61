"""What the Review tab and the sweep API do with a sweep: open it, rate its images, tally hit
rates, promote the recommended LoRA file. No gradio, no WebUI."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .manifest import MANIFEST_NAME, ManifestError, SweepManifest, load_manifest
from .review import (
    HitRates, Recommendation, ReviewError, hit_rates, load_ratings, promote, recommend, set_ratings,
)

RATINGS = ("hit", "miss", "unrated")
_CACHE_SIZE = 8
_cache: dict[Path, tuple[tuple[int, int], SweepManifest]] = {}


def manifest_path(text: str | Path) -> Path:
    """A manifest path from what a person typed: quotes and `~` allowed, a sweep folder accepted."""
    raw = str(text).strip().strip('"').strip("'")
    if not raw:
        raise ManifestError("enter the path of a sweep's sweep.json (or its folder), or pick a recent sweep")
    path = Path(raw).expanduser()
    return path / MANIFEST_NAME if path.is_dir() else path


def open_sweep(text: str | Path) -> SweepManifest:
    """The manifest, re-read only when its file changed (the grid rewrites it after every cell)."""
    path = manifest_path(text).resolve()
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ManifestError(f"{path} does not exist") from None
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _cache.get(path)
    if cached and cached[0] == stamp:
        return cached[1]
    manifest = load_manifest(path)
    _cache[path] = (stamp, manifest)
    while len(_cache) > _CACHE_SIZE:
        _cache.pop(next(iter(_cache)))
    return manifest


@dataclass(frozen=True)
class Report:
    ratings: dict[str, str]
    rates: HitRates
    recommendation: Recommendation | None
    losses: list[dict[str, float | None]] = field(default_factory=list)  # per row, from training

    def to_json(self) -> dict[str, object]:
        return {"hit_rates": self.rates.to_json(),
                "recommendation": self.recommendation.to_json() if self.recommendation else None,
                "rated": len(self.ratings), "epoch_losses": self.losses}


def report(manifest: SweepManifest) -> Report:
    from .evidence import epoch_losses

    from .scoring import load_scores

    ratings = load_ratings(manifest)
    rates = hit_rates(manifest, ratings)
    return Report(ratings, rates, recommend(manifest, rates, load_scores(manifest)), epoch_losses(manifest))


def image_file(manifest: SweepManifest, cell: int, image: int) -> str:
    """The stored path of image `image` of cell `cell`, as ratings key it."""
    if not 0 <= cell < len(manifest.cells) or not 0 <= image < len(manifest.cells[cell].images):
        raise ReviewError(f"the sweep has no image {image + 1} in cell {cell + 1}")
    stored = manifest.cells[cell].images[image].file
    if stored is None:
        raise ReviewError(f"image {image + 1} of {manifest.cells[cell].label} was not rendered "
                          "(the sweep stopped before it)")
    return stored


def rate(manifest: SweepManifest, cell: int, image: int, value: str) -> dict[str, str]:
    if value not in RATINGS:
        raise ReviewError(f"{value!r} is not a rating; use hit, miss or unrated")
    return set_ratings(manifest, {image_file(manifest, cell, image): value})


def _inside(path: Path, folder: Path) -> bool:
    try:
        return os.path.commonpath([path.resolve(), folder.resolve()]) == str(folder.resolve())
    except ValueError:  # another drive
        return False


def promote_file(manifest: SweepManifest, final_name: str, lora_dir: Path, *, move: bool = False,
                 row: int | None = None) -> tuple[str, list[Path]]:
    """Copy (or rename) the recommended epoch file — or that of `row` — to `final_name` beside it.

    Only files inside the Lora folder are promoted. Returns the row's label and the new paths."""
    if row is None:
        recommendation = report(manifest).recommendation
        if recommendation is None:
            raise ReviewError("nothing is rated yet, so there is no recommendation to promote")
        row, weight = recommendation.row, recommendation.weight
    else:
        weight = None
    if not 0 <= row < len(manifest.rows):
        raise ReviewError(f"the sweep has no row {row}")
    source = Path(manifest.rows[row].file)
    if not _inside(source, lora_dir):
        raise ReviewError(f"{source} is not in the Lora folder {lora_dir}; promote it by hand")
    paths = promote(source, final_name, move=move)
    if weight is not None:
        set_preferred_weight(paths[0], weight)
    return manifest.rows[row].label, paths


def set_preferred_weight(lora: Path, weight: float) -> None:
    """The Lora card's `preferred weight` (`<name>.json`), so `<lora:name>` from the WebUI's cards
    uses the weight the sweep chose; the card's other fields are kept."""
    import json

    from ..files.atomic import write_atomic

    card_path = lora.with_suffix(".json")
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    card["preferred weight"] = weight
    write_atomic(card_path, (json.dumps(card, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
