"""Benchmark: what scoring adds to a sweep — tagging and scoring its images with a ConvNeXt-size
tagger, against rendering them with an SD1.5-size UNet at 256 px (CPU).

    .venv/bin/python bench/sweep_scores.py [--images 4] [--steps 20] [--threads 1]

Rendering: the standalone sampler (Euler, classifier-free guidance, so two UNet passes a step) on
a random SD1.5-size UNet and CLIP-L, `--steps` steps per image, the floor every sweep pays. Scoring:
`score_sweep` on a sweep of those images (plus as many training images) with bench/tagging.py's
388 MB ConvNeXt-base-size WD14 stand-in — tagging, the metrics and saving them in the manifest. Prints seconds
per image for both and scoring ÷ rendering (goal: ≤ 0.10, i.e. scoring adds at most 10 %).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tagging import build_model  # noqa: E402  (bench/tagging.py: the ConvNeXt-size stand-in)
from train_step import build_parts  # noqa: E402  (bench/train_step.py: SD1.5-size random parts)

from lora_lab.host.protocol import PreviewRequest  # noqa: E402
from lora_lab.hosts.standalone.sampling import sample  # noqa: E402
from lora_lab.sweep.scoring import score_sweep  # noqa: E402


def fake_manifest(folder: Path, images: list[Path]):
    """A one-row sweep (baseline + one weight) whose cells hold the rendered images."""
    from lora_lab.sweep.manifest import (
        ManifestCell, ManifestColumn, ManifestImage, ManifestRow, SweepManifest,
    )

    half = len(images) // 2
    cells = []
    for index, (lora, weight, files) in enumerate([(None, None, images[:half]), ("bench", 1.0, images[half:])]):
        cells.append(ManifestCell(index, "random-sd15", None if lora is None else 0, index, lora, weight,
                                  "no LoRA" if lora is None else "1", ["ohwx, red circle, white background"],
                                  list(range(len(files))),
                                  [ManifestImage(0, s, str(f), "") for s, f in enumerate(files)]))
    return SweepManifest(folder / "sweep.json", "bench", "", {}, ["random-sd15"],
                         ["ohwx, red circle, white background"], "", list(range(half)),
                         [ManifestRow("bench", "final", None, str(folder / "bench.safetensors"))],
                         [ManifestColumn(None, "no LoRA"), ManifestColumn(1.0, "1")], cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4, help="images to render (and score), even")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        parts = build_parts(torch.device("cpu"), "sd1")
        rendered, began = [], time.perf_counter()
        for i in range(args.images):
            image = sample(parts, PreviewRequest("ohwx, red circle, white background", seed=i, steps=args.steps,
                                                 width=256, height=256))
            rendered.append(root / f"{i}.png")
            image.save(rendered[-1])
        render = (time.perf_counter() - began) / args.images
        train = root / "train"
        train.mkdir()
        for i, path in enumerate(rendered):
            (train / f"t{i}.png").write_bytes(path.read_bytes())
        tagger = build_model(root / "tagger")
        manifest = fake_manifest(root, rendered)
        score_sweep(manifest, tagger, train)  # warm-up: the session loads once per process
        began = time.perf_counter()
        score_sweep(manifest, tagger, train)
        score = (time.perf_counter() - began) / args.images
    print(f"SD1.5-size UNet, 256 px, {args.steps} Euler steps with CFG, {args.threads} thread(s)")
    print(f"  render  {render:7.2f} s/image")
    print(f"  score   {score:7.2f} s/image (tagging the sweep image and one training image each, metrics, manifest)")
    print(f"  scoring / rendering: {score / render:.3f}  (goal <= 0.10)")


if __name__ == "__main__":
    main()
