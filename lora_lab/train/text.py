"""Captions to text-encoder outputs, as the WebUI's text encoder sees them (77 tokens, clip skip
applied with the final layer norm), with a cache for runs that leave the text encoder frozen.

SD1's encoder is Hugging Face's `CLIPTextModel` with its `CLIPTokenizer`; SD2's is OpenCLIP's text
transformer with `open_clip.tokenize` (ids padded with 0), run the way ldm's
`FrozenOpenCLIPEmbedder.encode_with_transformer` runs it (clip skip 2 = its "penultimate" layer).
"""
from __future__ import annotations

import torch

from ..host.protocol import ModelParts
from .keys import layers_used

CACHE_LIMIT = 4096  # captions; shuffled tags make many variants, each ~230 KB at SD1 size


def encode_text(parts: ModelParts, captions: list[str], clip_skip: int) -> torch.Tensor:
    if parts.family == "sd1":
        return _encode_hf_clip(parts, captions, clip_skip)
    return _encode_open_clip(parts, captions, clip_skip)


def _encode_hf_clip(parts: ModelParts, captions: list[str], clip_skip: int) -> torch.Tensor:
    tokenizer = parts.tokenizer
    ids = tokenizer(captions, truncation=True, max_length=tokenizer.model_max_length,
                    padding="max_length", return_tensors="pt").input_ids.to(parts.device)
    te = parts.text_encoder
    out = te(input_ids=ids, output_hidden_states=clip_skip > 1)
    if clip_skip > 1:
        return te.text_model.final_layer_norm(out.hidden_states[-clip_skip])
    return out.last_hidden_state


def _encode_open_clip(parts: ModelParts, captions: list[str], clip_skip: int) -> torch.Tensor:
    model = parts.text_encoder
    ids = parts.tokenizer(captions).to(parts.device)
    x = model.token_embedding(ids) + model.positional_embedding
    x = x.permute(1, 0, 2)  # the OpenCLIP transformer the WebUI uses is sequence-first
    blocks = model.transformer.resblocks
    for block in list(blocks)[: layers_used(len(blocks), clip_skip)]:
        x = block(x, attn_mask=model.attn_mask)
    return model.ln_final(x.permute(1, 0, 2))


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
