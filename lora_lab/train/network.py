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
from torch.nn.modules import module as nn_module

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
        x = self.cast(x)
        h = F.conv2d(x, self.down, **self.conv_args) if self.is_conv else F.linear(x, self.down)
        return self.dropped(h)

    def cast(self, x: torch.Tensor) -> torch.Tensor:
        autocast = x.device.type == "cuda" and torch.is_autocast_enabled()
        return x if autocast or x.dtype == self.down.dtype else x.to(self.down.dtype)

    def dropped(self, h: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The down projection `h` after this adapter's dropouts, and the factor for its `up`."""
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
        return self.add_up(out, *self.hidden(x))

    def add_up(self, out: torch.Tensor, h: torch.Tensor, scale: float) -> torch.Tensor:
        """`out + up(h) * scale`."""
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


def add_shared(pairs: list[tuple[torch.Tensor, LoRAModule]], x: torch.Tensor) -> list[torch.Tensor]:
    """Each base output in `pairs` plus its adapter's delta, where every layer read the same `x`:
    one GEMM makes all their down projections (x is read once, forward and backward), then each
    `up` adds into its own output. Same math as `add_to` on each pair."""
    outs = [out for out, _ in pairs]
    active = [i for i, (_, lora) in enumerate(pairs) if not lora.skipped()]
    if not active:
        return outs
    loras = [pairs[i][1] for i in active]
    h = F.linear(loras[0].cast(x), torch.cat([lora.down for lora in loras]))
    start = 0
    for i, lora in zip(active, loras):
        outs[i] = lora.add_up(outs[i], *lora.dropped(h[..., start:start + lora.dim]))
        start += lora.dim
    return outs


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
        # while injected: id(wrapped Linear/Conv2d) -> (the forward found there, its adapter)
        self._injected: dict[int, tuple[Any, LoRAModule]] = {}

    def projections(self, attention: torch.nn.Module) -> Any:
        """For an ldm/sgm CrossAttention whose to_q, to_k and to_v all carry linear adapters (while
        injected): `project(x, source) -> (q, k, v)`, the three layers' own forwards plus the
        adapters' deltas with one down-projection GEMM per distinct input (`add_shared`).
        Else None: the caller calls the layers — also when a layer has hooks, which only a call
        through the module would run."""
        layers = [getattr(attention, name, None) for name in ("to_q", "to_k", "to_v")]
        entries = [self._injected.get(id(layer)) for layer in layers]
        if any(e is None or e[1].is_conv for e in entries) or any(map(_hooked, layers)):
            return None
        (fq, lq), (fk, lk), (fv, lv) = entries  # type: ignore[misc]

        def project(x: torch.Tensor, source: torch.Tensor) -> tuple[torch.Tensor, ...]:
            q, k, v = fq(x), fk(source), fv(source)
            if source is x:
                return tuple(add_shared([(q, lq), (k, lk), (v, lv)], x))
            k, v = add_shared([(k, lk), (v, lv)], source)
            return lq.add_to(q, x), k, v

        return project

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


def _hooked(module: torch.nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks
                or nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks)


def _patched_forward(original: Any, lora: LoRAModule) -> Any:
    def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return lora.add_to(original(x, *args, **kwargs), x)

    return forward


def _forwards(network: LoRANetwork) -> tuple[list[tuple[torch.nn.Module, Any]], dict[int, tuple[Any, LoRAModule]]]:
    """(module, its new forward) for every wrapped module, an attention's q/k/v/out adapters sharing
    one forward; and, for each plainly wrapped module, the forward found there and its adapter."""
    out: list[tuple[torch.nn.Module, Any]] = []
    found: dict[int, tuple[Any, LoRAModule]] = {}
    attentions: dict[int, tuple[torch.nn.Module, dict[str, LoRAModule]]] = {}
    for name, lora in network.loras.items():
        target = network.targets[name]
        if target.part is None:
            found[id(target.module)] = (target.module.forward, lora)
            out.append((target.module, _patched_forward(target.module.forward, lora)))
        else:
            attentions.setdefault(id(target.module), (target.module, {}))[1][target.part] = lora
    for module, parts in attentions.values():
        out.append((module, attention_forward(module, parts)))  # type: ignore[arg-type]
    return out, found


@contextmanager
def inject(network: LoRANetwork) -> Iterator[None]:
    """Route every target's forward through its adapter, for the block (`forwards.swapped_forwards`)."""
    replacements, found = _forwards(network)
    with swapped_forwards(replacements):
        network._injected = found
        try:
            yield
        finally:
            network._injected = {}
