"""The training set: kohya `N_trigger` folders read into buckets, captions processed per draw the
way sd-scripts does, and batches formed inside buckets.

Everything here reads files only; latents are made in `latents.py`.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..dataset.buckets import BucketFit, BucketGrid, Size
from ..dataset.captions import CaptionEncodingError, caption_path, decode_caption, parse_caption, \
    tag_key
from ..dataset.images import ImageProblem, check_decodes, find_images, inspect_image
from ..dataset.layout import read_groups
from ..dataset.planner import GroupCount, Plan, plan
from .config import TrainConfig, TrainConfigError, holdout_is_folder

KEEP_SEPARATOR = "|||"


@dataclass
class Subset:
    folder: Path
    repeats: int
    trigger: str  # the folder's name part; "" for a plain folder


@dataclass
class Item:
    index: int
    path: Path
    subset: Subset
    fit: BucketFit  # the bucket, and how the image is scaled and cropped into it
    caption: str  # the caption a draw starts from (trigger first when asked), before shuffling
    items: list[str]  # `caption` split into tags (a sentence is one item)
    fixed: int  # leading items that never move or drop out
    size: Size = (0, 0)  # the image's own (width, height), EXIF rotation applied

    @property
    def bucket(self) -> Size:
        return self.fit.bucket

    def size_condition(self, flip: bool, mode: str) -> tuple[Size, Size, Size]:
        """SDXL's (original size, crop top-left, target size), each height first. "real": the
        image's own size and where the bucket was cut from the resized image (mirrored when
        flipped), as kohya sd-scripts trains; "bucket": the bucket for both sizes and no crop."""
        bucket_hw = (self.bucket[1], self.bucket[0])
        if mode == "bucket" or self.size == (0, 0):
            return bucket_hw, (0, 0), bucket_hw
        left, top, right, _ = self.fit.crop_box()
        if flip:
            left = self.fit.resized[0] - right
        return (self.size[1], self.size[0]), (top, left), bucket_hw


@dataclass
class Dataset:
    root: Path
    subsets: list[Subset]
    items: list[Item]
    plan: Plan
    notes: list[str] = field(default_factory=list)
    holdout: list[Item] = field(default_factory=list)  # never trained on: the validation loss's images

    @property
    def num_train_images(self) -> int:
        return sum(item.subset.repeats for item in self.items)

    def buckets(self) -> dict[Size, list[Item]]:
        out: dict[Size, list[Item]] = {}
        for item in self.items:
            out.setdefault(item.bucket, []).append(item)
        return dict(sorted(out.items()))

    def tag_frequency(self) -> dict[str, dict[str, int]]:
        """sd-scripts' `ss_tag_frequency`: per folder, lower-cased comma-split tags of each caption."""
        out: dict[str, Counter[str]] = {}
        for item in self.items:
            counts = out.setdefault(item.subset.folder.name, Counter())
            for tag in item.caption.split(","):
                if tag.strip():
                    counts[tag.strip().lower()] += 1
        return {k: dict(v) for k, v in out.items()}

    def dataset_dirs(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for s in self.subsets:
            count = sum(1 for item in self.items if item.subset is s)
            out[s.folder.name] = {"n_repeats": s.repeats, "img_count": count}
        return out

    def bucket_info(self) -> dict[str, object]:
        """sd-scripts' `ss_bucket_info`: (width, height) and draws per epoch of each bucket."""
        buckets = {str(i): {"resolution": list(size), "count": sum(it.subset.repeats for it in items)}
                   for i, (size, items) in enumerate(self.buckets().items())}
        return {"buckets": buckets}

    def first_caption(self) -> str:
        return self.items[0].caption if self.items else ""


def _first_line(text: str) -> str:
    for line in text.split("\n"):
        if line.strip():
            return line.strip()
    return ""


def _caption_items(text: str) -> list[str]:
    caption = parse_caption(text)
    items = list(caption.tags)
    if caption.sentence:
        items.insert(caption.sentence_at, caption.sentence)
    return items


def with_trigger_first(items: list[str], trigger: str) -> list[str]:
    key = tag_key(trigger)
    return [trigger] + [t for t in items if tag_key(t) != key]


def _fixed_count(items: list[str], keep_tokens: int) -> tuple[list[str], int]:
    """Items without the `|||` separator, and how many lead items are fixed."""
    if KEEP_SEPARATOR in items:
        at = items.index(KEEP_SEPARATOR)
        return items[:at] + [t for t in items[at + 1:] if t != KEEP_SEPARATOR], at
    return items, min(keep_tokens, len(items))


def _square_fit(width: int, height: int, side: int) -> BucketFit:
    scale = max(side / width, side / height)
    resized = (max(side, int(width * scale + 0.5)), max(side, int(height * scale + 0.5)))
    return BucketFit((side, side), resized, 1 - width / height, scale)


def _groups(root: Path) -> tuple[list[tuple[Subset, list[Path]]], list[str]]:
    scan = read_groups(root)
    notes = [f"ignored {p.name}/: no repeat count in its name" for p in scan.ignored]
    notes += [f"skipped {p.path.name}: {p.reason}" for p in scan.problems]
    groups = [(Subset(g.folder, g.repeats, g.name.strip()), g.images) for g in scan.groups if g.images]
    if not scan.groups:
        flat = find_images(root)
        notes += [f"skipped {p.path.name}: {p.reason}" for p in flat.problems]
        if flat.images:
            groups = [(Subset(root, 1, ""), flat.images)]
            notes.append(f"{root.name} has no N_trigger folders: its images are one group with 1 repeat")
    return groups, notes


def load_dataset(config: TrainConfig) -> Dataset:
    """Read the dataset's folders, image headers and captions; raise TrainConfigError when nothing
    can be trained on or a caption cannot be read."""
    root = config.dataset_dir
    if not root.is_dir():
        raise TrainConfigError([f"dataset folder not found: {root}"])
    groups, notes = _groups(root)
    grid = BucketGrid(config.resolution, config.min_bucket_reso, config.max_bucket_reso) \
        if config.enable_bucket else None
    items: list[Item] = []
    problems: list[str] = []
    missing_captions = 0
    for subset, images in groups:
        for path in images:
            item = _read_item(path, subset, config, grid, len(items), notes, problems)
            if item is not None:
                items.append(item)
                missing_captions += not caption_path(path, config.caption_extension).is_file()
    if problems:
        raise TrainConfigError(problems)
    items, holdout = _split_holdout(items, config, grid, notes)
    if not items:
        raise TrainConfigError([f"no images to train on in {root}"
                                + (f" ({'; '.join(notes[:3])})" if notes else "")])
    if missing_captions:
        notes.append(f"{missing_captions} image(s) without a {config.caption_extension} caption: "
                     "the trigger word of their folder (if it has one) is their caption")
    subsets = [s for s, _ in groups if any(it.subset is s for it in items)]
    counts = [GroupCount(s.trigger, s.repeats, sum(1 for it in items if it.subset is s),
                         dict(Counter(it.bucket for it in items if it.subset is s)))
              for s in subsets]
    step_plan = plan(counts, config.batch_size, config.grad_accum, config.epochs, config.flip)
    return Dataset(root, subsets, items, step_plan, notes, holdout)


def _read_item(path: Path, subset: Subset, config: TrainConfig, grid: BucketGrid | None, index: int,
               notes: list[str], problems: list[str], skipped: str = "skipped") -> Item | None:
    """One image as a training item: decoded here, not mid-caching (a bad image is left out with
    its reason in `notes`, not fatal); an unreadable caption goes to `problems`."""
    try:
        info = inspect_image(path)
        check_decodes(path)
    except ImageProblem as e:
        notes.append(f"{skipped} {path.name}: {e.reason}")
        return None
    text = ""
    cap = caption_path(path, config.caption_extension)
    if cap.is_file():
        try:
            text = _first_line(decode_caption(cap.read_bytes(), cap)[0])
        except CaptionEncodingError as e:
            problems.append(str(e))
            return None
    parsed = _caption_items(text) if text else ([subset.trigger] if subset.trigger else [])
    if config.prepend_trigger and subset.trigger:
        parsed = with_trigger_first(parsed, subset.trigger)
    parsed, fixed = _fixed_count(parsed, config.keep_tokens)
    fit = grid.fit(info.width, info.height) if grid else _square_fit(info.width, info.height, config.resolution)
    return Item(index, path, subset, fit, ", ".join(parsed), parsed, fixed, (info.width, info.height))


def holdout_count(spec: str, images: int) -> int:
    """How many of `images` a count ("2") or percentage ("10%") holds out (at least one for a
    percentage above 0, never all)."""
    spec = spec.strip()
    if spec.endswith("%"):
        share = float(spec[:-1]) / 100
        count = max(1, round(images * share)) if share > 0 else 0
    else:
        count = int(float(spec))
    return min(count, max(0, images - 1))


def _split_holdout(items: list[Item], config: TrainConfig, grid: BucketGrid | None,
                   notes: list[str]) -> tuple[list[Item], list[Item]]:
    """Training items and held-out ones: a seeded choice among the images for a count or a
    percentage, or the images of a separate folder. Indices stay unique (latents are keyed by them)."""
    spec = config.holdout.strip()
    if not spec:
        return items, []
    if holdout_is_folder(spec):
        folder = Path(spec).expanduser()
        if not folder.is_dir():
            raise TrainConfigError([f"holdout folder not found: {folder}"])
        held = _folder_items(folder, config, grid, len(items), notes)
        notes.append(f"validation: {len(held)} held-out image(s) from {folder}")
        return items, held
    count = holdout_count(spec, len(items))
    if count <= 0:
        return items, []
    chosen = set(random.Random(config.seed).sample(range(len(items)), count))
    kept = [it for i, it in enumerate(items) if i not in chosen]
    held = [it for i, it in enumerate(items) if i in chosen]
    before = sum(it.subset.repeats for it in items)
    after = sum(it.subset.repeats for it in kept)
    notes.append(f"validation: {count} image(s) held out of training ({', '.join(it.path.name for it in held[:5])}"
                 f"{' …' if count > 5 else ''}): images × repeats per epoch {before} → {after}")
    return kept, held


def _folder_items(folder: Path, config: TrainConfig, grid: BucketGrid | None, first_index: int,
                  notes: list[str]) -> list[Item]:
    scan = find_images(folder)
    notes += [f"skipped held-out {p.path.name}: {p.reason}" for p in scan.problems]
    subset = Subset(folder, 1, "")
    held: list[Item] = []
    problems: list[str] = []
    for path in scan.images:
        item = _read_item(path, subset, config, grid, first_index + len(held), notes, problems,
                          "skipped held-out")
        if item is not None:
            held.append(item)
    if problems:
        raise TrainConfigError(problems)
    if not held:
        raise TrainConfigError([f"no usable images in the holdout folder {folder}"])
    return held


def process_caption(item: Item, config: TrainConfig, rng: random.Random) -> str:
    """One draw's caption: whole-caption dropout, then the free tags shuffled and dropped."""
    if config.caption_dropout > 0 and rng.random() < config.caption_dropout:
        return ""
    fixed, free = item.items[:item.fixed], list(item.items[item.fixed:])
    if config.shuffle_caption:
        rng.shuffle(free)
    if config.tag_dropout > 0:
        free = [t for t in free if rng.random() >= config.tag_dropout]
    return ", ".join(fixed + free)


@dataclass(frozen=True)
class Draw:
    item: Item
    flip: bool


def epoch_batches(dataset: Dataset, config: TrainConfig, rng: random.Random) -> list[list[Draw]]:
    """Every image `repeats` times, batched inside its bucket, in a shuffled order; exactly
    `plan.batches_per_epoch` batches."""
    batches: list[list[Draw]] = []
    for items in dataset.buckets().values():
        pool = [it for it in items for _ in range(it.subset.repeats)]
        rng.shuffle(pool)
        for start in range(0, len(pool), config.batch_size):
            batches.append([Draw(it, config.flip and rng.random() < 0.5)
                            for it in pool[start:start + config.batch_size]])
    rng.shuffle(batches)
    assert len(batches) == dataset.plan.batches_per_epoch
    return batches

