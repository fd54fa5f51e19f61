"""The model stages of a run, once per variant: training (continuing from the last epoch file
after an interrupt), the sweep of epochs × weights with a no-LoRA baseline, and its scores."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..files.lora_files import LOSS_KEYS, TRAIN_LOSS_KEY, epoch_of, file_metadata, read_run_file
from ..files.lora_files import epoch_files as lora_epoch_files
from ..sweep.family import float_or_none
from .context import Context, Interrupted
from .options import Variant, stage_name


def epoch_files(ctx: Context, variant: Variant) -> list[Path]:
    """The variant's epoch files in order, the final file last when there is one."""
    return lora_epoch_files(ctx.lora_dir, variant.lora_name)


def _run_state(ctx: Context, variant: Variant) -> str | None:
    data = read_run_file(ctx.lora_dir, variant.lora_name)
    return data.get("result", {}).get("state") if data else None


def epoch_record(path: Path) -> dict[str, Any]:
    """What training wrote into an epoch file's metadata: its epoch and losses."""
    meta = file_metadata(path)
    epoch = meta.get("ss_epoch")
    return {"epoch": int(epoch) if epoch and epoch.isdigit() else None, "file": str(path),
            "train_loss": float_or_none(meta.get(TRAIN_LOSS_KEY)),
            "val_loss": float_or_none(meta.get(LOSS_KEYS["val"])),
            "stable_loss": float_or_none(meta.get(LOSS_KEYS["stable"]))}


def training(ctx: Context, variant: Variant) -> dict[str, Any]:
    from ..train import TrainConfig, train
    from ..train.loop import TrainStatus

    values = dict(ctx.state.result("plan")["configs"][variant.key])
    values["overwrite"] = True  # the flow's own files: it refused others' names before it began
    final = ctx.lora_dir / f"{variant.lora_name}.safetensors"
    resumed = None
    if not (final.is_file() and _run_state(ctx, variant) == "finished"):
        done = [p for p in epoch_files(ctx, variant) if epoch_of(p.stem) is not None]
        if done:
            last = done[-1]
            epoch = epoch_of(last.stem) or 0
            if epoch < int(values["epochs"]):
                values.update(resume_from=str(last), start_epoch=epoch)
                resumed = epoch
                ctx.say(f"  continuing from {last.name} (epoch {epoch})")
        status = TrainStatus(on_note=lambda text: ctx.say(f"  note: {text}"))
        result = train(ctx.host, TrainConfig.from_dict(values), status)
        if result.state == "interrupted":
            raise Interrupted
        if result.state == "failed":
            raise RuntimeError(result.message)
    files = epoch_files(ctx, variant)
    return {"lora": variant.lora_name, "files": [str(p) for p in files], "resumed_from_epoch": resumed,
            "epochs": [epoch_record(p) for p in files]}


def training_line(result: dict[str, Any]) -> str:
    epochs = result["epochs"]
    last = epochs[-1] if epochs else {}
    losses = [f"{k.replace('_loss', '')} {last[k]:.4f}" for k in ("train_loss", "val_loss", "stable_loss")
              if last.get(k) is not None]
    return f"{len(result['files'])} file(s) of {result['lora']}" + (f"; last epoch: {', '.join(losses)}" if losses else "")


def sweep_plan(ctx: Context, variant: Variant) -> Any:
    from ..sweep.family import family_of_files
    from ..sweep.plan import build_plan

    planned = ctx.state.result("plan")
    files = [Path(p) for p in ctx.state.result(stage_name("training", variant))["files"]]
    family = family_of_files(variant.lora_name, files)
    return build_plan(family, [0.0, *planned["weights"]], [p["text"] for p in planned["prompts"]],
                      planned["seeds"], negative_prompt=ctx.options.negative_prompt, baseline=True)


def render_settings(ctx: Context) -> Any:
    from ..sweep.render import RenderSettings

    size = int(ctx.state.result("plan")["configs"][ctx.options.variants[0].key].get("resolution", ctx.resolution))
    return RenderSettings(steps=ctx.options.sweep_steps, cfg_scale=ctx.options.cfg_scale, width=size, height=size)


def sweep(ctx: Context, variant: Variant) -> dict[str, Any]:
    from ..sweep.manifest import MANIFEST_NAME
    from ..sweep.render import cell_on_disk, open_or_new, render_sweep

    plan = sweep_plan(ctx, variant)
    settings = render_settings(ctx)
    domains = [p["domain"] for p in ctx.state.result("plan")["prompts"]]
    parameters = {"render": settings.to_json(), "lora_lab_auto": {"variant": variant.key, "domains": domains},
                  "seed": plan.seeds[0], "width": settings.width, "height": settings.height,
                  "steps": settings.steps, "cfg_scale": settings.cfg_scale, "sampler": "host"}
    folder = ctx.sweep_dir(variant)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = open_or_new(plan, folder / MANIFEST_NAME, parameters)
    kept = sum(cell_on_disk(manifest, c) for c in manifest.cells)
    notes = render_sweep(ctx.host, plan, manifest, settings)
    ctx.check_interrupt()
    return {"manifest": str(manifest.path), "cells": len(manifest.cells), "kept_cells": kept,
            "images": sum(len(c.images) for c in manifest.cells), "pages": [p.file for p in manifest.pages],
            "notes": notes}


def sweep_line(result: dict[str, Any]) -> str:
    kept = f" ({result['kept_cells']} kept from before)" if result["kept_cells"] else ""
    return f"{result['cells']} cells, {result['images']} images{kept} → {result['manifest']}"


def scores(ctx: Context, variant: Variant) -> dict[str, Any]:
    from ..sweep.manifest import load_manifest
    from ..sweep.scoring import score_sweep, shortlist

    manifest = load_manifest(ctx.state.result(stage_name("sweep", variant))["manifest"])
    document = score_sweep(manifest, ctx.tagger, ctx.images_dir)
    ranked = shortlist(manifest, document, count=len(manifest.cells))
    top = ranked[0]["score"] if ranked else None
    return {"characteristic_tags": document["characteristic_tags"][:20], "scored": len(ranked), "top_score": top,
            "tied": sum(1 for r in ranked if top is not None and abs(r["score"] - top) < 1e-9)}


def scores_line(result: dict[str, Any]) -> str:
    if not result["scored"]:
        return "no LoRA cell could be scored (every one gated: see the report)"
    tied = f", shared by {result['tied']} cells" if result["tied"] > 1 else ""
    return f"{result['scored']} LoRA cells scored; top score {result['top_score']:.3f}{tied}"
