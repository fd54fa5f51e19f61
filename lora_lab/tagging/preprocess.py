"""The WD14 input contract: RGB on white, padded to a centred white square, resized (bicubic) to the
graph's side, BGR, float32 0-255 (normalisation happens inside the graph)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..dataset.images import load_rgb

WHITE = (255, 255, 255)


def to_model_input(image: Image.Image, side: int) -> np.ndarray:
    """`[side, side, 3]` float32 BGR from an RGB image."""
    w, h = image.size
    edge = max(w, h)
    if w != h:
        square = Image.new("RGB", (edge, edge), WHITE)
        square.paste(image, ((edge - w) // 2, (edge - h) // 2))
        image = square
    if edge != side:
        image = image.resize((side, side), Image.Resampling.BICUBIC)
    return np.ascontiguousarray(np.asarray(image, dtype=np.float32)[:, :, ::-1])


def load_model_input(path: Path, side: int) -> np.ndarray:
    """Decode (EXIF applied, transparency on white) and prepare one file; raises ImageProblem."""
    return to_model_input(load_rgb(path, background=WHITE, draft_size=(side, side)), side)
