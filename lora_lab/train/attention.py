"""LoRA on an `nn.MultiheadAttention` (SD2's OpenCLIP text encoder).

Its q/k/v projections are fused in `in_proj_weight` and `out_proj.forward` is never called, so a
forward wrapped around the sub-layers would silently do nothing. `attention_forward` replaces the
attention's whole forward with the same computation (projections, scaled dot-product attention,
output projection) where each projection adds its adapter's delta — so dropouts act on activations,
as for every other layer; in self-attention the q/k/v adapters make their down projections in one
GEMM (`network.add_shared`). Self-attention layouts only (`kdim == vdim == embed_dim`, no
bias_k/v, no zero attention): `keys.te_targets` refuses others.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from .network import LoRAModule


def _project(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
             lora: LoRAModule | None) -> torch.Tensor:
    out = F.linear(x, weight, bias)
    return out if lora is None else lora.add_to(out, x)


def _as_additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    if mask is None or mask.dtype != torch.bool:
        return None if mask is None else mask.to(dtype)
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))


def _mask(attn_mask: torch.Tensor | None, key_padding_mask: torch.Tensor | None, is_causal: bool,
          batch: int, heads: int, tgt: int, src: int, like: torch.Tensor) -> torch.Tensor | None:
    """One additive mask of shape (batch*heads, tgt, src) or broadcastable to it."""
    if attn_mask is None and is_causal:
        attn_mask = torch.ones(tgt, src, dtype=torch.bool, device=like.device).triu(1)
    mask = _as_additive(attn_mask, like.dtype)
    if mask is not None and mask.dim() == 2:
        mask = mask.unsqueeze(0)
    padding = _as_additive(key_padding_mask, like.dtype)
    if padding is not None:
        padding = padding.view(batch, 1, 1, src).expand(batch, heads, 1, src).reshape(batch * heads, 1, src)
        mask = padding if mask is None else mask + padding
    return mask


def attention_forward(mha: torch.nn.MultiheadAttention, loras: dict[str, LoRAModule]) -> Any:
    """A forward for `mha` with the adapters in `loras` ("q", "k", "v", "out") applied; same
    signature and results as `nn.MultiheadAttention.forward`."""
    from .network import add_shared  # network imports this module

    def forward(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        shared = query is key and key is value  # self-attention: one input for q, k and v
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = (t.unsqueeze(1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif mha.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        tgt, batch, embed = query.shape
        src = key.shape[0]
        heads = mha.num_heads
        head_dim = embed // heads
        w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
        biases = mha.in_proj_bias.chunk(3) if mha.in_proj_bias is not None else (None, None, None)
        adapters = [loras.get(part) for part in ("q", "k", "v")]
        if shared and all(adapters):
            q, k, v = add_shared([(F.linear(query, w, b), lora) for w, b, lora
                                  in zip((w_q, w_k, w_v), biases, adapters)], query)  # type: ignore[misc]
        else:
            q, k, v = (_project(t, w, b, lora) for t, w, b, lora
                       in zip((query, key, value), (w_q, w_k, w_v), biases, adapters))
        q = q.reshape(tgt, batch * heads, head_dim).transpose(0, 1) * (1.0 / math.sqrt(head_dim))
        k = k.reshape(src, batch * heads, head_dim).transpose(0, 1)
        v = v.reshape(src, batch * heads, head_dim).transpose(0, 1)
        scores = q @ k.transpose(1, 2)
        mask = _mask(attn_mask, key_padding_mask, is_causal, batch, heads, tgt, src, scores)
        if mask is not None:
            scores = scores + mask
        weights = scores.softmax(dim=-1)
        if mha.training and mha.dropout > 0:
            weights = F.dropout(weights, p=mha.dropout)
        out = (weights @ v).transpose(0, 1).reshape(tgt, batch, embed)
        out = _project(out, mha.out_proj.weight, mha.out_proj.bias, loras.get("out"))
        if unbatched:
            out = out.squeeze(1)
        elif mha.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        per_head = weights.view(batch, heads, tgt, src)
        returned = per_head.mean(dim=1) if average_attn_weights else per_head
        return out, returned.squeeze(0) if unbatched else returned

    return forward
