"""LDM model configs for the families LoRA Lab trains, as plain dicts (what a `.yaml` beside a
checkpoint holds), and family detection from a config."""
from __future__ import annotations

import copy
from typing import Any

from .protocol import Family

CLIP_L = "openai/clip-vit-large-patch14"

_SD1: dict[str, Any] = {
    "model": {
        "base_learning_rate": 1.0e-4,
        "target": "ldm.models.diffusion.ddpm.LatentDiffusion",
        "params": {
            "linear_start": 0.00085, "linear_end": 0.0120, "num_timesteps_cond": 1,
            "log_every_t": 200, "timesteps": 1000, "first_stage_key": "jpg",
            "cond_stage_key": "txt", "image_size": 64, "channels": 4,
            "cond_stage_trainable": False, "conditioning_key": "crossattn",
            "monitor": "val/loss_simple_ema", "scale_factor": 0.18215, "use_ema": False,
            "unet_config": {
                "target": "ldm.modules.diffusionmodules.openaimodel.UNetModel",
                "params": {
                    "image_size": 32, "in_channels": 4, "out_channels": 4, "model_channels": 320,
                    "attention_resolutions": [4, 2, 1], "num_res_blocks": 2,
                    "channel_mult": [1, 2, 4, 4], "num_heads": 8, "use_spatial_transformer": True,
                    "transformer_depth": 1, "context_dim": 768, "use_checkpoint": False,
                    "legacy": False,
                },
            },
            "first_stage_config": {
                "target": "ldm.models.autoencoder.AutoencoderKL",
                "params": {
                    "embed_dim": 4, "monitor": "val/rec_loss",
                    "ddconfig": {
                        "double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3,
                        "out_ch": 3, "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2,
                        "attn_resolutions": [], "dropout": 0.0,
                    },
                    "lossconfig": {"target": "torch.nn.Identity"},
                },
            },
            "cond_stage_config": {
                "target": "ldm.modules.encoders.modules.FrozenCLIPEmbedder",
                "params": {"version": CLIP_L, "device": "cpu"},
            },
        },
    }
}


def _sd2(v: bool) -> dict[str, Any]:
    cfg = copy.deepcopy(_SD1)
    params = cfg["model"]["params"]
    if v:
        params["parameterization"] = "v"
    unet = params["unet_config"]["params"]
    del unet["num_heads"]
    unet.update({"num_head_channels": 64, "use_linear_in_transformer": True, "context_dim": 1024})
    params["cond_stage_config"] = {
        "target": "ldm.modules.encoders.modules.FrozenOpenCLIPEmbedder",
        "params": {"freeze": True, "layer": "penultimate", "device": "cpu"},
    }
    return cfg


def family_config(family: Family) -> dict[str, Any]:
    if family == "sd1":
        return copy.deepcopy(_SD1)
    if family in ("sd2", "sd2-v"):
        return _sd2(family == "sd2-v")
    raise ValueError(f"unknown model family {family!r}: expected sd1, sd2 or sd2-v")


def family_of(config: dict[str, Any]) -> Family:
    params = config["model"]["params"]
    target = params["cond_stage_config"]["target"]
    if target.endswith("FrozenCLIPEmbedder"):
        return "sd1"
    if target.endswith("FrozenOpenCLIPEmbedder"):
        return "sd2-v" if params.get("parameterization") == "v" else "sd2"
    raise ValueError(f"unsupported text encoder {target}: LoRA Lab handles SD1 and SD2 checkpoints")
