"""`python -m lora_lab auto DATASET --name NAME`: from a folder of images to a ranked shortlist in
one run — checks, tagging, the pruning proposal, repeat folders and a plan, training with
validation loss, a sweep of epochs × weights with a no-LoRA baseline, scores, and a report.

Running the same command again continues an unfinished run and skips what is done; Ctrl-C stops
at the next safe point and keeps everything finished."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import add_host_arguments, host_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("auto", help="folder of images → trained LoRA → ranked shortlist and report, "
                                                "in one resumable run", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, help="folder of images (captions beside them are used; "
                                                   "sub-folders and N_trigger folders are read too)")
    parser.add_argument("--name", required=True, help="the LoRA's name (its files: NAME-000002.safetensors, …)")
    add_host_arguments(parser)
    parser.add_argument("--tiny", action="store_true",
                        help="use the tiny built-in model and tagger (built under <home>/tiny) and sizes fit "
                             "for them: a try-out in about a minute on a CPU")
    parser.add_argument("--trigger", default=None,
                        help="trigger word (default: the dataset's N_trigger folder name, else NAME)")
    parser.add_argument("--preset", choices=("character", "style", "concept"), default="character",
                        help="the kind of LoRA: its training settings and showcase prompts (default: character)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: <home>/auto/NAME)")
    parser.add_argument("--budget", choices=("quick", "standard", "thorough"), default="standard",
                        help="how much training and sweeping: quick 200 images×repeats per epoch, 10 epochs, "
                             "3 weights; standard 300, 12, 3; thorough 400, 20, 5")
    parser.add_argument("--ab", choices=("captions",), default=None,
                        help="captions: train captioned and captionless variants side by side and compare them")
    parser.add_argument("--prune", action="store_true",
                        help="apply the pruning proposal (remove tags most captions share; undoable)")
    parser.add_argument("--tagger", default=None,
                        help="tagger folder or name under <home>/models/taggers (default: the only one)")
    parser.add_argument("--template", dest="templates", action="append", default=[], metavar="TEXT",
                        help="your own showcase template in Dynamic Prompts syntax, {trigger} for the trigger "
                             "(repeatable; default: the preset's)")
    parser.add_argument("--wildcards", type=Path, default=None, help="wildcard folder for the templates")
    parser.add_argument("--negative", default="", help="negative prompt for the sweep")
    parser.add_argument("--sweep-steps", type=int, default=20, help="sampling steps per sweep image")
    parser.add_argument("--cfg", type=float, default=7.0, help="CFG scale of the sweep")
    parser.add_argument("--seed", type=int, default=42, help="seed of training, prompts and sweep images")
    parser.add_argument("--samples-per-epoch", type=int, default=None,
                        help="images × repeats per epoch (default: the budget's)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the budget's)")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                        help="any training setting (see `train --help`), e.g. --set dim=16 (repeatable)")
    parser.add_argument("--fresh", action="store_true",
                        help="start over: delete an earlier run in the run folder (and its LoRA files) first, "
                             "e.g. to change its settings")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object at the end")
    parser.set_defaults(func=run)


TINY_TRAIN = {"resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128, "dim": 8, "alpha": 8.0,
              "unet_lr": 1e-3, "te_lr": 1e-4, "mixed_precision": "no"}


def _settings(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def tiny_setup(home: Path) -> tuple[Path, Path]:
    """The tiny checkpoint and tagger (built once under `home/tiny`)."""
    from ..devtools.tiny_model import build_tiny_model
    from ..devtools.tiny_tagger import build_tiny_tagger

    checkpoint = home / "tiny" / "model" / "tiny-sd1.safetensors"
    if not checkpoint.is_file():
        checkpoint = build_tiny_model(home / "tiny" / "model")
    tagger = home / "tiny" / "tagger"
    if not (tagger / "model.onnx").is_file():
        tagger = build_tiny_tagger(tagger)
    return checkpoint, tagger


def run(args: argparse.Namespace) -> int:
    from ..auto.context import Refused
    from ..auto.flow import run_auto
    from ..auto.options import AutoOptions
    from ..host.progress import ctrl_c_sets
    from ..hosts.standalone.host import default_home

    home = args.home or default_home()
    train = _settings(args.extra)
    tagger, sweep_steps = args.tagger, args.sweep_steps
    if args.tiny:
        import torch

        torch.set_num_threads(1)  # the tiny model's ops take microseconds: more threads only add hand-offs
        args.checkpoint, tiny_tagger = tiny_setup(home)
        tagger = tagger or str(tiny_tagger)
        train = {**TINY_TRAIN, **train}
        if sweep_steps == 20:
            sweep_steps = 8
    if args.checkpoint is None:
        raise ValueError("pass --checkpoint PATH (an SD1, SD2 or SDXL checkpoint), or --tiny to try it out")
    args.home = home
    host = host_from_args(args)
    options = AutoOptions(
        dataset=args.dataset.resolve(), name=args.name, out=(args.out or host.runs_dir() / args.name).resolve(),
        trigger=args.trigger, preset=args.preset, budget=args.budget, ab_captions=args.ab == "captions",
        prune=args.prune, tagger=tagger, templates=list(args.templates), wildcards=args.wildcards,
        negative_prompt=args.negative, sweep_steps=sweep_steps, cfg_scale=args.cfg, seed=args.seed,
        samples_per_epoch=args.samples_per_epoch, epochs=args.epochs, train=train)
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if args.json else \
        (lambda text: print(text, flush=True))
    try:
        with ctrl_c_sets(host.interrupt):
            doc = run_auto(host, options, str(args.checkpoint), say, fresh=args.fresh)
    except Refused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(doc, indent=1, ensure_ascii=False))
    elif doc["state"] == "finished":
        _print_outcome(doc)
    return {"finished": 0, "interrupted": 130}.get(doc["state"], 1)


def _print_outcome(doc: dict) -> None:
    variants = doc.get("variants") or [doc]
    for v in variants:
        rec = v.get("recommendation")
        label = f" ({v['variant']})" if "variant" in v else ""
        if rec:
            print(f"\nRecommended{label}: {rec['prompt_tag']}\n  file: {rec['file']}\n  why: {rec['why']}")
    if doc.get("comparison"):
        print(f"\n{doc['comparison']['verdict']}")
    print(f"\nReport: {doc['report']}\nOpen it in a browser, or in LoRA Lab › Review. Look at the shortlist's images "
          "against the no-LoRA ones, the heat-maps (where score peaks across epochs × weights) and the "
          "influence map (in-domain prompts should change, showcase prompts should still follow the prompt).")
