"""Tiny SD1/SD2-layout LDM checkpoints the real WebUI loads, built deterministically.

They keep SD1's block layout (4 levels, 2 res blocks, attention at 3 levels) because the WebUI maps
kohya LoRA names with SD1's arithmetic, and the VAE's 8x downsampling. ldm zero-initialises the
UNet's output convs and `proj_out`s (a random UNet would output 0 and a LoRA would change nothing),
and a fresh CLIP has LayerNorm bias 0 (the WebUI's emphasis renormalisation then divides by 0):
both are re-initialised from the seeded generator.

SD2's text encoder is OpenCLIP's smallest built-in text tower, `ViT-S-32-alt` (width 256, 10
layers; ~80 MB of the checkpoint): the WebUI builds it by name, so it has to be one open_clip knows.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..files.clip_files import text_config, write_clip_folder
from ..hosts.standalone.families import family_config
from ..host.protocol import Family

SEED = 20240611
OPEN_CLIP_ARCH = "ViT-S-32-alt"
_OPEN_CLIP_WIDTH = 256
_TINY_CLIP_WIDTH = 64


def model_name(family: Family) -> str:
    return f"tiny-{family}"


NAME = model_name("sd1")


def tiny_sdxl_config(clip_folder: Path) -> dict[str, Any]:
    """SDXL's layout (3 levels, attention at the lower two, context = CLIP-L ⊕ OpenCLIP widths,
    vector = pooled ⊕ 3 × 2 × 256 size embeddings) at toy widths; CLIP-L read at hidden state 1 of
    its 2 layers, as SDXL reads 11 of 12."""
    cfg = family_config("sdxl")
    params = cfg["model"]["params"]
    params["network_config"]["params"].update({
        "model_channels": 32, "channel_mult": [1, 2, 2], "num_head_channels": 16,
        "transformer_depth": [1, 1, 2], "context_dim": _TINY_CLIP_WIDTH + _OPEN_CLIP_WIDTH,
        "adm_in_channels": _OPEN_CLIP_WIDTH + 3 * 2 * 256})
    te1, te2 = params["conditioner_config"]["params"]["emb_models"][:2]
    te1["params"].update({"version": str(clip_folder), "layer_idx": 1})
    te2["params"].update({"arch": OPEN_CLIP_ARCH, "version": None})
    params["first_stage_config"]["params"]["ddconfig"].update({"ch": 32, "ch_mult": [1, 1, 2, 2]})
    return cfg


def tiny_config(clip_folder: Path | None, family: Family = "sd1") -> dict[str, Any]:
    if family == "sdxl":
        assert clip_folder is not None
        return tiny_sdxl_config(clip_folder)
    cfg = family_config(family)
    params = cfg["model"]["params"]
    unet = params["unet_config"]["params"]
    unet.update({"model_channels": 32, "channel_mult": [1, 1, 2, 2]})
    if family == "sd1":
        unet.update({"num_heads": 2, "context_dim": 64})
        params["cond_stage_config"]["params"]["version"] = str(clip_folder)
    else:
        unet.update({"num_head_channels": 16, "context_dim": _OPEN_CLIP_WIDTH})
        params["cond_stage_config"]["params"].update({"arch": OPEN_CLIP_ARCH, "version": None})
    params["first_stage_config"]["params"]["ddconfig"].update({"ch": 32, "ch_mult": [1, 1, 2, 2]})
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


def build_tiny_model(out_dir: Path, family: Family = "sd1", sgm_root: Path | None = None) -> Path:
    """Write `tiny-<family>.safetensors` and `.yaml` (SD1 and SDXL also `tiny-<family>-clip/`, the
    CLIP tokenizer folder) into out_dir; returns the checkpoint path. Same out_dir and family -> same
    bytes. SDXL needs `sgm` (`sgm_root`, else LORA_LAB_SGM / LORA_LAB_WEBUI)."""
    import torch
    from omegaconf import OmegaConf
    from safetensors.torch import save_file

    from ..hosts.standalone.ldm_import import import_ldm, quiet
    from ..hosts.standalone.ldm_loader import _offline_clip, _open_clip_without_downloads

    name = model_name(family)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    clip_folder = None
    if family in ("sd1", "sdxl"):
        clip_folder = write_clip_folder(out_dir / f"{name}-clip",
                                        text_config(_TINY_CLIP_WIDTH, 128, 2, 2, _TINY_CLIP_WIDTH))
    cfg = tiny_config(clip_folder, family)
    (out_dir / f"{name}.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)), encoding="utf-8")

    rng_state = torch.get_rng_state()
    torch.manual_seed(SEED)
    try:
        if family == "sdxl":
            from ..hosts.standalone.sgm_loader import build_sgm

            model = build_sgm(cfg, sgm_root)
        else:
            import_ldm()
            from ldm.util import instantiate_from_config

            with _offline_clip(), _open_clip_without_downloads(), quiet():
                model = instantiate_from_config(cfg["model"])
        _reinit(model)
    finally:
        torch.set_rng_state(rng_state)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    checkpoint = out_dir / f"{name}.safetensors"
    save_file(state, str(checkpoint), metadata={"format": "pt"})  # one key: stable bytes
    return checkpoint


def tiny_checkpoint(family: Family = "sd1") -> Path:
    """The tiny checkpoint in LoRA Lab's cache, built on first use."""
    from ..files.clip_files import cache_dir

    folder = cache_dir() / "tiny-model"
    checkpoint = folder / f"{model_name(family)}.safetensors"
    if not checkpoint.is_file():
        build_tiny_model(folder, family)
    return checkpoint
