"""Gradient checkpointing that reaches adapters living outside the model.

ldm's own `checkpoint(func, inputs, self.parameters(), flag)` recomputes a block in backward and
returns gradients only for the inputs and the block's *registered* parameters: an injected LoRA's
weights get none. So, for the run, each ldm block's instance `forward` is replaced: with
`torch.utils.checkpoint` (non-reentrant, which tracks every tensor the recomputation touches) when
checkpointing is wanted, or with the plain `_forward` where the model's own flag would route
through ldm's checkpoint. The class-level forward (and any WebUI patch on it) is untouched.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

from .forwards import swapped_forwards

# block class -> the flag that sends its forward through ldm's checkpoint (None: always does)
_BLOCKS: dict[str, str | None] = {"BasicTransformerBlock": "checkpoint", "ResBlock": "use_checkpoint",
                                  "AttentionBlock": None}


def _checkpointed(block: torch.nn.Module) -> Any:
    def forward(*args: Any, **kwargs: Any) -> Any:
        if torch.is_grad_enabled():
            return checkpoint(block._forward, *args, use_reentrant=False, **kwargs)
        return block._forward(*args, **kwargs)

    return forward


def _replacements(unet: torch.nn.Module, gradient_checkpointing: bool) -> Iterator[tuple[torch.nn.Module, Any]]:
    for block in unet.modules():
        kind = type(block).__name__
        if kind not in _BLOCKS or not hasattr(block, "_forward"):
            continue
        flag = _BLOCKS[kind]
        if gradient_checkpointing:
            yield block, _checkpointed(block)
        elif flag is None or getattr(block, flag, False):
            yield block, block._forward


@contextmanager
def block_forwards(unet: torch.nn.Module, gradient_checkpointing: bool) -> Iterator[None]:
    with swapped_forwards(_replacements(unet, gradient_checkpointing)):
        yield
