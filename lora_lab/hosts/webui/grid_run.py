"""Running a LoRA Lab grid inside the WebUI.

Every setting is read and checked before the first image. Then each cell is one `process_images`
on a copy of `p` with the cell's prompts and seeds as one batch list (Dynamic Prompts off, the
checkpoint set through `override_settings`), its images saved like samples into the sweep folder
and recorded in the manifest, which is written after every cell. Interrupt or an error ends the
loop; the pages then show the finished cells and placeholders for the rest.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from copy import copy
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from modules import devices, errors, images, processing, sd_models, shared
from modules.paths_internal import roboto_ttf_file
from modules.processing import Processed, StableDiffusionProcessingTxt2Img
from PIL import Image

from ...sweep import (
    Cell, LoraFamily, PlanError, SweepPlan, build_plan, disable_dynamic_prompts, eta_seconds, expand_showcase,
    find_family, format_duration, is_fixed_point, layout_pages, new_manifest, parse_weights,
    render_page, seeds_from, set_lora_tag,
)
from ...sweep.grid_args import TITLE, GridArgs, infotext_fields, showcase_templates
from ...sweep.manifest import MANIFEST_NAME
from ...sweep.render import image_name
from ...sweep.folders import new_sweep_folder
from .current import get_host
from .host import SWEEP_SUBFOLDER

LORA_CACHE_OPTION = "lora_in_memory_limit"

BATCH_PIXELS = 1024 * 1024  # one batch may hold this much even at batch size 1: 4 SD1 images at 512²

CellImages = list[tuple[Image.Image, str]]  # image, infotext


def _output_pixels(p: StableDiffusionProcessingTxt2Img) -> int:
    if not getattr(p, "enable_hr", False):
        return p.width * p.height
    if p.hr_resize_x or p.hr_resize_y:  # one of them 0: the other side follows the aspect ratio
        width = p.hr_resize_x or p.hr_resize_y * p.width / p.height
        height = p.hr_resize_y or p.hr_resize_x * p.height / p.width
        return int(width * height)
    return int(p.width * p.height * p.hr_scale ** 2)


def batch_shape(images: int, p: StableDiffusionProcessingTxt2Img) -> tuple[int, int]:
    """(batch size, batch count) for a cell of `images`: as many at once as fit — the user's batch
    size, or up to `BATCH_PIXELS` of output (not under --lowvram/--medvram) — and dividing the
    cell evenly (all batches of one `process_images` have the same size)."""
    pixels = _output_pixels(p)
    low_memory = shared.cmd_opts.lowvram or getattr(shared.cmd_opts, "medvram", False)  # Neo has no --medvram
    fits = p.batch_size if low_memory else max(p.batch_size, int(BATCH_PIXELS // max(pixels, 1)))
    limit = max(1, min(fits, images))
    size = next(b for b in range(limit, 0, -1) if images % b == 0)
    return size, images // size


def _checkpoints(p: StableDiffusionProcessingTxt2Img, names: tuple[str, ...]) -> list[str]:
    """Checkpoint names as `override_settings` wants them; none given: the one this request uses."""
    current = p.override_settings.get("sd_model_checkpoint") or shared.opts.sd_model_checkpoint
    wanted = list(names) or [current]
    out = []
    for name in wanted:
        info = sd_models.get_closet_checkpoint_match(name)
        if info is None:
            known = ", ".join(sorted(sd_models.checkpoints_list)[:20])
            raise PlanError(f"unknown checkpoint {name!r}; known: {known}")
        out.append(info.name)
    return out


def _prompts(p: StableDiffusionProcessingTxt2Img, args: GridArgs) -> list[str]:
    """The showcase prompts; without templates, the prompt itself (expanded when it is a Dynamic
    Prompts template, since the cells run with that extension off)."""
    templates = showcase_templates(args.showcase)
    if not templates and is_fixed_point(p.prompt):
        return [p.prompt]
    seed = p.seed if args.showcase_seed == -1 else args.showcase_seed
    wildcards = Path(args.wildcards) if args.wildcards else None
    return expand_showcase(templates or [p.prompt], args.showcase_count, seed, wildcards)


def _plan(p: StableDiffusionProcessingTxt2Img, args: GridArgs) -> tuple[LoraFamily, SweepPlan]:
    family = find_family(get_host().lora_dir(), args.family)
    weights = parse_weights(args.weights)
    processing.fix_seed(p)
    plan = build_plan(
        family, weights, _prompts(p, args), seeds_from(p.seed, args.seeds),
        checkpoints=_checkpoints(p, args.checkpoints), negative_prompt=p.negative_prompt,
        baseline=args.baseline, epochs=list(args.epochs) or None,
        model_base=None if args.checkpoints else get_host().loaded_base(),
    )
    return family, plan


@contextmanager
def _lora_cache(size: int) -> Iterator[None]:
    """Keep `size` LoRA files in memory for the run (a checkpoint change or the baseline would
    otherwise re-read them from disk), then put the setting back and trim the cache to it."""
    data, labels = shared.opts.data, shared.opts.data_labels
    if LORA_CACHE_OPTION not in labels:  # Lora extension disabled
        yield
        return
    had, old = LORA_CACHE_OPTION in data, data.get(LORA_CACHE_OPTION)
    current = int((old if had else labels[LORA_CACHE_OPTION].default) or 0)
    data[LORA_CACHE_OPTION] = max(current, size)
    try:
        yield
    finally:
        if had:
            data[LORA_CACHE_OPTION] = old
        else:
            data.pop(LORA_CACHE_OPTION, None)
        networks = sys.modules.get("networks")  # the built-in Lora extension's module
        if hasattr(networks, "purge_networks_from_memory"):
            networks.purge_networks_from_memory()


def _cell_processing(p: StableDiffusionProcessingTxt2Img, cell: Cell, names: frozenset[str],
                     batch: tuple[int, int]) -> StableDiffusionProcessingTxt2Img:
    pc = copy(p)
    pc.styles = list(p.styles)
    pc.extra_generation_params = dict(p.extra_generation_params)  # else "Lora hashes" leak across cells
    pc.comments = {}
    pc.override_settings = {**p.override_settings, "sd_model_checkpoint": cell.checkpoint}
    pc.override_settings_restore_afterwards = True
    if p.scripts is not None:
        pc.script_args = disable_dynamic_prompts(p.script_args, p.scripts.alwayson_scripts)
    pc.prompt = [cell.prompts[k] for k, _ in cell.images]
    pc.seed = [seed for _, seed in cell.images]
    pc.negative_prompt = [cell.negative_prompt] * len(cell.images)
    if getattr(p, "enable_hr", False) and getattr(p, "hr_prompt", ""):
        pc.hr_prompt = [set_lora_tag(p.hr_prompt, names, cell.lora, cell.weight)] * len(cell.images)
    pc.batch_size, pc.n_iter = batch
    pc.do_not_save_samples = True  # saved into the sweep folder instead
    pc.do_not_save_grid = True
    return pc


def _image_name(cell: Cell, prompt: int, seed: int) -> str:
    return image_name(cell.index, cell.lora, cell.weight, prompt, seed)


class GridRun:
    def __init__(self, p: StableDiffusionProcessingTxt2Img, args: GridArgs) -> None:
        self.p, self.args = p, args
        self.family, self.plan = _plan(p, args)
        self.font = getattr(shared.opts, "font", None) or roboto_ttf_file  # Neo has no font setting
        layout_pages(self.plan, (p.width, p.height), font_path=self.font)  # refuses impossible pages now
        self.batch = batch_shape(self.plan.images_per_cell, p)
        self.folder = new_sweep_folder(Path(p.outpath_grids) / SWEEP_SUBFOLDER, self.family.name)
        self.manifest = new_manifest(self.plan, self.folder / MANIFEST_NAME, self._parameters())
        self.manifest.save()
        self.done: dict[int, CellImages] = {}
        self.notes: list[str] = list(self.plan.warnings)
        self.first_pc: StableDiffusionProcessingTxt2Img | None = None  # names the model in grid infotext

    def _parameters(self) -> dict[str, Any]:
        p = self.p
        return {"script": asdict(self.args), "prompt": p.prompt, "seed": p.seed, "width": p.width,
                "height": p.height, "steps": p.steps, "sampler": p.sampler_name, "cfg_scale": p.cfg_scale,
                "batch_size": self.batch[0], "n_iter": self.batch[1]}

    def run(self) -> Processed:
        state, plan = shared.state, self.plan
        state.job_count = len(plan.cells) * self.batch[1]
        hires = 2 if getattr(self.p, "enable_hr", False) else 1
        shared.total_tqdm.updateTotal(self.p.steps * hires * state.job_count)
        seconds_per_image: list[float] = []
        try:
            get_host().reread_lora_files()
            with _lora_cache(len(plan.rows)):
                for n, cell in enumerate(plan.cells):
                    if state.interrupted or state.stopping_generation:
                        break
                    left = eta_seconds(seconds_per_image, (len(plan.cells) - n) * plan.images_per_cell)
                    state.textinfo = (f"LoRA Lab grid: {cell.label} (cell {n + 1} of {len(plan.cells)}, "
                                      f"about {format_duration(left)} left)")
                    started = time.perf_counter()
                    if self._run_cell(cell):
                        seconds_per_image.append((time.perf_counter() - started) / plan.images_per_cell)
        except Exception as e:  # keep what is finished; say why the rest is missing
            errors.report(f"LoRA Lab grid stopped at cell {len(self.done) + 1}", exc_info=True)
            self.notes.append(f"Stopped by an error after {len(self.done)} of {len(plan.cells)} cells: {e}")
        finally:
            if len(self.done) < len(plan.cells) and (state.interrupted or state.stopping_generation):
                self.notes.append(f"Interrupted: {len(self.done)} of {len(plan.cells)} cells finished.")
            state.textinfo = None
            get_host().load_checkpoint_from_settings()  # as X/Y/Z does at its end
        return self._result()

    def _run_cell(self, cell: Cell) -> bool:
        """Render, save and record one cell; False if it did not finish (interrupt, skip)."""
        state = shared.state
        pc = _cell_processing(self.p, cell, self.family.tag_names, self.batch)
        try:
            processed = processing.process_images(pc)
        except torch.cuda.OutOfMemoryError:
            if self.batch[0] == 1:
                raise
            self.notes.append(f"Out of memory at batch size {self.batch[0]}: went on one image at a time.")
            cells_left = len(self.plan.cells) - len(self.done)
            self.batch = (1, len(cell.images))
            state.job_count = state.job_no + cells_left * self.batch[1]
            devices.torch_gc()
            return self._run_cell(cell)
        finally:
            pc.close()
        skipped, state.skipped = state.skipped, False
        wanted = len(cell.images)
        if state.interrupted or skipped or len(processed.images) < wanted:
            if skipped:
                self.notes.append(f"Skipped: {cell.label}")
            return False
        self.first_pc = self.first_pc or pc
        for comment in processed.comments.splitlines():
            if comment.startswith("Lora not found") and comment not in self.notes:
                self.notes.append(comment)
        saved: CellImages = []
        for i, ((prompt, seed), image, infotext) in enumerate(
                zip(cell.images, processed.images, processed.infotexts)):
            path, _ = images.save_image(
                image, str(self.folder / "images"), "", seed, cell.prompts[prompt],
                shared.opts.samples_format, info=infotext, p=pc,
                forced_filename=_image_name(cell, prompt, seed), save_to_dirs=False)
            self.manifest.record_image(cell.index, i, Path(path), infotext)
            saved.append((image, infotext))
        self.manifest.save()
        self.done[cell.index] = saved
        return True

    def _rendered(self, cell: int, image: int) -> Image.Image | None:
        return self.done[cell][image][0] if cell in self.done else None

    def _grid_infotext(self) -> str:
        p, template = self.p, copy(self.first_pc)
        template.extra_generation_params = {**p.extra_generation_params, "Script": TITLE,
                                            **infotext_fields(self.args)}
        return processing.create_infotext(template, [p.prompt], [p.seed], [p.subseed], index=0,
                                          all_negative_prompts=[p.negative_prompt])

    def _pages(self, info: str) -> list[Image.Image]:
        first = next(iter(self.done.values()))[0][0]
        pages = []
        for n, layout in enumerate(layout_pages(self.plan, first.size, font_path=self.font), start=1):
            page = render_page(layout, self._rendered)
            path, _ = images.save_image(
                page, str(self.folder), "grid", self.p.seed, self.p.prompt, shared.opts.grid_format,
                info=info, p=self.first_pc, grid=True, forced_filename=f"grid-{n:02d}", save_to_dirs=False)
            self.manifest.add_page(Path(path), layout)
            if shared.opts.enable_pnginfo:
                page.info["parameters"] = info
            pages.append(page)
        self.manifest.save()
        return pages

    def _result(self) -> Processed:
        p = self.p
        for note in self.notes:
            p.comment(note)
        p.comment(f"Sweep saved to {self.folder}; rate it in LoRA Lab › Review.")
        if not self.done:
            result = Processed(p, [], p.seed, "LoRA Lab grid: no cell finished.", p.subseed)
        else:
            info = self._grid_infotext()
            pages = self._pages(info)
            shown = [(cell.prompts[k], seed, image, text)
                     for cell in self.plan.cells if cell.index in self.done
                     for (k, seed), (image, text) in zip(cell.images, self.done[cell.index])]
            result = Processed(
                p, pages + [image for _, _, image, _ in shown], p.seed, info, p.subseed,
                all_prompts=[p.prompt] * len(pages) + [prompt for prompt, _, _, _ in shown],
                all_seeds=[p.seed] * len(pages) + [seed for _, seed, _, _ in shown],
                index_of_first_image=len(pages),
                infotexts=[info] * len(pages) + [text for _, _, _, text in shown],
            )
        result.extra_generation_params = {**p.extra_generation_params,
                                          "LoRA Lab manifest": str(self.manifest.path),
                                          "LoRA Lab notes": "\n".join(self.notes)}
        return result
