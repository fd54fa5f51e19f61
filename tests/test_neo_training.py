"""What makes a model Forge Neo holds trainable, on models built the way Neo builds them (under
torch.inference_mode, residuals added in place): for one run its inference tensors are ordinary
(backward works), shared weights stay shared, and afterwards every tensor is an inference tensor
with the same values again; a block's in-place residual additions are rewritten out of place, and
a block whose code no longer has them is refused with a sentence, not patched blindly."""
from __future__ import annotations

import pytest
import torch

from lora_lab.hosts.neo.training import NeoInternalsChanged, _ordinary_tensors, _out_of_place


class BasicTransformerBlock(torch.nn.Module):
    """Neo 2.26's residual pattern: `x += n` on the block's running activation."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = torch.nn.LayerNorm(8)
        self.attn = torch.nn.Linear(8, 8)
        self.ff = torch.nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.attn(self.norm(x))
        x += n
        n = self.ff(self.norm(x))
        x += n
        return x


class MovedInternals(torch.nn.Module):
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


def test_the_in_place_block_breaks_backward_and_the_rewritten_one_does_not() -> None:
    block = BasicTransformerBlock()
    x = torch.randn(2, 8)
    leaf = x.clone().requires_grad_()
    with pytest.raises(RuntimeError, match="inplace operation"):
        block(leaf * 1).sum().backward()
    with torch.no_grad():
        expected = block._forward(x.clone())
    rewritten = _out_of_place(BasicTransformerBlock).__get__(block)
    out = rewritten(leaf * 1)
    out.sum().backward()
    assert torch.equal(out.detach(), expected) and leaf.grad is not None


def test_a_block_without_the_known_pattern_is_refused() -> None:
    with pytest.raises(NeoInternalsChanged, match="Neo 2.26"):
        _out_of_place(MovedInternals)


def test_inference_weights_are_trainable_for_the_run_and_inference_again_after() -> None:
    with torch.inference_mode():
        model = torch.nn.Sequential(torch.nn.Embedding(10, 8), torch.nn.Linear(8, 8))
        model.register_buffer("scale", torch.ones(8))
        tied = torch.nn.Module()
        tied.weight = model[0].weight  # Neo's textual-inversion wrapper shares the token embedding's
        model.add_module("tied", tied)
        model.requires_grad_(False)  # as Neo's KModel leaves its networks
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = torch.tensor([[1, 2, 3]])
    adapter = torch.nn.Linear(8, 8)
    # an adapter before a frozen layer: its backward needs the frozen layer's weight
    with pytest.raises(RuntimeError, match="Inference tensors"):
        model[1](adapter(model[0](ids))).sum().backward()

    with _ordinary_tensors([model]):
        assert not any(t.is_inference() for t in model.state_dict().values())
        assert model.tied.weight is model[0].weight
        (model[1](adapter(model[0](ids))) * model.scale).sum().backward()
        assert adapter.weight.grad is not None and model[1].weight.grad is None

    assert all(t.is_inference() for t in model.state_dict().values())
    assert model.tied.weight is model[0].weight
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(p.requires_grad for p in model.parameters())
