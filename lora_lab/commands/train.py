"""`python -m lora_lab train`: train a LoRA on the standalone host.

Settings come from, in rising priority: a preset, a `--config` file (.toml/.json), the flags below,
then `--set KEY=VALUE` for any other `TrainConfig` field."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import add_host_arguments, host_from_args

# flag -> TrainConfig field, for the flags that have one
_FLAGS: dict[str, tuple[str, type]] = {
    "--dataset": ("dataset_dir", Path), "--output-dir": ("output_dir", Path), "--name": ("name", str),
    "--epochs": ("epochs", int), "--save-every": ("save_every_n_epochs", int),
    "--dim": ("dim", int), "--alpha": ("alpha", float), "--conv-dim": ("conv_dim", int),
    "--conv-alpha": ("conv_alpha", float), "--unet-lr": ("unet_lr", float), "--te-lr": ("te_lr", float),
    "--resolution": ("resolution", int), "--batch-size": ("batch_size", int),
    "--grad-accum": ("grad_accum", int), "--optimizer": ("optimizer", str),
    "--scheduler": ("scheduler", str), "--warmup-steps": ("warmup_steps", int),
    "--seed": ("seed", int), "--mixed-precision": ("mixed_precision", str),
    "--save-precision": ("save_precision", str), "--preview-every": ("preview_every_n_epochs", int),
    "--preview-prompt": ("preview_prompt", str), "--resume": ("resume_from", Path),
    "--keep-tokens": ("keep_tokens", int), "--noise-offset": ("noise_offset", float),
    "--min-snr-gamma": ("min_snr_gamma", float), "--clip-skip": ("clip_skip", int),
}
_SWITCHES = {"--gradient-checkpointing": "gradient_checkpointing", "--flip": "flip",
             "--shuffle-caption": "shuffle_caption", "--cache-latents-to-disk": "cache_latents_to_disk"}


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..train.config import PRESETS

    parser = subparsers.add_parser("train", help="train a LoRA from a kohya N_trigger dataset folder",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_host_arguments(parser, required=True)
    parser.add_argument("--config", type=Path, help="run settings file (.toml or .json)")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="starting values for a kind of LoRA")
    for flag, (field, kind) in _FLAGS.items():
        parser.add_argument(flag, dest=field, type=kind, default=None, help=f"TrainConfig.{field}")
    for flag, field in _SWITCHES.items():
        parser.add_argument(flag, dest=field, action="store_const", const=True, default=None,
                            help=f"TrainConfig.{field}")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                        help="any other TrainConfig setting (repeatable)")
    parser.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from ..train.config import PRESETS, load_config_file

    values: dict[str, Any] = {}
    if args.preset:
        values.update(PRESETS[args.preset], preset=args.preset)
    if args.config:
        values.update(load_config_file(args.config))
    fields = [f for f, _ in _FLAGS.values()] + list(_SWITCHES.values())
    values.update({f: getattr(args, f) for f in fields if getattr(args, f) is not None})
    for item in args.extra:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        values[key.strip()] = value.strip()
    return values


def run(args: argparse.Namespace) -> int:
    from ..host.progress import ctrl_c_sets
    from ..train import TrainConfig, train

    config = TrainConfig.from_dict(settings_from_args(args))
    host = host_from_args(args)
    with ctrl_c_sets(host.interrupt):
        result = train(host, config)
    print(result.message)
    for path in result.files:
        print(f"  {path}")
    return {"finished": 0, "interrupted": 130}.get(result.state, 1)
