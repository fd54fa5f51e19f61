"""A small txt2img sampler over ModelParts (Euler, classifier-free guidance), for hosts that have no
pipeline of their own (standalone previews)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...host.protocol import ModelParts, PreviewRequest

if TYPE_CHECKING:
    import torch
    from PIL import Image


def encode_prompts(parts: ModelParts, prompts: list[str], width: int = 512,
                   height: int = 512) -> dict[str, torch.Tensor]:
    """The UNet's conditioning keywords: `context` (SDXL also `y`, with the image size as original
    and target size and no crop, as the WebUI generates)."""
    import torch

    from ...train.text import SdxlText, encode_text, size_vector

    with torch.no_grad():
        if not parts.is_sdxl:
            return {"context": encode_text(parts, prompts, parts.clip_skip)}
        context, pooled = SdxlText(parts, train_te1=False, train_te2=False)(prompts)
        size = torch.tensor([[height, width]] * len(prompts))
        return {"context": context, "y": size_vector(parts, pooled, size, torch.zeros_like(size), size)}


def decode_latents(parts: ModelParts, latents: torch.Tensor) -> list[Image.Image]:
    import numpy as np
    import torch
    from PIL import Image

    with torch.no_grad():
        images = parts.vae.decode(latents / parts.latent_scale)
    images = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    arrays = images.permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(np.ascontiguousarray(a)) for a in arrays]


def sample(parts: ModelParts, request: PreviewRequest) -> Image.Image:
    """Euler sampling in sigma space on the model's own schedule."""
    import torch

    if request.width % 8 or request.height % 8:
        raise ValueError("width and height must be multiples of 8")
    acp = parts.alphas_cumprod.to(torch.float64)
    sigmas_all = ((1 - acp) / acp).sqrt()
    steps = max(1, request.steps)
    timesteps = torch.linspace(len(acp) - 1, 0, steps, dtype=torch.float64).round().long()
    sigmas = torch.cat([sigmas_all[timesteps], sigmas_all.new_zeros(1)])

    cond = {k: v.to(parts.dtype) for k, v in
            encode_prompts(parts, [request.negative_prompt, request.prompt], request.width, request.height).items()}
    gen = torch.Generator().manual_seed(int(request.seed))
    shape = (1, 4, request.height // 8, request.width // 8)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * sigmas[0]
    with torch.no_grad():
        for i, t in enumerate(timesteps):
            sigma = sigmas[i]
            c_in = 1 / (sigma**2 + 1).sqrt()
            x_in = (x * c_in).to(parts.device, parts.dtype).repeat(2, 1, 1, 1)
            t_in = t.to(parts.device).repeat(2)
            out = parts.unet(x_in, t_in, **cond).to(torch.float64).cpu()
            if parts.parameterization == "v":
                # v = alpha*eps - sigma_vp*x0  ->  eps in the k-diffusion scaling
                c_out = -sigma * c_in
                c_skip = 1 / (sigma**2 + 1)
                denoised = x * c_skip + out * c_out
                eps = (x - denoised) / sigma
            else:
                eps = out
            eps_uncond, eps_cond = eps.chunk(2)
            eps = eps_uncond + request.cfg_scale * (eps_cond - eps_uncond)
            x = x + eps * (sigmas[i + 1] - sigma)
    return decode_latents(parts, x.to(parts.device, parts.dtype))[0]
