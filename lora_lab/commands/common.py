"""Arguments and helpers shared by commands that need a standalone host."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..hosts.standalone.host import StandaloneHost


def add_host_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("--checkpoint", type=Path, required=required,
                        help="SD1/SD2/SDXL checkpoint (.safetensors or .ckpt); a .yaml beside it is used")
    parser.add_argument("--model-config", type=Path, default=None,
                        help="LDM yaml config (default: beside the checkpoint, else --family's)")
    parser.add_argument("--family", choices=["sd1", "sd2", "sd2-v", "sdxl"], default=None,
                        help="model kind when no yaml is beside the checkpoint: sd1 (default), sd2 "
                             "(512 px, eps), sd2-v (768-v, v-prediction) or sdxl (found from the file "
                             "itself too)")
    parser.add_argument("--sgm", type=Path, default=None, metavar="DIR",
                        help="SDXL: a WebUI folder (its repositories/generative-models) or a "
                             "generative-models checkout (default: $LORA_LAB_SGM, $LORA_LAB_WEBUI)")
    parser.add_argument("--device", default=None,
                        help="torch device, e.g. cuda, cuda:1, cpu (default: cuda when available, else cpu)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads (default: the cores other processes leave free, re-checked "
                             "every epoch)")
    parser.add_argument("--home", type=Path, default=None,
                        help="LoRA Lab folder for Lora/ and models/ (default: ~/lora_lab)")


def best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def host_from_args(args: argparse.Namespace) -> StandaloneHost:
    return StandaloneHost(checkpoint=args.checkpoint, config=args.model_config,
                          family=args.family, device=args.device or best_device(), home=args.home,
                          threads=args.threads, sgm_root=args.sgm)
