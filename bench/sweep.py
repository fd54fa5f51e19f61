"""The same epoch × weight sweep through LoRA Lab's grid script and through X/Y/Z plot with
Prompt S/R, in one real WebUI (tier 2: needs LORA_LAB_WEBUI, see docs/webui-tier.md).

    LORA_LAB_WEBUI=/work/webui .venv/bin/python bench/sweep.py [--rounds 2]

5 epoch files × 4 weights × 2 seeds of a random LoRA on the tiny checkpoint, 64×64, 4 Euler steps;
no baseline column (X/Y/Z has none). X/Y/Z gets the tag in the prompt, the file names on X and
the weights on Y as Prompt S/R values (axis indices looked up in /sdapi/v1/script-info) and
keeps every image (Include Sub Images). Both run the two ways to get 2 images per cell: batch
count 2 and batch size 2. Rounds alternate which goes first; the medians are compared. The WebUI
runs torch on one thread (OMP_NUM_THREADS=1): on a shared machine, another busy process stalls
every multi-threaded parallel region and swamps the difference being measured.
Goal: LoRA Lab ≤ 0.8 × X/Y/Z.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lora_lab.devtools.tiny_lora import write_epochs  # noqa: E402
from lora_lab.devtools.tiny_model import build_tiny_model  # noqa: E402
from lora_lab.devtools.webui_runner import WebUI, webui_checkout  # noqa: E402

EPOCHS, WEIGHTS, SEEDS = 5, ["0.25", "0.5", "0.75", "1"], 2
BASE = {"prompt": "a photo of a cat", "negative_prompt": "", "seed": 1234, "steps": 4, "width": 64,
        "height": 64, "sampler_name": "Euler", "cfg_scale": 7}


def ours(webui: WebUI, batch: dict[str, int]) -> dict[str, Any]:
    args = ["bench", [], ", ".join(WEIGHTS), [], False, SEEDS, "", 1, -1, ""]
    return webui.post("/sdapi/v1/txt2img",
                      {**BASE, **batch, "script_name": "lora lab grid", "script_args": args})


def xyz(webui: WebUI, batch: dict[str, int], files: list[str], prompt_sr: int) -> dict[str, Any]:
    weights = ", ".join(f":{w}>" for w in WEIGHTS)
    args = [prompt_sr, ", ".join(files), [], prompt_sr, weights, [], 0, "", [], True, True, False, False,
            False, False, False, 0, False]
    prompt = f"{BASE['prompt']} <lora:{files[0]}:{WEIGHTS[0]}>"
    return webui.post("/sdapi/v1/txt2img", {**BASE, **batch, "prompt": prompt, "script_name": "x/y/z plot",
                                            "script_args": args})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    checkout = webui_checkout()
    if checkout is None:
        print("set LORA_LAB_WEBUI to an A1111 v1.10.1 checkout with venv/ (docs/webui-tier.md)")
        return 2
    os.environ["OMP_NUM_THREADS"] = "1"  # the WebUI inherits the environment
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = build_tiny_model(Path(tmp) / "model")
        with WebUI(checkout, Path(tmp) / "data", checkpoint) as webui:
            paths = write_epochs(checkpoint, webui.data_dir / "models" / "Lora", "bench", EPOCHS)
            files = [p.stem for p in paths]
            webui.post("/sdapi/v1/refresh-loras", {})
            scripts = webui.get("/sdapi/v1/script-info")
            axes = next(s for s in scripts if s["name"] == "x/y/z plot" and not s["is_img2img"])["args"][0]
            prompt_sr = axes["choices"].index("Prompt S/R")
            ways = {"batch count 2": {"n_iter": SEEDS, "batch_size": 1},
                    "batch size 2": {"n_iter": 1, "batch_size": SEEDS}}
            runners = {
                "LoRA Lab": lambda batch: ours(webui, batch),
                "X/Y/Z": lambda batch: xyz(webui, batch, files, prompt_sr),
            }
            for batch in ways.values():  # warm-up: model, LoRA files, first-request costs
                for run in runners.values():
                    run(batch)
            times: dict[tuple[str, str], list[float]] = {}
            for round_no in range(args.rounds):
                order = list(runners) if round_no % 2 == 0 else list(reversed(runners))
                for way, batch in ways.items():
                    for name in order:
                        started = time.perf_counter()
                        response = runners[name](batch)
                        seconds = time.perf_counter() - started
                        info = json.loads(response["info"])
                        images = len(response["images"]) - info["index_of_first_image"]
                        times.setdefault((way, name), []).append(seconds)
                        print(f"round {round_no + 1}, {way}, {name}: {seconds:.2f} s "
                              f"({images} images returned)", flush=True)
    print(f"\n{EPOCHS} epochs × {len(WEIGHTS)} weights × {SEEDS} seeds = {EPOCHS * len(WEIGHTS) * SEEDS} "
          "images, 64×64, 4 steps, CPU")
    for way in ways:
        a, b = (statistics.median(times[(way, name)]) for name in runners)
        print(f"{way:14s} LoRA Lab {a:6.2f} s   X/Y/Z {b:6.2f} s   ratio {a / b:.2f} (goal ≤ 0.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
