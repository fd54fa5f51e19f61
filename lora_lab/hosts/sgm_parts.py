"""ModelParts of sgm's `DiffusionEngine` (SDXL): the object both the A1111 WebUI and the
standalone host hold, so both adapters read it through this one module."""
from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

from ..host.protocol import ModelParts


class SgmModelError(ValueError):
    """The DiffusionEngine is not an SDXL base model LoRA Lab can train."""


def _open_clip() -> ModuleType:
    """open_clip as the loader of the model imported it (the standalone host imports it with
    stand-ins for torchvision; SDXL cannot have loaded without it)."""
    return sys.modules.get("open_clip") or importlib.import_module("open_clip")


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
    embedders = list(model.conditioner.embedders)
    te1 = te1 if te1 is not None else embedders[0]
    te2 = te2 if te2 is not None else embedders[1]
    sizes = [e for e in embedders if getattr(e, "input_key", "") in
             ("original_size_as_tuple", "crop_coords_top_left", "target_size_as_tuple")]
    order = {"original_size_as_tuple": 0, "crop_coords_top_left": 1, "target_size_as_tuple": 2}
    sizes.sort(key=lambda e: order[e.input_key])
    if len(sizes) != 3:
        raise SgmModelError("the SDXL conditioner lacks its original-size, crop and target-size "
                              "embedders (a refiner or inpaint model?); LoRA Lab trains SDXL base models")
    if getattr(te1, "layer", "hidden") != "hidden":
        raise SgmModelError("the SDXL CLIP-L embedder does not read a hidden layer; LoRA Lab trains "
                              "SDXL base models (CLIP-L layer 11)")
    unet = model.model.diffusion_model
    first = next(unet.parameters())
    return ModelParts(
        unet=unet, text_encoder=te1.transformer, tokenizer=te1.tokenizer, vae=model.first_stage_model,
        alphas_cumprod=sgm_alphas_cumprod(model), parameterization=sgm_parameterization(model),  # type: ignore[arg-type]
        family="sdxl", latent_scale=float(model.scale_factor), device=first.device, dtype=first.dtype,
        checkpoint_name=checkpoint_name, clip_skip=1,
        text_encoder_2=te2.model, tokenizer_2=_open_clip().tokenize,
        te1_hidden_index=int(te1.layer_idx), size_embedders=sizes,
    )
