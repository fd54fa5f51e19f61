"""Render a sweep with any host that has `render_images` (the standalone host's sampler, or the
WebUI's own pipeline): the same manifest, image files and labelled pages as the WebUI grid script.

Resumable: cells whose image files are all on disk are kept, the rest are rendered; the manifest
is saved after every cell, and the pages are drawn once every cell is there. An interrupt stops
between cells (the finished ones stay)."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import PngImagePlugin

from ..host.protocol import Host, PreviewRequest
from .manifest import ManifestCell, ManifestError, SweepManifest, load_manifest, new_manifest
from .pages import layout_pages, render_page
from .plan import SweepPlan, eta_seconds, format_duration
from .weights import format_weight

_UNSAFE = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class RenderSettings:
    steps: int = 20
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512

    def to_json(self) -> dict[str, Any]:
        return {"steps": self.steps, "cfg_scale": self.cfg_scale, "width": self.width, "height": self.height}


def image_name(cell_index: int, lora: str | None, weight: float | None, prompt: int, seed: int) -> str:
    what = "nolora" if lora is None else f"{lora}-w{format_weight(weight or 0)}"
    return _UNSAFE.sub("_", f"{cell_index:04d}-{what}-p{prompt + 1}-{seed}")


def cell_on_disk(manifest: SweepManifest, cell: ManifestCell) -> bool:
    return all(image.file is not None and manifest.resolve(image.file).is_file() for image in cell.images)


def open_or_new(plan: SweepPlan, path: Path, parameters: dict[str, Any]) -> SweepManifest:
    """The manifest at `path` when it holds this very plan (same cells, prompts, seeds and
    settings), so its finished cells are kept; otherwise a new one."""
    fresh = new_manifest(plan, path, parameters)
    if path.is_file():
        try:
            old = load_manifest(path)
        except ManifestError:
            return fresh
        if old.parameters.get("render") == parameters.get("render") and \
                [(c.label, c.lora, c.weight, c.prompts, c.seeds) for c in old.cells] == \
                [(c.label, c.lora, c.weight, c.prompts, c.seeds) for c in fresh.cells]:
            old.parameters.update(parameters)
            return old
    return fresh


def render_sweep(host: Host, plan: SweepPlan, manifest: SweepManifest, settings: RenderSettings) -> list[str]:
    """Render every missing cell of `manifest`, then its pages; returns notes for the person.
    Stops early (pages not drawn) when the host's interrupt is set."""
    folder = manifest.folder
    (folder / "images").mkdir(parents=True, exist_ok=True)
    todo = [cell for cell in manifest.cells if not cell_on_disk(manifest, cell)]
    notes: list[str] = []
    progress, interrupt = host.progress, host.interrupt
    total = sum(len(c.images) for c in todo)
    progress.begin("Sweep", total)
    done, seconds_per_image = 0, []
    try:
        for cell in todo:
            if interrupt.is_set():
                return notes
            started = time.perf_counter()
            requests = [PreviewRequest(prompt=cell.prompts[image.prompt], negative_prompt=manifest.negative_prompt,
                                       seed=image.seed, steps=settings.steps, cfg_scale=settings.cfg_scale,
                                       width=settings.width, height=settings.height)
                        for image in cell.images]
            results = host.render_images(requests, notes)
            if len(results) < len(requests):  # the host stopped mid-cell (interrupt): the cell is redone later
                return notes
            for i, (image, info) in enumerate(results):
                shown = cell.images[i]
                path = folder / "images" / f"{image_name(cell.index, cell.lora, cell.weight, shown.prompt, shown.seed)}.png"
                text = PngImagePlugin.PngInfo()
                text.add_text("parameters", info)
                tmp = path.with_suffix(".png.tmp")
                image.save(tmp, format="PNG", pnginfo=text)
                tmp.replace(path)
                manifest.record_image(cell.index, i, path, info)
            manifest.save()
            done += len(results)
            seconds_per_image.append((time.perf_counter() - started) / max(1, len(results)))
            left = eta_seconds(seconds_per_image, total - done)
            progress.update(done, total, text=f"{cell.label} · about {format_duration(left)} left")
    finally:
        progress.end()
    if interrupt.is_set() and any(not cell_on_disk(manifest, c) for c in manifest.cells):
        return notes
    draw_pages(plan, manifest, (settings.width, settings.height))
    return notes


def draw_pages(plan: SweepPlan, manifest: SweepManifest, image_size: tuple[int, int]) -> None:
    manifest.pages = []
    for n, layout in enumerate(layout_pages(plan, image_size), start=1):
        page = render_page(layout, manifest.load_image)
        path = manifest.folder / f"grid-{n:02d}.png"
        page.save(path)
        manifest.add_page(path, layout)
    manifest.save()
