from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from lora_lab.devtools.tiny_model import NAME, build_tiny_model


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_checkpoint_loads_into_real_ldm_with_every_key(tiny_model_dir: Path) -> None:
    from omegaconf import OmegaConf
    from safetensors.torch import load_file

    from lora_lab.hosts.standalone.ldm_import import import_ldm
    from lora_lab.hosts.standalone.ldm_loader import _offline_clip

    import_ldm()
    from ldm.util import instantiate_from_config

    config = OmegaConf.load(tiny_model_dir / f"{NAME}.yaml")
    with _offline_clip():
        model = instantiate_from_config(config.model)
    missing, unexpected = model.load_state_dict(load_file(tiny_model_dir / f"{NAME}.safetensors"),
                                                strict=False)
    assert missing == [] and unexpected == []


def test_unet_output_is_non_zero_and_depends_on_the_prompt(standalone_host) -> None:
    parts = standalone_host.model_parts()
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    from lora_lab.hosts.standalone.sampling import encode_prompts

    cond = encode_prompts(parts, ["a photo of a cat", "a red house"])["context"]
    with torch.no_grad():
        out_cat = parts.unet(x, torch.tensor([500]), context=cond[:1])
        out_house = parts.unet(x, torch.tensor([500]), context=cond[1:])
    assert out_cat.abs().mean() > 0.01
    assert (out_cat - out_house).abs().mean() > 1e-4
    assert parts.family == "sd1" and parts.parameterization == "eps"
    assert parts.latent_scale == 0.18215


def test_tokenizer_is_real_clip_bpe(standalone_host) -> None:
    tokenizer = standalone_host.model_parts().tokenizer
    assert len(tokenizer) == 49408
    assert tokenizer("a photo of a cat,").input_ids == [49406, 320, 1125, 539, 320, 2368, 267, 49407]


def test_rebuild_gives_identical_bytes(tiny_model_dir: Path) -> None:
    before = digest(tiny_model_dir)
    build_tiny_model(tiny_model_dir)
    assert digest(tiny_model_dir) == before
    assert (tiny_model_dir / f"{NAME}.safetensors").stat().st_size < 40_000_000
