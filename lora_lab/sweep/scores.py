"""Automatic evidence for a sweep, from tag probabilities a WD14 tagger gives each image.

All of these are proxies measured with a tagger; the person decides. Per image:
- *fidelity*: how much of the trained concept shows — against the nearest training image, the
  mean of the recall of that image's characteristic tags (tags most training images share: what
  the trigger absorbs) and the cosine similarity of the two tag profiles (1 for a training image);
- *adherence*: the share of the prompt's own tags (those the tagger knows, minus the trigger and
  the characteristic tags) that the tagger finds — does the LoRA still obey the prompt;
- *influence*: 1 − cosine similarity to the no-LoRA image with the same seed and prompt (0 where
  the base model dominates, e.g. weight 0).
Per cell: the means, *diversity* (mean pairwise 1 − cosine across the cell's images, relative to
the no-LoRA column's: an overcooked LoRA collapses onto its training images) and one *score*: the
F-β of fidelity and adherence with β = 1 — undercooked LoRAs lose fidelity, overcooked ones lose
adherence, and the harmonic mean lets neither hide the other (cyberharem's selector combines the
same two). A cell with a blank or uniform image, or collapsed diversity, is gated to 0 with the
reason.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

THRESHOLD = 0.35  # a tag counts as present at this probability (WD14's usual general threshold)
CHARACTERISTIC_SHARE = 0.5  # ... in at least this share of the training images
BETA = 1.0
COLLAPSE = 0.25  # a cell whose diversity is below this share of the baseline's has collapsed
UNIFORM_STD = 2.0  # pixel standard deviation (0-255) below which an image is blank or uniform


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


def characteristic_tags(train: np.ndarray, threshold: float = THRESHOLD,
                        share: float = CHARACTERISTIC_SHARE) -> np.ndarray:
    """Boolean mask of the tags present in at least `share` of the training images."""
    return (np.asarray(train) >= threshold).mean(axis=0) >= share


def fidelity(image: np.ndarray, train: np.ndarray, characteristic: np.ndarray,
             threshold: float = THRESHOLD) -> float:
    """Against the nearest training image: ½ recall of its characteristic tags + ½ cosine."""
    image, train = np.asarray(image, dtype=np.float64), np.asarray(train, dtype=np.float64)
    cosines = _unit(train) @ _unit(image[None])[0]
    present = image >= threshold
    best = 0.0
    for i, row in enumerate(train):
        wanted = characteristic & (row >= threshold)
        recall = float(present[wanted].mean()) if wanted.any() else 1.0
        best = max(best, 0.5 * recall + 0.5 * float(cosines[i]))
    return best


def adherence(image: np.ndarray, prompt_tags: Sequence[int], threshold: float = THRESHOLD) -> float | None:
    """Share of the prompt's tags found in the image (None when the prompt names none)."""
    if len(prompt_tags) == 0:
        return None
    return float((np.asarray(image)[list(prompt_tags)] >= threshold).mean())


def influence(image: np.ndarray, baseline: np.ndarray) -> float:
    return float(max(0.0, 1.0 - float(_unit(image[None])[0] @ _unit(baseline[None])[0])))


def spread(images: np.ndarray) -> float | None:
    """Mean pairwise 1 − cosine of a set of tag profiles (None for fewer than two)."""
    images = _unit(images)
    n = len(images)
    if n < 2:
        return None
    sims = images @ images.T
    return float((1.0 - sims[np.triu_indices(n, 1)]).mean())


def artefact(pixels: np.ndarray) -> str | None:
    """Why an image is unusable (non-finite, blank or uniform), else None."""
    pixels = np.asarray(pixels, dtype=np.float64)
    if not np.isfinite(pixels).all():
        return "non-finite pixels"
    if pixels.std() < UNIFORM_STD:
        return "blank or uniform image"
    return None


def f_beta(fid: float, adh: float | None, beta: float = BETA) -> float:
    if adh is None:
        return fid
    if fid <= 0 or adh <= 0:
        return 0.0
    return (1 + beta**2) * fid * adh / (beta**2 * adh + fid)


@dataclass
class CellScores:
    fidelity: float
    adherence: float | None
    influence: float | None
    diversity: float | None  # relative to the baseline's when there is one
    score: float
    gated: str | None = None  # why the score is 0
    images: list[dict[str, float | None]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"fidelity": self.fidelity, "adherence": self.adherence, "influence": self.influence,
                "diversity": self.diversity, "score": self.score, "gated": self.gated, "images": self.images}


def score_cell(images: np.ndarray, train: np.ndarray, characteristic: np.ndarray,
               prompt_tags: Sequence[Sequence[int]], baseline: np.ndarray | None = None,
               problems: Sequence[str | None] = ()) -> CellScores:
    """`images` (S, T) of one cell, `prompt_tags` per image, `baseline` (S, T) with the same
    seeds and prompts (None: no baseline column); `problems`: each image's artefact reason."""
    per_image = []
    for i, image in enumerate(images):
        per_image.append({
            "fidelity": fidelity(image, train, characteristic),
            "adherence": adherence(image, prompt_tags[i]),
            "influence": influence(image, baseline[i]) if baseline is not None else None,
        })
    fid = float(np.mean([p["fidelity"] for p in per_image]))
    adh_values = [p["adherence"] for p in per_image if p["adherence"] is not None]
    adh = float(np.mean(adh_values)) if adh_values else None
    inf_values = [p["influence"] for p in per_image if p["influence"] is not None]
    inf = float(np.mean(inf_values)) if inf_values else None
    own = spread(images)
    base = spread(baseline) if baseline is not None else None
    diversity = own if base is None or own is None else (own / base if base > 0 else None)
    gated = next((p for p in problems if p), None)
    if gated is None and base is not None and own is not None and base > 0 and own / base < COLLAPSE:
        gated = f"collapsed: its images differ {own / base:.0%} as much as the no-LoRA column's"
    score = 0.0 if gated else f_beta(fid, adh)
    return CellScores(fid, adh, inf, diversity, score, gated, per_image)


def rank_correlation(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None for fewer than 3 pairs."""
    if len(a) < 3 or len(a) != len(b):
        return None

    def ranks(values: Sequence[float]) -> np.ndarray:
        order = np.argsort(values, kind="stable")
        out = np.empty(len(values))
        values = np.asarray(values, dtype=np.float64)
        i = 0
        while i < len(values):
            j = i
            while j + 1 < len(values) and values[order[j + 1]] == values[order[i]]:
                j += 1
            out[order[i:j + 1]] = (i + j) / 2
            i = j + 1
        return out

    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])
