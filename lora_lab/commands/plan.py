from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan", help="steps per epoch and in total for a training folder, with advice",
        description="Read a kohya training folder (N_name sub-folders; a plain folder of images is "
                    "one group) and compute images × repeats, batches and steps as sd-scripts does.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--flip", action="store_true",
                        help="random horizontal flip (does not change the step count)")
    parser.add_argument("--resolution", type=int, default=None,
                        help="count batches per aspect-ratio bucket at this resolution (exact)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="repeats for a plain folder without N_name sub-folders")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..dataset.planner import plan

    result = plan(args.folder, batch_size=args.batch_size, grad_accum=args.grad_accum,
                  epochs=args.epochs, flip=args.flip, resolution=args.resolution,
                  repeats=args.repeats)
    print(json.dumps(result.to_dict(), indent=1) if args.json else result.text())
    return 0
