"""Benchmark: CPU threads for a standalone run, on a quiet machine and beside a busy process.

    .venv/bin/python bench/threads.py [--resolution 256] [--epochs 2]

Trains the tiny model (sample dataset, 4 images × 4 repeats) with a fixed thread count of 1, with
every core (torch's default), and with LoRA Lab's automatic count (`lora_lab/host/threads.py`),
first on a quiet machine, then with one busy process per core but one started just before the run.
Prints each time and its ratio to the best fixed count in the same situation: the automatic count
should be near 1.0 in both, where each fixed count is far off in one of them.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lora_lab.devtools.sample_dataset import build_sample_dataset  # noqa: E402
from lora_lab.devtools.tiny_model import build_tiny_model  # noqa: E402
from lora_lab.host.progress import RecordingProgress  # noqa: E402
from lora_lab.hosts.standalone.host import StandaloneHost  # noqa: E402
from lora_lab.host.threads import usable_cpus  # noqa: E402
from lora_lab.train import TrainConfig, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    cpus = usable_cpus()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset = build_sample_dataset(root / "data", images=4, repeats=4)
        checkpoint = build_tiny_model(root / "model")

        def run(threads: int | None) -> float:
            host = StandaloneHost(checkpoint, home=root / "home", progress=RecordingProgress(), threads=threads)
            host.model_parts()
            config = TrainConfig(dataset_dir=dataset, name="bench", output_dir=root / "out", overwrite=True,
                                 epochs=args.epochs, resolution=args.resolution, min_bucket_reso=64,
                                 max_bucket_reso=max(256, args.resolution), dim=4, alpha=4,
                                 preview_every_n_epochs=0, mixed_precision="no")
            began = time.perf_counter()
            result = train(host, config)
            assert result.state == "finished", result.message
            return time.perf_counter() - began

        run(1)  # warm-up: imports, first allocation
        print(f"{cpus} usable core(s), {args.resolution} px, {args.epochs} epochs")
        for busy in (0, max(1, cpus - 1)):
            hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
            try:
                time.sleep(1.0 if busy else 0.0)
                times = {"1 thread": run(1), f"{cpus} threads": run(cpus), "automatic": run(None)}
            finally:
                for hog in hogs:
                    hog.kill()
            best = min(times["1 thread"], times[f"{cpus} threads"])
            label = "quiet" if not busy else f"{busy} busy process(es)"
            for name, seconds in times.items():
                print(f"  {label:22s} {name:11s} {seconds:6.2f} s  ratio to best fixed {seconds / best:5.2f}")


if __name__ == "__main__":
    main()
