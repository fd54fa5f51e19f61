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
