"""The cells of a sweep: checkpoints × epoch files × weights, each with K prompts and N seeds.

Cells run checkpoint outermost, then epoch, then weight: the order that loads each checkpoint
once and merges each (file, weight) once. Weight 0 means "no LoRA": it becomes the baseline
column, which renders once per checkpoint (the picture does not depend on the epoch) and is shown
in every row. Every cell uses the same prompts and seeds, so columns and rows compare fairly.
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .family import LoraFamily
from .prompts import set_lora_tag
from .showcase import is_fixed_point
from .weights import format_weight

BASELINE_LABEL = "no LoRA"
CURRENT_CHECKPOINT = ""  # the checkpoint loaded when the sweep starts


class PlanError(ValueError):
    """Sweep settings that cannot be run; the message says what to change."""


@dataclass(frozen=True)
class Row:
    lora: str  # the name in <lora:…>
    label: str
    epoch: int | None
    file: Path


@dataclass(frozen=True)
class Column:
    weight: float | None  # None: the no-LoRA baseline
    label: str


@dataclass(frozen=True)
class Cell:
    index: int
    checkpoint: str
    row: int | None  # None for the baseline, which belongs to every row
    col: int
    lora: str | None
    weight: float | None
    prompts: tuple[str, ...]  # the K prompts with this cell's tag
    negative_prompt: str
    seeds: tuple[int, ...]
    label: str

    @property
    def is_baseline(self) -> bool:
        return self.lora is None

    @property
    def images(self) -> list[tuple[int, int]]:
        """(prompt index, seed) of each image, prompt-major: image i of the cell."""
        return [(p, seed) for p in range(len(self.prompts)) for seed in self.seeds]

    @property
    def key(self) -> str:
        """Stable across runs of the same settings; lets a resumed sweep skip finished cells."""
        weight = "" if self.weight is None else format_weight(self.weight)
        return f"{self.checkpoint}|{self.lora or ''}|{weight}"


@dataclass(frozen=True)
class SweepPlan:
    family: str
    checkpoints: tuple[str, ...]
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    prompts: tuple[str, ...]  # the showcase prompts without this LoRA's tag (for legends)
    negative_prompt: str
    seeds: tuple[int, ...]
    cells: tuple[Cell, ...]
    warnings: tuple[str, ...]

    @property
    def images_per_cell(self) -> int:
        return len(self.prompts) * len(self.seeds)

    @property
    def total_images(self) -> int:
        return len(self.cells) * self.images_per_cell

    def cell_at(self, checkpoint: str, row: int, col: int) -> Cell:
        """The cell shown at (row, col) of `checkpoint`'s grid; the baseline column has one cell."""
        for cell in self.cells:
            if cell.checkpoint == checkpoint and cell.col == col and (cell.row is None or cell.row == row):
                return cell
        raise KeyError((checkpoint, row, col))

    def summary(self) -> dict[str, Any]:
        return {
            "family": self.family, "checkpoints": list(self.checkpoints),
            "rows": [r.label for r in self.rows], "columns": [c.label for c in self.columns],
            "prompts": len(self.prompts), "seeds": len(self.seeds), "cells": len(self.cells),
            "images_per_cell": self.images_per_cell, "total_images": self.total_images,
            "warnings": list(self.warnings),
        }


def _dedupe(items: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def build_plan(
    family: LoraFamily,
    weights: Sequence[float],
    prompts: Sequence[str],
    seeds: Sequence[int],
    *,
    checkpoints: Sequence[str] = (CURRENT_CHECKPOINT,),
    negative_prompt: str = "",
    baseline: bool = False,
    epochs: Sequence[str] | None = None,
    model_base: str | None = None,
) -> SweepPlan:
    """Plan a sweep of `family`'s files (or the stems listed in `epochs`, in family order).

    `prompts` are the expanded showcase prompts; the LoRA tag in each is set per cell (and
    appended where missing). The negative prompt is passed through untouched."""
    files = list(family.files)
    if epochs is not None:
        chosen = {family.file(name).name for name in epochs}
        files = [f for f in files if f.name in chosen]
    if not files:
        raise PlanError(f"LoRA {family.name!r} has no epoch files to sweep")
    weight_list = _dedupe([float(w) for w in weights])
    if 0.0 in weight_list:
        weight_list.remove(0.0)
        baseline = True
    if not weight_list and not baseline:
        raise PlanError("no weights to sweep")
    prompt_list = list(prompts)
    if not prompt_list:
        raise PlanError("no prompts")
    seed_list = _dedupe([int(s) for s in seeds])
    if not seed_list:
        raise PlanError("no seeds")
    checkpoint_list = _dedupe([c.strip() for c in checkpoints]) or [CURRENT_CHECKPOINT]

    names = family.tag_names
    rows = tuple(Row(f.name, f.label, f.epoch, f.path) for f in files)
    columns = [Column(None, BASELINE_LABEL)] if baseline else []
    columns += [Column(w, format_weight(w)) for w in weight_list]
    bare = tuple(set_lora_tag(p, names, None, None) for p in prompt_list)
    tagged = {
        (row.lora, col.weight): tuple(set_lora_tag(p, names, row.lora, col.weight) for p in prompt_list)
        for row in rows for col in columns if col.weight is not None
    }

    cells: list[Cell] = []
    for checkpoint in checkpoint_list:
        where = f"{checkpoint}: " if len(checkpoint_list) > 1 and checkpoint else ""
        for col, column in enumerate(columns):
            if column.weight is None:
                cells.append(Cell(len(cells), checkpoint, None, col, None, None, bare, negative_prompt,
                                  tuple(seed_list), f"{where}{BASELINE_LABEL}"))
        for r, row in enumerate(rows):
            for col, column in enumerate(columns):
                if column.weight is not None:
                    cells.append(Cell(
                        len(cells), checkpoint, r, col, row.lora, column.weight,
                        tagged[(row.lora, column.weight)], negative_prompt, tuple(seed_list),
                        f"{where}{row.label} @ {column.label}",
                    ))

    warnings = family.warnings(model_base)
    # Weights only change digits, so one weight per file shows whether its name survives a pass.
    for row in rows:
        sample = set_lora_tag(prompt_list[0], names, row.lora, 1.0)
        if not is_fixed_point(sample):
            warnings.append(
                f"{row.lora}: the file name is not plain text for Dynamic Prompts; "
                "the sweep must run with it off"
            )
    return SweepPlan(
        family=family.name, checkpoints=tuple(checkpoint_list), rows=rows, columns=tuple(columns),
        prompts=bare, negative_prompt=negative_prompt, seeds=tuple(seed_list), cells=tuple(cells),
        warnings=tuple(warnings),
    )


def eta_seconds(seconds_per_image: Sequence[float], remaining_images: int) -> float | None:
    """Time left from the observed per-image times (None before the first image).

    Uses the median of the last 20, so a checkpoint load or the first LoRA merge does not
    inflate the estimate for the whole rest of the run."""
    recent = list(seconds_per_image)[-20:]
    if not recent:
        return None
    return statistics.median(recent) * max(remaining_images, 0)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"
