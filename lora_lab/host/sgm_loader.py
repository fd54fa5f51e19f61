"""Load an SDXL checkpoint with the real `sgm` code (the WebUI's generative-models), standalone.

The model is the `DiffusionEngine` the WebUI builds for SDXL; ModelParts name its UNet, both text
encoders with their tokenizers, the VAE and the conditioner's size embedders.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .ldm_loader import (CheckpointError, _offline_clip, _open_clip_without_downloads, no_random_init,
                         read_state_dict)
from .ldm_import import quiet
from .protocol import ModelParts
from .sgm_import import SgmUnavailable, import_sgm, sgm_root_in

# what an SDXL checkpoint must hold
NEEDED = ("model.diffusion_model.", "first_stage_model.", "conditioner.embedders.0.transformer.",
          "conditioner.embedders.1.model.transformer.", "conditioner.embedders.1.model.ln_final.")


def build_sgm(cfg: dict[str, Any], sgm_root: Path | None = None, device: str = "cpu") -> Any:
    """The DiffusionEngine `cfg` describes, with random weights (nothing downloaded). The text
    embedders are told the device (sgm's default is "cuda") so sgm's own conditioner runs too."""
    import copy

    import_sgm(sgm_root)
    from sgm.util import instantiate_from_config

    cfg = copy.deepcopy(cfg)
    for embedder in cfg["model"]["params"]["conditioner_config"]["params"]["emb_models"]:
        if embedder["target"].endswith(("FrozenCLIPEmbedder", "FrozenOpenCLIPEmbedder2")):
            embedder.setdefault("params", {})["device"] = device

    with _offline_clip(), _open_clip_without_downloads(), quiet():
        return instantiate_from_config(cfg["model"])


def load_sgm(checkpoint: Path, cfg: dict[str, Any], device: str = "cpu",
             sgm_root: Path | None = None) -> Any:
    """Build the DiffusionEngine and load the checkpoint into it (UNet, VAE, both text encoders
    strictly). Raises CheckpointError, with how to point LoRA Lab at `sgm` when it is missing."""
    import torch

    if sgm_root is not None:  # a WebUI folder or a generative-models checkout
        sgm_root = sgm_root_in(sgm_root)
    try:
        with no_random_init():  # every needed weight is checked to come from the file below
            model = build_sgm(cfg, sgm_root, device)
    except SgmUnavailable as e:
        raise CheckpointError(f"{Path(checkpoint).name} is an SDXL checkpoint. {e}") from None
    state = read_state_dict(Path(checkpoint))
    missing, _ = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k.startswith(NEEDED) and not k.endswith("position_ids")]
    if missing:
        raise CheckpointError(f"{Path(checkpoint).name} does not fit its SDXL config: {len(missing)} "
                              f"missing weights, e.g. {missing[:3]}")
    del state
    model.eval().to(device)
    torch.set_grad_enabled(True)
    return model


def sgm_parameterization(model: Any) -> str:
    """"v" when the denoiser scales for v-prediction (as the WebUI's extend_sdxl decides), else "eps"."""
    scaling = getattr(getattr(model, "denoiser", None), "scaling", None)
    return "v" if type(scaling).__name__ == "VScaling" else "eps"


def sgm_alphas_cumprod(model: Any) -> Any:
    """The training schedule: SDXL's LegacyDDPMDiscretization at its defaults (what the WebUI's
    extend_sdxl uses too; the denoiser keeps only the sigmas)."""
    import torch
    from sgm.modules.diffusionmodules.discretizer import LegacyDDPMDiscretization

    return torch.as_tensor(LegacyDDPMDiscretization().alphas_cumprod, dtype=torch.float32).cpu()


def parts_from_sgm(model: Any, checkpoint_name: str, te1: Any = None, te2: Any = None) -> ModelParts:
    """ModelParts of a DiffusionEngine. `te1`/`te2`: the sgm embedders (the WebUI wraps them; it
    passes the wrapped ones), else `conditioner.embedders[0/1]`."""
    from .ldm_import import import_open_clip

    embedders = list(model.conditioner.embedders)
    te1 = te1 if te1 is not None else embedders[0]
    te2 = te2 if te2 is not None else embedders[1]
    sizes = [e for e in embedders if getattr(e, "input_key", "") in
             ("original_size_as_tuple", "crop_coords_top_left", "target_size_as_tuple")]
    order = {"original_size_as_tuple": 0, "crop_coords_top_left": 1, "target_size_as_tuple": 2}
    sizes.sort(key=lambda e: order[e.input_key])
    if len(sizes) != 3:
        raise CheckpointError("the SDXL conditioner lacks its original-size, crop and target-size "
                              "embedders (a refiner or inpaint model?); LoRA Lab trains SDXL base models")
    if getattr(te1, "layer", "hidden") != "hidden":
        raise CheckpointError("the SDXL CLIP-L embedder does not read a hidden layer; LoRA Lab trains "
                              "SDXL base models (CLIP-L layer 11)")
    unet = model.model.diffusion_model
    first = next(unet.parameters())
    return ModelParts(
        unet=unet, text_encoder=te1.transformer, tokenizer=te1.tokenizer, vae=model.first_stage_model,
        alphas_cumprod=sgm_alphas_cumprod(model), parameterization=sgm_parameterization(model),  # type: ignore[arg-type]
        family="sdxl", latent_scale=float(model.scale_factor), device=first.device, dtype=first.dtype,
        checkpoint_name=checkpoint_name, clip_skip=1,
        text_encoder_2=te2.model, tokenizer_2=import_open_clip().tokenize,
        te1_hidden_index=int(te1.layer_idx), size_embedders=sizes,
    )
