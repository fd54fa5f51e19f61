"""Page rendering for a 10 epochs × 10 weights sweep with 4 images a cell (2 prompts × 2 seeds),
against a floor of plain `Image.new` + `Image.paste` of the same images at the same places.

Run: .venv/bin/python bench/sweep_plan.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lora_lab.sweep.family import EpochFile, LoraFamily  # noqa: E402
from lora_lab.sweep.pages import PageLayout, layout_pages, render_page  # noqa: E402
from lora_lab.sweep.plan import build_plan  # noqa: E402

SIZE = (512, 512)


def sweep_plan():  # noqa: ANN201
    files = tuple(EpochFile(Path(f"/l/alice-{e:06d}.safetensors"), f"alice-{e:06d}", "epoch", e,
                            None, "alice", "1", None) for e in range(1, 11))
    prompts = [f"photo of alice {i}, detailed face, outdoors, <lora:alice:1>" for i in range(2)]
    return build_plan(LoraFamily("alice", "1", files), [w / 10 for w in range(1, 11)], prompts, [1, 2])


def paste_page(layout: PageLayout, images: dict[tuple[int, int], Image.Image]) -> Image.Image:
    page = Image.new("RGB", layout.size, (255, 255, 255))
    for slot in layout.slots:
        image = images[(slot.cell, slot.image)]
        if image.size != layout.thumb:
            image = image.resize(layout.thumb, Image.Resampling.LANCZOS, reducing_gap=3.0)
        page.paste(image, slot.box[:2])
    return page


def floor(layouts: list[PageLayout], images: dict[tuple[int, int], Image.Image]) -> float:
    start = time.perf_counter()
    for layout in layouts:
        paste_page(layout, images)
    return time.perf_counter() - start


def ours(layouts: list[PageLayout], images: dict[tuple[int, int], Image.Image]) -> float:
    start = time.perf_counter()
    for layout in layouts:
        render_page(layout, lambda cell, image: images[(cell, image)])
    return time.perf_counter() - start


def main() -> None:
    plan = sweep_plan()
    images = {
        (cell.index, i): Image.new("RGB", SIZE, (cell.index * 2 % 256, i * 60, 128))
        for cell in plan.cells for i in range(len(cell.images))
    }
    for thumb_max in (None, 256):
        start = time.perf_counter()
        layouts = layout_pages(plan, SIZE, thumb_max=thumb_max)
        layout_s = time.perf_counter() - start
        # Alternate the two so machine noise (shared cores) hits both alike; keep the best of each.
        runs = [(floor(layouts, images), ours(layouts, images)) for _ in range(4)]
        best_floor, best_ours = min(r[0] for r in runs), min(r[1] for r in runs)
        label = "full size" if thumb_max is None else f"thumbnails ≤{thumb_max}px"
        print(f"{label}: {len(layouts)} page(s) {[p.size for p in layouts]}, layout {layout_s * 1e3:.1f} ms, "
              f"render {best_ours:.3f} s vs paste floor {best_floor:.3f} s, "
              f"ratio {best_ours / best_floor:.2f}")


if __name__ == "__main__":
    main()
