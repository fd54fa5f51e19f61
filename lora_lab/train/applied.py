"""Saved LoRA files applied to a loaded model for generation, the way the WebUI applies
`<lora:name:te:unet>`: each module of the file is found by its kohya name among the model's
layers and added to that layer's output, times the text-encoder multiplier on text-encoder layers
and the UNet multiplier on UNet layers. The adapters live outside the model and are removed on
exit (`network.inject`), so the weights are never changed.

Used by the standalone host, which has no Lora extension of its own, to render sweeps."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from ..host.protocol import ModelParts
from .keys import TE1_PREFIX, TE2_PREFIX, LayoutError, Target, te_targets, unet_targets
from .network import LoRAModule, LoRANetwork, inject

_PARTS = ("lora_down.weight", "lora_up.weight", "alpha")


@dataclass(frozen=True)
class LoraUse:
    path: Path
    te: float = 1.0  # the text-encoder multiplier
    unet: float = 1.0


def model_targets(parts: ModelParts) -> dict[str, Target]:
    """Every layer a kohya LoRA file may name for this model, by that name."""
    targets = unet_targets(parts.unet, conv=True, compvis=parts.is_sdxl)
    try:
        if parts.is_sdxl:
            assert parts.text_encoder_2 is not None
            targets += te_targets(parts.text_encoder, prefix=TE1_PREFIX, encoder=1, used=10**6)
            targets += te_targets(parts.text_encoder_2, prefix=TE2_PREFIX, encoder=2, used=10**6)
        else:
            targets += te_targets(parts.text_encoder, used=10**6)
    except LayoutError:
        pass  # a text encoder LoRA Lab cannot adapt: its keys are reported as unmatched
    return {t.name: t for t in targets}


def network_from_file(parts: ModelParts, targets: dict[str, Target], tensors: dict[str, torch.Tensor],
                      use: LoraUse) -> tuple[LoRANetwork, list[str]]:
    """The file's modules as eval-mode adapters, and the names that matched no layer (or whose
    shapes do not fit it), which the WebUI would drop as well."""
    modules: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        name, _, part = key.partition(".")
        if part in _PARTS:
            modules.setdefault(name, {})[part] = tensor
    network = LoRANetwork([], 1, 1.0, 0, 1.0, parts.device, 0)
    generator = torch.Generator().manual_seed(0)
    unmatched = []
    for name, found in modules.items():
        target = targets.get(name)
        down, up = found.get("lora_down.weight"), found.get("lora_up.weight")
        if target is None or down is None or up is None:
            unmatched.append(name)
            continue
        dim = int(down.shape[0])
        alpha = float(found["alpha"]) if "alpha" in found else float(dim)
        lora = LoRAModule(target, dim, alpha, generator, parts.device)
        if tuple(lora.down.shape) != tuple(down.shape) or tuple(lora.up.shape) != tuple(up.shape):
            unmatched.append(name)
            continue
        with torch.no_grad():
            lora.down.copy_(down.to(torch.float32))
            lora.up.copy_(up.to(torch.float32))
        lora.multiplier = use.te if target.is_te else use.unet
        network.targets[name] = target
        network.loras[name] = lora
    network.eval()
    return network, unmatched


@contextmanager
def applied_loras(parts: ModelParts, uses: Sequence[LoraUse]) -> Iterator[list[str]]:
    """The files applied for the block; yields notes on modules that matched nothing."""
    from safetensors.torch import load_file

    notes: list[str] = []
    with ExitStack() as stack:
        targets = model_targets(parts) if uses else {}
        for use in uses:
            network, unmatched = network_from_file(parts, targets, load_file(str(use.path)), use)
            if unmatched:
                notes.append(f"{use.path.name}: {len(unmatched)} module(s) match no layer of this model "
                             f"(e.g. {unmatched[0]}); they are left out")
            stack.enter_context(inject(network))
        with torch.no_grad():
            yield notes
