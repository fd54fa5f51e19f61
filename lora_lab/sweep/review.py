"""Reviewing a sweep: hit/miss ratings per image, hit rates per epoch × weight, the recommended
file, and promoting it to a final name.

Ratings live beside the manifest (`<manifest>.ratings.json`), keyed by the image's stored path,
and every change is written atomically, so they survive a restart and a moved folder.

The recommendation is the epoch × weight with the best hit rate over all checkpoints. Ties go to
the earlier epoch (less trained, less overfit), then to the lower weight: the usual advice for a
LoRA that looks "too strong" is to lower its weight, so when both score the same, the gentler
setting is the safer pick.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from .family import LORA_SUFFIXES
from ..files.jsonfile import JsonFileError, read_json, write_json_atomic
from .manifest import ManifestCell, SweepManifest
from .weights import format_weight

RATINGS_SCHEMA = "lora-lab/sweep-ratings"
RATINGS_VERSION = 1
HIT, MISS = "hit", "miss"
# What the WebUI and common helpers keep beside a LoRA (ui_extra_networks.find_preview/description,
# the user-metadata .json, Civitai Helper's .civitai.info).
SIDECAR_SUFFIXES = (
    ".json", ".txt", ".description.txt", ".civitai.info",
    *(f"{mid}.{ext}" for mid in (".preview", "") for ext in ("png", "jpg", "jpeg", "webp", "gif")),
)
_BAD_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')
_ratings_lock = threading.Lock()


class ReviewError(ValueError):
    """A rating or promotion that cannot be done; the message says why."""


def ratings_path(manifest: SweepManifest) -> Path:
    return manifest.path.with_name(f"{manifest.path.stem}.ratings.json")


def load_ratings(manifest: SweepManifest) -> dict[str, str]:
    """Image path → "hit" or "miss"; unrated images are absent."""
    path = ratings_path(manifest)
    if not path.exists():
        return {}
    try:
        data = read_json(path)
    except JsonFileError as e:
        raise ReviewError(str(e)) from None
    if not isinstance(data, dict) or data.get("schema") != RATINGS_SCHEMA:
        raise ReviewError(f"{path} is not a LoRA Lab ratings file")
    if not isinstance(data.get("version"), int) or data["version"] > RATINGS_VERSION:
        raise ReviewError(f"{path} was written by a newer LoRA Lab; update LoRA Lab")
    ratings = data.get("ratings")
    if not isinstance(ratings, dict) or any(v not in (HIT, MISS) for v in ratings.values()):
        raise ReviewError(f"{path}: ratings must map image paths to \"hit\" or \"miss\"")
    return dict(ratings)


def set_ratings(manifest: SweepManifest, changes: Mapping[str, str | None]) -> dict[str, str]:
    """Apply `changes` (image path → "hit", "miss", or None/"unrated" to clear) and save.

    Returns all ratings."""
    known = manifest.image_files()
    for image, value in changes.items():
        if image not in known:
            raise ReviewError(f"{image!r} is not an image of this sweep")
        if value not in (HIT, MISS, None, "unrated"):
            raise ReviewError(f"{value!r} is not a rating; use hit, miss or unrated")
    with _ratings_lock:
        ratings = load_ratings(manifest)
        for image, value in changes.items():
            if value in (HIT, MISS):
                ratings[image] = value
            else:
                ratings.pop(image, None)
        write_json_atomic(ratings_path(manifest), {"schema": RATINGS_SCHEMA, "version": RATINGS_VERSION,
                                                   "ratings": ratings})
    return ratings


@dataclass(frozen=True)
class Tally:
    hits: int = 0
    misses: int = 0
    unrated: int = 0

    @property
    def rated(self) -> int:
        return self.hits + self.misses

    @property
    def fraction(self) -> Fraction | None:
        return Fraction(self.hits, self.rated) if self.rated else None

    @property
    def rate(self) -> float | None:
        return None if self.fraction is None else float(self.fraction)

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.hits + other.hits, self.misses + other.misses, self.unrated + other.unrated)

    def describe(self) -> str:
        if not self.rated:
            return "no ratings"
        return f"{self.hits} of {self.rated} rated images were hits ({self.rate:.0%})"

    def to_json(self) -> dict[str, Any]:
        return {"hits": self.hits, "misses": self.misses, "unrated": self.unrated, "rate": self.rate}


Matrix = tuple[tuple[Tally, ...], ...]


@dataclass(frozen=True)
class HitRates:
    """Tallies per epoch row × weight column (the baseline is kept apart), summed over
    checkpoints in `matrix` and per checkpoint in `by_checkpoint`."""

    rows: tuple[str, ...]
    weights: tuple[float, ...]
    matrix: Matrix
    baseline: Tally | None
    by_checkpoint: dict[str, Matrix] = field(default_factory=dict)
    baseline_by_checkpoint: dict[str, Tally] = field(default_factory=dict)

    def checkpoint_total(self, checkpoint: str) -> Tally:
        """All LoRA cells of one checkpoint (the baseline not included)."""
        return sum((t for row in self.by_checkpoint[checkpoint] for t in row), Tally())

    def to_json(self) -> dict[str, Any]:
        def grid(m: Matrix) -> list[list[dict[str, Any]]]:
            return [[t.to_json() for t in row] for row in m]

        return {
            "rows": list(self.rows), "weights": list(self.weights), "matrix": grid(self.matrix),
            "baseline": None if self.baseline is None else self.baseline.to_json(),
            "checkpoints": {
                c: {"matrix": grid(m), "total": self.checkpoint_total(c).to_json(),
                    "baseline": base.to_json() if (base := self.baseline_by_checkpoint.get(c)) else None}
                for c, m in self.by_checkpoint.items()
            },
        }


def cell_tally(cell: ManifestCell, ratings: Mapping[str, str]) -> Tally:
    """Hits, misses and unrated images of one cell."""
    tally = Tally()
    for image in cell.images:
        value = ratings.get(image.file) if image.file is not None else None
        tally += Tally(int(value == HIT), int(value == MISS), int(value is None))
    return tally


def hit_rates(manifest: SweepManifest, ratings: Mapping[str, str]) -> HitRates:
    weight_cols = [i for i, c in enumerate(manifest.columns) if c.weight is not None]
    col_at = {col: j for j, col in enumerate(weight_cols)}
    empty = [[Tally()] * len(weight_cols) for _ in manifest.rows]
    per: dict[str, list[list[Tally]]] = {c: [list(r) for r in empty] for c in manifest.checkpoints}
    base: dict[str, Tally] = {}
    for cell in manifest.cells:
        tally = cell_tally(cell, ratings)
        if cell.row is None:
            base[cell.checkpoint] = base.get(cell.checkpoint, Tally()) + tally
        else:
            grid = per.setdefault(cell.checkpoint, [list(r) for r in empty])
            grid[cell.row][col_at[cell.col]] += tally
    by_checkpoint = {c: tuple(tuple(r) for r in m) for c, m in per.items()}
    total = tuple(
        tuple(sum((m[r][c] for m in by_checkpoint.values()), Tally()) for c in range(len(weight_cols)))
        for r in range(len(manifest.rows))
    )
    return HitRates(
        rows=tuple(r.label for r in manifest.rows),
        weights=tuple(manifest.columns[i].weight for i in weight_cols),  # type: ignore[misc]
        matrix=total, baseline=sum(base.values(), Tally()) if base else None,
        by_checkpoint=by_checkpoint, baseline_by_checkpoint=base,
    )


@dataclass(frozen=True)
class Recommendation:
    row: int
    weight: float
    lora: str  # the name in <lora:…>
    label: str
    epoch: int | None
    file: str  # the LoRA file
    tally: Tally
    reason: str
    advice: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "weight": self.weight, "lora": self.lora, "label": self.label,
                "epoch": self.epoch, "file": self.file, "tally": self.tally.to_json(), "reason": self.reason,
                "advice": list(self.advice), "tag": f"<lora:{self.lora}:{format_weight(self.weight)}>"}


def cell_scores(manifest: SweepManifest, rates: HitRates,
                scores: dict[str, Any] | None) -> dict[tuple[int, int], float]:
    """(row, column of `rates.weights`) -> the automatic score, averaged over checkpoints; gated
    cells count 0."""
    if not scores:
        return {}
    sums: dict[tuple[int, int], list[float]] = {}
    for cell in manifest.cells:
        entry = scores.get("cells", {}).get(str(cell.index))
        if cell.row is None or entry is None or cell.weight not in rates.weights:
            continue
        sums.setdefault((cell.row, rates.weights.index(cell.weight)), []).append(float(entry["score"]))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def recommend(manifest: SweepManifest, rates: HitRates,
              scores: dict[str, Any] | None = None) -> Recommendation | None:
    """The best rated epoch × weight; see the module docstring. The person's hit rate decides; the
    automatic scores (when the sweep was scored) break its ties, and before anything is rated the
    best score is the suggestion. None with neither."""
    by_score = cell_scores(manifest, rates, scores)
    rated = [
        (r, c) for r in range(len(rates.rows)) for c in range(len(rates.weights))
        if rates.matrix[r][c].rated
    ]
    if not rated:
        return _from_scores(manifest, rates, by_score)
    best_rate = max(rates.matrix[r][c].fraction for r, c in rated)  # type: ignore[type-var]
    tied = [(r, c) for r, c in rated if rates.matrix[r][c].fraction == best_rate]
    row, col = min(tied, key=lambda rc: (-by_score.get(rc, 0.0), rc[0], rates.weights[rc[1]]))
    weight, tally = rates.weights[col], rates.matrix[row][col]
    label = rates.rows[row]
    reason = f"{label} at weight {format_weight(weight)}: {tally.describe()}"
    if len(tied) > 1 and by_score:
        reason += (f"; {len(tied) - 1} other setting(s) tie on hit rate: the automatic score "
                   f"({by_score.get((row, col), 0.0):.2f}) breaks the tie")
    elif len(tied) > 1:
        reason += f"; {len(tied) - 1} other setting(s) tie: the earlier epoch, then the lower weight, wins"
    advice = []
    same_epoch = rates.matrix[row]
    weaker = [
        c for c in range(len(rates.weights))
        if rates.weights[c] > weight and same_epoch[c].rated and same_epoch[c].fraction < best_rate
    ]
    if weaker:
        worst = min(weaker, key=lambda c: same_epoch[c].fraction)  # type: ignore[arg-type, return-value]
        advice.append(
            f"Above weight {format_weight(weight)} the hit rate drops (weight "
            f"{format_weight(rates.weights[worst])}: {same_epoch[worst].rate:.0%}): the LoRA is too strong "
            f"there; keep the weight at {format_weight(weight)} or lower."
        )
    if rates.baseline is not None and rates.baseline.rated and rates.baseline.fraction >= best_rate:
        advice.append(
            f"Without the LoRA the hit rate is {rates.baseline.rate:.0%}, as good as the best setting: "
            "the LoRA adds nothing the ratings reward."
        )
    if tally.unrated:
        advice.append(f"{tally.unrated} image(s) of this setting are not rated yet.")
    manifest_row = manifest.rows[row]
    return Recommendation(row, weight, manifest_row.lora, label, manifest_row.epoch, manifest_row.file, tally,
                          reason, tuple(advice))


def _check_name(final_name: str, suffix: str) -> str:
    name = final_name.strip()
    if name.lower().endswith(suffix.lower()):
        name = name[: -len(suffix)]
    if not name or name.startswith(".") or _BAD_NAME.search(name):
        raise ReviewError(
            f"{final_name!r} cannot be a LoRA name: use a plain file name without "
            '/ \\ : * ? " < > | or a leading dot'
        )
    return name


def _copy_new(source: Path, target: Path) -> None:
    """Copy `source` to `target`, which must not exist (exclusive create: never overwrites)."""
    with open(source, "rb") as src, open(target, "xb") as dst:
        try:
            shutil.copyfileobj(src, dst, 8 * 1024 * 1024)
        except BaseException:
            dst.close()
            target.unlink()
            raise
    shutil.copystat(source, target)


def _from_scores(manifest: SweepManifest, rates: HitRates,
                 by_score: dict[tuple[int, int], float]) -> Recommendation | None:
    if not by_score or max(by_score.values()) <= 0:
        return None
    (row, col), score = max(by_score.items(), key=lambda kv: (kv[1], -kv[0][0], -rates.weights[kv[0][1]]))
    weight, label = rates.weights[col], rates.rows[row]
    reason = (f"{label} at weight {format_weight(weight)}: nothing is rated yet; it has the highest "
              f"automatic score ({score:.2f}, a tagger's proxy)")
    advice = ("Rate a few images of the shortlist: your hit rates decide, the scores only fill the gaps.",)
    manifest_row = manifest.rows[row]
    return Recommendation(row, weight, manifest_row.lora, label, manifest_row.epoch, manifest_row.file,
                          rates.matrix[row][col], reason, advice)


def promote(file: Path | str, final_name: str, *, move: bool = False) -> list[Path]:
    """Copy (or, with `move`, rename) the LoRA `file` and its sidecars (preview, .json, .txt…)
    to `final_name` in the same folder. Refuses if any target exists; other files are not
    touched. Returns the new paths, the LoRA first."""
    file = Path(file)
    suffix = next((s for s in LORA_SUFFIXES if file.name.lower().endswith(s)), file.suffix)
    if not file.is_file():
        raise ReviewError(f"{file} does not exist (was the Lora folder moved?)")
    name = _check_name(final_name, suffix)
    stem = file.name[: -len(suffix)]
    if name == stem:
        raise ReviewError(f"{file.name} already has the name {name!r}")
    pairs = [(file, file.with_name(name + suffix))]
    pairs += [(file.with_name(stem + s), file.with_name(name + s)) for s in SIDECAR_SUFFIXES
              if file.with_name(stem + s).is_file()]
    taken = [target.name for _, target in pairs if target.exists()]
    if taken:
        raise ReviewError(f"not overwriting {', '.join(taken)} in {file.parent}; choose another name")
    done: list[Path] = []
    try:
        for source, target in pairs:
            if move:
                os.rename(source, target)
            else:
                _copy_new(source, target)
            done.append(target)
    except OSError as e:
        for (source, _), target in zip(pairs, done):  # undo, so it is all or nothing
            with contextlib.suppress(OSError):
                if move:
                    os.rename(target, source)
                else:
                    target.unlink()
        verb = "rename" if move else "copy"
        raise ReviewError(f"could not {verb} {file.name} to {name}{suffix}: {e}") from None
    return done
