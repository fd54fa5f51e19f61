"""Captions to conditioning with Neo's own text engines, outside inference mode, so the trainer's
conditioning equals what Neo generates with (emphasis, embeddings and clip skip included) and a
text-encoder LoRA gets gradients. Training uses the first 77-token chunk, as on the other hosts."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, Iterator

import torch

CHUNK = 77  # 75 tokens + start + end


@contextmanager
def temporarily(owner: Any, name: str, value: Any) -> Iterator[None]:
    """`owner.name = value` for the block, then what it was."""
    before = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, before)


def _run(engine: Any, captions: list[str]) -> Any:
    """The engine on `captions`. It re-casts its embedding layers on every call (`.to(float32)`),
    which on weights Neo loaded under inference mode is only sound inside inference mode: a frozen
    encoder (its weights still Neo's) runs there and its output is copied out; a trained one has
    ordinary weights for the run (training.py) and runs with gradient."""
    weight = engine.text_encoder.transformer.text_model.embeddings.position_embedding.weight
    if not weight.is_inference():
        return _with_gradient(engine, captions)
    with torch.inference_mode():
        out = engine(captions)
    if isinstance(out, tuple):
        return tuple(o.clone() for o in out)
    return out.clone()


def _with_gradient(engine: Any, captions: list[str]) -> Any:
    """The engine with Neo's "No norm" emphasis. Its default ("Original") rescales by the ratio of
    two means of the same values, an identity for unweighted text whose gradient divides by that
    mean: near zero after CLIP-L's final layer norm, it blows a trained encoder up. Both give the
    same values for captions without (weights:1.2); weighted ones train without the rescale."""
    from modules import shared

    with temporarily(shared.opts, "emphasis", "No norm"):
        return engine(captions)


def neo_text_encoders(model: Any, family: str) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """(te1, te2): SD1 `te1(captions, clip_skip)` → context; SDXL `te1(captions, clip_skip)` →
    CLIP-L's hidden state and `te2(captions)` → (bigG's hidden state, pooled)."""
    if family == "sd1":
        engine = model.text_processing_engine

        def sd1(captions: list[str], clip_skip: int) -> Any:
            with temporarily(engine, "clip_skip", clip_skip):
                return _run(engine, captions)[:, :CHUNK]
        return sd1, None
    engine_l, engine_g = model.text_processing_engine_l, model.text_processing_engine_g

    def te1(captions: list[str], clip_skip: int = 2) -> Any:
        with temporarily(engine_l, "clip_skip", clip_skip):
            return _run(engine_l, captions)[:, :CHUNK]

    def te2(captions: list[str]) -> tuple[Any, Any]:
        with temporarily(engine_g, "clip_skip", 2):  # bigG's penultimate layer, as sgm reads it too
            hidden, pooled = _run(engine_g, captions)
        return hidden[:, :CHUNK], pooled
    return te1, te2


class PairEmbedder:
    """SDXL's size conditioning for one (height, width) pair the way Neo builds it: its 256-wide
    timestep embedding of each number, side by side (sgm's ConcatTimestepEmbedderND)."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder

    def __call__(self, pairs: Any) -> Any:
        return torch.cat([self.embedder(pairs[:, 0].float()), self.embedder(pairs[:, 1].float())], dim=1)
