"""During a run the UNet's attention goes through torch's SDPA, whatever the host's forward is,
with the same outputs (LoRA included) and every forward put back afterwards."""
from __future__ import annotations

import pytest
import torch

from lora_lab.train.keys import unet_targets
from lora_lab.train.network import LoRANetwork, inject
from lora_lab.train.sdpa import attention_modules, sdpa_attention


@pytest.mark.parametrize("host_fixture", ["standalone_host", "sdxl_host"], ids=["ldm-sd1", "sgm-sdxl"])
def test_sdpa_attention_gives_the_hosts_outputs_and_restores_the_forwards(host_fixture: str, request) -> None:
    parts = request.getfixturevalue(host_fixture).model_parts()
    gen = torch.Generator().manual_seed(0)
    x, t = torch.randn(2, 4, 16, 16, generator=gen), torch.tensor([50, 700])
    if parts.is_sdxl:
        cond = {"context": torch.randn(2, 77, 320, generator=gen), "y": torch.randn(2, 1792, generator=gen)}
    else:
        cond = {"context": torch.randn(2, 77, 64, generator=gen)}
    network = LoRANetwork(unet_targets(parts.unet, conv=False, compvis=parts.is_sdxl), 4, 4.0, 0, 0.0,
                          parts.device, seed=0)
    with torch.no_grad():
        for lora in network.loras.values():
            lora.up.normal_(0, 0.05, generator=gen)
    network.eval()
    modules = attention_modules(parts.unet)
    assert modules and all("forward" not in m.__dict__ for m in modules)
    with torch.no_grad(), inject(network):
        host = parts.unet(x, t, **cond)
        with sdpa_attention(parts.unet) as count:
            assert count == len(modules) and all("forward" in m.__dict__ for m in modules)
            ours = parts.unet(x, t, **cond)
    assert (ours - host).abs().max() < 1e-5
    assert all("forward" not in m.__dict__ for m in modules)
