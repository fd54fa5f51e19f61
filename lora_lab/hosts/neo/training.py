"""What stops training on the model Forge Neo holds, and the changes that make one run possible —
each undone when the run ends, also after an error or Stop:
- Neo loads weights under `torch.inference_mode`: autograd cannot save inference tensors, so the
  tensors the run differentiates through are swapped for ordinary copies, and back afterwards;
- its `BasicTransformerBlock` adds residuals in place (`x += n`), which breaks backward: for the
  run each block uses the same function with those additions out of place;
- its memory manager merges applied LoRAs into the weights and may load a model partly: merged
  patches are taken off first and the networks the run needs are loaded whole.
Quantised layers (GGUF, NF4, mixed-precision, Neo's fast fp8 matmul) are refused with the reason."""
from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import lru_cache
from types import FunctionType
from typing import Any

import torch

from ...host.protocol import ModelParts

_QUANTISED = ("GGUF", "BNB", "4bit", "Mixed", "Int8", "SVDQ", "FP8")


class NeoInternalsChanged(RuntimeError):
    """This Neo's internals differ from what LoRA Lab knows how to make trainable."""


def training_problems(engine: Any) -> list[str]:
    """Why the loaded model cannot be trained as Neo holds it (nothing touched)."""
    unet = engine.forge_objects_original.unet.model.diffusion_model
    problems = []
    quantised = sorted({type(m).__name__ for m in unet.modules()
                        if any(q in type(m).__qualname__ for q in _QUANTISED)
                        or any(q in type(m).__module__ for q in ("gguf", "bnb", "mixed_precision", "int8"))})
    if quantised:
        problems.append(f"the UNet's layers are quantised ({', '.join(quantised[:3])}): gradients through them "
                        "are not exact; load the checkpoint in fp16/bf16 (or fp8 with 'Diffusion in Low Bits' "
                        "set to a float8 storage, not GGUF/NF4) and train")
    fp8_plain = [n for n, m in unet.named_modules() if isinstance(m, torch.nn.Linear)
                 and "float8" in str(m.weight.dtype) and not getattr(m, "parameters_manual_cast", False)]
    if fp8_plain:
        problems.append("the UNet holds fp8 weights without per-layer casting; set 'Diffusion in Low Bits' to "
                        "Automatic or a float8 storage with manual cast, reload the model, then train")
    try:
        for block in _transformer_blocks(unet)[:1]:
            _out_of_place(type(block))
    except NeoInternalsChanged as e:
        problems.append(str(e))
    return problems


def _transformer_blocks(unet: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in unet.modules() if type(m).__name__ == "BasicTransformerBlock" and hasattr(m, "_forward")]


class _OutOfPlace(ast.NodeTransformer):
    """`x += y` → `x = x + y` for a plain name `x`."""

    def __init__(self) -> None:
        self.changed = 0

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        if isinstance(node.op, ast.Add) and isinstance(node.target, ast.Name) and node.target.id == "x":
            self.changed += 1
            target = ast.Name(id="x", ctx=ast.Store())
            value = ast.BinOp(left=ast.Name(id="x", ctx=ast.Load()), op=ast.Add(), right=node.value)
            return ast.copy_location(ast.Assign(targets=[target], value=value), node)
        return node


@lru_cache(maxsize=4)
def _out_of_place(block_class: type) -> FunctionType:
    """The block class's own `_forward`, rebuilt with its residual additions out of place."""
    try:
        source = textwrap.dedent(inspect.getsource(block_class._forward))
    except (OSError, TypeError, AttributeError):
        raise NeoInternalsChanged("this Neo's BasicTransformerBlock has no readable _forward; LoRA Lab knows "
                                  "Neo 2.26's: update LoRA Lab or use Neo 2.26") from None
    tree = ast.parse(source)
    rewriter = _OutOfPlace()
    tree = ast.fix_missing_locations(rewriter.visit(tree))
    if rewriter.changed == 0:
        raise NeoInternalsChanged("this Neo's BasicTransformerBlock no longer adds its residuals as LoRA Lab "
                                  "expects (Neo 2.26's `x += n`); update LoRA Lab or use Neo 2.26")
    namespace: dict[str, Any] = {}
    module_globals = sys.modules[block_class.__module__].__dict__
    exec(compile(tree, f"<lora-lab out-of-place {block_class.__module__}>", "exec"), module_globals, namespace)
    return namespace["_forward"]


@contextmanager
def _out_of_place_residuals(unet: torch.nn.Module) -> Iterator[None]:
    blocks = _transformer_blocks(unet)
    for block in blocks:
        block._forward = _out_of_place(type(block)).__get__(block)  # instance attribute, for the run
    try:
        yield
    finally:
        for block in blocks:
            block.__dict__.pop("_forward", None)


def _tensors(module: torch.nn.Module) -> Iterator[tuple[torch.nn.Module, str, str]]:
    for sub in module.modules():
        for name, p in sub._parameters.items():
            if p is not None and p.is_inference():
                yield sub, "_parameters", name
        for name, b in sub._buffers.items():
            if b is not None and b.is_inference():
                yield sub, "_buffers", name


def _as(tensor: torch.Tensor, like: torch.Tensor | torch.nn.Parameter) -> torch.Tensor:
    if isinstance(like, torch.nn.Parameter):
        return torch.nn.Parameter(tensor, requires_grad=like.requires_grad)
    return tensor


@contextmanager
def _ordinary_tensors(modules: list[torch.nn.Module]) -> Iterator[None]:
    """Each inference tensor of `modules` swapped for an ordinary copy, one at a time (memory stays
    at the model's size plus one tensor); at the end, inference copies of the run's tensors again
    (the same values: the run trains only its own adapters)."""
    swapped = list(dict.fromkeys(slot for m in modules for slot in _tensors(m)))
    _replace(swapped)
    try:
        yield
    finally:
        with torch.inference_mode():
            _replace(swapped)


def _replace(slots: list[tuple[torch.nn.Module, str, str]]) -> None:
    """Each tensor in `slots` by a copy made in the current mode; a tensor held in several slots
    (Neo's textual-inversion wrapper shares the token embedding's weight) stays one tensor."""
    copies: dict[int, torch.Tensor] = {}
    for owner, kind, name in slots:
        old = getattr(owner, kind)[name]
        if id(old) not in copies:
            copies[id(old)] = _as(old.detach().clone(), old)
        getattr(owner, kind)[name] = copies[id(old)]


def unmerge_loras() -> None:
    """Take merged LoRA patches out of the weights: Neo restores its backups when it unloads a
    model, and merges again at the next generation that asks for them."""
    from backend import memory_management

    memory_management.unload_all_models()


@contextmanager
def trainable_model(engine: Any, parts: ModelParts, text_encoders: bool) -> Iterator[None]:
    from backend import memory_management

    objects = engine.forge_objects_original
    patchers = [objects.unet] + ([objects.clip.patcher] if text_encoders else [])
    trained = [parts.unet] + ([m for m in (parts.text_encoder, parts.text_encoder_2) if m is not None]
                              if text_encoders else [])
    unmerge_loras()
    # what a generation without LoRAs leaves: previews (extra networks off) then sample with the
    # original patchers instead of the last generation's LoRA clones, whose loading would merge
    # those LoRAs into the weights mid-run; the next generation with LoRAs applies them again (the
    # hash reset below)
    engine.forge_objects = engine.forge_objects_original.shallow_copy()
    engine.forge_objects_after_applying_lora = engine.forge_objects_original.shallow_copy()
    memory_management.load_models_gpu(patchers, force_full_load=True)
    with ExitStack() as stack:
        stack.callback(memory_management.soft_empty_cache)
        # the run rewrites its LoRA files: Neo must read them again rather than reuse what it applied
        stack.callback(setattr, engine, "current_lora_hash", str([]))
        stack.enter_context(_ordinary_tensors(trained))
        stack.enter_context(_out_of_place_residuals(parts.unet))
        yield
