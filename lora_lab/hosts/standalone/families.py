"""Model configs for the families LoRA Lab trains, as plain dicts (what a `.yaml` beside a
checkpoint holds; ldm for SD1/SD2, sgm for SDXL), and family detection from a config."""
from __future__ import annotations

import copy
from typing import Any

from ...host.protocol import Family

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


def _size_embedder(key: str) -> dict[str, Any]:
    return {"is_trainable": False, "input_key": key,
            "target": "sgm.modules.encoders.modules.ConcatTimestepEmbedderND", "params": {"outdim": 256}}


# generative-models' configs/inference/sd_xl_base.yaml (what the WebUI builds SDXL from); v-prediction
# checkpoints swap the scaling to VScaling
_SDXL: dict[str, Any] = {
    "model": {
        "target": "sgm.models.diffusion.DiffusionEngine",
        "params": {
            "scale_factor": 0.13025, "disable_first_stage_autocast": True,
            "denoiser_config": {
                "target": "sgm.modules.diffusionmodules.denoiser.DiscreteDenoiser",
                "params": {
                    "num_idx": 1000,
                    "weighting_config": {"target": "sgm.modules.diffusionmodules.denoiser_weighting.EpsWeighting"},
                    "scaling_config": {"target": "sgm.modules.diffusionmodules.denoiser_scaling.EpsScaling"},
                    "discretization_config": {
                        "target": "sgm.modules.diffusionmodules.discretizer.LegacyDDPMDiscretization"},
                },
            },
            "network_config": {
                "target": "sgm.modules.diffusionmodules.openaimodel.UNetModel",
                "params": {
                    "adm_in_channels": 2816, "num_classes": "sequential", "use_checkpoint": False,
                    "in_channels": 4, "out_channels": 4, "model_channels": 320,
                    "attention_resolutions": [4, 2], "num_res_blocks": 2, "channel_mult": [1, 2, 4],
                    "num_head_channels": 64, "use_spatial_transformer": True,
                    "use_linear_in_transformer": True, "transformer_depth": [1, 2, 10],
                    "context_dim": 2048, "spatial_transformer_attn_type": "softmax", "legacy": False,
                },
            },
            "conditioner_config": {
                "target": "sgm.modules.GeneralConditioner",
                "params": {"emb_models": [
                    {"is_trainable": False, "input_key": "txt",
                     "target": "sgm.modules.encoders.modules.FrozenCLIPEmbedder",
                     "params": {"layer": "hidden", "layer_idx": 11, "version": CLIP_L}},
                    {"is_trainable": False, "input_key": "txt",
                     "target": "sgm.modules.encoders.modules.FrozenOpenCLIPEmbedder2",
                     "params": {"arch": "ViT-bigG-14", "version": None, "freeze": True,
                                "layer": "penultimate", "always_return_pooled": True, "legacy": False}},
                    _size_embedder("original_size_as_tuple"),
                    _size_embedder("crop_coords_top_left"),
                    _size_embedder("target_size_as_tuple"),
                ]},
            },
            "first_stage_config": {
                "target": "sgm.models.autoencoder.AutoencoderKLInferenceWrapper",
                "params": {
                    "embed_dim": 4, "monitor": "val/rec_loss",
                    "ddconfig": {
                        "attn_type": "vanilla", "double_z": True, "z_channels": 4, "resolution": 256,
                        "in_channels": 3, "out_ch": 3, "ch": 128, "ch_mult": [1, 2, 4, 4],
                        "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0,
                    },
                    "lossconfig": {"target": "torch.nn.Identity"},
                },
            },
        },
    }
}
SDXL_TARGET = _SDXL["model"]["target"]


def family_config(family: Family) -> dict[str, Any]:
    if family == "sd1":
        return copy.deepcopy(_SD1)
    if family in ("sd2", "sd2-v"):
        return _sd2(family == "sd2-v")
    if family == "sdxl":
        return copy.deepcopy(_SDXL)
    raise ValueError(f"unknown model family {family!r}: expected sd1, sd2, sd2-v or sdxl")


def family_of(config: dict[str, Any]) -> Family:
    params = config["model"]["params"]
    if config["model"].get("target") == SDXL_TARGET or "conditioner_config" in params:
        return "sdxl"
    target = params["cond_stage_config"]["target"]
    if target.endswith("FrozenCLIPEmbedder"):
        return "sd1"
    if target.endswith("FrozenOpenCLIPEmbedder"):
        return "sd2-v" if params.get("parameterization") == "v" else "sd2"
    raise ValueError(f"unsupported text encoder {target}: LoRA Lab handles SD1, SD2 and SDXL checkpoints")
