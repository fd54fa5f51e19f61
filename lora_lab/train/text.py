"""Captions to text-encoder outputs, as the WebUI's CLIP sees them (77 tokens, clip skip applied
with the final layer norm), with a cache for runs that leave the text encoder frozen."""
from __future__ import annotations

import torch

from ..host.protocol import ModelParts

CACHE_LIMIT = 4096  # captions; shuffled tags make many variants, each ~230 KB at SD1 size


def encode_text(parts: ModelParts, captions: list[str], clip_skip: int) -> torch.Tensor:
    tokenizer = parts.tokenizer
    ids = tokenizer(captions, truncation=True, max_length=tokenizer.model_max_length,
                    padding="max_length", return_tensors="pt").input_ids.to(parts.device)
    te = parts.text_encoder
    out = te(input_ids=ids, output_hidden_states=clip_skip > 1)
    if clip_skip > 1:
        return te.text_model.final_layer_norm(out.hidden_states[-clip_skip])
    return out.last_hidden_state


class FrozenTextCache:
    """Outputs of the frozen text encoder per caption string, computed without grad."""

    def __init__(self, parts: ModelParts, clip_skip: int) -> None:
        self.parts = parts
        self.clip_skip = clip_skip
        self.cache: dict[str, torch.Tensor] = {}

    def __call__(self, captions: list[str]) -> torch.Tensor:
        missing = list(dict.fromkeys(c for c in captions if c not in self.cache))
        if missing:
            with torch.no_grad():
                encoded = encode_text(self.parts, missing, self.clip_skip)
            fresh = dict(zip(missing, encoded))
            if len(self.cache) + len(fresh) <= CACHE_LIMIT:
                self.cache.update(fresh)
        else:
            fresh = {}
        return torch.stack([self.cache[c] if c in self.cache else fresh[c] for c in captions])
