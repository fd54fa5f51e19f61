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


def run(args: argparse.Namespace) -> int:
    from ..glue.standalone_app import Server

    if args.tiny:
        from ..devtools.tiny_model import tiny_checkpoint

        args.checkpoint = tiny_checkpoint()
    Server(host_from_args(args), port=args.port, allow=args.allow).run_forever()
    return 0
