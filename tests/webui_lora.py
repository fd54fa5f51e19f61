"""The WebUI's Lora loader rules, written from research/training.md §2.1-2.3 (not from our writer):
how it converts kohya names to its own module names (SD1 and SD2), which modules it maps them onto
and how it merges a file into the weights."""
from __future__ import annotations

import re
from collections.abc import Callable

import torch

from lora_lab.host.protocol import ModelParts
from lora_lab.train.keys import te_targets, unet_targets
from lora_lab.train.network import LoRANetwork

_RESNET = {"conv1": "in_layers_2", "conv2": "out_layers_3", "norm1": "in_layers_0",
           "norm2": "out_layers_0", "time_emb_proj": "emb_layers_1", "conv_shortcut": "skip_connection"}
_RULES: list[tuple[str, Callable[..., str]]] = [
    (r"lora_unet_down_blocks_(\d+)_attentions_(\d+)_(.+)",
     lambda b, a, x: f"diffusion_model_input_blocks_{1 + 3 * int(b) + int(a)}_1_{x}"),
    (r"lora_unet_down_blocks_(\d+)_resnets_(\d+)_(.+)",
     lambda b, a, x: f"diffusion_model_input_blocks_{1 + 3 * int(b) + int(a)}_0_{_RESNET.get(x, x)}"),
    (r"lora_unet_down_blocks_(\d+)_downsamplers_0_conv",
     lambda b: f"diffusion_model_input_blocks_{3 + 3 * int(b)}_0_op"),
    (r"lora_unet_mid_block_attentions_0_(.+)", lambda x: f"diffusion_model_middle_block_1_{x}"),
    (r"lora_unet_mid_block_resnets_(\d+)_(.+)",
     lambda r, x: f"diffusion_model_middle_block_{2 * int(r)}_{_RESNET.get(x, x)}"),
    (r"lora_unet_up_blocks_(\d+)_attentions_(\d+)_(.+)",
     lambda b, a, x: f"diffusion_model_output_blocks_{3 * int(b) + int(a)}_1_{x}"),
    (r"lora_unet_up_blocks_(\d+)_resnets_(\d+)_(.+)",
     lambda b, a, x: f"diffusion_model_output_blocks_{3 * int(b) + int(a)}_0_{_RESNET.get(x, x)}"),
    (r"lora_unet_up_blocks_(\d+)_upsamplers_0_conv",
     lambda b: f"diffusion_model_output_blocks_{2 + 3 * int(b)}_{2 if int(b) > 0 else 1}_conv"),
    (r"lora_te_text_model_encoder_layers_(\d+)_(.+)",
     lambda n, y: f"transformer_text_model_encoder_layers_{n}_{y}"),
]
_SD2_TE = (r"lora_te_text_model_encoder_layers_(\d+)_(.+)",
           lambda n, y: f"model_transformer_resblocks_{n}_" + y.replace("self_attn", "attn")
           .replace("mlp_fc1", "mlp_c_fc").replace("mlp_fc2", "mlp_c_proj"))
_X_PROJ = re.compile(r"(.*)_([qkv]_proj)$")


def webui_name(kohya: str, sd2: bool = False) -> str:
    for pattern, build in ([_SD2_TE] if sd2 else []) + _RULES:
        m = re.fullmatch(pattern, kohya)
        if m:
            return build(*m.groups())
    raise AssertionError(f"no conversion rule for {kohya}")


def webui_module(mapping: dict[str, torch.nn.Module], kohya: str, sd2: bool = False) -> torch.nn.Module | None:
    """The module the loader attaches a file's module to (`re_x_proj` falls back onto an
    `nn.MultiheadAttention` for q/k/v)."""
    name = webui_name(kohya, sd2)
    module = mapping.get(name)
    m = _X_PROJ.fullmatch(name)
    if module is None and m:
        module = mapping.get(m.group(1))
    return module


_SDXL_TE2 = re.compile(r"lora_te2_text_model_encoder_layers_(\d+)_(.+)")


def webui_sdxl_module(mapping: dict[str, torch.nn.Module], kohya: str) -> torch.nn.Module | None:
    """The WebUI's SDXL lookup, in its order: the diffusers conversion (only its lora_te2 rule
    applies to SDXL names), the name itself, `re_x_proj`, then 'lora_unet' -> 'diffusion_model' or
    'lora_te1_text_model' -> '0_transformer_text_model'."""
    key = kohya
    m = _SDXL_TE2.fullmatch(kohya)
    if m:
        n, rest = m.groups()
        rest = rest.replace("mlp_fc1", "mlp_c_fc") if "mlp_fc1" in rest else \
            rest.replace("mlp_fc2", "mlp_c_proj") if "mlp_fc2" in rest else rest.replace("self_attn", "attn")
        key = f"1_model_transformer_resblocks_{n}_{rest}"
    module = mapping.get(key)
    x = _X_PROJ.fullmatch(key)
    if module is None and x:
        module = mapping.get(x.group(1))
    if module is None and "lora_unet" in kohya:
        module = mapping.get(kohya.replace("lora_unet", "diffusion_model"))
    elif module is None and "lora_te1_text_model" in kohya:
        module = mapping.get(kohya.replace("lora_te1_text_model", "0_transformer_text_model"))
    return module


def webui_sdxl_layer_mapping(sgm_model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """`network_layer_mapping` for SDXL: each text embedder's modules as `{i}_{name}` (in the WebUI
    they sit under the hijack's `.wrapped`, which is the sgm embedder itself), then the UNet's."""
    mapping: dict[str, torch.nn.Module] = {}
    for i, embedder in enumerate(sgm_model.conditioner.embedders):
        embedder = getattr(embedder, "wrapped", embedder)
        if not hasattr(embedder, "transformer") and not hasattr(embedder, "model"):
            continue  # the size embedders: the WebUI skips them (no .wrapped)
        for name, module in embedder.named_modules():
            mapping[f"{i}_{name.replace('.', '_')}"] = module
    mapping.update({n.replace(".", "_"): m for n, m in sgm_model.model.named_modules()})
    return mapping


def webui_layer_mapping(ldm_model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """`network_layer_mapping` as the WebUI builds it for SD1/SD2 (`.` -> `_`)."""
    mapping = {n.replace(".", "_"): m for n, m in ldm_model.cond_stage_model.named_modules()}
    mapping.update({n.replace(".", "_"): m for n, m in ldm_model.model.named_modules()})
    return mapping


def modules_in_file(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        module, _, part = key.partition(".")  # the WebUI splits at the first dot
        out.setdefault(module, {})[part] = value
    return out


def merge_the_webui_way(ldm_model: torch.nn.Module, tensors: dict[str, torch.Tensor],
                        sd2: bool = False, sdxl: bool = False) -> None:
    """weight += up @ down * alpha / dim (network_lora.calc_updown + finalize_updown); for an
    OpenCLIP attention, q/k/v go into the chunks of `in_proj_weight` and out into `out_proj`."""
    mapping = webui_sdxl_layer_mapping(ldm_model) if sdxl else webui_layer_mapping(ldm_model)
    with torch.no_grad():
        for name, parts in modules_in_file(tensors).items():
            module = webui_sdxl_module(mapping, name) if sdxl else webui_module(mapping, name, sd2)
            assert module is not None, name
            up, down = parts["lora_up.weight"].float(), parts["lora_down.weight"].float()
            scale = float(parts["alpha"]) / down.shape[0]
            if isinstance(module, torch.nn.MultiheadAttention):
                part = name.rsplit("_", 2)[-2]  # q, k or v
                chunk = module.in_proj_weight.chunk(3)["qkv".index(part)]
                chunk += (up @ down) * scale
                continue
            updown = (up.flatten(1) @ down.flatten(1)).reshape(module.weight.shape)
            module.weight += updown * scale


def network_from_file(parts: ModelParts, tensors: dict[str, torch.Tensor], clip_skip: int) -> LoRANetwork:
    """Our adapters (UNet with LoCon, text encoder; dim 4, conv 4/2) loaded from a saved file."""
    targets = unet_targets(parts.unet, conv=True) + te_targets(parts.text_encoder, clip_skip)
    network = LoRANetwork(targets, 4, 4.0, 4, 2.0, parts.device, seed=0)
    network.load_from_file_tensors(tensors)
    network.eval()
    return network
