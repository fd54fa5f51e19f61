from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import onnxruntime as ort

from lora_lab.devtools.tiny_tagger import INPUT_NAME, OUTPUT_NAME, build_tiny_tagger


def session(folder: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])


def test_graph_has_the_wd14_contract(tiny_tagger_dir: Path) -> None:
    s = session(tiny_tagger_dir)
    (inp,), (out,) = s.get_inputs(), s.get_outputs()
    assert inp.name == INPUT_NAME and inp.type == "tensor(float)"
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == [64, 64, 3]  # dynamic batch, NHWC
    rows = list(csv.DictReader((tiny_tagger_dir / "selected_tags.csv").open(encoding="utf-8")))
    assert list(rows[0]) == ["tag_id", "name", "category", "count"]
    assert [r["category"] for r in rows[:4]] == ["9"] * 4
    assert {r["category"] for r in rows} == {"0", "4", "9"}
    assert out.name == OUTPUT_NAME and out.shape[1] == len(rows)


def test_runs_with_batch_1_and_4_consistently(tiny_tagger_dir: Path) -> None:
    s = session(tiny_tagger_dir)
    images = np.random.RandomState(0).uniform(0, 255, (4, 64, 64, 3)).astype(np.float32)
    images[1] = 255.0  # a white image
    batch = s.run([OUTPUT_NAME], {INPUT_NAME: images})[0]
    singles = np.concatenate([s.run([OUTPUT_NAME], {INPUT_NAME: images[i:i + 1]})[0] for i in range(4)])
    assert batch.shape == (4, 40)
    assert np.allclose(batch, singles, atol=1e-6)
    assert ((batch >= 0) & (batch <= 1)).all()
    assert np.abs(batch[0] - batch[1]).max() > 0.1  # outputs depend on the image


def test_rebuild_gives_identical_bytes(tiny_tagger_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_tagger(tmp_path)
    for name in ("model.onnx", "selected_tags.csv"):
        assert (again / name).read_bytes() == (tiny_tagger_dir / name).read_bytes()
