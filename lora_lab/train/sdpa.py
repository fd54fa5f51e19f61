"""For a run, the UNet's attention through torch's fused `scaled_dot_product_attention`.

Whatever the host applied for inference — ldm's own einsum attention (the standalone host), the
WebUI's split attention on the CPU, xformers or SDPA on a GPU — each ldm/sgm `CrossAttention` gets
an instance `forward` with the same math through SDPA (exact softmax attention, scale
1/sqrt(head dim)); the class-level forward (and any WebUI patch on it) is untouched, and every
instance's own `forward` comes back afterwards, as the LoRA's do. The projections are called as
modules, so the LoRA adapters on to_q/to_k/to_v/to_out apply; or, where `projections` gives one
for a module, through its q/k/v function (the LoRA network's, which makes the adapters' down
projections of a shared input in one GEMM). A call with a mask or sgm's extra arguments goes to the
host's forward.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from .forwards import swapped_forwards

_ATTENTIONS = ("CrossAttention", "MemoryEfficientCrossAttention")


Projections = Callable[[torch.nn.Module], Any]  # attention -> project(x, source) -> (q, k, v), or None


def _given(value: Any) -> bool:
    """An extra attention argument that changes the result (sgm's zeros and Neo's Nones do not)."""
    return value is not None and not (isinstance(value, (int, float)) and value == 0)


def _forward(module: torch.nn.Module, projections: Projections | None) -> Any:
    heads = int(module.heads)
    host = module.__dict__.get("forward") or type(module).forward.__get__(module)
    project = projections(module) if projections is not None else None

    def forward(x: torch.Tensor, context: torch.Tensor | None = None, mask: Any = None,
                transformer_options: Any = None, **extra: Any) -> Any:
        if mask is not None or any(map(_given, extra.values())):
            if transformer_options is not None:  # Forge Neo's attention
                extra["transformer_options"] = transformer_options
            return host(x, context=context, mask=mask, **extra)
        source = x if context is None else context
        if project is not None:
            q, k, v = project(x, source)
        else:
            q, k, v = module.to_q(x), module.to_k(source), module.to_v(source)
        b, n, _ = q.shape
        q, k, v = (t.view(b, t.shape[1], heads, t.shape[-1] // heads).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return module.to_out(out.transpose(1, 2).reshape(b, n, -1))

    return forward


def attention_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in model.modules() if type(m).__name__ in _ATTENTIONS
            and all(hasattr(m, a) for a in ("to_q", "to_k", "to_v", "to_out", "heads"))]


@contextmanager
def sdpa_attention(model: torch.nn.Module, projections: Projections | None = None) -> Iterator[int]:
    """Route `model`'s cross-attention modules through SDPA for the block; yields how many."""
    with swapped_forwards((m, _forward(m, projections)) for m in attention_modules(model)) as count:
        yield count
