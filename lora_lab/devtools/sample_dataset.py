"""A small procedural training set (coloured shapes), built deterministically, for the demo and tests."""
from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 70), "blue": (40, 80, 220), "yellow": (235, 210, 40)}
BACKGROUNDS = {"white": (245, 245, 245), "black": (20, 20, 20), "grey": (128, 128, 128)}


def shape_image(shape: str, colour: tuple[int, int, int], background: tuple[int, int, int],
                size: tuple[int, int], rng: random.Random) -> Image.Image:
    w, h = size
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    side = min(w, h) * rng.uniform(0.45, 0.7)
    cx, cy = w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.1, 0.1) * h
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(cx, box[1]), (box[2], box[3]), (box[0], box[3])], fill=colour)
    return image


def build_sample_dataset(out_dir: Path, trigger: str = "lldemo", images: int = 8, repeats: int = 2,
                         side: int = 64, captions: bool = True, seed: int = 7) -> Path:
    """`out_dir/<repeats>_<trigger>/` with `images` shapes (every third one wider: a second bucket)
    and, with `captions`, a `.txt` per image (`trigger, red circle, white background`).
    Returns the training folder (out_dir)."""
    rng = random.Random(seed)
    folder = Path(out_dir) / f"{repeats}_{trigger}"
    folder.mkdir(parents=True, exist_ok=True)
    colours, backgrounds = list(COLOURS), list(BACKGROUNDS)
    for i in range(images):
        shape = SHAPES[i % len(SHAPES)]
        colour = colours[i % len(colours)]
        background = backgrounds[(i // len(colours)) % len(backgrounds)]
        size = (side * 3 // 2, side) if i % 3 == 2 else (side, side)
        image = shape_image(shape, COLOURS[colour], BACKGROUNDS[background], size, rng)
        image.save(folder / f"shape_{i:03d}.png")
        if captions:
            (folder / f"shape_{i:03d}.txt").write_text(
                f"{trigger}, {colour} {shape}, {background} background", encoding="utf-8")
    return Path(out_dir)
