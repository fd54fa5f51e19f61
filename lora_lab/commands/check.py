from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..dataset.trigger import TriggerReport

EXIT_CODES = ("exit status: 0 nothing found, 1 warnings only, 3 errors (unreadable images, "
              "captions shared by two images, a trigger already used by an installed LoRA), "
              "2 bad arguments")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check", help="find unreadable, too small and duplicate images, missing captions; buckets",
        description="Check a dataset before training. Reads only; changes nothing.", epilog=EXIT_CODES)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--recursive", action="store_true", help="include sub-folders")
    parser.add_argument("--caption-ext", default=".txt")
    parser.add_argument("--near-distance", type=int, default=None,
                        help="largest dHash distance (of 128) for a near duplicate (default 20); "
                             "-1 turns it off")
    parser.add_argument("--trigger", help="also check this trigger word")
    parser.add_argument("--lora-dir", type=Path, default=None,
                        help="installed LoRAs to search for the trigger")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run_check)

    trigger = subparsers.add_parser(
        "trigger", help="CLIP tokens of a trigger word, and installed LoRAs that already use it",
        epilog="exit status: 0 free, 3 already used by an installed LoRA, 2 bad arguments")
    trigger.add_argument("trigger")
    trigger.add_argument("--lora-dir", type=Path, default=None, help="installed LoRAs to search")
    trigger.add_argument("--json", action="store_true", help="print JSON")
    trigger.set_defaults(func=run_trigger)


def run_check(args: argparse.Namespace) -> int:
    from ..dataset.checks import NEAR_DUPLICATE_DISTANCE, check_dataset
    from ..host.progress import InterruptEvent, TerminalProgress, ctrl_c_sets

    interrupt = InterruptEvent()
    progress = TerminalProgress() if sys.stderr.isatty() and not args.json else None
    near = NEAR_DUPLICATE_DISTANCE if args.near_distance is None else args.near_distance
    with ctrl_c_sets(interrupt):
        report = check_dataset(args.folder, resolution=args.resolution, recursive=args.recursive,
                               caption_ext=args.caption_ext, near_distance=near,
                               progress=progress, interrupt=interrupt)
    trigger = _trigger_report(args) if args.trigger else None
    if args.json:
        out = report.to_dict()
        if trigger is not None:
            out["trigger"] = trigger.to_dict()
        print(json.dumps(out, indent=1))
    else:
        print(report.text())
        if trigger is not None:
            print()
            print(trigger.text())
    if report.has_errors or (trigger is not None and trigger.clashes):
        return 3
    return 1 if report.issues or report.interrupted else 0


def run_trigger(args: argparse.Namespace) -> int:
    report = _trigger_report(args)
    print(json.dumps(report.to_dict(), indent=1) if args.json else report.text())
    return 3 if report.clashes else 0


def _trigger_report(args: argparse.Namespace) -> TriggerReport:
    from ..dataset.trigger import check_trigger

    if args.lora_dir is not None and not Path(args.lora_dir).is_dir():
        raise FileNotFoundError(f"LoRA folder not found: {args.lora_dir}")  # a folder named on purpose
    return check_trigger(args.trigger, args.lora_dir)
