"""LoRA Lab's trainer against kohya sd-scripts on the same work, side by side.

Builds (once, in --keep DIR or a temp dir) a random full-size SD1.5 checkpoint in the ldm layout
every SD1.5 file has (fp16 on disk; both trainers compute in fp32 on the CPU), the CLIP tokenizer
folder sd-scripts reads offline, and 8 images of 256 px with captions in one `2_lab/` repeat
folder. Then it runs both trainers on that work, alternately, one thread each (OMP/MKL threads 1,
ours with --threads 1): 256 px, batch 1, LoRA dim/alpha 16, AdamW, lr 1e-4, fp32, cached
latents, 8 images x 2 repeats = 16 steps, seed 1; sd-scripts with `--sdpa`. Variants: the UNet
only, and UNet + text encoder.

For each run it prints s/step (median interval between step reports, the first step left out),
start-up to the first step (the first step's report minus one step), wall time and the process's
own peak RSS (bench/peak_rss.py), then the ratios ours / kohya and whether the two LoRA files
hold the same keys and shapes.

    .venv/bin/python bench/peer_kohya.py --kohya DIR [--kohya-python PY] [--rounds 3] [--keep DIR]

DIR is an sd-scripts checkout (env LORA_LAB_KOHYA); PY a Python with its requirements (env
LORA_LAB_KOHYA_PYTHON; default DIR/venv/bin/python). docs/peer-kohya.md says how to get both.
Without a checkout it says so and exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KOHYA_COMMIT = "48d368fa"
STEPS = 16
VARIANTS = ("unet", "unet+te")
_STEP_RE = {"ours": re.compile(r"Training: \[[#.]*\] (\d+)/(\d+)"),
            "kohya": re.compile(r"steps:\s*\d+%\|[^|]*\|\s*(\d+)/(\d+)")}


# --- the shared work ------------------------------------------------------------------------

def build_checkpoint(path: Path) -> None:
    """SD1.5's full-size LatentDiffusion with seeded random weights, saved as fp16 safetensors."""
    import torch
    from safetensors.torch import save_file

    from lora_lab.devtools.tiny_model import _reinit
    from lora_lab.hosts.standalone.families import family_config
    from lora_lab.hosts.standalone.ldm_import import import_ldm, quiet
    from lora_lab.hosts.standalone.ldm_loader import _offline_clip

    import_ldm()
    from ldm.util import instantiate_from_config

    torch.manual_seed(1)
    with _offline_clip(), quiet():
        model = instantiate_from_config(family_config("sd1")["model"])
    _reinit(model)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
             if v.is_floating_point()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path.with_suffix(".partial")), metadata={"format": "pt"})
    os.replace(path.with_suffix(".partial"), path)


def build_tokenizer(folder: Path) -> None:
    """The folder sd-scripts' `--tokenizer_cache_dir` reads instead of downloading CLIP-L's."""
    from lora_lab.files.clip_files import CLIP_L_TEXT, text_config, write_clip_folder

    write_clip_folder(folder / "openai_clip-vit-large-patch14",
                      text_config(CLIP_L_TEXT["hidden_size"], CLIP_L_TEXT["intermediate_size"],
                                  CLIP_L_TEXT["num_attention_heads"], CLIP_L_TEXT["num_hidden_layers"],
                                  CLIP_L_TEXT["projection_dim"]))


def build_dataset(folder: Path) -> None:
    import numpy as np
    from PIL import Image

    repeat = folder / "2_lab"
    repeat.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    words = ["red", "blue", "circle", "square", "outdoors", "simple background", "smile", "hat"]
    for i in range(8):
        yy, xx = np.mgrid[0:256, 0:256]
        rgb = np.stack([xx, yy, (xx + yy) // 2], -1) + rng.integers(0, 60, 3)
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(repeat / f"{i}.png")
        tags = ["lab"] + [str(w) for w in rng.choice(words, 3, replace=False)]
        (repeat / f"{i}.txt").write_text(", ".join(tags), encoding="utf-8")


@dataclass(frozen=True)
class Work:
    root: Path

    @property
    def checkpoint(self) -> Path:
        return self.root / "model" / "sd15-random.safetensors"

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer"

    @property
    def dataset(self) -> Path:
        return self.root / "dataset"

    def build(self) -> None:
        if not self.checkpoint.is_file():
            build_checkpoint(self.checkpoint)
        if not self.tokenizer.is_dir():
            build_tokenizer(self.tokenizer)
        if not self.dataset.is_dir():
            build_dataset(self.dataset)


# --- the two commands -------------------------------------------------------------------------

def ours_command(work: Work, variant: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "lora_lab", "train", "--checkpoint", str(work.checkpoint),
            "--family", "sd1", "--device", "cpu", "--threads", "1", "--home", str(out / "home"),
            "--dataset", str(work.dataset), "--output-dir", str(out), "--name", "peer",
            "--epochs", "1", "--dim", "16", "--alpha", "16", "--unet-lr", "1e-4",
            "--te-lr", "1e-4" if variant == "unet+te" else "0", "--resolution", "256",
            "--batch-size", "1", "--optimizer", "adamw", "--scheduler", "constant", "--seed", "1",
            "--save-precision", "fp16", "--set", "validation=false", "--overwrite"]


def kohya_command(kohya: Path, python: str, work: Work, variant: str, out: Path) -> list[str]:
    return ([python, str(kohya / "train_network.py"),
             "--pretrained_model_name_or_path", str(work.checkpoint),
             "--tokenizer_cache_dir", str(work.tokenizer), "--train_data_dir", str(work.dataset),
             "--output_dir", str(out), "--output_name", "peer", "--save_model_as", "safetensors",
             "--resolution", "256", "--train_batch_size", "1", "--max_train_steps", str(STEPS),
             "--network_module", "networks.lora", "--network_dim", "16", "--network_alpha", "16",
             "--learning_rate", "1e-4", "--optimizer_type", "AdamW", "--lr_scheduler", "constant",
             "--mixed_precision", "no", "--save_precision", "fp16", "--cache_latents", "--sdpa",
             "--seed", "1", "--max_data_loader_n_workers", "0", "--caption_extension", ".txt"]
            + (["--network_train_unet_only"] if variant == "unet" else []))


# --- running and timing -----------------------------------------------------------------------

@dataclass
class Run:
    tool: str
    variant: str
    wall: float = 0.0
    peak_rss_mb: float = 0.0
    step_times: dict[int, float] = field(default_factory=dict)  # step -> seconds since launch
    file: Path | None = None

    @property
    def s_per_step(self) -> float:
        times = [self.step_times[k] for k in sorted(self.step_times) if k >= 1]
        return statistics.median(b - a for a, b in zip(times, times[1:]))

    @property
    def startup(self) -> float:
        return self.step_times[1] - self.s_per_step


def _watch(stream: int, pattern: re.Pattern[str], started: float, run: Run, log: list[str]) -> None:
    """Timestamp the first report of each step; progress bars redraw with \\r, so split on it."""
    pending = ""
    while chunk := os.read(stream, 65536):
        now = time.perf_counter() - started
        pending += chunk.decode("utf-8", "replace")
        *lines, pending = re.split(r"[\r\n]", pending)
        for line in lines:
            log.append(line)
            match = pattern.search(line)
            if match and int(match.group(1)) not in run.step_times:
                run.step_times[int(match.group(1))] = now


def run_one(tool: str, variant: str, command: list[str], out: Path) -> Run:
    out.mkdir(parents=True, exist_ok=True)
    peak_file = out / "peak.json"
    python, *args = command
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "LORA_LAB_PROGRESS_EVERY": "0",  # piped: LoRA Lab writes plain lines, here one per step
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    if tool == "kohya":
        env["PYTHONPATH"] = str(Path(args[0]).parent)
    run, log = Run(tool, variant), []
    read, write = os.pipe()
    started = time.perf_counter()
    proc = subprocess.Popen([python, str(ROOT / "bench" / "peak_rss.py"), str(peak_file), *args],
                            cwd=out, stdout=write, stderr=write, env=env)
    os.close(write)
    watcher = threading.Thread(target=_watch, args=(read, _STEP_RE[tool], started, run, log))
    watcher.start()
    code = proc.wait()
    run.wall = time.perf_counter() - started
    watcher.join()
    os.close(read)
    if code or len(run.step_times) < 3:
        tail = "\n".join(log[-40:])
        raise SystemExit(f"{tool} ({variant}) failed (exit {code}, {len(run.step_times)} step reports):\n{tail}")
    run.peak_rss_mb = json.loads(peak_file.read_text())["peak_rss_mb"]
    files = sorted(out.glob("peer*.safetensors"))
    run.file = files[-1] if files else None
    return run


def same_layout(a: Path | None, b: Path | None) -> str:
    if a is None or b is None:
        return "a file is missing"
    from safetensors import safe_open

    def layout(path: Path) -> dict[str, tuple[int, ...]]:
        with safe_open(str(path), "np") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}

    ours, theirs = layout(a), layout(b)
    if ours == theirs:
        return f"same {len(ours)} keys and shapes"
    only_ours, only_theirs = set(ours) - set(theirs), set(theirs) - set(ours)
    shapes = [k for k in set(ours) & set(theirs) if ours[k] != theirs[k]]
    return (f"DIFFERENT: {len(only_ours)} keys only ours, {len(only_theirs)} only kohya's, "
            f"{len(shapes)} shapes differ (e.g. {sorted(only_ours | only_theirs | set(shapes))[:3]})")


def report(runs: list[Run], layouts: dict[str, str]) -> None:
    def median(tool: str, variant: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in runs if r.tool == tool and r.variant == variant)

    print(f"\n{'variant':8s} {'tool':6s} {'s/step':>7s} {'start-up':>9s} {'wall':>7s} {'peak RSS':>9s}")
    for variant in VARIANTS:
        if not any(r.variant == variant for r in runs):
            continue
        for tool in ("ours", "kohya"):
            print(f"{variant:8s} {tool:6s} {median(tool, variant, 's_per_step'):7.2f} "
                  f"{median(tool, variant, 'startup'):8.1f}s {median(tool, variant, 'wall'):6.1f}s "
                  f"{median(tool, variant, 'peak_rss_mb'):7.0f}MB")
        ratio = {a: median("ours", variant, a) / median("kohya", variant, a)
                 for a in ("s_per_step", "startup", "wall", "peak_rss_mb")}
        print(f"{variant:8s} ours/kohya s/step {ratio['s_per_step']:.3f} (goal <= 0.92), start-up "
              f"{ratio['startup']:.2f}, wall {ratio['wall']:.2f}, peak RSS {ratio['peak_rss_mb']:.2f} "
              f"(goal <= 1.00 each); files: {layouts[variant]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kohya", type=Path, default=os.environ.get("LORA_LAB_KOHYA") or None,
                        help="an sd-scripts checkout (env LORA_LAB_KOHYA)")
    parser.add_argument("--kohya-python", default=os.environ.get("LORA_LAB_KOHYA_PYTHON") or None,
                        help="Python with sd-scripts' requirements (default: DIR/venv/bin/python)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds (median reported)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="unet, unet+te or both")
    parser.add_argument("--keep", type=Path, default=None, help="build the model and data here, keep them")
    args = parser.parse_args()
    if args.kohya is None:
        print("peer_kohya: skipped: no sd-scripts checkout given (--kohya DIR or LORA_LAB_KOHYA); "
              "docs/peer-kohya.md says how to get one")
        return 0
    kohya = args.kohya.resolve()
    if not (kohya / "train_network.py").is_file():
        raise SystemExit(f"--kohya {kohya}: not an sd-scripts checkout (no train_network.py)")
    python = args.kohya_python or str(kohya / "venv" / "bin" / "python")
    if not Path(python).exists():
        raise SystemExit(f"no Python for sd-scripts at {python}: give --kohya-python")
    variants = [v for v in args.variants.split(",") if v]
    with tempfile.TemporaryDirectory(prefix="lora-lab-peer-") as tmp:
        work = Work((args.keep or Path(tmp)).resolve())
        t0 = time.perf_counter()
        work.build()
        print(f"work built in {time.perf_counter() - t0:.0f}s: {work.root}; sd-scripts {kohya} "
              f"(this bench was written against {KOHYA_COMMIT})", flush=True)
        runs: list[Run] = []
        layouts: dict[str, str] = {}
        for round_no in range(args.rounds):
            for variant in variants:
                order = ("ours", "kohya") if round_no % 2 == 0 else ("kohya", "ours")
                done: dict[str, Run] = {}
                for tool in order:
                    out = work.root / f"run-{tool}-{variant.replace('+', '-')}-{round_no}"
                    command = (ours_command(work, variant, out) if tool == "ours"
                               else kohya_command(kohya, python, work, variant, out))
                    run = done[tool] = run_one(tool, variant, command, out)
                    runs.append(run)
                    print(f"  round {round_no + 1} {variant:8s} {tool:6s} {run.s_per_step:6.2f} s/step  "
                          f"start-up {run.startup:5.1f}s  wall {run.wall:6.1f}s  "
                          f"peak RSS {run.peak_rss_mb:6.0f} MB", flush=True)
                layouts[variant] = same_layout(done["ours"].file, done["kohya"].file)
        report(runs, layouts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
