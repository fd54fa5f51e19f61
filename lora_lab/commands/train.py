"""`python -m lora_lab train`: train a LoRA on the standalone host.

Settings come from, in rising priority: a preset, a `--config` file (.toml/.json), the flags below,
then `--set KEY=VALUE` for any other `TrainConfig` field."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from .common import add_host_arguments, host_from_args

# flag -> TrainConfig field, for the flags that have one
_FLAGS: dict[str, tuple[str, type]] = {
    "--dataset": ("dataset_dir", Path), "--output-dir": ("output_dir", Path), "--name": ("name", str),
    "--epochs": ("epochs", int), "--save-every": ("save_every_n_epochs", int),
    "--dim": ("dim", int), "--alpha": ("alpha", float), "--conv-dim": ("conv_dim", int),
    "--conv-alpha": ("conv_alpha", float), "--unet-lr": ("unet_lr", float), "--te-lr": ("te_lr", float),
    "--te2-lr": ("te2_lr", float), "--size-conditioning": ("size_conditioning", str),
    "--holdout": ("holdout", str), "--validation-images": ("validation_images", int),
    "--resolution": ("resolution", int), "--batch-size": ("batch_size", int),
    "--grad-accum": ("grad_accum", int), "--optimizer": ("optimizer", str),
    "--scheduler": ("scheduler", str), "--warmup-steps": ("warmup_steps", int),
    "--seed": ("seed", int), "--mixed-precision": ("mixed_precision", str),
    "--save-precision": ("save_precision", str), "--preview-every": ("preview_every_n_epochs", int),
    "--preview-prompt": ("preview_prompt", str), "--resume": ("resume_from", Path),
    "--keep-tokens": ("keep_tokens", int), "--noise-offset": ("noise_offset", float),
    "--min-snr-gamma": ("min_snr_gamma", float), "--clip-skip": ("clip_skip", int),
}
_HELP: dict[str, str] = {
    "dataset_dir": "kohya N_trigger folders (e.g. 10_ohwx/), or one plain folder of images",
    "output_dir": "where the LoRA files go (default: <home>/Lora)",
    "name": "the LoRA's name: name.safetensors, name-000002.safetensors, ...",
    "overwrite": "replace an existing LoRA of this name in the output folder (without it, a name in use is refused)",
    "epochs": "passes over the dataset", "save_every_n_epochs": "save an epoch file every N epochs",
    "dim": "LoRA rank", "alpha": "LoRA alpha (strength = alpha / dim)",
    "conv_dim": "LoCon rank on ResBlock convolutions (0: off)", "conv_alpha": "LoCon alpha (default: conv dim)",
    "unet_lr": "UNet learning rate", "te_lr": "text-encoder learning rate (0: train the UNet only; SDXL: CLIP-L)",
    "te2_lr": "SDXL: OpenCLIP bigG's learning rate (default: --te-lr)",
    "size_conditioning": "SDXL: real (each image's size and crop, as kohya) or bucket (bucket size, no crop)",
    "holdout": "images kept out of training for the validation loss: a count (2), 10%% or a folder",
    "validation_images": "training images whose fixed-noise loss ('stable loss') is measured every epoch",
    "resolution": "training size in px, a multiple of 64", "batch_size": "images per step",
    "grad_accum": "steps whose gradients add up before each update", "optimizer": "adamw, adamw8bit, lion, prodigy",
    "scheduler": "constant, cosine, cosine_with_restarts, linear", "warmup_steps": "learning-rate warm-up",
    "seed": "random seed (same seed, same run)", "mixed_precision": "no, fp16, bf16 (CUDA only; CPU trains in fp32)",
    "save_precision": "fp16, fp32, bf16", "preview_every_n_epochs": "render a preview every N epochs (0: off)",
    "preview_prompt": "prompt for previews (turns previews on every epoch unless --preview-every says otherwise)",
    "resume_from": "network weights (.safetensors) to continue from",
    "keep_tokens": "leading caption tags that never shuffle or drop", "noise_offset": "noise offset (0: off)",
    "min_snr_gamma": "min-SNR weighting gamma (0: off; 5 is common)", "clip_skip": "CLIP skip (SD1; default: 1)",
    "gradient_checkpointing": "less memory, slower steps", "flip": "random horizontal flips",
    "shuffle_caption": "shuffle caption tags every draw", "cache_latents_to_disk": "keep latents between runs",
}
_SWITCHES = {"--gradient-checkpointing": "gradient_checkpointing", "--flip": "flip",
             "--shuffle-caption": "shuffle_caption", "--cache-latents-to-disk": "cache_latents_to_disk",
             "--overwrite": "overwrite"}


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..train.config import PRESETS, TrainConfig

    parser = subparsers.add_parser("train", help="train a LoRA from a kohya N_trigger dataset folder",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_host_arguments(parser, required=True)
    parser.add_argument("--config", type=Path, help="run settings file (.toml or .json)")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="starting values for a kind of LoRA")
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for flag, (field, kind) in _FLAGS.items():
        default = defaults.get(field, dataclasses.MISSING)
        shown = "" if default in (dataclasses.MISSING, None, "") else f" (default: {default})"
        metavar = {int: "N", float: "F", Path: "PATH"}.get(kind, "TEXT")
        parser.add_argument(flag, dest=field, type=kind, default=None, metavar=metavar,
                            help=_HELP[field] + shown)
    for flag, field in _SWITCHES.items():
        parser.add_argument(flag, dest=field, action="store_const", const=True, default=None,
                            help=_HELP[field])
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                        help="any other TrainConfig setting (repeatable)")
    parser.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace, family: str | None = None) -> dict[str, Any]:
    """Settings in rising priority: the family's defaults (SDXL: 1024 px, UNet only), the preset
    for that family, the config file, the flags, --set."""
    from ..train.config import FAMILY_DEFAULTS, load_config_file, preset_values

    values: dict[str, Any] = dict(FAMILY_DEFAULTS.get(family or "", {}))
    if args.preset:
        values.update(preset_values(args.preset, family), preset=args.preset)
    if args.config:
        values.update(load_config_file(args.config))
    fields = [f for f, _ in _FLAGS.values()] + list(_SWITCHES.values())
    values.update({f: getattr(args, f) for f in fields if getattr(args, f) is not None})
    if values.get("preview_prompt") and "preview_every_n_epochs" not in values:
        values["preview_every_n_epochs"] = 1  # asking for a preview prompt means wanting previews
    for item in args.extra:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        values[key.strip()] = value.strip()
    return values


def run(args: argparse.Namespace) -> int:
    from ..host.progress import ctrl_c_sets
    from ..train import TrainConfig, train
    from ..train.loop import TrainStatus

    host = host_from_args(args)
    config = TrainConfig.from_dict(settings_from_args(args, host.info().model_family))
    # skipped images, uncaptioned images, settings that do not apply: before training starts
    status = TrainStatus(on_note=lambda text: print(f"note: {text}", flush=True))
    with ctrl_c_sets(host.interrupt):
        result = train(host, config, status)
    print(result.message)
    for path in result.files:
        print(f"  {path}")
    return {"finished": 0, "interrupted": 130}.get(result.state, 1)
