from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_host_arguments, host_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ui", help="serve the LoRA Lab tab on 127.0.0.1 (no WebUI needed)")
    add_host_arguments(parser)
    parser.add_argument("--tiny", action="store_true",
                        help="use the tiny built-in test model (built on first use) instead of --checkpoint")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--allow-root", dest="allow", action="append", default=[], type=Path, metavar="FOLDER",
                        help="a folder the HTTP API may read and write (repeatable); always allowed: "
                             "LoRA Lab's home and the folders opened in the tab")
    parser.set_defaults(func=run)


def tiny_host(args: argparse.Namespace):
    """`--tiny`: the tiny model as checkpoint and the tiny tagger in the home's tagger folder, so
    every sub-tab has something to try."""
    from ..devtools.tiny_model import tiny_checkpoint
    from ..devtools.tiny_tagger import build_tiny_tagger
    from ..tagging.model import taggers_dir

    args.checkpoint = tiny_checkpoint()
    host = host_from_args(args)
    tagger = taggers_dir(host.models_dir()) / "tiny"
    if not tagger.is_dir():
        build_tiny_tagger(tagger)
    print(f"tiny random stand-ins: model {args.checkpoint.name}, tagger 'tiny' in {tagger.parent} "
          "(their tags and images are noise; they show how LoRA Lab works)")
    return host


def run(args: argparse.Namespace) -> int:
    from ..hosts.standalone.app import Server

    host = tiny_host(args) if args.tiny else host_from_args(args)
    Server(host, port=args.port, allow=args.allow).run_forever()
    return 0
