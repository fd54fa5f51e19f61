"""Benchmark: what the per-epoch validation loss costs a training run.

    .venv/bin/python bench/validation.py [--images 20] [--repeats 10] [--epochs 2] [--rounds 2]
                                         [--resolution 128] [--holdout 2]

Trains the tiny model on a sample dataset sized as the guides advise (images × repeats = 200 per
epoch by default) with validation off (the floor) and at the default settings (stable loss on 4
training images at 4 timesteps), then with a held-out set too; the runs alternate, one thread,
and each ratio is the median over rounds of with / without. Goal: at most 1.05 at the defaults.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lora_lab.devtools.sample_dataset import build_sample_dataset  # noqa: E402
from lora_lab.devtools.tiny_model import build_tiny_model  # noqa: E402
from lora_lab.host.progress import RecordingProgress  # noqa: E402
from lora_lab.hosts.standalone.host import StandaloneHost  # noqa: E402
from lora_lab.train import TrainConfig, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--holdout", default="2")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = build_sample_dataset(root / "data", images=args.images, repeats=args.repeats,
                                    side=args.resolution)
        host = StandaloneHost(build_tiny_model(root / "model"), home=root / "home", progress=RecordingProgress(),
                              threads=1)
        host.model_parts()

        def run(**settings: object) -> float:
            config = TrainConfig(dataset_dir=data, name="bench", output_dir=root / "out", overwrite=True,
                                 epochs=args.epochs,
                                 resolution=args.resolution, min_bucket_reso=64,
                                 max_bucket_reso=max(256, args.resolution), dim=8, alpha=8,
                                 preview_every_n_epochs=0, mixed_precision="no", **settings)
            began = time.thread_time()
            result = train(host, config)
            assert result.state == "finished", result.message
            return time.thread_time() - began

        run(validation=False)  # warm-up
        variants = {"off": {"validation": False}, "defaults": {},
                    f"holdout {args.holdout}": {"holdout": args.holdout}}
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, settings in variants.items():
                times[name].append(run(**settings))
        print(f"tiny model, {args.images} images × {args.repeats} repeats × {args.epochs} epochs at "
              f"{args.resolution} px (thread CPU time, {args.rounds} rounds)")
        for name in variants:
            ratios = [t / off for t, off in zip(times[name], times["off"])]
            print(f"  {name:12s} median {statistics.median(times[name]):7.2f} s  ratio to off "
                  f"{statistics.median(ratios):.3f}")
        print("goal: defaults <= 1.05 (the held-out images are extra forwards on top; a holdout also "
              "trains fewer images per epoch, so its run can be shorter)")


if __name__ == "__main__":
    main()
