"""A fingerprint of a model's full state: weights, requires_grad flags, train/eval modes, hooks and
instance-level forward overrides. Equal before and after a training run means the run left the
host's model exactly as it found it."""
from __future__ import annotations

import hashlib
from typing import Any


def model_fingerprint(model: Any) -> dict[str, Any]:
    import torch

    weights = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        weights.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        weights.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    flags = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        flags.update(f"{name}:{int(p.requires_grad)}:{int(p.grad is not None)};".encode())
    modes = hashlib.sha256()
    hooks = patched = 0
    for name, module in model.named_modules():
        modes.update(f"{name}:{int(module.training)};".encode())
        hooks += len(module._forward_hooks) + len(module._forward_pre_hooks) + len(module._backward_hooks)
        patched += "forward" in module.__dict__
    return {"weights": weights.hexdigest(), "requires_grad": flags.hexdigest(), "modes": modes.hexdigest(),
            "hooks": hooks, "patched_forwards": patched}


def parts_fingerprint(parts: Any) -> dict[str, Any]:
    """The fingerprint of a host's UNet, text encoder and VAE together."""
    import torch

    # a ModuleDict only refers to the modules; they are not changed by being listed in it
    models = {"unet": parts.unet, "text_encoder": parts.text_encoder, "vae": parts.vae}
    if getattr(parts, "text_encoder_2", None) is not None:  # SDXL's OpenCLIP bigG
        models["text_encoder_2"] = parts.text_encoder_2
    return model_fingerprint(torch.nn.ModuleDict(models))
