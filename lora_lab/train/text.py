"""Captions to text-encoder outputs, as the WebUI's text encoder sees them (77 tokens, clip skip
applied with the final layer norm), with a cache for runs that leave the text encoder frozen.

SD1's encoder is Hugging Face's `CLIPTextModel` with its `CLIPTokenizer`; SD2's is OpenCLIP's text
transformer with `open_clip.tokenize` (ids padded with 0), run the way ldm's
`FrozenOpenCLIPEmbedder.encode_with_transformer` runs it (clip skip 2 = its "penultimate" layer).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..host.protocol import ModelParts
from .keys import layers_used

CACHE_LIMIT = 4096  # captions; shuffled tags make many variants, each ~230 KB at SD1 size


def encode_text(parts: ModelParts, captions: list[str], clip_skip: int) -> torch.Tensor:
    if parts.encode_te1 is not None:
        return parts.encode_te1(captions, clip_skip)
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
        return torch.stack(_cached(self.cache, captions,
                                   lambda c: list(encode_text(self.parts, c, self.clip_skip))))


# --- SDXL: two encoders, their hidden states side by side and bigG's pooled output ------------------

def encode_sdxl_te1(parts: ModelParts, captions: list[str]) -> torch.Tensor:
    """CLIP ViT-L's hidden state `te1_hidden_index` (SDXL: 11 of 12), without the final norm, as
    sgm's FrozenCLIPEmbedder(layer="hidden") reads it."""
    if parts.encode_te1 is not None:
        return parts.encode_te1(captions, 2)
    tokenizer = parts.tokenizer
    ids = tokenizer(captions, truncation=True, max_length=tokenizer.model_max_length,
                    padding="max_length", return_tensors="pt").input_ids.to(parts.device)
    out = parts.text_encoder(input_ids=ids, output_hidden_states=True)
    return out.hidden_states[parts.te1_hidden_index]


def encode_sdxl_te2(parts: ModelParts, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCLIP bigG's penultimate hidden state (no final norm) and its pooled output (the end
    token after the final norm and the text projection), as sgm's FrozenOpenCLIPEmbedder2
    (legacy=False) computes them."""
    if parts.encode_te2 is not None:
        return parts.encode_te2(captions)
    model = parts.text_encoder_2
    assert model is not None, "SDXL parts without a second text encoder"
    ids = parts.tokenizer_2(captions).to(parts.device)
    x = model.token_embedding(ids) + model.positional_embedding
    x = x.permute(1, 0, 2)  # sequence-first, as the WebUI's OpenCLIP runs
    blocks = list(model.transformer.resblocks)
    for block in blocks[:-1]:
        x = block(x, attn_mask=model.attn_mask)
    penultimate = x.permute(1, 0, 2)
    last = model.ln_final(blocks[-1](x, attn_mask=model.attn_mask).permute(1, 0, 2))
    pooled = last[torch.arange(last.shape[0], device=last.device), ids.argmax(dim=-1)] @ model.text_projection
    return penultimate, pooled


class SdxlText:
    """Captions to SDXL's (crossattn, pooled): CLIP-L's hidden state ⊕ bigG's, and bigG's pooled
    output. An encoder that is not trained runs once per caption string without gradient and is
    cached (pooled output included); a trained one runs every step with gradient. A shuffled or
    dropped-out caption is a new string, so it is encoded as it is, never taken for another."""

    def __init__(self, parts: ModelParts, train_te1: bool, train_te2: bool) -> None:
        self.parts, self.train_te1, self.train_te2 = parts, train_te1, train_te2
        self.cache1: dict[str, torch.Tensor] = {}
        self.cache2: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.train_te1:
            h1 = encode_sdxl_te1(self.parts, captions)
        else:
            h1 = torch.stack(_cached(self.cache1, captions, lambda c: list(encode_sdxl_te1(self.parts, c))))
        if self.train_te2:
            h2, pooled = encode_sdxl_te2(self.parts, captions)
        else:
            pairs = _cached(self.cache2, captions,
                            lambda c: list(zip(*encode_sdxl_te2(self.parts, c))))
            h2, pooled = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        return torch.cat([h1, h2.to(h1.dtype)], dim=2), pooled


def _cached(cache: dict[str, Any], captions: list[str], encode: Callable[[list[str]], list[Any]]) -> list[Any]:
    """Per caption: the cached value, else `encode` (without gradient) for the new ones; the cache
    keeps at most CACHE_LIMIT captions (shuffled tags make many variants)."""
    missing = list(dict.fromkeys(c for c in captions if c not in cache))
    fresh: dict[str, Any] = {}
    if missing:
        with torch.no_grad():
            fresh = dict(zip(missing, encode(missing)))
        if len(cache) + len(fresh) <= CACHE_LIMIT:
            cache.update(fresh)
    return [cache[c] if c in cache else fresh[c] for c in captions]


def size_vector(parts: ModelParts, pooled: torch.Tensor, original_hw: torch.Tensor, crop_tl: torch.Tensor,
                target_hw: torch.Tensor) -> torch.Tensor:
    """SDXL's `vector` (the UNet's `y`): pooled ⊕ the Fourier embeddings of original size, crop
    top-left and target size, computed by the model's own conditioner embedders. Sizes are (B, 2),
    height first."""
    assert parts.size_embedders is not None
    sizes = [e(v.to(pooled.device)) for e, v in zip(parts.size_embedders, (original_hw, crop_tl, target_hw))]
    return torch.cat([pooled, *[s.to(pooled.dtype) for s in sizes]], dim=1)
