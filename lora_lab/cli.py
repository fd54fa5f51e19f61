"""`python -m lora_lab COMMAND`: every capability's command line, on the standalone host.

Each command module exposes `register(subparsers)`; commands import their heavy code when they run,
so `--help` stays instant."""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__

COMMAND_MODULES = [
    "lora_lab.commands.ui",
    "lora_lab.commands.dev",
    "lora_lab.commands.tag",
    "lora_lab.commands.captions",
    "lora_lab.commands.layout",
    "lora_lab.commands.plan",
    "lora_lab.commands.check",
    "lora_lab.commands.train",
    "lora_lab.commands.demo",
    "lora_lab.commands.sweep",
    "lora_lab.commands.auto",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lora_lab",
                                     description="LoRA Lab: dataset, training and LoRA choice.")
    parser.add_argument("--version", action="version", version=f"LoRA Lab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
