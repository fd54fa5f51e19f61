"""Steps arithmetic for a kohya-style dataset, and advice when a plan is off.

Counts follow sd-scripts: every image appears `repeats` times per epoch; batches are formed inside
aspect-ratio buckets, so with bucket counts the batches per epoch are the sum over buckets of
ceil(samples in bucket / batch size) (partly filled buckets add batches), otherwise
ceil(samples / batch size). An optimizer step takes `grad_accum` batches:
steps per epoch = ceil(batches / grad_accum).

Flip (`--flip_aug`) mirrors an image at random each time it is drawn: more variety, the same
number of steps. It does not double the dataset.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .buckets import Size, grid
from .images import ImageProblem, find_images, inspect_image
from .layout import read_groups

# seed guides for SD1.5 people LoRAs (training.md §4.11)
SAMPLES_PER_EPOCH = (200, 400)
EPOCHS = (10, 30)
MIN_TOTAL_STEPS = 1500
FEW_IMAGES = 15

FLIP_NOTE = ("flip: each draw is mirrored at random (kohya --flip_aug); "
             "it adds variety, not steps")


@dataclass(frozen=True)
class GroupCount:
    name: str
    repeats: int
    images: int
    buckets: dict[Size, int] | None = None  # images per bucket, when known


@dataclass(frozen=True)
class GroupPlan:
    name: str
    repeats: int
    images: int
    samples: int  # images × repeats, per epoch
    share: float  # of all samples per epoch


@dataclass(frozen=True)
class Advice:
    code: str
    message: str


@dataclass
class Plan:
    groups: list[GroupPlan]
    batch_size: int
    grad_accum: int
    epochs: int
    flip: bool
    images: int
    samples_per_epoch: int
    batches_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    bucket_exact: bool  # batches counted per bucket, as sd-scripts does
    advice: list[Advice] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "groups": [vars(g) for g in self.groups],
            "batch_size": self.batch_size, "grad_accum": self.grad_accum, "epochs": self.epochs,
            "flip": self.flip, "flip_doubles_steps": False,
            "images": self.images, "samples_per_epoch": self.samples_per_epoch,
            "batches_per_epoch": self.batches_per_epoch, "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps, "bucket_exact": self.bucket_exact,
            "advice": [vars(a) for a in self.advice], "notes": list(self.notes),
        }

    def text(self) -> str:
        lines = ["group                      images  repeats  per epoch  share"]
        for g in self.groups:
            lines.append(f"{_shorten(g.name or '(no name)', 25):25}  {g.images:6}  {g.repeats:7}  "
                         f"{g.samples:9}  {g.share:5.0%}")
        lines.append(f"{'total':25}  {self.images:6}  {'':7}  {self.samples_per_epoch:9}")
        how = "counted per bucket" if self.bucket_exact else "without bucket counts"
        effective = self.batch_size * self.grad_accum
        lines += [
            "",
            f"batch size {self.batch_size} × gradient accumulation {self.grad_accum} "
            f"= {effective} image(s) per step",
            f"batches per epoch {self.batches_per_epoch} ({how}), steps per epoch {self.steps_per_epoch}",
            f"{self.epochs} epoch(s): {self.total_steps} steps",
        ]
        if self.flip:
            lines.append(FLIP_NOTE)
        lines += self.notes
        if self.advice:
            lines.append("")
            lines += [f"advice: {a.message}" for a in self.advice]
        return "\n".join(lines)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be at least 1 (got {value})")


def plan(source: Path | Sequence[GroupCount], batch_size: int = 1, grad_accum: int = 1,
         epochs: int = 10, flip: bool = False, resolution: int | None = None,
         repeats: int = 1) -> Plan:
    """Plan for a training folder (or its group counts).

    A folder of `N_name` groups is read as kohya reads it; a plain folder of images is one group
    with `repeats`. With `resolution`, image headers are read to count batches per bucket."""
    for name, value in (("batch size", batch_size), ("gradient accumulation", grad_accum),
                        ("epochs", epochs), ("repeats", repeats)):
        _positive(name, value)
    notes: list[str] = []
    if isinstance(source, (str, Path)):
        groups, notes = count_groups(Path(source), resolution, repeats)
    else:
        groups = list(source)
    if not groups or not any(g.images for g in groups):
        raise ValueError("no images to train on")
    for g in groups:
        _positive(f"repeats of {g.name!r}", g.repeats)

    samples = sum(g.images * g.repeats for g in groups)
    images = sum(g.images for g in groups)
    bucket_exact = all(g.buckets is not None for g in groups)
    if bucket_exact:
        per_bucket: Counter[Size] = Counter()
        for g in groups:
            for bucket, n in (g.buckets or {}).items():
                per_bucket[bucket] += n * g.repeats
        batches = sum(math.ceil(n / batch_size) for n in per_bucket.values())
    else:
        batches = math.ceil(samples / batch_size)
    steps_per_epoch = math.ceil(batches / grad_accum)
    group_plans = [GroupPlan(g.name, g.repeats, g.images, g.images * g.repeats,
                             g.images * g.repeats / samples) for g in groups]
    result = Plan(group_plans, batch_size, grad_accum, epochs, flip, images, samples, batches,
                  steps_per_epoch, steps_per_epoch * epochs, bucket_exact, notes=notes)
    result.advice = advise(result)
    return result


def advise(p: Plan) -> list[Advice]:
    advice: list[Advice] = []
    low, high = SAMPLES_PER_EPOCH
    if not low <= p.samples_per_epoch <= high:
        factor = (low + high) / 2 / p.samples_per_epoch
        suggestion = ", ".join(f"{g.repeats} → {max(1, round(g.repeats * factor))}"
                               for g in p.groups)
        direction = "raise" if p.samples_per_epoch < low else "lower"
        advice.append(Advice("samples_per_epoch", (
            f"images × repeats is {p.samples_per_epoch} per epoch; guides aim for {low}–{high}: "
            f"{direction} the repeats (e.g. {suggestion})")))
    low, high = EPOCHS
    if not low <= p.epochs <= high:
        advice.append(Advice("epochs", (
            f"{p.epochs} epoch(s); {low}–{high} gives a useful sweep of epoch files to choose from")))
    if p.total_steps < MIN_TOTAL_STEPS:
        needed = math.ceil(MIN_TOTAL_STEPS / p.steps_per_epoch)
        fix = f"use {needed} epochs" if needed <= EPOCHS[1] else "raise the repeats"
        advice.append(Advice("total_steps", (
            f"only {p.total_steps} steps in all; a person usually needs about {MIN_TOTAL_STEPS} "
            f"or more: {fix}")))
    if p.images < FEW_IMAGES:
        advice.append(Advice("few_images", (
            f"only {p.images} image(s); with fewer than {FEW_IMAGES}, use more repeats or a higher "
            f"learning rate, and prefer varied images (pose, light, background)")))
    return advice


def count_groups(folder: Path, resolution: int | None = None,
                 repeats: int = 1) -> tuple[list[GroupCount], list[str]]:
    """Group counts of a training folder (plus notes for the reader), bucketed when resolution is set."""
    scan = read_groups(folder)
    notes = [f"ignored {p.name}/: no repeat count in its name (kohya skips it too)"
             for p in scan.ignored]
    entries = [(g.name, g.repeats, g.images) for g in scan.groups]
    if not entries:
        flat = find_images(folder).images
        if flat:
            entries = [(folder.name, repeats, flat)]
            notes.append(f"{folder.name} has no N_name folders: planned as one group of "
                         f"{len(flat)} image(s) with {repeats} repeat(s)")
    bucketer = grid(resolution) if resolution else None
    groups: list[GroupCount] = []
    for name, group_repeats, paths in entries:
        buckets: Counter[Size] | None = None
        count = len(paths)
        if bucketer is not None:
            buckets = Counter()
            for path in paths:
                try:
                    info = inspect_image(path)
                except ImageProblem as e:
                    count -= 1
                    notes.append(f"not counted: {e.path.name}: {e.reason}")
                    continue
                buckets[bucketer.bucket_for(info.width, info.height)] += 1
        groups.append(GroupCount(name, group_repeats, count,
                                 dict(buckets) if buckets is not None else None))
    return groups, notes
