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


@pytest.mark.parametrize("host_fixture", ["standalone_host", "sdxl_host"], ids=["ldm-sd1", "sgm-sdxl"])
def test_shared_input_projections_train_the_same_adapters(host_fixture: str, request) -> None:
    """q/k/v through the network's one-GEMM down projections: the same outputs and the same
    gradients for every adapter as three separate layers, self- and cross-attention alike."""
    parts = request.getfixturevalue(host_fixture).model_parts()
    gen = torch.Generator().manual_seed(1)
    x, t = torch.randn(1, 4, 16, 16, generator=gen), torch.tensor([400])
    width = 320 if parts.is_sdxl else 64
    cond = {"context": torch.randn(1, 77, width, generator=gen)}
    if parts.is_sdxl:
        cond["y"] = torch.randn(1, 1792, generator=gen)
    network = LoRANetwork(unet_targets(parts.unet, conv=False, compvis=parts.is_sdxl), 4, 2.0, 0, 0.0,
                          parts.device, seed=0)
    with torch.no_grad():
        for lora in network.loras.values():
            lora.up.normal_(0, 0.05, generator=gen)
    results = []
    for fused in (False, True):
        network.zero_grad(set_to_none=True)
        with torch.enable_grad(), inject(network), \
                sdpa_attention(parts.unet, network.projections if fused else None):
            if fused:
                assert all(network.projections(m) is not None for m in attention_modules(parts.unet))
            out = parts.unet(x, t, **cond)
            (out ** 2).mean().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in network.named_parameters()}))
    (plain, plain_grads), (fused_out, fused_grads) = results
    assert (fused_out - plain).abs().max() < 1e-5
    assert plain_grads.keys() == fused_grads.keys()
    for name, grad in plain_grads.items():
        assert torch.allclose(fused_grads[name], grad, rtol=1e-4, atol=1e-7), name
    assert network.projections(attention_modules(parts.unet)[0]) is None  # only while injected


def test_a_hooked_projection_is_called_as_a_module(sdxl_host) -> None:
    """A forward hook someone put on to_q still runs during training: that attention keeps calling
    its layers."""
    parts = sdxl_host.model_parts()
    network = LoRANetwork(unet_targets(parts.unet, conv=False, compvis=True), 4, 4.0, 0, 0.0,
                          parts.device, seed=0)
    hooked, plain = attention_modules(parts.unet)[:2]
    calls = []
    handle = hooked.to_q.register_forward_hook(lambda *_: calls.append(1))
    try:
        with inject(network):
            assert network.projections(hooked) is None and network.projections(plain) is not None
            with torch.no_grad(), sdpa_attention(parts.unet, network.projections):
                parts.unet(torch.randn(1, 4, 16, 16), torch.tensor([10]),
                           context=torch.randn(1, 77, 320), y=torch.randn(1, 1792))
    finally:
        handle.remove()
    assert calls
