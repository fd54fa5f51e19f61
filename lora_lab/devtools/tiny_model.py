"""A tiny SD1-layout LDM checkpoint the real WebUI loads, built deterministically.

Keeps SD1's block layout (4 levels, 2 res blocks, attention at 3 levels) because the WebUI maps
kohya LoRA names with SD1's arithmetic, and the VAE's 8x downsampling. ldm zero-initialises the
UNet's output convs and `proj_out`s (a random UNet would output 0 and a LoRA would change nothing),
and a fresh CLIP has LayerNorm bias 0 (the WebUI's emphasis renormalisation then divides by 0):
both are re-initialised from the seeded generator.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..host.clip_files import text_config, write_clip_folder
from ..host.families import family_config

NAME = "tiny-sd1"
SEED = 20240611


def tiny_config(clip_folder: Path) -> dict[str, Any]:
    cfg = family_config("sd1")
    params = cfg["model"]["params"]
    params["unet_config"]["params"].update(
        {"model_channels": 32, "channel_mult": [1, 1, 2, 2], "num_heads": 2, "context_dim": 64})
    params["first_stage_config"]["params"]["ddconfig"].update({"ch": 32, "ch_mult": [1, 1, 2, 2]})
    params["cond_stage_config"]["params"]["version"] = str(clip_folder)
    return cfg


def _reinit(model: Any) -> None:
    import torch

    for module in model.model.diffusion_model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and not weight.any():
            module.reset_parameters()
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            with torch.no_grad():
                module.weight.copy_(1.0 + 0.1 * torch.randn_like(module.weight))
                module.bias.copy_(0.1 * torch.randn_like(module.bias))


def build_tiny_model(out_dir: Path) -> Path:
    """Write `tiny-sd1.safetensors`, `tiny-sd1.yaml` and `tiny-sd1-clip/` into out_dir; returns the
    checkpoint path. Same out_dir → same bytes."""
    import torch
    from omegaconf import OmegaConf
    from safetensors.torch import save_file

    from ..host.ldm_import import import_ldm
    from ..host.ldm_loader import _offline_clip

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    clip_folder = write_clip_folder(out_dir / f"{NAME}-clip", text_config(64, 128, 2, 2, 64))
    cfg = tiny_config(clip_folder)
    (out_dir / f"{NAME}.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)), encoding="utf-8")

    import_ldm()
    from ldm.util import instantiate_from_config

    rng_state = torch.get_rng_state()
    torch.manual_seed(SEED)
    try:
        with _offline_clip():
            model = instantiate_from_config(cfg["model"])
        _reinit(model)
    finally:
        torch.set_rng_state(rng_state)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    checkpoint = out_dir / f"{NAME}.safetensors"
    save_file(state, str(checkpoint), metadata={"format": "pt"})  # one key: stable bytes
    return checkpoint


def tiny_checkpoint() -> Path:
    """The tiny checkpoint in LoRA Lab's cache, built on first use."""
    from ..host.ldm_loader import cache_dir

    folder = cache_dir() / "tiny-model"
    checkpoint = folder / f"{NAME}.safetensors"
    if not checkpoint.is_file():
        build_tiny_model(folder)
    return checkpoint
