"""The trainer learns: on the tiny SD1 (eps) and SD2 (v-prediction) models one image with its trigger becomes much easier to denoise;
gradient checkpointing (ours, or the model's own ldm flag) gives the LoRA the same gradients."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file

from lora_lab.train import TrainConfig, train
from lora_lab.train.checkpointing import block_forwards
from lora_lab.train.guard import frozen
from lora_lab.train.keys import te_targets, unet_targets
from lora_lab.train.loop import diffusion_loss
from lora_lab.train.network import LoRANetwork, inject
from lora_lab.train.text import encode_text


@pytest.mark.parametrize("host_fixture, epochs", [("standalone_host", 3), ("sd2_host", 2)],
                         ids=["sd1-eps", "sd2-v"])
def test_training_one_image_lowers_its_denoising_loss(host_fixture: str, epochs: int, request,
                                                       tmp_path) -> None:
    host = request.getfixturevalue(host_fixture)
    folder = tmp_path / "data" / "100_ohwx"
    folder.mkdir(parents=True)
    image = Image.new("RGB", (64, 64), (250, 250, 250))
    ImageDraw.Draw(image).ellipse((12, 12, 52, 52), fill=(220, 30, 30))
    image.save(folder / "circle.png")
    config = TrainConfig(dataset_dir=tmp_path / "data", name="circle", output_dir=tmp_path / "out",
                         dim=8, alpha=8, unet_lr=2e-3, te_lr=0.0, epochs=epochs, resolution=64,
                         min_bucket_reso=64, max_bucket_reso=64, save_precision="fp32")
    result = train(host, config)
    assert (result.state, result.steps_done) == ("finished", 100 * epochs)

    parts = host.model_parts()
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1)
    gen = torch.Generator().manual_seed(0)
    timesteps = torch.arange(25, 1000, 50)
    with torch.no_grad():
        latent = parts.vae.encode(pixels.permute(2, 0, 1)[None]).mode() * parts.latent_scale
        latents = latent.repeat(len(timesteps), 1, 1, 1)
        noise = torch.randn(latents.shape, generator=gen)
        cond = encode_text(parts, ["ohwx"] * len(timesteps), parts.clip_skip)

        def loss() -> float:  # eps or v targets, whichever the model predicts
            return float(diffusion_loss(parts.unet, parts.alphas_cumprod, latents, cond, noise,
                                        timesteps, parts.parameterization).mean())

        base = loss()
        network = LoRANetwork(unet_targets(parts.unet, conv=False), 8, 8.0, 0, 0.0, parts.device, 0)
        network.load_from_file_tensors(load_file(str(result.final_file)))
        network.eval()
        with inject(network):
            trained = loss()
    assert trained <= 0.7 * base, (base, trained)


@contextmanager
def ldm_checkpoint_flags(unet: torch.nn.Module) -> Iterator[None]:
    """Turn on ldm's own checkpoint flags (as a config with use_checkpoint: True would)."""
    blocks = [(b, name) for b in unet.modules() for name in ("checkpoint", "use_checkpoint")
              if type(b).__name__ in ("BasicTransformerBlock", "ResBlock") and hasattr(b, name)]
    saved = [(b, name, getattr(b, name)) for b, name in blocks]
    for b, name in blocks:
        setattr(b, name, True)
    try:
        yield
    finally:
        for b, name, value in saved:
            setattr(b, name, value)


def test_gradient_checkpointing_gives_the_same_gradients(standalone_host) -> None:
    parts = standalone_host.model_parts()
    targets = unet_targets(parts.unet, conv=True) + te_targets(parts.text_encoder)
    network = LoRANetwork(targets, 4, 4.0, 4, 4.0, parts.device, seed=1)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for lora in network.loras.values():
            lora.up.normal_(0, 0.05, generator=gen)
    latents = torch.randn(2, 4, 16, 16, generator=gen)  # 2x2 tokens in the middle block
    noise = torch.randn(2, 4, 16, 16, generator=gen)
    timesteps = torch.tensor([100, 800])

    def grads(checkpointing: bool) -> dict[str, torch.Tensor]:
        network.zero_grad(set_to_none=True)
        with frozen(parts.unet, parts.text_encoder, parts.vae), inject(network), \
                block_forwards(parts.unet, checkpointing), torch.enable_grad():
            cond = encode_text(parts, ["ohwx, red circle", "blue square"], 1)
            diffusion_loss(parts.unet, parts.alphas_cumprod, latents, cond, noise, timesteps,
                           parts.parameterization, min_snr_gamma=5.0).mean().backward()
        return {n: p.grad.clone() for n, p in network.named_parameters()}

    plain = grads(False)
    assert all(g.abs().max() > 0 for g in plain.values())
    results = [grads(True)]
    with ldm_checkpoint_flags(parts.unet):  # ldm's own checkpoint would drop the LoRA's gradients
        results += [grads(False), grads(True)]
    for result in results:
        assert result.keys() == plain.keys()
        for name, grad in result.items():
            assert torch.allclose(grad, plain[name], rtol=1e-4, atol=1e-6), name

