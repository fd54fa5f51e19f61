from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "layout", help="build kohya N_name training folders from a flat folder (originals untouched)",
        description="Hard-link (or copy) images into TRAIN_DIR/<repeats>_<name>/ with their captions. "
                    "Originals are never moved or changed; an existing different file stops the "
                    "build with nothing written.",
        epilog="exit status: 0 built, 3 conflicts (nothing written), 2 bad arguments")
    parser.add_argument("source", type=Path, help="folder of images (and captions)")
    parser.add_argument("train_dir", type=Path, help="training folder to create or fill")
    parser.add_argument("--name", required=True, help="trigger (and class), e.g. 'ohwx woman'")
    parser.add_argument("--repeats", type=int, default=10, help="repeats of the primary images")
    parser.add_argument("--supporting", nargs="*", default=[], metavar="PATH",
                        help="images or folders (relative to source or absolute) with fewer repeats")
    parser.add_argument("--supporting-repeats", type=int, default=3)
    parser.add_argument("--recursive", action="store_true", help="include sub-folders of source")
    parser.add_argument("--caption-ext", default=".txt")
    parser.add_argument("--copy", action="store_true", help="copy images instead of hard-linking")
    parser.add_argument("--dry-run", action="store_true", help="show what would be done")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..dataset.layout import build_layout, split_groups

    groups = split_groups(args.source, args.name, args.repeats, args.supporting,
                          args.supporting_repeats, args.recursive)
    result = build_layout(args.train_dir, groups, caption_ext=args.caption_ext,
                          mode="copy" if args.copy else "link", dry_run=args.dry_run)
    print(json.dumps(result.to_dict(), indent=1) if args.json else result.text())
    return 3 if result.conflicts else 0
