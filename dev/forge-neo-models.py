"""Small SD1/SDXL checkpoints that Forge Neo 2.26 recognises and generates with, built from Neo's own classes.

Run by dev/forge-neo.sh with Neo's venv, in the Neo folder:  venv/bin/python THIS OUT_DIR
Writes OUT_DIR/neo-sd1.safetensors and OUT_DIR/neo-sdxl.safetensors (fp16, seeded: same bytes on rebuild).

Why not the project's tiny-sd1/tiny-sdxl: Neo picks the family in
modules_forge/packages/huggingface_guess (model_list.py `BASE.matches`: every key of the class's
`unet_config` must equal what detection.py reads off the UNet's shapes), so the UNet needs
model_channels 320 and context_dim 768 (SD15), or 320 / 2048 / adm 2816 / input transformer depths
[0,0,2,2,10,10] / linear proj (SDXL). The text encoders and VAE are then built from the committed
configs in backend/huggingface/<repo>/ (backend/loader.py load_huggingface_component) and loaded with
load_state_dict(strict=False): missing keys stay uninitialised, other shapes raise. So those are full
size here (random weights); only the UNet is cut down (320 channels at every level for SD1,
channel_mult 1 and no output-block attention for SDXL).
"""
import os
import sys

sys.path[:0] = [os.getcwd(), os.path.join(os.getcwd(), "modules_forge", "packages")]
sys.argv[1:] = [sys.argv[1], "--cpu"]  # backend.args reads sys.argv: CPU only, no CUDA probe

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection  # noqa: E402

import huggingface_guess  # noqa: E402
from backend.nn.clip import IntegratedCLIP  # noqa: E402
from backend.nn.unet import IntegratedUNet2DConditionModel  # noqa: E402
from backend.nn.vae import IntegratedAutoencoderKL  # noqa: E402

HF = "backend/huggingface"
SEED = 20260


def prefixed(prefix, module, skip=()):
    return {prefix + k: v for k, v in module.state_dict().items() if not any(s in k for s in skip)}


def clip(cls, folder):
    return IntegratedCLIP(cls, CLIPTextConfig.from_pretrained(folder), add_text_projection=True)


def vae(folder):
    return IntegratedAutoencoderKL.from_config(IntegratedAutoencoderKL.load_config(folder))


def sd1():
    repo = f"{HF}/runwayml/stable-diffusion-v1-5"
    # SD1's block layout (12 input and 12 output blocks: 4 levels of 2 ResBlocks, attention in the
    # first 3), which kohya's diffusers-style SD1 LoRA names assume, at 320 channels throughout
    unet = IntegratedUNet2DConditionModel(
        in_channels=4, model_channels=320, out_channels=4, num_res_blocks=[2, 2, 2, 2], channel_mult=[1, 1, 1, 1],
        num_heads=8, use_spatial_transformer=True, transformer_depth=[1, 1, 1, 1, 1, 1, 0, 0],
        transformer_depth_output=[1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
        transformer_depth_middle=1, context_dim=768, use_linear_in_transformer=False)
    sd = prefixed("model.diffusion_model.", unet)
    sd |= prefixed("first_stage_model.", vae(f"{repo}/vae"))
    sd |= prefixed("cond_stage_model.", clip(CLIPTextModel, f"{repo}/text_encoder"), skip=("text_projection",))
    return sd


def sdxl():
    repo = f"{HF}/stabilityai/stable-diffusion-xl-base-1.0"
    unet = IntegratedUNet2DConditionModel(
        in_channels=4, model_channels=320, out_channels=4, num_res_blocks=[2, 2, 2], channel_mult=[1, 1, 1],
        num_classes="sequential", adm_in_channels=2816, num_heads=-1, num_head_channels=64,
        use_spatial_transformer=True, transformer_depth=[0, 0, 2, 2, 10, 10], transformer_depth_output=[0] * 9,
        transformer_depth_middle=1, context_dim=2048, use_linear_in_transformer=True)
    sd = prefixed("model.diffusion_model.", unet)
    sd |= prefixed("first_stage_model.", vae(f"{repo}/vae"))
    sd |= prefixed("conditioner.embedders.0.", clip(CLIPTextModel, f"{repo}/text_encoder"), skip=("text_projection",))
    sd |= prefixed("conditioner.embedders.1.model.", clip(CLIPTextModelWithProjection, f"{repo}/text_encoder_2"))
    return sd


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_default_dtype(torch.float16)  # halves the files; Neo casts to its own dtypes
    for name, build, family in (("neo-sd1", sd1, "SD15"), ("neo-sdxl", sdxl, "SDXL")):
        torch.manual_seed(SEED)
        with torch.no_grad():
            sd = {k: v.detach().contiguous() for k, v in build().items()}
        guess = type(huggingface_guess.guess(dict(sd))).__name__
        assert guess == family, f"{name}: Neo would take it for {guess}, not {family}"
        path = os.path.join(out, f"{name}.safetensors")
        save_file(sd, path + ".partial", metadata={"format": "pt"})
        os.replace(path + ".partial", path)
        print(f"{path}: {guess}, {sum(v.numel() for v in sd.values()) / 1e6:.0f}M parameters")
        del sd


if __name__ == "__main__":
    main()
