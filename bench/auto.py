"""Benchmark: what the one-run flow (`auto`) costs on top of its stages — the preflight, the state
file written after every stage, the summary and the HTML report.

    .venv/bin/python bench/auto.py [--rounds 2] [--images 12] [--epochs 4]

Both sides run on the tiny SD1 model and tagger with the sample dataset, one thread, a fresh
standalone host whose model is loaded before the clock starts:
- flow: `run_auto` from an empty run folder to the report;
- floor: the same stage functions (checks, tagging, pruning, plan, training, sweep, scores) called
  one by one with an in-memory state, no state file, no report.
Rounds alternate. Prints the median seconds of each and flow ÷ floor (goal ≤ 1.05), and, within
each flow run, its wall time ÷ the sum of its own stages' seconds (the orchestration alone).
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

from lora_lab.auto import dataset_stages as ds  # noqa: E402
from lora_lab.auto import model_stages as ms  # noqa: E402
from lora_lab.auto.context import Context  # noqa: E402
from lora_lab.auto.flow import run_auto  # noqa: E402
from lora_lab.auto.options import AutoOptions  # noqa: E402
from lora_lab.auto.state import AutoState, StageRecord  # noqa: E402
from lora_lab.devtools.sample_dataset import build_sample_dataset  # noqa: E402
from lora_lab.devtools.tiny_model import build_tiny_model  # noqa: E402
from lora_lab.devtools.tiny_tagger import build_tiny_tagger  # noqa: E402
from lora_lab.host.progress import RecordingProgress  # noqa: E402
from lora_lab.hosts.standalone.host import StandaloneHost  # noqa: E402

TINY = {"resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128, "dim": 8, "alpha": 8.0,
        "unet_lr": 1e-3, "te_lr": 1e-4, "mixed_precision": "no"}


class MemoryState(AutoState):
    def save(self) -> None:  # the floor keeps results in memory only
        pass


def host(checkpoint: Path, home: Path) -> StandaloneHost:
    h = StandaloneHost(checkpoint, home=home, progress=RecordingProgress(), threads=1)
    h.model_parts()
    return h


def options(dataset: Path, out: Path, tagger: Path, args: argparse.Namespace) -> AutoOptions:
    return AutoOptions(dataset=dataset, name="bench", out=out, budget="quick", tagger=str(tagger),
                       sweep_steps=args.sweep_steps, samples_per_epoch=2 * args.images, epochs=args.epochs,
                       train=dict(TINY))


STAGE_SECONDS: list[float] = []  # per flow run: the sum of its own stages' seconds (from its state)


def flow(work: Path, dataset: Path, checkpoint: Path, tagger: Path, args: argparse.Namespace) -> float:
    h = host(checkpoint, work / "home")
    started = time.perf_counter()
    doc = run_auto(h, options(dataset, work / "run", tagger, args), "tiny", lambda _: None)
    wall = time.perf_counter() - started
    assert doc["state"] == "finished", doc.get("error")
    STAGE_SECONDS.append(sum(s["seconds"] for s in doc["stages"] if s["name"] != "report"))
    return wall


def floor(work: Path, dataset: Path, checkpoint: Path, tagger: Path, args: argparse.Namespace) -> float:
    h = host(checkpoint, work / "home")
    opts = options(dataset, work / "run", tagger, args)
    opts.out.mkdir(parents=True)
    state = MemoryState(opts.out / "auto.json", {}, None)
    ctx = Context(h, opts, state, "sd1", 64, tagger, "lldemo", lambda _: None)
    variant = opts.variants[0]
    steps = [("checks", lambda: ds.checks(ctx)), ("tagging", lambda: ds.tagging(ctx)),
             ("pruning", lambda: ds.pruning(ctx)), ("plan", lambda: ds.plan(ctx)),
             ("training", lambda: ms.training(ctx, variant)), ("sweep", lambda: ms.sweep(ctx, variant)),
             ("scores", lambda: ms.scores(ctx, variant))]
    started = time.perf_counter()
    for name, run in steps:
        state.stages[name] = StageRecord(name, "done", 0.0, run())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--sweep-steps", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset = build_sample_dataset(root / "ds", trigger="lldemo", images=args.images, repeats=1, captions=False)
        checkpoint = build_tiny_model(root / "model")
        tagger = build_tiny_tagger(root / "tagger")
        times: dict[str, list[float]] = {"flow": [], "floor": []}
        floor(root / "warm", dataset, checkpoint, tagger, args)  # first-use costs (imports, allocator) out of the way
        for n in range(args.rounds):
            for kind in (("flow", "floor") if n % 2 == 0 else ("floor", "flow")):
                run = flow if kind == "flow" else floor
                times[kind].append(run(root / f"{kind}{n}", dataset, checkpoint, tagger, args))
                print(f"round {n + 1} {kind:5}: {times[kind][-1]:.2f} s", flush=True)
    f, b = statistics.median(times["flow"]), statistics.median(times["floor"])
    paired = statistics.median(x / y for x, y in zip(times["flow"], times["floor"]))
    inside = statistics.median(w / s for w, s in zip(times["flow"], STAGE_SECONDS))
    print(f"\nflow {f:.2f} s, stages one by one {b:.2f} s (medians): flow ÷ floor = {f / b:.3f}, "
          f"median of round pairs {paired:.3f} (goal ≤ 1.05)")
    print(f"within each flow run, wall ÷ the sum of its own stages' seconds = {inside:.3f} "
          "(preflight, state file, summary and report; free of run-to-run noise)")


if __name__ == "__main__":
    main()
