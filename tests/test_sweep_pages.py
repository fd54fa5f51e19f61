from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lora_lab.sweep.family import EpochFile, LoraFamily
from lora_lab.sweep.pages import (
    PLACEHOLDER, PageError, layout_pages, load_font, page_title, render_page, wrap,
)
from lora_lab.sweep.plan import SweepPlan, build_plan


def family(epochs: int) -> LoraFamily:
    files = [EpochFile(Path(f"/l/alice-{e:06d}.safetensors"), f"alice-{e:06d}", "epoch", e,
                       None, "alice", "1", None) for e in range(1, epochs + 1)]
    return LoraFamily("alice", "1", tuple(files))


def plan_of(epochs: int, weights: list[float], prompts: int = 1, seeds: int = 1, **kw: object) -> SweepPlan:
    return build_plan(family(epochs), weights, [f"photo {i} of alice" for i in range(prompts)],
                      list(range(100, 100 + seeds)), **kw)  # type: ignore[arg-type]


def colour(cell: int, image: int) -> tuple[int, int, int]:
    return (cell * 37 % 256, image * 61 % 256, 200)


def coloured(size: tuple[int, int]):  # noqa: ANN201 - a loader callback
    return lambda cell, image: Image.new("RGB", size, colour(cell, image))


def centre(box: tuple[int, int, int, int]) -> tuple[int, int]:
    return ((box[0] + box[2]) // 2, (box[1] + box[3]) // 2)


def test_each_image_lands_in_its_epoch_row_and_weight_column() -> None:
    plan = plan_of(3, [0, 0.5, 1.0], prompts=2, seeds=2)
    (layout,) = layout_pages(plan, (64, 64))

    page = render_page(layout, coloured((64, 64)))

    assert page.size == layout.size
    for slot in layout.slots:
        assert page.getpixel(centre(slot.box)) == colour(slot.cell, slot.image)
    # rows go down in epoch order, columns right in weight order, the baseline leftmost
    by_cell = {}
    for slot in layout.slots:
        by_cell.setdefault(slot.cell, []).append(slot.box)
    first = {(c.row, c.col): min(by_cell[c.index])[:2] for c in plan.cells if c.row is not None}
    assert first[(0, 1)][1] < first[(1, 1)][1] < first[(2, 1)][1]
    assert first[(0, 1)][0] < first[(0, 2)][0]
    baseline = next(c for c in plan.cells if c.is_baseline)
    assert len(by_cell[baseline.index]) == 3 * 4  # shown in all three rows
    assert min(by_cell[baseline.index])[0] < first[(0, 1)][0]
    # inside a cell: one row per prompt, one column per seed
    cell = plan.cell_at("", 0, 1)
    boxes = {s.image: s.box for s in layout.slots if s.cell == cell.index}
    assert boxes[0][1] == boxes[1][1] < boxes[2][1] == boxes[3][1]
    assert boxes[0][0] == boxes[2][0] < boxes[1][0]


def test_labels_and_legend_name_the_lora_seeds_and_prompts() -> None:
    plan = plan_of(2, [0.5, 1.0], prompts=2, seeds=3, checkpoints=["sd15.safetensors"],
                   negative_prompt="blurry")
    (layout,) = layout_pages(plan, (64, 64))
    text = "\n".join(t.text for t in layout.texts)

    for expected in ("LoRA alice on sd15.safetensors", "seeds: 100, 101, 102", "prompt 1: photo 0 of alice",
                     "prompt 2: photo 1 of alice", "negative: blurry", "epoch 1", "epoch 2", "0.5", "1"):
        assert expected in text
    page = render_page(layout, coloured((64, 64)))
    label = next(t for t in layout.texts if t.text == "epoch 1")
    strip = page.crop((label.x, label.y, label.x + 40, label.y + 14)).convert("L")
    assert strip.getextrema()[0] < 128  # the label is drawn in dark ink
    assert "alice" in page_title(plan, layout)


def test_large_sweeps_are_tiled_into_pages_within_the_limits() -> None:
    plan = plan_of(10, [0] + [w / 10 for w in range(1, 11)], prompts=2, seeds=2, checkpoints=["a", "b"])
    limits = {"max_side": 3000, "max_pixels": 6_000_000}

    pages = layout_pages(plan, (256, 256), **limits)

    assert len(pages) > 2
    for page in pages:
        assert max(page.size) <= limits["max_side"]
        assert page.size[0] * page.size[1] <= limits["max_pixels"]
        assert page.thumb == (256, 256)  # tiling first; no shrinking while one cell fits
        width, height = page.size
        assert all(0 <= s.box[0] and s.box[2] <= width and s.box[3] <= height for s in page.slots)
    # every LoRA cell is on exactly one page; the baseline repeats beside every column chunk
    lora_cells = [c for p in pages for c in p.cells if not plan.cells[c].is_baseline]
    assert sorted(lora_cells) == [c.index for c in plan.cells if not c.is_baseline]
    assert all(0 in p.cols for p in pages)  # column 0 is the baseline
    assert {p.checkpoint for p in pages} == {"a", "b"}
    assert [p.number for p in pages if p.checkpoint == "a"] == list(range(1, pages[0].count + 1))


def test_default_limits_keep_pages_openable_by_pillow() -> None:
    plan = plan_of(10, [w / 10 for w in range(1, 11)], prompts=2, seeds=2)
    pages = layout_pages(plan, (512, 512))
    assert len(pages) > 1
    assert all(p.size[0] * p.size[1] <= 89_478_485 and max(p.size) <= 16383 for p in pages)


def test_a_cell_too_big_for_one_page_is_scaled_down_and_impossible_limits_are_refused() -> None:
    plan = plan_of(1, [1.0], prompts=4, seeds=4)
    (page,) = layout_pages(plan, (1024, 1024), max_side=2000, max_pixels=4_000_000)
    assert page.thumb[0] < 1024 and max(page.size) <= 2000
    with pytest.raises(PageError, match="does not fit"):
        layout_pages(plan_of(1, [1.0], prompts=10, seeds=10), (512, 512), max_side=300, max_pixels=90_000)


def test_missing_images_get_a_placeholder_and_odd_sizes_are_centred() -> None:
    plan = plan_of(2, [0.5, 1.0])
    (layout,) = layout_pages(plan, (64, 64))
    missing = plan.cell_at("", 1, 1).index

    def load(cell: int, image: int) -> Image.Image | None:
        if cell == missing:
            return None
        return Image.new("RGB", (64, 32), colour(cell, image))  # a wide image in a square slot

    page = render_page(layout, load)

    for slot in layout.slots:
        x, y = centre(slot.box)
        if slot.cell == missing:
            assert page.getpixel((slot.box[0] + 5, slot.box[1] + 20)) == PLACEHOLDER
        else:
            assert page.getpixel((x, y)) == colour(slot.cell, slot.image)
            assert page.getpixel((x, slot.box[1] + 2)) == (255, 255, 255)  # letterboxed


def test_wrap_keeps_lines_within_width_and_splits_long_names() -> None:
    font = load_font(16)
    text = "photo of alice standing in a sunlit forest " + "x" * 80
    lines = wrap(text, font, 200)
    assert len(lines) > 2
    assert all(font.getlength(line) <= 200 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    cut = wrap(text, font, 200, max_lines=2)
    assert len(cut) == 2 and cut[-1].endswith("…")
