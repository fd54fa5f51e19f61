"""Score a rendered sweep with a WD14 tagger: tag its images and the training images, compute the
measures of `scores.py` per image and cell, and keep them in the manifest beside each cell and
image (re-scoring, e.g. with another tagger, replaces them)."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..dataset.images import find_images, load_rgb
from ..files.lora_files import read_run_file
from .manifest import SweepManifest
from .scores import BETA, THRESHOLD, artefact, characteristic_tags, rank_correlation, score_cell


class ScoringError(ValueError):
    pass


SCORING = "lora_lab_scoring"  # the manifest parameter saying how it was scored


def load_scores(manifest: SweepManifest) -> dict[str, Any] | None:
    """The scores document from the manifest (None before scoring): how it was scored and each
    cell's measures (with its images')."""
    how = manifest.parameters.get(SCORING)
    if not isinstance(how, dict):
        return None
    cells = {str(c.index): {**c.scores, "images": [i.scores for i in c.images if i.scores is not None]}
             for c in manifest.cells if c.scores is not None}
    return {**how, "cells": cells}


def _store(manifest: SweepManifest, how: dict[str, Any], cells: dict[str, Any]) -> None:
    """Each cell's and image's measures beside them in the manifest, saved atomically."""
    for cell in manifest.cells:
        entry = cells.get(str(cell.index))
        cell.scores = None if entry is None else {k: v for k, v in entry.items() if k != "images"}
        shown = iter(entry["images"] if entry else [])
        for image in cell.images:
            image.scores = next(shown, None) if image.file is not None else None
    manifest.parameters[SCORING] = how
    manifest.save()


def training_folder(manifest: SweepManifest) -> Path | None:
    """The dataset the LoRA was trained on, from LoRA Lab's run file beside its epoch files."""
    for row in manifest.rows:
        run = read_run_file(Path(row.file).parent, manifest.family) or {}
        folder = run.get("config", {}).get("dataset_dir")
        if folder and Path(folder).is_dir():
                return Path(folder)
    return None


_WEIGHT = re.compile(r"^[(\[]*(.*?)(?::[\d.]+)?[)\]]*$")


def prompt_tags(prompt: str, index: dict[str, int], exclude: np.ndarray) -> list[int]:
    """The tagger's tags a prompt names (`a_tag`, `a tag`, `(a tag:1.2)`), minus `exclude`d ones;
    `<lora:…>` and words the tagger does not know are left out."""
    found = []
    for part in re.sub(r"<[^>]*>", ",", prompt).split(","):
        tag = _WEIGHT.match(part.strip()).group(1).strip().lower().replace(" ", "_")  # type: ignore[union-attr]
        i = index.get(tag)
        if i is not None and not exclude[i] and i not in found:
            found.append(i)
    return found


def score_sweep(manifest: SweepManifest, tagger_dir: Path, dataset: Path | None = None,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Tag and score every rendered image; returns and saves the scores document."""
    from ..tagging.model import load_tagger
    from ..tagging.predict import predict_files

    dataset = dataset or training_folder(manifest)
    if dataset is None or not Path(dataset).is_dir():
        raise ScoringError("the training images are needed for fidelity: pass the dataset folder "
                           "(no LoRA Lab run file beside the LoRA names it)")
    train_paths = find_images(Path(dataset), recursive=True).images
    if not train_paths:
        raise ScoringError(f"no training images in {dataset}")
    rendered = [(c, i, manifest.resolve(img.file)) for c in manifest.cells for i, img in enumerate(c.images)
                if img.file is not None]
    if not rendered:
        raise ScoringError(f"{manifest.path}: no rendered images to score")
    tagger = load_tagger(Path(tagger_dir))
    paths = train_paths + [p for _, _, p in rendered]
    probs: dict[Path, np.ndarray] = {}
    for n, prediction in enumerate(predict_files(tagger, paths), 1):
        if prediction.scores is not None:
            probs[prediction.path] = np.asarray(prediction.scores, dtype=np.float64)
        if progress is not None:
            progress(n, len(paths))
    train = np.stack([probs[p] for p in train_paths if p in probs])
    characteristic = characteristic_tags(train)
    index = {name.lower(): i for i, name in enumerate(tagger.labels.names)}
    width = train.shape[1]

    def image_probs(path: Path) -> np.ndarray:
        return probs.get(path, np.zeros(width))

    def plain(prompt: str) -> str:  # a cell's prompt without its <lora:…> tag: the baseline's prompt
        return " ".join(re.sub(r"<lora:[^>]*>", " ", prompt).split())

    baselines = {(c.checkpoint, plain(c.prompts[img.prompt]), img.seed): manifest.resolve(img.file)
                 for c in manifest.cells if c.lora is None for img in c.images if img.file is not None}
    cells: dict[str, Any] = {}
    for cell in manifest.cells:
        shown = [(i, manifest.resolve(img.file), img) for i, img in enumerate(cell.images) if img.file is not None]
        if not shown:
            continue
        matrix = np.stack([image_probs(p) for _, p, _ in shown])
        tags = [prompt_tags(cell.prompts[img.prompt], index, characteristic) for _, _, img in shown]
        base_paths = [baselines.get((cell.checkpoint, plain(cell.prompts[img.prompt]), img.seed))
                      for _, _, img in shown]
        baseline = None if cell.lora is None or any(b is None for b in base_paths) else \
            np.stack([image_probs(b) for b in base_paths])  # type: ignore[arg-type]
        problems = [artefact(np.asarray(load_rgb(p))) if p.is_file() else "missing file" for _, p, _ in shown]
        cells[str(cell.index)] = score_cell(matrix, train, characteristic, tags, baseline, problems).to_json()
    how = {"tagger": Path(tagger_dir).name, "dataset": str(dataset), "threshold": THRESHOLD, "beta": BETA,
           "characteristic_tags": [tagger.labels.names[i] for i in np.flatnonzero(characteristic)]}
    _store(manifest, how, cells)
    return {**how, "cells": cells}


def shortlist(manifest: SweepManifest, scores: dict[str, Any], count: int = 3) -> list[dict[str, Any]]:
    """The best LoRA cells by score, gated ones left out, best first."""
    ranked = []
    for cell in manifest.cells:
        entry = scores.get("cells", {}).get(str(cell.index))
        if cell.lora is None or entry is None or entry.get("gated"):
            continue
        ranked.append({"cell": cell.index, "lora": cell.lora, "weight": cell.weight, "label": cell.label,
                       "checkpoint": cell.checkpoint, "score": entry["score"]})
    ranked.sort(key=lambda e: (-e["score"], e["cell"]))
    return ranked[:count]


def agreement(manifest: SweepManifest, scores: dict[str, Any], hit_rates: dict[int, float]) -> float | None:
    """Rank correlation between the cells' scores and the person's hit rates, where both exist."""
    pairs = [(scores["cells"][str(i)]["score"], rate) for i, rate in hit_rates.items()
             if str(i) in scores.get("cells", {})]
    return rank_correlation([p[0] for p in pairs], [p[1] for p in pairs])


def choose_tagger(name: str | None, models_dir: Path) -> Path:
    """A tagger folder: `name` (a folder, or a name under `models_dir/taggers`), else the only one
    installed; a clear message when there is none or several."""
    from ..tagging.model import find_models, resolve_model, taggers_dir

    if name:
        return resolve_model(name, models_dir)
    installed = find_models(taggers_dir(models_dir))
    if len(installed) == 1:
        return installed[0].path
    if not installed:
        raise ScoringError(f"no tagger installed in {taggers_dir(models_dir)}: put a WD14 tagger folder "
                           "there (the Dataset tab's Download gets the standard ones) or name one")
    raise ScoringError(f"several taggers installed ({', '.join(m.name for m in installed)}): choose one")


def cell_hit_rates(manifest: SweepManifest, ratings: dict[str, str]) -> dict[int, float]:
    """Per LoRA cell with rated images: hits / rated."""
    from .review import cell_tally

    rates = {cell.index: cell_tally(cell, ratings).rate for cell in manifest.cells if cell.lora is not None}
    return {index: rate for index, rate in rates.items() if rate is not None}


def scores_view(manifest: SweepManifest, ratings: dict[str, str]) -> dict[str, Any] | None:
    """The stored scores with the shortlist and, where the person has rated, the rank agreement
    between scores and hit rates (how far to trust the scores)."""
    document = load_scores(manifest)
    if document is None:
        return None
    return {**document, "shortlist": shortlist(manifest, document),
            "agreement": agreement(manifest, document, cell_hit_rates(manifest, ratings))}
