"""Which modules a LoRA wraps, and the names sd-scripts gives them in a file.

SD1/SD2 UNet modules get diffusers-style kohya names (`lora_unet_down_blocks_0_attentions_0_…`),
which the WebUI's Lora loader converts back with SD1 block arithmetic; SDXL's keep their module
path (`lora_unet_input_blocks_4_1_…`), and its text encoders are `lora_te1_`/`lora_te2_`. Text-encoder modules get
HF CLIP names (`lora_te_text_model_encoder_layers_0_self_attn_q_proj`), also for SD2's OpenCLIP,
whose fused `nn.MultiheadAttention` becomes four targets (q/k/v slices of `in_proj_weight` and
`out_proj`) that the WebUI maps back onto the one module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import torch

UNET_PREFIX = "lora_unet_"
TE_PREFIX = "lora_te_"
TE1_PREFIX, TE2_PREFIX = "lora_te1_", "lora_te2_"  # SDXL: CLIP ViT-L, OpenCLIP bigG

Kind = Literal["linear", "conv"]  # "linear": Linear or 1x1 conv at `dim`; "conv": 3x3 conv at `conv_dim`

_TRANSFORMER = "SpatialTransformer"
_CONV_BLOCKS = ("ResBlock", "Downsample", "Upsample")
_TE_BLOCKS = ("CLIPAttention", "CLIPSdpaAttention", "CLIPFlashAttention2", "CLIPMLP")

_RESNET_RENAMES = {
    "in_layers.2": "conv1",
    "out_layers.3": "conv2",
    "emb_layers.1": "time_emb_proj",
    "skip_connection": "conv_shortcut",
}


class LayoutError(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    name: str  # the kohya name, e.g. lora_unet_down_blocks_0_attentions_0_proj_in
    path: str  # the module's path inside the UNet / text encoder
    module: torch.nn.Module
    kind: Kind
    is_te: bool
    part: str | None = None  # "q", "k", "v" or "out" when `module` is an nn.MultiheadAttention
    encoder: int = 0  # 0: UNet; 1: the (first) text encoder; 2: SDXL's second (OpenCLIP bigG)

    def weight_shape(self) -> tuple[int, ...]:
        if self.part is None:
            return tuple(self.module.weight.shape)
        embed = self.module.embed_dim  # q/k/v/out of a self-attention are all embed x embed
        return (embed, embed)


def _is_1x1(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.Conv2d) and tuple(module.kernel_size) == (1, 1)


def _block_of(path: str) -> tuple[str, int, int, str]:
    """`input_blocks.4.1.proj_in` -> ("input_blocks", 4, 1, "proj_in")."""
    parts = path.split(".")
    if parts[0] == "middle_block":
        return parts[0], 0, int(parts[1]), ".".join(parts[2:])
    return parts[0], int(parts[1]), int(parts[2]), ".".join(parts[3:])


def _resnet_suffix(rest: str, path: str) -> str:
    if rest not in _RESNET_RENAMES:
        raise LayoutError(f"no kohya name for ResBlock layer {path}")
    return _RESNET_RENAMES[rest]


def unet_kohya_name(path: str, block_class: str) -> str:
    """The diffusers-style kohya name of an ldm UNet module path (SD1/SD2 layout).

    `block_class` is the class name of the block the module sits in (SpatialTransformer, ResBlock,
    Downsample or Upsample)."""
    group, i, j, rest = _block_of(path)
    flat = rest.replace(".", "_")
    if group == "input_blocks":
        b, a = (i - 1) // 3, (i - 1) % 3
        if block_class == "Downsample":
            return f"{UNET_PREFIX}down_blocks_{i // 3 - 1}_downsamplers_0_conv"
        if block_class == _TRANSFORMER:
            return f"{UNET_PREFIX}down_blocks_{b}_attentions_{a}_{flat}"
        return f"{UNET_PREFIX}down_blocks_{b}_resnets_{a}_{_resnet_suffix(rest, path)}"
    if group == "middle_block":
        if block_class == _TRANSFORMER:
            return f"{UNET_PREFIX}mid_block_attentions_0_{flat}"
        return f"{UNET_PREFIX}mid_block_resnets_{j // 2}_{_resnet_suffix(rest, path)}"
    if group == "output_blocks":
        b, a = i // 3, i % 3
        if block_class == "Upsample":
            return f"{UNET_PREFIX}up_blocks_{b}_upsamplers_0_conv"
        if block_class == _TRANSFORMER:
            return f"{UNET_PREFIX}up_blocks_{b}_attentions_{a}_{flat}"
        return f"{UNET_PREFIX}up_blocks_{b}_resnets_{a}_{_resnet_suffix(rest, path)}"
    raise LayoutError(f"no kohya name for UNet module {path}")


def _check_unet_layout(unet: torch.nn.Module) -> None:
    blocks = [getattr(unet, "input_blocks", None), getattr(unet, "output_blocks", None)]
    if any(b is None or len(b) != 12 for b in blocks) or not hasattr(unet, "middle_block"):
        raise LayoutError("the UNet does not have the SD1/SD2 block layout (12 input and 12 output "
                          "blocks); LoRA Lab cannot name its LoRA layers the way the WebUI loads them")


def unet_targets(unet: torch.nn.Module, conv: bool, compvis: bool = False) -> list[Target]:
    """Linear and 1x1-conv layers inside the transformer blocks; with `conv`, also the layers of
    ResBlocks and down/upsamplers (3x3 convs become "conv" targets), as sd-scripts selects them.

    `compvis`: SDXL's names, the module path itself (`lora_unet_input_blocks_4_1_…`), which the
    WebUI maps without block arithmetic; otherwise SD1/SD2's diffusers-style names."""
    if not compvis:
        _check_unet_layout(unet)
    targets: list[Target] = []
    for block_path, block in unet.named_modules():
        block_class = type(block).__name__
        wanted = block_class == _TRANSFORMER or (conv and block_class in _CONV_BLOCKS)
        if not wanted:
            continue
        for sub_path, module in block.named_modules():
            if not sub_path or not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                continue
            if isinstance(module, torch.nn.Linear) or _is_1x1(module):
                kind: Kind = "linear"
            elif block_class == _TRANSFORMER:
                continue
            else:
                kind = "conv"
            path = f"{block_path}.{sub_path}"
            name = UNET_PREFIX + path.replace(".", "_") if compvis else unet_kohya_name(path, block_class)
            targets.append(Target(name, path, module, kind, False))
    return targets


def te_targets(text_encoder: torch.nn.Module, clip_skip: int = 1, prefix: str = TE_PREFIX,
               encoder: int = 1, used: int | None = None) -> list[Target]:
    """The Linear layers of every CLIP attention and MLP block that runs at this clip skip (the
    layers after it never touch the output; `used` overrides the count): HF `CLIPTextModel` (SD1,
    SDXL's first) or OpenCLIP's text transformer (SD2, SDXL's second). `prefix`: lora_te_ (SD1/SD2),
    lora_te1_/lora_te2_ (SDXL)."""
    resblocks = getattr(getattr(text_encoder, "transformer", None), "resblocks", None)
    if resblocks is not None:
        targets, layers = _open_clip_targets(resblocks, prefix, encoder), len(resblocks)
    else:
        targets = _hf_clip_targets(text_encoder, prefix, encoder)
        layers = text_encoder.config.num_hidden_layers
    used = layers_used(layers, clip_skip) if used is None else used
    return [t for t in targets if int(_TE_LAYER.search(t.name).group(1)) < used]  # type: ignore[union-attr]


def layers_used(layers: int, clip_skip: int) -> int:
    """How many text-encoder layers run at this clip skip (clip skip 2: all but the last)."""
    return layers - (clip_skip - 1)


_TE_LAYER = re.compile(r"_layers_(\d+)_")


def _hf_clip_targets(text_encoder: torch.nn.Module, prefix: str, encoder: int) -> list[Target]:
    targets: list[Target] = []
    for block_path, block in text_encoder.named_modules():
        if type(block).__name__ not in _TE_BLOCKS:
            continue
        for sub_path, module in block.named_children():
            if isinstance(module, torch.nn.Linear):
                path = f"{block_path}.{sub_path}"
                targets.append(Target(prefix + path.replace(".", "_"), path, module, "linear", True,
                                      encoder=encoder))
    if not targets:
        raise LayoutError("the text encoder is not a Hugging Face CLIPTextModel; train the UNet "
                          "only (text-encoder learning rate 0)")
    return targets


_MHA_PARTS = ("q", "k", "v", "out")


def _open_clip_targets(resblocks: torch.nn.ModuleList, prefix: str, encoder: int) -> list[Target]:
    """Per OpenCLIP residual block: its attention as q/k/v/out and its MLP's c_fc/c_proj, named the
    way sd-scripts names SD2's text encoder (HF CLIP names)."""
    targets: list[Target] = []
    for i, block in enumerate(resblocks):
        attn = block.attn
        if not isinstance(attn, torch.nn.MultiheadAttention) or not attn._qkv_same_embed_dim \
                or attn.bias_k is not None or attn.add_zero_attn:
            raise LayoutError(f"OpenCLIP block {i} has an attention LoRA Lab cannot adapt; train the "
                              "UNet only (text-encoder learning rate 0)")
        stem = f"{prefix}text_model_encoder_layers_{i}_"
        for part in _MHA_PARTS:
            targets.append(Target(f"{stem}self_attn_{part}_proj", f"transformer.resblocks.{i}.attn",
                                  attn, "linear", True, part, encoder))
        for sub, name in (("c_fc", "fc1"), ("c_proj", "fc2")):
            targets.append(Target(f"{stem}mlp_{name}", f"transformer.resblocks.{i}.mlp.{sub}",
                                  getattr(block.mlp, sub), "linear", True, encoder=encoder))
    return targets
