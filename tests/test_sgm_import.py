"""`sgm` (SDXL) imports from the WebUI's sources with stand-ins only for what it never uses here."""
from __future__ import annotations

import sys

import torch


def test_sgm_is_the_real_package_and_leaves_sys_path_alone(sgm) -> None:
    from sgm.modules.diffusionmodules.openaimodel import UNetModel

    assert "generative-models" in sgm.__file__
    assert not any(p.endswith("generative-models") for p in sys.path)  # its scripts/ must not shadow ours
    assert UNetModel.__module__ == "sgm.modules.diffusionmodules.openaimodel"


def test_a_small_sdxl_shaped_unet_runs_forward_with_context_and_vector(sgm) -> None:
    from sgm.modules.diffusionmodules.openaimodel import UNetModel

    torch.manual_seed(0)
    unet = UNetModel(in_channels=4, out_channels=4, model_channels=32, attention_resolutions=[2],
                     num_res_blocks=1, channel_mult=[1, 2], num_head_channels=16,
                     use_linear_in_transformer=True, transformer_depth=[0, 1], context_dim=48,
                     spatial_transformer_attn_type="softmax", adm_in_channels=40,
                     num_classes="sequential", use_spatial_transformer=True, legacy=False)
    x, t = torch.randn(2, 4, 16, 16), torch.tensor([10, 900])
    out = unet(x, t, context=torch.randn(2, 77, 48), y=torch.randn(2, 40))
    assert out.shape == x.shape and torch.isfinite(out).all()
