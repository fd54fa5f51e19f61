from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dev", help="developer tools: build the tiny test models")
    dev = parser.add_subparsers(dest="dev_command", metavar="TOOL")
    dev.required = True
    model = dev.add_parser("tiny-model", help="tiny SD1/SD2/SDXL checkpoint + yaml (+ SD1's and SDXL's "
                           "CLIP tokenizer folder)")
    model.add_argument("out_dir", type=Path)
    model.add_argument("--family", choices=["sd1", "sd2", "sd2-v", "sdxl"], default="sd1",
                       help="sd1 (default), sd2 (eps), sd2-v (v-prediction, like SD2.x 768-v) or sdxl")
    model.add_argument("--sgm", type=Path, default=None, metavar="DIR",
                       help="sdxl: a WebUI folder or generative-models checkout (default: $LORA_LAB_SGM, "
                            "$LORA_LAB_WEBUI)")
    model.set_defaults(func=tiny_model)
    tagger = dev.add_parser("tiny-tagger", help="tiny ONNX tagger with the WD14 I/O contract")
    tagger.add_argument("out_dir", type=Path)
    tagger.add_argument("--side", type=int, default=64, help="input side in the graph (default 64)")
    tagger.set_defaults(func=tiny_tagger)


def tiny_model(args: argparse.Namespace) -> int:
    from ..devtools.tiny_model import build_tiny_model

    from ..hosts.standalone.sgm_import import sgm_root_in

    print(build_tiny_model(args.out_dir, args.family, sgm_root_in(args.sgm) if args.sgm else None))
    return 0


def tiny_tagger(args: argparse.Namespace) -> int:
    from ..devtools.tiny_tagger import build_tiny_tagger

    print(build_tiny_tagger(args.out_dir, side=args.side))
    return 0
