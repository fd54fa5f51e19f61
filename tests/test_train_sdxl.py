"""SDXL with the real `sgm`: the tiny SDXL model loads, our conditioning equals sgm's own
conditioner, a UNet + CLIP-L + bigG run writes files whose every key the WebUI's SDXL rules map onto
a real module, the file merged the WebUI's way reproduces the in-training output, and the model is
left exactly as found."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from lora_lab.devtools.sample_dataset import build_sample_dataset
from lora_lab.host.fingerprint import parts_fingerprint
from lora_lab.hosts.standalone.ldm_loader import resolve_config
from lora_lab.hosts.standalone.families import family_of
from lora_lab.hosts.sgm_parts import parts_from_sgm
from lora_lab.train import TrainConfig, train
from lora_lab.train.keys import TE1_PREFIX, TE2_PREFIX, te_targets, unet_targets
from lora_lab.train.loop import diffusion_loss
from lora_lab.train.network import LoRANetwork, inject
from lora_lab.train.text import SdxlText, size_vector

from .test_train_safety import model_state
from .webui_lora import merge_the_webui_way, modules_in_file, webui_sdxl_layer_mapping, webui_sdxl_module

CAPTIONS = ["ohwx, red circle", "ohwx, blue square, white background"]
SIZES = (torch.tensor([[96, 64], [64, 64]]), torch.tensor([[16, 0], [0, 0]]), torch.tensor([[64, 64], [64, 64]]))


def test_tiny_sdxl_is_byte_identical_on_rebuild_and_found_from_its_header(sgm, tiny_sdxl_checkpoint,
                                                                           tmp_path: Path) -> None:
    from lora_lab.devtools.tiny_model import build_tiny_model

    again = build_tiny_model(tmp_path, "sdxl", Path(sgm.__file__).parents[1])
    assert again.read_bytes() == tiny_sdxl_checkpoint.read_bytes()
    bare = tmp_path / "bare" / "model.safetensors"  # no yaml beside it: the header tells
    bare.parent.mkdir()
    bare.write_bytes(again.read_bytes())
    assert family_of(resolve_config(bare, None, None)) == "sdxl"


def test_tiny_sdxl_loads_as_sgms_diffusion_engine(sdxl_host) -> None:
    parts = sdxl_host.model_parts()
    assert type(sdxl_host.ldm_model).__name__ == "DiffusionEngine"
    assert (parts.family, parts.parameterization, parts.latent_scale) == ("sdxl", "eps", 0.13025)
    assert [e.input_key for e in parts.size_embedders] == [
        "original_size_as_tuple", "crop_coords_top_left", "target_size_as_tuple"]
    assert isinstance(parts.text_encoder_2.transformer.resblocks[0].attn, torch.nn.MultiheadAttention)


def test_conditioning_equals_sgms_own_conditioner(sdxl_host) -> None:
    parts = sdxl_host.model_parts()
    conditioner = sdxl_host.ldm_model.conditioner
    batch = {"txt": CAPTIONS, "original_size_as_tuple": SIZES[0], "crop_coords_top_left": SIZES[1],
             "target_size_as_tuple": SIZES[2]}
    with torch.no_grad():
        theirs = conditioner(batch)
        context, pooled = SdxlText(parts, train_te1=False, train_te2=False)(CAPTIONS)
        vector = size_vector(parts, pooled, *SIZES)
    assert context.shape == theirs["crossattn"].shape and vector.shape == theirs["vector"].shape
    assert (context - theirs["crossattn"]).abs().max() < 1e-5
    assert (vector - theirs["vector"]).abs().max() < 1e-5
    # trained encoders give the same values, with gradient
    context_t, pooled_t = SdxlText(parts, train_te1=True, train_te2=True)(CAPTIONS)
    assert (context_t - context).abs().max() < 1e-5 and (pooled_t - pooled).abs().max() < 1e-5


def test_size_conditioning_follows_the_image_and_its_crop(sdxl_host, tmp_path: Path) -> None:
    from PIL import Image

    from lora_lab.train.data import load_dataset

    folder = tmp_path / "1_x"
    folder.mkdir()
    Image.new("RGB", (300, 200), "red").save(folder / "wide.png")
    config = TrainConfig(dataset_dir=tmp_path, name="x", resolution=64, min_bucket_reso=64, max_bucket_reso=64,
                         enable_bucket=False)
    item = load_dataset(config).items[0]
    original, crop, target = item.size_condition(False, "real")
    assert original == (200, 300) and target == (64, 64)
    assert crop == (0, (item.fit.resized[0] - 64) // 2) and crop[1] > 0
    _, flipped, _ = item.size_condition(True, "real")
    assert flipped == (0, item.fit.resized[0] - 64 - crop[1])  # mirrored
    assert item.size_condition(False, "bucket") == ((64, 64), (0, 0), (64, 64))


def test_lora_targets_use_sdxl_names(sdxl_host) -> None:
    parts = sdxl_host.model_parts()
    unet = unet_targets(parts.unet, conv=True, compvis=True)
    assert all(t.name.startswith("lora_unet_") and "down_blocks" not in t.name for t in unet)
    assert any(t.name == "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q" for t in unet)
    te1 = te_targets(parts.text_encoder, prefix=TE1_PREFIX, used=parts.te1_hidden_index)
    te2 = te_targets(parts.text_encoder_2, prefix=TE2_PREFIX, encoder=2, used=10**6)
    assert len(te1) == 1 * 6  # read at hidden state 1 of 2: the second layer never reaches it
    assert len(te2) == 10 * 6 and {t.encoder for t in te2} == {2}  # bigG: all, for the pooled output


# --- one run: UNet + LoCon + CLIP-L + bigG ------------------------------------------------------------

@pytest.fixture(scope="module")
def run(sdxl_host, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("train-sdxl")
    dataset = build_sample_dataset(root / "data", trigger="ohwx", images=3, repeats=2)
    config = TrainConfig(dataset_dir=dataset, name="xlshapes", output_dir=root / "lora", dim=4, alpha=4,
                         conv_dim=4, conv_alpha=2, unet_lr=2e-3, te_lr=1e-3, te2_lr=5e-4, epochs=2,
                         resolution=64, min_bucket_reso=64, max_bucket_reso=128, save_precision="fp32",
                         flip=True, shuffle_caption=True, preview_every_n_epochs=2, preview_steps=2)
    parts = sdxl_host.model_parts()
    before = model_state(sdxl_host), parts_fingerprint(parts)
    result = train(sdxl_host, config)
    assert result.state == "finished", result.message
    return result, config, before


def test_run_leaves_the_sdxl_model_as_it_found_it(run, sdxl_host) -> None:
    result, _, before = run
    parts = sdxl_host.model_parts()
    assert (model_state(sdxl_host), parts_fingerprint(parts)) == before


def test_every_key_maps_onto_a_real_module_under_the_webuis_sdxl_rules(run, sdxl_host) -> None:
    result, _, _ = run
    tensors = load_file(str(result.files[-1]))
    mapping = webui_sdxl_layer_mapping(sdxl_host.ldm_model)
    modules = modules_in_file(tensors)
    counts = {p: sum(m.startswith(p) for m in modules) for p in ("lora_unet_", TE1_PREFIX, TE2_PREFIX)}
    assert counts[TE1_PREFIX] == 6 and counts[TE2_PREFIX] == 60 and counts["lora_unet_"] > 20
    attention = 0
    for name, parts in modules.items():
        assert set(parts) == {"lora_down.weight", "lora_up.weight", "alpha"}, name
        target = webui_sdxl_module(mapping, name)
        assert isinstance(target, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.MultiheadAttention)), name
        attention += isinstance(target, torch.nn.MultiheadAttention)
    assert attention == 10 * 3  # bigG's q/k/v onto its attention, out onto out_proj
    with safe_open(str(result.files[-1]), framework="pt") as f:
        meta = f.metadata()
    assert meta["ss_base_model_version"].startswith("sdxl_") and meta["ss_v2"] == "False"
    assert meta["modelspec.architecture"] == "stable-diffusion-xl-v1-base/lora"
    assert meta["lora_lab_size_conditioning"] == "real" and json.loads(meta["ss_text_encoder_lr"]) == [1e-3, 5e-4]
    card = json.loads(result.files[-1].with_suffix(".json").read_text(encoding="utf-8"))
    assert card["sd version"] == "SDXL"


def test_file_merged_the_webui_way_reproduces_training_output(run, sdxl_host) -> None:
    result, _, _ = run
    tensors = load_file(str(result.files[-1]))
    parts = sdxl_host.model_parts()
    targets = (unet_targets(parts.unet, conv=True, compvis=True)
               + te_targets(parts.text_encoder, prefix=TE1_PREFIX, used=parts.te1_hidden_index)
               + te_targets(parts.text_encoder_2, prefix=TE2_PREFIX, encoder=2, used=10**6))
    network = LoRANetwork(targets, 4, 4.0, 4, 2.0, parts.device, seed=0)
    network.load_from_file_tensors(tensors)
    network.eval()
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([10, 700])

    def cond(p):
        context, pooled = SdxlText(p, False, False)(CAPTIONS)
        return {"context": context, "y": size_vector(p, pooled, *SIZES)}
    with torch.no_grad():
        base_cond = cond(parts)
        base = parts.unet(x, t, **base_cond)
        with inject(network):
            trained_cond = cond(parts)
            trained = parts.unet(x, t, **trained_cond)
        merged_model = copy.deepcopy(sdxl_host.ldm_model)
        merge_the_webui_way(merged_model, tensors, sdxl=True)
        merged_parts = parts_from_sgm(merged_model, "merged")
        merged_cond = merged_model.conditioner({"txt": CAPTIONS, "original_size_as_tuple": SIZES[0],
                                                "crop_coords_top_left": SIZES[1], "target_size_as_tuple": SIZES[2]})
        merged = merged_parts.unet(x, t, context=merged_cond["crossattn"], y=merged_cond["vector"])
    for key, theirs in (("context", "crossattn"), ("y", "vector")):
        assert (trained_cond[key] - base_cond[key]).abs().max() > 1e-4, key  # both encoders' LoRA act
        assert (trained_cond[key] - merged_cond[theirs]).abs().max() < 1e-4, key
    assert (trained - base).abs().max() > 1e-3
    assert (trained - merged).abs().max() < 1e-4


@pytest.mark.parametrize("parameterization", ["eps", "v"])
def test_training_one_image_lowers_its_denoising_loss(sdxl_host, parameterization: str, tmp_path: Path) -> None:
    """The whole trainer (size conditioning included) on one image with its trigger: its
    fixed-noise loss at 20 timesteps drops by at least 30 %. v: the same model trained and judged
    with v targets (the tiny model is random either way)."""
    import numpy as np
    from PIL import Image, ImageDraw

    folder = tmp_path / "data" / "100_ohwx"
    folder.mkdir(parents=True)
    image = Image.new("RGB", (64, 64), (250, 250, 250))
    ImageDraw.Draw(image).ellipse((12, 12, 52, 52), fill=(220, 30, 30))
    image.save(folder / "circle.png")
    parts = sdxl_host.model_parts()
    # with LoCon: SDXL's layout has no attention at the full latent size, and a 64 px image's
    # latent is 8x8, so attention alone reaches little of it (real SDXL: 128x128 with attention at 64 and 32)
    config = TrainConfig(dataset_dir=tmp_path / "data", name="circle", output_dir=tmp_path / "out", dim=8,
                         alpha=8, conv_dim=8, conv_alpha=8, unet_lr=2e-3, te_lr=0.0, epochs=3, resolution=64,
                         min_bucket_reso=64, max_bucket_reso=64, save_precision="fp32", preview_every_n_epochs=0)
    saved = parts.parameterization
    parts.parameterization = parameterization  # type: ignore[assignment]
    try:
        result = train(sdxl_host, config)
        assert (result.state, result.steps_done) == ("finished", 300)
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        timesteps = torch.arange(25, 1000, 50)
        with torch.no_grad():
            from lora_lab.train.latents import posterior

            latent = posterior(parts.vae, pixels)[0] * parts.latent_scale
            latents = latent.repeat(len(timesteps), 1, 1, 1)
            noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(0))
            context, pooled = SdxlText(parts, False, False)(["ohwx"] * len(timesteps))
            size = torch.tensor([[64, 64]] * len(timesteps))
            cond = {"context": context, "y": size_vector(parts, pooled, size, torch.zeros_like(size), size)}

            def loss() -> float:
                return float(diffusion_loss(parts.unet, parts.alphas_cumprod, latents, cond, noise, timesteps,
                                            parameterization).mean())
            base = loss()
            network = LoRANetwork(unet_targets(parts.unet, conv=True, compvis=True), 8, 8.0, 8, 8.0,
                                  parts.device, 0)
            network.load_from_file_tensors(load_file(str(result.final_file)))
            network.eval()
            with inject(network):
                trained = loss()
    finally:
        parts.parameterization = saved  # type: ignore[assignment]
    assert trained <= 0.7 * base, (base, trained)


def test_an_sdxl_run_interrupted_or_failing_leaves_the_model_as_found(sdxl_host, tmp_path: Path) -> None:
    parts = sdxl_host.model_parts()
    dataset = build_sample_dataset(tmp_path / "data", trigger="ohwx", images=2, repeats=1)
    base = dict(dataset_dir=dataset, output_dir=tmp_path / "lora", dim=2, alpha=2, te_lr=1e-4, epochs=2,
                resolution=64, min_bucket_reso=64, max_bucket_reso=128, preview_every_n_epochs=0)
    before = model_state(sdxl_host)
    original = parts.size_embedders[0].forward
    calls = {"n": 0}

    def failing(x):  # the third conditioning fails mid-run
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected failure")
        return original(x)
    parts.size_embedders[0].forward = failing
    try:
        failed = train(sdxl_host, TrainConfig(name="xlfail", **base))
    finally:
        del parts.size_embedders[0].forward
    assert failed.state == "failed" and "injected failure" in failed.message
    assert model_state(sdxl_host) == before

    def interrupt_after_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= 2:
            sdxl_host.interrupt.set()
        return original(*args, **kwargs)
    calls["n"] = 0
    parts.size_embedders[0].forward = interrupt_after_two
    try:
        stopped = train(sdxl_host, TrainConfig(name="xlstop", **base))
    finally:
        del parts.size_embedders[0].forward
        sdxl_host.interrupt.clear()
    assert stopped.state == "interrupted"
    assert model_state(sdxl_host) == before


def test_gradient_checkpointing_reaches_the_lora_inside_sgms_blocks(sdxl_host) -> None:
    """Ours, and with sgm's own checkpoint flags on (which would drop an injected LoRA's gradients):
    the same gradients as without checkpointing."""
    from lora_lab.train.checkpointing import block_forwards
    from lora_lab.train.guard import frozen

    from .test_train_learning import ldm_checkpoint_flags

    parts = sdxl_host.model_parts()
    targets = (unet_targets(parts.unet, conv=True, compvis=True)
               + te_targets(parts.text_encoder_2, prefix=TE2_PREFIX, encoder=2, used=10**6))
    network = LoRANetwork(targets, 4, 4.0, 4, 4.0, parts.device, seed=1)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for lora in network.loras.values():
            lora.up.normal_(0, 0.05, generator=gen)
    latents, noise = torch.randn(2, 4, 16, 16, generator=gen), torch.randn(2, 4, 16, 16, generator=gen)

    def grads(checkpointing: bool) -> dict[str, torch.Tensor]:
        network.zero_grad(set_to_none=True)
        with frozen(parts.unet, parts.text_encoder, parts.text_encoder_2, parts.vae), inject(network), \
                block_forwards(parts.unet, checkpointing), torch.enable_grad():
            context, pooled = SdxlText(parts, False, True)(CAPTIONS)
            cond = {"context": context, "y": size_vector(parts, pooled, *SIZES)}
            diffusion_loss(parts.unet, parts.alphas_cumprod, latents, cond, noise, torch.tensor([100, 800]),
                           "eps").mean().backward()
        return {n: p.grad.clone() for n, p in network.named_parameters()}

    plain = grads(False)
    assert all(g.abs().max() > 0 for g in plain.values())
    results = [grads(True)]
    with ldm_checkpoint_flags(parts.unet):
        results += [grads(False), grads(True)]
    for result in results:
        for name, grad in result.items():
            assert torch.allclose(grad, plain[name], rtol=1e-4, atol=1e-6), name
