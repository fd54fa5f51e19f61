"""Epoch files of a random LoRA for the tiny SD1 checkpoint, named and tagged as kohya's sd-scripts
writes them (`name-000001.safetensors` …, the final `name.safetensors`), for tier-2 tests and the
sweep benchmark. The weights are random but strong enough to change every image."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from ..files.lora_files import epoch_stem

RANK = 4
# UNet cross-attention and text-encoder attention: what the WebUI's loader maps for SD1.
_SUFFIXES = (".attn2.to_k.weight", ".attn2.to_v.weight", ".attn1.to_q.weight")
_TE = "cond_stage_model.transformer.text_model.encoder.layers."
_UNET = "model.diffusion_model."


def kohya_name(key: str) -> str | None:
    """The kohya module name of a tiny-checkpoint weight key (None: not one a test LoRA wraps)."""
    module = key.removesuffix(".weight")
    if key.startswith(_TE) and key.endswith((".self_attn.q_proj.weight", ".self_attn.v_proj.weight")):
        return "lora_te_text_model_encoder_layers_" + module[len(_TE):].replace(".", "_")
    if not (key.startswith(_UNET) and key.endswith(_SUFFIXES)):
        return None
    parts = module[len(_UNET):].split(".")
    if parts[0] == "input_blocks":
        i = int(parts[1])
        block, rest = f"down_blocks_{(i - 1) // 3}_attentions_{(i - 1) % 3}", parts[3:]
    elif parts[0] == "output_blocks":
        i = int(parts[1])
        block, rest = f"up_blocks_{i // 3}_attentions_{i % 3}", parts[3:]
    else:
        block, rest = "mid_block_attentions_0", parts[2:]
    return f"lora_unet_{block}_{'_'.join(rest)}"


def lora_tensors(checkpoint: Path, seed: int, scale: float = 0.6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    with safe_open(str(checkpoint), "np") as f:
        for key in sorted(f.keys()):
            name = kohya_name(key)
            if name is None:
                continue
            out_dim, in_dim = f.get_slice(key).get_shape()[:2]
            down, up = rng.standard_normal((RANK, in_dim)), rng.standard_normal((out_dim, RANK))
            tensors[f"{name}.lora_down.weight"] = (down * scale).astype(np.float32)
            tensors[f"{name}.lora_up.weight"] = (up * scale).astype(np.float32)
            tensors[f"{name}.alpha"] = np.array(RANK, dtype=np.float32)
    return tensors


def write_epochs(checkpoint: Path, lora_dir: Path, name: str, epochs: int, seed: int = 0) -> list[Path]:
    """`epochs` files of LoRA `name`: `name-00000N` for all but the last, then the final `name`."""
    lora_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for epoch in range(1, epochs + 1):
        stem = epoch_stem(name, None if epoch == epochs else epoch)
        meta = {"ss_output_name": name, "ss_session_id": f"{name}-{seed}", "ss_epoch": str(epoch),
                "ss_training_started_at": "1700000000"}
        path = lora_dir / f"{stem}.safetensors"
        save_file(lora_tensors(checkpoint, seed * 1000 + epoch), str(path), meta)
        paths.append(path)
    return paths
