"""Benchmark: the dataset check against plain PIL decoding of the same files, in the same run.

    .venv/bin/python bench/checks.py [--count 500] [--images DIR] [--rounds 3]

Floor = `Image.open(path).load()` for every file, one thread: the least any check that wants to
find corrupt files must do. The check additionally hashes every file's bytes, reads its header
and caption, computes a perceptual hash, buckets it and compares all pairs. It prints
check time / floor time (below 1: faster than merely decoding everything once).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lora_lab.dataset.checks import check_dataset  # noqa: E402
from lora_lab.dataset.images import find_images  # noqa: E402

# (share, format, size) — a phone/camera-heavy mix like real LoRA datasets
MIX = [(0.30, "JPEG", (768, 1024)), (0.20, "JPEG", (1024, 768)), (0.15, "JPEG", (1024, 1024)),
       (0.15, "JPEG", (2048, 1536)), (0.10, "PNG", (768, 768)), (0.10, "PNG", (1024, 1024))]


def make_images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    kinds = [kind for share, *kind in MIX for _ in range(round(share * count))][:count]
    for i, (fmt, (w, h)) in enumerate(kinds):
        base = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(
            (w, h), Image.Resampling.BICUBIC)
        grain = rng.normal(0, 10, (h, w, 3))  # photo-like texture, so files have realistic sizes
        im = Image.fromarray(np.clip(np.asarray(base) + grain, 0, 255).astype(np.uint8))
        path = folder / f"{i:04}.{'jpg' if fmt == 'JPEG' else 'png'}"
        im.save(path, fmt, **({"quality": 90} if fmt == "JPEG" else {"compress_level": 6}))
        path.with_suffix(".txt").write_text("ohwx, photo", encoding="utf-8")


def floor(folder: Path) -> float:
    start = time.perf_counter()
    for path in find_images(folder).images:
        with Image.open(path) as im:
            im.load()
    return time.perf_counter() - start


def check(folder: Path) -> float:
    start = time.perf_counter()
    report = check_dataset(folder, resolution=512)
    elapsed = time.perf_counter() - start
    assert len(report.images) == report.files_seen, "every generated image must be readable"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--images", type=Path, default=None,
                        help="folder to generate into and reuse (default: a temporary folder)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.images or Path(tmp) / "images"
        if len(find_images(folder).images if folder.is_dir() else []) != args.count:
            print(f"generating {args.count} images in {folder} ...", file=sys.stderr)
            make_images(folder, args.count)
        megabytes = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        floor(folder)  # warm the page cache so both sides read from memory
        floors, checks = [], []
        for _ in range(args.rounds):  # alternate, so background load hits both alike
            floors.append(floor(folder))
            checks.append(check(folder))
        f, c = statistics.median(floors), statistics.median(checks)
        print(f"{args.count} images, {megabytes:.0f} MB, median of {args.rounds} rounds")
        print(f"floor  PIL open+load, 1 thread : {f:7.2f} s")
        print(f"check_dataset                   : {c:7.2f} s")
        print(f"ratio check / floor             : {c / f:7.2f}")
        print("per-round ratios                : "
              + " ".join(f"{ci / fi:.2f}" for fi, ci in zip(floors, checks)))


if __name__ == "__main__":
    main()
