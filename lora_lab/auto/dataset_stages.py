"""The dataset stages of a run: checks, tagging, pruning and the plan. They work on a copy of the
person's folder (hard links of the images, copies of the captions) inside the run's folder, so the
originals are never changed."""
from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

from ..dataset.captions import caption_path
from ..dataset.images import find_images
from ..dataset.layout import copy_atomic, link_or_copy
from .context import Context, Interrupted
from .templates import TEMPLATES, with_trigger

MAX_LISTED = 20
HOLDOUT_FROM = 10  # images from which one in ten is held out for the validation loss


def _working_name(path: Path, root: Path) -> str:
    """Unique flat names for images from sub-folders: `sub__name.png`."""
    return "__".join(path.relative_to(root).parts)


def checks(ctx: Context) -> dict[str, Any]:
    """Check every image; copy the usable ones (and their captions) into the working folder.
    Unreadable images are listed and left out."""
    from ..dataset.checks import check_dataset

    host, source = ctx.host, ctx.options.dataset
    report = check_dataset(source, resolution=ctx.resolution, recursive=True, progress=host.progress,
                           interrupt=host.interrupt)
    if report.interrupted:
        raise Interrupted
    left_out = [{"path": str(i.path), "reason": i.message} for i in report.issues if i.kind == "unreadable"]
    warnings = [f"{i.path.name}: {i.message}" for i in report.issues
                if i.kind not in ("unreadable", "missing_caption", "empty_caption")]
    if not report.images:
        raise ValueError(f"no usable images in {source}: "
                         + "; ".join(f"{Path(i['path']).name}: {i['reason']}" for i in left_out[:5]))
    work = ctx.images_dir
    work.mkdir(parents=True, exist_ok=True)
    captioned = 0
    for entry in report.images:
        target = work / _working_name(entry.path, source)
        if not target.exists():
            link_or_copy(entry.path, target)
        caption, copy = caption_path(entry.path), caption_path(target)
        if caption.is_file() and not copy.exists():
            copy_atomic(caption, copy)
        captioned += copy.is_file() and copy.stat().st_size > 0
    return {"images": len(report.images), "captioned": captioned, "left_out": left_out,
            "warnings": warnings[:MAX_LISTED], "more_warnings": max(0, len(warnings) - MAX_LISTED),
            "buckets": {f"{w}x{h}": n for (w, h), n in report.buckets.items()}}


def checks_line(result: dict[str, Any]) -> str:
    line = f"{result['images']} usable image(s), {result['captioned']} with a caption"
    if result["left_out"]:
        names = ", ".join(f"{Path(b['path']).name} ({b['reason']})" for b in result["left_out"][:3])
        line += f"; left out {len(result['left_out'])}: {names}"
    if result["warnings"]:
        line += f"; {len(result['warnings']) + result['more_warnings']} warning(s)"
    return line


def tagging(ctx: Context) -> dict[str, Any]:
    """Tag the images that have no caption (trigger first); captions already there are kept."""
    from ..tagging.postprocess import TagOptions
    from ..tagging.run import TagRunOptions, tag_folder

    images = find_images(ctx.images_dir).images
    missing = [p for p in images if not caption_path(p).is_file() or caption_path(p).stat().st_size == 0]
    if not missing:
        return {"tagged": 0, "kept": len(images), "tagger": None}
    result = tag_folder(ctx.host, ctx.images_dir, ctx.tagger,
                        TagRunOptions(tags=TagOptions(trigger=ctx.trigger), mode="skip"))
    ctx.check_interrupt()
    return {"tagged": len(result.written), "kept": len(images) - len(missing), "tagger": result.model,
            "problems": [f"{p.path.name}: {p.reason}" for p in result.problems]}


def pruning(ctx: Context) -> dict[str, Any]:
    """Tags most captions share (traits the trigger should absorb); removed only when asked."""
    from ..dataset.caption_edits import suggest_intrinsic
    from ..dataset.caption_ops import prune_tags
    from ..dataset.captions import load_captions

    captions = load_captions(ctx.images_dir)
    tagged = sum(1 for f in captions.files if f.caption.plain_tags())
    found = suggest_intrinsic(captions.files, 0.5, ctx.trigger)
    proposal = [{"tag": c.tag, "share": round(c.count / max(1, tagged), 3)} for c in found]
    applied = False
    if found and ctx.options.prune:
        prune_tags(captions, [c.tag for c in found])
        applied = True
    return {"proposal": proposal, "applied": applied, "undo": f"python -m lora_lab captions {ctx.images_dir} undo"}


def pruning_line(result: dict[str, Any]) -> str:
    if not result["proposal"]:
        return "no tag is in half or more of the captions: nothing to prune"
    tags = ", ".join(f"{p['tag']} ({p['share']:.0%})" for p in result["proposal"][:8])
    if result["applied"]:
        return f"removed {tags} so the trigger absorbs them (undo: {result['undo']})"
    return f"proposal: remove {tags} so the trigger absorbs them (not applied: --prune applies it)"


def _domain_prompts(ctx: Context, count: int) -> list[str]:
    """In-domain prompts: training captions (trigger first), chosen with the run's seed."""
    from ..dataset.captions import load_captions
    from ..sweep.showcase import is_fixed_point
    from ..train.data import with_trigger_first

    texts = []
    for f in load_captions(ctx.images_dir).files:
        text = ", ".join(with_trigger_first([t for t in f.caption.tags if t.strip()], ctx.trigger))
        if text and is_fixed_point(text) and text not in texts:
            texts.append(text)
    random.Random(ctx.options.seed).shuffle(texts)
    return texts[:count]


def _showcase_prompts(ctx: Context, count: int) -> list[str]:
    from ..sweep.showcase import expand_showcase

    templates = with_trigger(ctx.options.templates or TEMPLATES[ctx.options.preset], ctx.trigger)
    return expand_showcase(templates, count, ctx.options.seed, ctx.options.wildcards)


def train_settings(ctx: Context, dataset_dir: Path, lora_name: str, images: int) -> dict[str, Any]:
    """The TrainConfig values of one variant: the preset for the family, the budget's epochs and
    saves, a holdout for the validation loss when there are enough images, then `--set` values."""
    from ..train.config import preset_values

    values = preset_values(ctx.options.preset, ctx.family)  # the family's defaults included
    budget = ctx.budget
    values.update(preset=ctx.options.preset, dataset_dir=str(dataset_dir), name=lora_name,
                  output_dir=str(ctx.lora_dir), epochs=budget.epochs, save_every_n_epochs=budget.save_every,
                  seed=ctx.options.seed, holdout="10%" if images >= HOLDOUT_FROM else "")
    values.update(ctx.options.train)
    return values


def plan(ctx: Context) -> dict[str, Any]:
    """Repeats from the guides' images × repeats per epoch (scaled by the budget), the `N_trigger`
    folder of each variant, the step plan, each variant's training settings and the sweep prompts."""
    from ..dataset.layout import GroupSpec, build_layout, repeat_folder_name
    from ..train.config import TrainConfig
    from ..train.data import load_dataset

    images = find_images(ctx.images_dir).images
    budget = ctx.budget
    repeats = max(1, round(budget.samples_per_epoch / len(images)))
    folder = repeat_folder_name(repeats, ctx.trigger)
    configs: dict[str, dict[str, Any]] = {}
    plans: dict[str, dict[str, Any]] = {}
    for variant in ctx.options.variants:
        root = ctx.train_dir(variant)
        if root.exists():  # a plan stage that did not finish: rebuild its folders from scratch
            shutil.rmtree(root)
        built = build_layout(root, [GroupSpec(ctx.trigger, repeats, tuple(images))], with_captions=variant.captions)
        if built.conflicts:  # a fresh folder has none; say so rather than train on half a layout
            raise RuntimeError(f"{built.conflicts[0].dest}: {built.conflicts[0].reason}")
        values = train_settings(ctx, root, variant.lora_name, len(images))
        config = TrainConfig.from_dict(values)
        config.validate()  # a bad --set value is refused here, not mid-run
        configs[variant.key] = values
        plans[variant.key] = load_dataset(config).plan.to_dict()  # exactly what training will do
    first = next(iter(plans.values()))
    if any(p != first for p in plans.values()):
        raise RuntimeError("the variants' step plans differ; they must train the same steps")
    prompts = [{"text": t, "domain": "in"} for t in _domain_prompts(ctx, budget.domain_prompts)]
    prompts += [{"text": t, "domain": "out"} for t in _showcase_prompts(ctx, budget.showcase_prompts)]
    return {"repeats": repeats, "folder": folder, "images": len(images), "plan": first,
            "configs": configs, "prompts": prompts, "weights": list(budget.weights),
            "seeds": [ctx.options.seed + i for i in range(budget.seeds)]}


def plan_line(result: dict[str, Any]) -> str:
    p = result["plan"]
    held = result["images"] - p["images"]
    return (f"{p['images']} training image(s){f' (+{held} held out for validation)' if held else ''} × "
            f"{result['repeats']} repeats = {p['samples_per_epoch']} per epoch, "
            f"{p['epochs']} epochs, {p['total_steps']} steps; sweep of {len(result['prompts'])} prompts × "
            f"{len(result['seeds'])} seed(s) at weights {', '.join(f'{w:g}' for w in result['weights'])}")
