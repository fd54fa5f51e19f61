"""LoRA adapters that live outside the model and reach it only through instance `forward`s.

Each adapter keeps fp32 `down`/`up` weights in its own module tree (never a child of the host's
model, so the WebUI's device moves, casts and state-dict hooks never see them) and computes its
delta with `F.linear`/`F.conv2d` on raw tensors (so the WebUI's class-level Linear/Conv2d patches do
not apply to the adapter itself). `inject` replaces each target's instance `forward` with
`original(x) + delta(x)`, where `original` is the bound forward found there — the WebUI's own
patched forward included — and puts back exactly what was there before.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from .attention import attention_forward
from .forwards import swapped_forwards
from .keys import Target


class LoRAModule(torch.nn.Module):
    """`y = W x + up(drop(down(x))) * alpha / dim * multiplier` (sd-scripts' LoRAModule math)."""

    def __init__(self, target: Target, dim: int, alpha: float, generator: torch.Generator,
                 device: torch.device, dropout: float = 0.0, rank_dropout: float = 0.0,
                 module_dropout: float = 0.0) -> None:
        super().__init__()
        base = target.module
        self.is_te = target.is_te
        self.encoder = target.encoder
        self.dim = dim
        self.is_conv = isinstance(base, torch.nn.Conv2d)
        shape = target.weight_shape()
        if self.is_conv:
            out_ch, in_ch, kh, kw = shape
            down_shape: tuple[int, ...] = (dim, in_ch, kh, kw)
            up_shape: tuple[int, ...] = (out_ch, dim, 1, 1)
            self.conv_args = {"stride": base.stride, "padding": base.padding,
                              "dilation": base.dilation}
            fan_in = in_ch * kh * kw
        else:
            out_ch, in_ch = shape
            down_shape, up_shape = (dim, in_ch), (out_ch, dim)
            self.conv_args = {}
            fan_in = in_ch
        # kaiming_uniform_(a=sqrt(5)) draws from U(-1/sqrt(fan_in), 1/sqrt(fan_in)); drawn from our
        # own generator so the host's global RNG is left alone.
        bound = 1.0 / math.sqrt(fan_in)
        down = (torch.rand(down_shape, generator=generator, dtype=torch.float32) * 2 - 1) * bound
        self.down = torch.nn.Parameter(down.to(device))
        self.up = torch.nn.Parameter(torch.zeros(up_shape, dtype=torch.float32, device=device))
        self.register_buffer("alpha", torch.tensor(float(alpha)))
        self.scale = float(alpha) / dim
        self.multiplier = 1.0
        self.dropout = dropout
        self.rank_dropout = rank_dropout
        self.module_dropout = module_dropout

    def hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """`drop(down(x))` and the factor its `up` projection is to be added with."""
        autocast = x.device.type == "cuda" and torch.is_autocast_enabled()
        if not autocast and x.dtype != self.down.dtype:
            x = x.to(self.down.dtype)
        if self.is_conv:
            h = F.conv2d(x, self.down, **self.conv_args)
        else:
            h = F.linear(x, self.down)
        scale = self.scale * self.multiplier
        if self.training:
            if self.dropout > 0:
                h = F.dropout(h, p=self.dropout)
            if self.rank_dropout > 0:
                shape = (h.shape[0], self.dim, 1, 1) if self.is_conv else \
                    (h.shape[0],) + (1,) * (h.dim() - 2) + (self.dim,)
                keep = torch.rand(shape, device=h.device) > self.rank_dropout
                h = h * keep.to(h.dtype)
                scale /= 1.0 - self.rank_dropout
        return h, scale

    def add_to(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """`out` (the base layer's output for input `x`) plus this adapter's delta."""
        if self.skipped():
            return out
        h, scale = self.hidden(x)
        if not self.is_conv and out.is_contiguous() and \
                (h.dtype == out.dtype == self.up.dtype or torch.is_autocast_enabled()):
            # One addmm instead of `up(h)` then an add: the N=dim GEMM writes straight into the
            # sum, one pass fewer over the layer's output (bench/train_step.py: the LoRA side
            # path's cost on a 320-wide layer fell by a third).
            flat = torch.addmm(out.reshape(-1, out.shape[-1]), h.reshape(-1, self.dim),
                               self.up.t(), alpha=scale)
            return flat.view(out.shape)
        delta = F.conv2d(h, self.up) if self.is_conv else F.linear(h, self.up)
        return out.add(delta.to(out.dtype), alpha=scale)

    def skipped(self) -> bool:
        return self.training and self.module_dropout > 0 and \
            torch.rand(()).item() < self.module_dropout


class LoRANetwork(torch.nn.Module):
    def __init__(self, targets: list[Target], dim: int, alpha: float, conv_dim: int,
                 conv_alpha: float, device: torch.device, seed: int, dropout: float = 0.0,
                 rank_dropout: float = 0.0, module_dropout: float = 0.0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.targets = {t.name: t for t in targets}
        self.loras = torch.nn.ModuleDict()
        for t in targets:
            d, a = (conv_dim, conv_alpha) if t.kind == "conv" else (dim, alpha)
            # ModuleDict keys cannot contain '.', kohya names never do.
            self.loras[t.name] = LoRAModule(t, d, a, generator, device, dropout, rank_dropout,
                                            module_dropout)

    def set_multiplier(self, multiplier: float) -> None:
        for lora in self.loras.values():
            lora.multiplier = multiplier

    def parameter_groups(self, unet_lr: float, te_lr: float, te2_lr: float | None = None) -> list[dict[str, Any]]:
        """One optimizer group per part: UNet, text encoder (SDXL: the first) and SDXL's second,
        which takes `te2_lr` (None: `te_lr`)."""
        groups = []
        rates = ((0, "unet", unet_lr), (1, "text_encoder", te_lr),
                 (2, "text_encoder_2", te_lr if te2_lr is None else te2_lr))
        for encoder, name, lr in rates:
            params = [p for lora in self.loras.values() if lora.encoder == encoder for p in lora.parameters()]
            if params and lr > 0:
                groups.append({"params": params, "lr": lr, "name": name})
        return groups

    def state_dict_for_file(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name, lora in self.loras.items():
            out[f"{name}.lora_down.weight"] = lora.down.detach().to("cpu", dtype).contiguous()
            out[f"{name}.lora_up.weight"] = lora.up.detach().to("cpu", dtype).contiguous()
            out[f"{name}.alpha"] = lora.alpha.detach().to("cpu", dtype).contiguous()
        return out

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {}
        for name, lora in self.loras.items():
            out[f"{name}.lora_down.weight"] = tuple(lora.down.shape)
            out[f"{name}.lora_up.weight"] = tuple(lora.up.shape)
            out[f"{name}.alpha"] = ()
        return out

    def alphas(self) -> dict[str, float]:
        return {f"{name}.alpha": float(lora.alpha) for name, lora in self.loras.items()}

    def load_from_file_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Copy weights saved by `state_dict_for_file` (shapes already validated by the caller)."""
        with torch.no_grad():
            for name, lora in self.loras.items():
                down = tensors.get(f"{name}.lora_down.weight")
                up = tensors.get(f"{name}.lora_up.weight")
                if down is not None and up is not None:
                    lora.down.copy_(down.to(lora.down.dtype))
                    lora.up.copy_(up.to(lora.up.dtype))

    def all_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self.parameters())


def _patched_forward(original: Any, lora: LoRAModule) -> Any:
    def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return lora.add_to(original(x, *args, **kwargs), x)

    return forward


def _forwards(network: LoRANetwork) -> list[tuple[torch.nn.Module, Any]]:
    """(module, its new forward) for every wrapped module; an attention's q/k/v/out adapters share
    one forward."""
    out: list[tuple[torch.nn.Module, Any]] = []
    attentions: dict[int, tuple[torch.nn.Module, dict[str, LoRAModule]]] = {}
    for name, lora in network.loras.items():
        target = network.targets[name]
        if target.part is None:
            out.append((target.module, _patched_forward(target.module.forward, lora)))
        else:
            attentions.setdefault(id(target.module), (target.module, {}))[1][target.part] = lora
    for module, parts in attentions.values():
        out.append((module, attention_forward(module, parts)))  # type: ignore[arg-type]
    return out


@contextmanager
def inject(network: LoRANetwork) -> Iterator[None]:
    """Route every target's forward through its adapter, for the block (`forwards.swapped_forwards`)."""
    with swapped_forwards(_forwards(network)):
        yield
