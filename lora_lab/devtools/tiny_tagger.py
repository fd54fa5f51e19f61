"""A tiny ONNX tagger with the WD14 I/O contract, built deterministically.

Contract (as SmilingWolf's models): one NHWC float32 input of BGR values 0-255 (normalisation inside
the graph), a dynamic batch axis, one output of sigmoid probabilities whose column i is row i of
`selected_tags.csv` (tag_id,name,category,count; 9 rating, 0 general, 4 character).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .onnx_proto import Graph, value_info

INPUT_NAME = "input_1:0"
OUTPUT_NAME = "predictions_sigmoid"
SEED = 1234

RATINGS = ["general", "sensitive", "questionable", "explicit"]
GENERAL = ["1girl", "solo", "smile", "long_hair", "short_hair", "blue_eyes", "red_hair",
           "blonde_hair", "freckles", "outdoors", "sky", "red_background", "simple_background",
           "white_background", "^_^", "o_o", "holding", "shirt", "hat", "flower", "tree", "water",
           "looking_at_viewer", "upper_body", "open_mouth", "dress", "animal_ears", "cat",
           "no_humans", "scenery", "greyscale", "monochrome"]
CHARACTERS = ["hatsune_miku", "saber_(fate)", "kirby", "pikachu"]


def tag_rows() -> list[tuple[int, str, int, int]]:
    rows = [(9999990 + i, name, 9, 100000) for i, name in enumerate(RATINGS)]
    rows += [(1000 + i, name, 0, 90000 - 1000 * i) for i, name in enumerate(GENERAL)]
    rows += [(5000 + i, name, 4, 5000 - 100 * i) for i, name in enumerate(CHARACTERS)]
    return rows


def selected_tags_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["tag_id", "name", "category", "count"])
    writer.writerows(tag_rows())
    return out.getvalue()


def tagger_graph(side: int = 64, features: int = 16, seed: int = SEED, batch: int | str = "batch") -> bytes:
    """NHWC uint-range input -> /255 -> NCHW -> conv(stride 4) -> relu -> global pool -> gemm -> sigmoid.

    `batch`: a name for a dynamic batch axis, or a number to fix it (as some v2 exports do)."""
    rng = np.random.RandomState(seed)
    n_tags = len(tag_rows())
    g = Graph("tiny_wd14")
    g.inputs.append(value_info(INPUT_NAME, [batch, side, side, 3]))
    g.outputs.append(value_info(OUTPUT_NAME, [batch, n_tags]))
    x = g.node("Div", [INPUT_NAME, g.const("scale", np.array(255.0, np.float32))])
    x = g.node("Transpose", [x], perm=[0, 3, 1, 2])
    w = g.const("conv_w", (rng.standard_normal((features, 3, 4, 4)) * 0.5).astype(np.float32))
    b = g.const("conv_b", (rng.standard_normal(features) * 0.5).astype(np.float32))
    x = g.node("Conv", [x, w, b], kernel_shape=[4, 4], strides=[4, 4])
    x = g.node("Relu", [x])
    x = g.node("GlobalAveragePool", [x])
    x = g.node("Flatten", [x], axis=1)
    fc_w = g.const("fc_w", (rng.standard_normal((features, n_tags)) * 0.8).astype(np.float32))
    fc_b = g.const("fc_b", (rng.standard_normal(n_tags) * 1.0 - 0.5).astype(np.float32))
    x = g.node("Gemm", [x, fc_w, fc_b])
    g.node("Sigmoid", [x], [OUTPUT_NAME])
    return g.serialize()


def build_tiny_tagger(out_dir: Path, side: int = 64, batch: int | str = "batch") -> Path:
    """Write `model.onnx` + `selected_tags.csv` into out_dir; returns the folder."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.onnx").write_bytes(tagger_graph(side, batch=batch))
    (out_dir / "selected_tags.csv").write_text(selected_tags_csv(), encoding="utf-8", newline="")
    return out_dir
