"""CLIP tokenizer and text-config files, written offline.

CLIP's BPE vocabulary ships as `bpe_simple_vocab_16e6.txt.gz` inside `open_clip` (a WebUI pin) and
`clip` (clip-anytorch). From it we derive the HF `vocab.json`/`merges.txt` exactly as CLIP's own
tokenizer builds its encoder, so the token ids equal openai/clip-vit-large-patch14's
(49408 tokens, bos 49406, eos/pad 49407).
"""
from __future__ import annotations

import gzip
import importlib.util
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
N_MERGES = 49152 - 256 - 2

# openai/clip-vit-large-patch14's text tower (SD1's text encoder)
CLIP_L_TEXT: dict[str, Any] = {
    "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
    "num_hidden_layers": 12, "projection_dim": 768,
}


def find_bpe_file() -> Path:
    for package in ("open_clip", "clip"):
        spec = importlib.util.find_spec(package)  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            candidate = Path(location) / BPE_FILE
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(
        f"{BPE_FILE} not found: install open-clip-torch (the WebUI has it) or clip-anytorch with --no-deps")


def _bytes_to_unicode() -> dict[int, str]:
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping  # insertion order (printables first) is the token order


def clip_vocab_and_merges(bpe_path: Path | None = None) -> tuple[dict[str, int], list[str]]:
    lines = gzip.open(bpe_path or find_bpe_file()).read().decode("utf-8").split("\n")
    merges = lines[1: N_MERGES + 1]
    byte_chars = list(_bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(vocab)}, merges


def text_config(hidden_size: int, intermediate_size: int, heads: int, layers: int,
                projection_dim: int) -> dict[str, Any]:
    return {
        "architectures": ["CLIPTextModel"], "model_type": "clip_text_model",
        "vocab_size": 49408, "max_position_embeddings": 77,
        "hidden_size": hidden_size, "intermediate_size": intermediate_size,
        "num_attention_heads": heads, "num_hidden_layers": layers, "projection_dim": projection_dim,
        "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "initializer_factor": 1.0,
        "initializer_range": 0.02, "attention_dropout": 0.0, "dropout": 0.0,
        "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407,
        "torch_dtype": "float32",
    }


def write_clip_folder(folder: Path, config: dict[str, Any]) -> Path:
    """Write a folder `CLIPTokenizer/CLIPTextConfig.from_pretrained` read offline; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocab_and_merges()
    dump = {"ensure_ascii": False, "indent": 1, "sort_keys": True}
    files = {
        "vocab.json": json.dumps(vocab, **dump),
        "merges.txt": "#version: 0.2\n" + "\n".join(merges) + "\n",
        "config.json": json.dumps(config, **dump),
        "special_tokens_map.json": json.dumps({
            "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}, **dump),
        "tokenizer_config.json": json.dumps({
            "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
            "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "errors": "replace",
            "add_prefix_space": False}, **dump),
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8", newline="\n")
    return folder


def cache_dir() -> Path:
    return Path(os.environ.get("LORA_LAB_CACHE", Path.home() / ".cache" / "lora_lab"))


def clip_l_folder() -> Path:
    folder = cache_dir() / "clip-vit-large-patch14"
    if not (folder / "merges.txt").is_file():
        write_clip_folder(folder, _clip_l_config())
    return folder


def clip_tokenizer() -> Any:
    """CLIP-L's `CLIPTokenizer` (the BPE all SD families share), built offline and cached."""
    return _tokenizer_in(str(clip_l_folder()))


@lru_cache(maxsize=2)
def _tokenizer_in(folder: str) -> Any:
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(folder)


def _clip_l_config() -> dict[str, Any]:
    c = CLIP_L_TEXT
    return text_config(c["hidden_size"], c["intermediate_size"], c["num_attention_heads"],
                       c["num_hidden_layers"], c["projection_dim"])
