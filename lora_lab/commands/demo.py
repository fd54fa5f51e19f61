"""`python -m lora_lab demo`: the main job, `auto`, on the built-in sample dataset and the tiny
model and tagger — about a minute on a laptop CPU.

Makes a procedural dataset of coloured shapes (no captions), then runs
`auto DATASET --name lldemo --tiny --budget quick` on it: checks, tagging (trigger first), the
pruning proposal, repeat folders and a plan, training with validation loss, a sweep of epochs ×
weights with a no-LoRA baseline, scores, and the report. Run it again and it continues (or, when
finished, only prints the result)."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

TRIGGER = "lldemo"
# sized for the tiny model: 12 images × 3 repeats, 6 epochs (the quick budget is 200 × 10 for real models)
DEMO_FLAGS = ["--budget", "quick", "--samples-per-epoch", "36", "--epochs", "6"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="the auto flow on a sample dataset and the tiny model (about a minute)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for everything the demo makes (default: <home>/demo, home = "
                             "$LORA_LAB_HOME or ~/lora_lab)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import build_parser
    from ..devtools.sample_dataset import build_sample_dataset
    from ..hosts.standalone.host import default_home

    out = (args.out or default_home() / "demo").resolve()
    print("LoRA Lab demo on tiny random stand-in models: their tags and images are noise; what it shows "
          "is the path from a folder of images to a chosen LoRA, with its evidence.", flush=True)
    dataset = build_sample_dataset(out / "dataset", trigger=TRIGGER, images=12, repeats=1, captions=False)
    argv = ["auto", str(dataset), "--name", TRIGGER, "--tiny", "--home", str(out / "home"),
            "--out", str(out / "run"), *DEMO_FLAGS] + (["--json"] if args.json else [])
    print("$ python -m lora_lab " + " ".join(shlex.quote(a) for a in argv), flush=True)
    auto_args = build_parser().parse_args(argv)
    code = int(auto_args.func(auto_args))
    if code == 0 and not args.json:
        print("\nNext: your own images with `python -m lora_lab auto YOUR_FOLDER --name NAME --checkpoint "
              "YOUR_MODEL.safetensors` (--help lists every option), or the same as a panel: `python -m lora_lab "
              "ui --tiny` → Auto. In the WebUI, LoRA Lab › Auto does it against the loaded model.")
    return code
