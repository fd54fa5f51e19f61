"""Freeze the host's model for a run and put every flag back afterwards.

The WebUI leaves UNet parameters with `requires_grad=True`; a run freezes them (no base-weight
gradients, no memory for them) and puts the exact flags, train/eval modes and `.grad`s back in
`finally`, whatever happened in between.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def frozen(*models: torch.nn.Module) -> Iterator[None]:
    params: dict[int, tuple[torch.nn.Parameter, bool, torch.Tensor | None]] = {}
    modes: dict[int, tuple[torch.nn.Module, bool]] = {}
    for model in models:
        for module in model.modules():
            modes.setdefault(id(module), (module, module.training))
        for p in model.parameters():
            params.setdefault(id(p), (p, p.requires_grad, p.grad))
    try:
        for p, _, _ in params.values():
            _requires_grad(p, False)
        for module, _ in modes.values():
            module.training = False
        yield
    finally:
        for p, requires_grad, grad in params.values():
            _requires_grad(p, requires_grad)
            if p.grad is not grad:
                p.grad = grad
        for module, training in modes.values():
            module.training = training


def _requires_grad(p: torch.nn.Parameter, flag: bool) -> None:
    """Set a flag that differs; an inference tensor's (Forge Neo loads under inference mode) only
    inside inference mode, where torch allows it."""
    if p.requires_grad == flag:
        return
    if p.is_inference():
        with torch.inference_mode():
            p.requires_grad_(flag)
    else:
        p.requires_grad_(flag)
