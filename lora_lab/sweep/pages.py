"""Labelled grid pages of a sweep: one set per checkpoint, rows = epoch files, columns = weights.

Each cell is a block of its K prompts (rows) × N seeds (columns). A legend at the top names the
LoRA, the checkpoint, the seeds and the prompts. Large sweeps are split into several pages, each
under `max_pixels` and `max_side`: by default Pillow's decompression-bomb threshold (so the pages
reopen without warnings anywhere; the WebUI's own limit, `img_max_size_mp`, is 200 MP) and WebP's
16383 px side (JPEG allows 65535; the WebUI falls back to PNG beyond these). Only when a single
cell cannot fit are the images scaled down. The baseline column repeats on every page.

`layout_pages` is pure geometry (which cells, where, what text); `render_page` draws one page,
loading images one at a time through a callback, so a page never holds more than itself.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from .plan import SweepPlan
from .weights import format_weight

PIL_DEFAULT_MAX_PIXELS = 89_478_485  # Image.MAX_IMAGE_PIXELS as Pillow ships it
WEBP_MAX_SIDE = 16383
# Tried in order when no font file is given: Pillow finds these in the system font folders.
# The WebUI ships modules/Roboto-Regular.ttf (modules.paths_internal.roboto_ttf_file).
FALLBACK_FONTS = ("DejaVuSans.ttf", "Roboto-Regular.ttf", "arial.ttf", "Arial.ttf", "Helvetica.ttc")
MIN_THUMB = 32
TEXT = (0, 0, 0)
BACKGROUND = (255, 255, 255)
PLACEHOLDER = (225, 225, 225)
PLACEHOLDER_MARK = (160, 160, 160)

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont
Box = tuple[int, int, int, int]


class PageError(ValueError):
    """A page that cannot be laid out within the limits; the message says which limit."""


@functools.lru_cache(maxsize=16)
def load_font(size: int, path: str | None = None) -> Font:
    """A scalable font of `size` px, else Pillow's fixed bitmap font (small, but always there)."""
    for candidate in ((path,) if path else ()) + FALLBACK_FONTS:
        try:
            # The basic layout measures text several times faster than raqm; labels need no shaping.
            return ImageFont.truetype(candidate, size, layout_engine=ImageFont.Layout.BASIC)
        except OSError:
            continue
    return ImageFont.load_default()


def _line_height(font: Font) -> int:
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return ascent + descent
    return font.getbbox("Ag")[3]


def _width(font: Font, text: str) -> float:
    return font.getlength(text)


def wrap(text: str, font: Font, width: float, max_lines: int | None = None) -> list[str]:
    """`text` broken into lines no wider than `width` (long words are split); `…` marks a cut.

    Measures each word once and adds them up: measuring every candidate line costs a
    layout call per word per line, which dominated page layout for long prompts."""
    space = _width(font, " ")
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line, line_w = "", 0.0
        for word in paragraph.split():
            word_w = _width(font, word)
            if line and line_w + space + word_w <= width:
                line, line_w = f"{line} {word}", line_w + space + word_w
                continue
            if line:
                lines.append(line)
            while word_w > width and len(word) > 1:
                cut = _fit_chars(word, font, width)
                lines.append(word[:cut])
                word = word[cut:]
                word_w = _width(font, word)
            line, line_w = word, word_w
        lines.append(line)
    if max_lines is not None and len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and _width(font, last + " …") > width:
            last = last[:-1]
        lines = lines[: max_lines - 1] + [last.rstrip() + " …"]
    return lines


def _fit_chars(word: str, font: Font, width: float) -> int:
    lo, hi = 1, len(word)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _width(font, word[:mid]) <= width:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass(frozen=True)
class Text:
    x: int
    y: int
    text: str


@dataclass(frozen=True)
class Slot:
    cell: int  # plan cell index
    image: int  # index within the cell (prompt-major, see Cell.images)
    box: Box


@dataclass(frozen=True)
class PageLayout:
    checkpoint: str
    number: int  # 1-based, within this checkpoint's pages
    count: int  # pages of this checkpoint
    rows: tuple[int, ...]  # plan rows on this page
    cols: tuple[int, ...]  # plan columns on this page
    size: tuple[int, int]
    thumb: tuple[int, int]
    font_size: int
    font_path: str | None
    texts: tuple[Text, ...]
    slots: tuple[Slot, ...]

    @property
    def cells(self) -> tuple[int, ...]:
        seen: dict[int, None] = {}
        for slot in self.slots:
            seen.setdefault(slot.cell, None)
        return tuple(seen)


@dataclass(frozen=True)
class _Geometry:
    """Sizes that do not depend on which rows and columns a page holds."""

    thumb: tuple[int, int]
    font: Font
    font_size: int
    pad: int
    gap: int  # between cells
    inner: int  # between the images of a cell
    block: tuple[int, int]
    label_w: int
    header_h: int
    line_h: int

    def width(self, n_cols: int) -> int:
        return self.pad * 2 + self.label_w + n_cols * self.block[0] + max(n_cols - 1, 0) * self.gap

    def height(self, n_rows: int, legend_lines: int) -> int:
        legend = legend_lines * self.line_h + self.pad
        return self.pad * 2 + legend + self.header_h + n_rows * self.block[1] + max(n_rows - 1, 0) * self.gap


def _geometry(plan: SweepPlan, thumb: tuple[int, int], font_path: str | None) -> _Geometry:
    tw, th = thumb
    font_size = max(12, min(40, (tw + th) // 25))
    font = load_font(font_size, font_path)
    line_h = _line_height(font) + max(2, font_size // 6)
    pad = max(8, font_size // 2)
    inner = max(2, min(tw, th) // 128)
    k, n = len(plan.prompts), len(plan.seeds)
    block = (n * tw + (n - 1) * inner, k * th + (k - 1) * inner)
    longest = max((_width(font, r.label) for r in plan.rows), default=0.0)
    label_w = int(min(longest + pad * 2, max(block[0], 10 * font_size)))
    label_w = max(label_w, 4 * font_size)
    header_lines = max(len(wrap(c.label, font, block[0])) for c in plan.columns)
    header_h = header_lines * line_h + pad
    return _Geometry(thumb, font, font_size, pad, pad, inner, block, label_w, header_h, line_h)


def _legend(plan: SweepPlan, checkpoint: str, number: int, count: int, geo: _Geometry,
            width: int) -> list[str]:
    font, text_w = geo.font, width - 2 * geo.pad
    where = checkpoint or "the current checkpoint"
    page = f" — page {number} of {count}" if count > 1 else ""
    lines = wrap(f"LoRA {plan.family} on {where}{page}", font, text_w)
    layout = "rows: epoch files · columns: LoRA weight"
    if len(plan.prompts) > 1 or len(plan.seeds) > 1:
        layout += " · in each cell, one row per prompt and one column per seed"
    lines += wrap(layout, font, text_w)
    lines += wrap("seeds: " + ", ".join(str(s) for s in plan.seeds), font, text_w, max_lines=2)
    for i, prompt in enumerate(plan.prompts):
        label = f"prompt {i + 1}: " if len(plan.prompts) > 1 else "prompt: "
        lines += wrap(label + prompt, font, text_w, max_lines=3)
    if plan.negative_prompt:
        lines += wrap("negative: " + plan.negative_prompt, font, text_w, max_lines=2)
    return lines


def _chunks(items: Sequence[int], per_page: int) -> list[tuple[int, ...]]:
    if not items:
        return [()]
    pages = math.ceil(len(items) / per_page)
    size = math.ceil(len(items) / pages)
    return [tuple(items[i:i + size]) for i in range(0, len(items), size)]


def _fit(plan: SweepPlan, thumb: tuple[int, int], font_path: str | None, max_pixels: int,
         max_side: int) -> tuple[_Geometry, int, int] | None:
    """Geometry and the most weight columns and rows per page, or None if one cell will not fit."""
    geo = _geometry(plan, thumb, font_path)
    fixed_cols = sum(1 for c in plan.columns if c.weight is None)
    swept_cols = len(plan.columns) - fixed_cols
    cols = swept_cols
    while cols > 1 and geo.width(cols + fixed_cols) > max_side:
        cols -= 1
    if geo.width(min(cols, 1) + fixed_cols) > max_side:
        return None
    cols = max(cols, 1)
    # Balanced chunks differ by one column at most; the narrowest page has the tallest legend.
    narrowest = min((len(c) for c in _chunks(range(swept_cols), cols)), default=0) + fixed_cols
    page_w = geo.width(min(swept_cols, cols) + fixed_cols)
    legend = max(len(_legend(plan, c, 99, 99, geo, geo.width(narrowest))) for c in plan.checkpoints)
    rows = len(plan.rows)
    while rows >= 1 and (geo.height(rows, legend) > max_side
                         or page_w * geo.height(rows, legend) > max_pixels):
        rows -= 1
    if rows < 1:
        return None
    return geo, cols, rows


def layout_pages(
    plan: SweepPlan,
    image_size: tuple[int, int],
    *,
    thumb_max: int | None = None,
    max_pixels: int = PIL_DEFAULT_MAX_PIXELS,
    max_side: int = WEBP_MAX_SIDE,
    font_path: str | None = None,
) -> list[PageLayout]:
    """The pages for `plan`, checkpoint by checkpoint, rows then columns.

    `image_size` is the size of the generated images; `thumb_max` caps their longest side on
    the pages (None: full size unless a single cell would break the limits)."""
    w, h = image_size
    if w < 1 or h < 1:
        raise PageError(f"image size {w}×{h} is not valid")
    scale = min(1.0, thumb_max / max(w, h)) if thumb_max else 1.0
    while True:
        thumb = (max(1, round(w * scale)), max(1, round(h * scale)))
        fitted = _fit(plan, thumb, font_path, max_pixels, max_side)
        if fitted is not None:
            break
        if min(thumb) <= MIN_THUMB:
            raise PageError(
                f"one cell of {len(plan.prompts)} prompts × {len(plan.seeds)} seeds does not fit on a page "
                f"of {max_side} px a side and {max_pixels / 1e6:.0f} MP; use fewer prompts or seeds"
            )
        scale *= 0.8
    geo, cols_per_page, rows_per_page = fitted
    fixed = tuple(i for i, c in enumerate(plan.columns) if c.weight is None)
    swept = [i for i, c in enumerate(plan.columns) if c.weight is not None]
    row_chunks = _chunks(range(len(plan.rows)), rows_per_page)
    col_chunks = _chunks(swept, cols_per_page)
    pages = []
    for checkpoint in plan.checkpoints:
        count = len(row_chunks) * len(col_chunks)
        for rows in row_chunks:
            for cols in col_chunks:
                pages.append(_page(plan, geo, checkpoint, len(pages) % count + 1, count, rows, fixed + cols,
                                   font_path))
    return pages


def _page(plan: SweepPlan, geo: _Geometry, checkpoint: str, number: int, count: int,
          rows: tuple[int, ...], cols: tuple[int, ...], font_path: str | None) -> PageLayout:
    width = geo.width(len(cols))
    legend = _legend(plan, checkpoint, number, count, geo, width)
    height = geo.height(len(rows), len(legend))
    texts = [Text(geo.pad, geo.pad + i * geo.line_h, line) for i, line in enumerate(legend)]
    top = geo.pad + len(legend) * geo.line_h + geo.pad + geo.header_h
    left = geo.pad + geo.label_w
    bw, bh = geo.block
    tw, th = geo.thumb
    for j, col in enumerate(cols):
        x = left + j * (bw + geo.gap)
        lines = wrap(plan.columns[col].label, geo.font, bw)
        y = top - geo.header_h + (geo.header_h - geo.pad - len(lines) * geo.line_h) // 2
        texts += [Text(int(x + (bw - _width(geo.font, s)) / 2), y + i * geo.line_h, s)
                  for i, s in enumerate(lines)]
    slots = []
    for i, row in enumerate(rows):
        y = top + i * (bh + geo.gap)
        lines = wrap(plan.rows[row].label, geo.font, geo.label_w - geo.pad)
        y_text = y + (bh - len(lines) * geo.line_h) // 2
        texts += [Text(geo.pad, y_text + k * geo.line_h, s) for k, s in enumerate(lines)]
        for j, col in enumerate(cols):
            x = left + j * (bw + geo.gap)
            cell = plan.cell_at(checkpoint, row, col)
            for index in range(len(cell.images)):
                prompt, seed = divmod(index, len(cell.seeds))
                sx, sy = x + seed * (tw + geo.inner), y + prompt * (th + geo.inner)
                slots.append(Slot(cell.index, index, (sx, sy, sx + tw, sy + th)))
    return PageLayout(checkpoint, number, count, rows, cols, (width, height), geo.thumb, geo.font_size,
                      font_path, tuple(texts), tuple(slots))


ImageLoader = Callable[[int, int], "Image.Image | None"]


def _fit_into(image: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, tuple[int, int]]:
    """`image` scaled to fit `size` (aspect kept) and its offset to centre it."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size == size:
        return image, (0, 0)
    scale = min(size[0] / image.width, size[1] / image.height)
    fitted = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    image = image.resize(fitted, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image, ((size[0] - fitted[0]) // 2, (size[1] - fitted[1]) // 2)


def _placeholder(draw: ImageDraw.ImageDraw, box: Box) -> None:
    draw.rectangle(box, fill=PLACEHOLDER)
    x0, y0, x1, y1 = box
    draw.line((x0, y0, x1 - 1, y1 - 1), fill=PLACEHOLDER_MARK, width=2)
    draw.line((x0, y1 - 1, x1 - 1, y0), fill=PLACEHOLDER_MARK, width=2)


def render_page(layout: PageLayout, load: ImageLoader) -> Image.Image:
    """Draw `layout`; `load(cell, image)` returns that image, or None if it is missing, which
    (like an unreadable file) gets a crossed-out placeholder."""
    page = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(page)
    font = load_font(layout.font_size, layout.font_path)
    for text in layout.texts:
        draw.text((text.x, text.y), text.text, fill=TEXT, font=font)
    for slot in layout.slots:
        try:
            image = load(slot.cell, slot.image)
        except OSError:
            image = None
        if image is None:
            _placeholder(draw, slot.box)
            continue
        fitted, (dx, dy) = _fit_into(image, layout.thumb)
        page.paste(fitted, (slot.box[0] + dx, slot.box[1] + dy))
    return page


def page_title(plan: SweepPlan, layout: PageLayout) -> str:
    """A short caption for a page in a gallery."""
    rows = plan.rows[layout.rows[0]].label
    if len(layout.rows) > 1:
        rows += f" – {plan.rows[layout.rows[-1]].label}"
    weights = [plan.columns[c].weight for c in layout.cols if plan.columns[c].weight is not None]
    span = f", weights {format_weight(min(weights))}–{format_weight(max(weights))}" if weights else ""
    where = layout.checkpoint or "current checkpoint"
    return f"{plan.family} · {where} · {rows}{span} ({layout.number}/{layout.count})"
