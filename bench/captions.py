"""Batch caption edits on 10 000 captions: add, remove, undo, against a floor from the same run.

Floor: a bare loop that writes every caption to a temporary sibling and renames it over the file
(no reading, no journal, no checks, no flush): the least any tool pays to rewrite 10 000 files on
this disk. Each operation of ours is timed as a user runs it (scan the folder, read and parse
every caption, compute, journal, write, flush to disk) right after a floor run, both starting
from a settled disk (`os.sync()` and a pause, not timed). Printed: medians of wall time and CPU
time (user + system of this process, steadier on a shared machine) and the median ratios to the
floor. Absolute times on a shared 2-core machine are noise; the ratios are the result.

    .venv/bin/python bench/captions.py [--files 10000] [--rounds 3] [--profile]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lora_lab.dataset.caption_ops import add_tags, remove_tags  # noqa: E402
from lora_lab.dataset.captions import load_captions  # noqa: E402
from lora_lab.dataset.journal import Journal  # noqa: E402


def make_dataset(folder: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    vocab = [f"tag{i}" for i in range(600)] + ["1girl", "solo", "long hair", "smile", "looking at viewer"]
    folder.mkdir(parents=True)
    for i in range(n):
        open(folder / f"img{i:05d}.png", "wb").close()
        tags = ["ohwx"] + rng.sample(vocab, rng.randint(12, 30))
        with open(folder / f"img{i:05d}.txt", "w", encoding="utf-8") as f:
            f.write(", ".join(tags))


def read_captions(folder: Path) -> dict[str, bytes]:
    out = {}
    for name in sorted(p for p in os.listdir(folder) if p.endswith(".txt")):
        with open(os.path.join(folder, name), "rb") as f:
            out[os.path.join(folder, name)] = f.read()
    return out


def floor(originals: dict[str, bytes], suffix: bytes) -> None:
    """Rewrite every caption via a temp sibling and os.replace: the least any tool can do."""
    for path, data in originals.items():
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data + suffix)
        os.replace(tmp, path)


def settle() -> None:
    """Start each measurement with nothing left to write back from the previous one."""
    os.sync()
    time.sleep(0.2)


def timed(fn) -> tuple[float, float, object]:
    settle()
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one add and print the top")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="lora-lab-bench-captions-"))
    try:
        ours, bare = base / "ours", base / "floor"
        make_dataset(ours, args.files)
        make_dataset(bare, args.files)
        originals = read_captions(bare)
        ops = {
            "add": lambda: add_tags(load_captions(ours), "bench tag"),
            "remove": lambda: remove_tags(load_captions(ours), "bench tag"),
            "undo": lambda: Journal(ours).undo(),
        }
        results: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in ops}
        loads: list[tuple[float, float]] = []
        for r in range(args.rounds):
            for name, op in ops.items():
                suffix = b", bench tag" if name == "remove" else b""  # a change of content, like ours
                f, fcpu, _ = timed(lambda: floor(originals, suffix))
                t, cpu, out = timed(op)
                if name != "undo":
                    assert len(out.changes) == args.files, out.summary()
                results[name].append((t, f, cpu, fcpu))
            Journal(ours).undo()  # reverts the add, so the next round starts from the same captions
            loads.append(timed(lambda: load_captions(ours))[:2])
        print(f"{args.files} caption files, {args.rounds} round(s), medians; floor = bare loop writing a "
              "temp sibling + os.replace per file (no read, no journal, no checks, no flush)")
        print(f"{'op':<8}{'ours s':>9}{'floor s':>9}{'ratio':>7}"
              f"   {'ours cpu':>9}{'floor cpu':>10}{'ratio':>7}")
        for name, runs in results.items():
            med = [statistics.median(col) for col in zip(*runs)]
            ratio = statistics.median(x / y for x, y, _, _ in runs)
            cpu_ratio = statistics.median(c / fc for _, _, c, fc in runs)
            print(f"{name:<8}{med[0]:>9.3f}{med[1]:>9.3f}{ratio:>7.2f}"
                  f"   {med[2]:>9.3f}{med[3]:>10.3f}{cpu_ratio:>7.2f}")
        load_wall, load_cpu = (statistics.median(col) for col in zip(*loads))
        print(f"add and remove include loading the captions (scan, read, parse), which the floor does "
              f"not: {load_wall:.3f} s wall, {load_cpu:.3f} s cpu")
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.runcall(ops["add"])
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
