"""SD2: the OpenCLIP text encoder is encoded the way ldm (and the WebUI) encode it, its fused
attention gets LoRA that reproduces the WebUI's merge, and a v-prediction run on the tiny SD2 model
writes files the WebUI's SD2 rules map completely and leaves the model as it found it (that it
learns: test_train_learning)."""
from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from lora_lab.devtools.sample_dataset import build_sample_dataset
from lora_lab.host.fingerprint import parts_fingerprint
from lora_lab.hosts.standalone.ldm_loader import parts_from_ldm
from lora_lab.train import TrainConfig, train
from lora_lab.train.keys import Target, te_targets
from lora_lab.train.network import LoRANetwork, inject
from lora_lab.train.text import encode_text

from .test_train_safety import model_state
from .webui_lora import merge_the_webui_way, modules_in_file, network_from_file, webui_layer_mapping, \
    webui_module

CAPTIONS = ["ohwx, red circle", "ohwx, blue square, white background"]


def test_tiny_sd2_loads_with_open_clip_and_v_prediction(sd2_host) -> None:
    parts = sd2_host.model_parts()
    assert (parts.family, parts.parameterization, parts.clip_skip) == ("sd2-v", "v", 2)
    blocks = parts.text_encoder.transformer.resblocks
    assert len(blocks) == 10 and isinstance(blocks[0].attn, torch.nn.MultiheadAttention)
    ids = parts.tokenizer(["a photo of a cat,"])
    assert ids.shape == (1, 77)
    assert ids[0, :8].tolist() == [49406, 320, 1125, 539, 320, 2368, 267, 49407]
    assert ids[0, 8:].eq(0).all()  # OpenCLIP pads with 0, not with the end token


def test_text_encoding_is_the_embedders_own(sd2_host) -> None:
    parts = sd2_host.model_parts()
    embedder = sd2_host.ldm_model.cond_stage_model  # ldm's FrozenOpenCLIPEmbedder, layer "penultimate"
    with torch.no_grad():
        ours = encode_text(parts, CAPTIONS, parts.clip_skip)
        theirs = embedder(CAPTIONS)
        last = encode_text(parts, CAPTIONS, 1)
    assert torch.equal(ours, theirs)
    assert (ours - last).abs().max() > 1e-3


@pytest.mark.parametrize("batch_first", [False, True])
def test_attention_lora_equals_the_webuis_merge(batch_first: bool) -> None:
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=batch_first).eval()
    targets = [Target(f"a_{p}", "attn", mha, "linear", True, p) for p in ("q", "k", "v", "out")]
    network = LoRANetwork(targets, 4, 2.0, 0, 0.0, torch.device("cpu"), seed=0)
    x = torch.randn(3, 7, 32) if batch_first else torch.randn(7, 3, 32)
    causal = torch.full((7, 7), float("-inf")).triu(1)
    padding = torch.zeros(3, 7, dtype=torch.bool)
    padding[:, -2:] = True
    calls = [dict(attn_mask=causal, need_weights=False), dict(attn_mask=causal),
             dict(key_padding_mask=padding, average_attn_weights=False), dict(is_causal=True, attn_mask=causal)]
    with torch.no_grad():
        base = [mha(x, x, x, **kw) for kw in calls]
        with inject(network):  # up = 0: exactly the base attention
            same = [mha(x, x, x, **kw) for kw in calls]
        for lora in network.loras.values():
            lora.up.normal_(0, 0.1)
        network.eval()
        with inject(network):
            ours = [mha(x, x, x, **kw) for kw in calls]  # one input: the q/k/v downs in one GEMM
            apart = [mha(x, x.clone(), x.clone(), **kw) for kw in calls]  # three: one each
        merged = copy.deepcopy(mha)
        delta = {p: network.loras[f"a_{p}"].up @ network.loras[f"a_{p}"].down * 0.5 for p in "qkv"}
        merged.in_proj_weight += torch.cat([delta["q"], delta["k"], delta["v"]])
        merged.out_proj.weight += network.loras["a_out"].up @ network.loras["a_out"].down * 0.5
        expected = [merged(x, x, x, **kw) for kw in calls]
    assert "forward" not in mha.__dict__
    for (b_out, b_w), (s_out, s_w) in zip(base, same):
        assert (b_out - s_out).abs().max() < 1e-5
        assert (b_w is None) == (s_w is None)
    for (o_out, _), (a_out, _) in zip(ours, apart):
        assert (o_out - a_out).abs().max() < 1e-5
    for (o_out, o_w), (e_out, e_w) in zip(ours, expected):
        assert (o_out - base[0][0]).abs().max() > 1e-3
        assert (o_out - e_out).abs().max() < 1e-5
        if e_w is not None:
            assert o_w.shape == e_w.shape and (o_w - e_w).abs().max() < 1e-5


def test_text_encoder_targets_skip_layers_after_the_clip_skip(sd2_host, standalone_host) -> None:
    sd2 = te_targets(sd2_host.model_parts().text_encoder, clip_skip=2)
    assert len(sd2) == 9 * 6  # the 10th block never runs at "penultimate"
    assert sd2[0].name == "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    assert {t.part for t in sd2} == {"q", "k", "v", "out", None}
    sd1 = standalone_host.model_parts().text_encoder
    assert len(te_targets(sd1, clip_skip=1)) == 2 * 6 and len(te_targets(sd1, clip_skip=2)) == 6


# --- one v-prediction run with text-encoder training ----------------------------------------------

@pytest.fixture(scope="module")
def run(sd2_host, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("train-sd2")
    dataset = build_sample_dataset(root / "data", trigger="ohwx", images=4, repeats=2)
    config = TrainConfig(dataset_dir=dataset, name="sd2shapes", output_dir=root / "lora", dim=4,
                         alpha=4, conv_dim=4, conv_alpha=2, unet_lr=2e-3, te_lr=1e-3, epochs=2,
                         clip_skip=1, resolution=64, min_bucket_reso=64, max_bucket_reso=128,
                         save_precision="fp32", preview_every_n_epochs=2, preview_steps=2)
    before = model_state(sd2_host), parts_fingerprint(sd2_host.model_parts())
    result = train(sd2_host, config)
    assert result.state == "finished", result.message
    return result, config, before


def test_run_leaves_the_sd2_model_as_it_found_it(run, sd2_host) -> None:
    result, _, before = run
    assert (model_state(sd2_host), parts_fingerprint(sd2_host.model_parts())) == before
    run_file = result.files[-1].with_name("sd2shapes.lora_lab.json")
    notes = json.loads(run_file.read_text(encoding="utf-8"))["result"]["notes"]
    assert any("clip skip 1 ignored" in n for n in notes)


def test_sd2_files_map_onto_real_modules_under_the_webuis_sd2_rules(run, sd2_host) -> None:
    result, config, _ = run
    tensors = load_file(str(result.files[-1]))
    mapping = webui_layer_mapping(sd2_host.ldm_model)
    assert any(k.startswith("model_transformer_resblocks") for k in mapping)  # the WebUI's is_sd2
    modules = modules_in_file(tensors)
    te = [m for m in modules if m.startswith("lora_te_")]
    assert len(te) == 9 * 6
    attention = 0
    for name, parts in modules.items():
        assert set(parts) == {"lora_down.weight", "lora_up.weight", "alpha"}, name
        target = webui_module(mapping, name, sd2=True)
        assert isinstance(target, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.MultiheadAttention)), name
        if isinstance(target, torch.nn.MultiheadAttention):
            attention += 1
            assert parts["lora_down.weight"].shape == (4, target.embed_dim), name
            assert parts["lora_up.weight"].shape == (target.embed_dim, 4), name
    assert attention == 9 * 3  # q/k/v onto the attention, out onto its out_proj
    with safe_open(str(result.files[-1]), framework="pt") as f:
        meta = f.metadata()
    assert (meta["ss_v2"], meta["ss_base_model_version"]) == ("True", "sd_v2_v")
    assert meta["modelspec.architecture"] == "stable-diffusion-v2-768-v/lora"
    assert meta["ss_clip_skip"] == "2"
    card = json.loads(result.files[-1].with_suffix(".json").read_text(encoding="utf-8"))
    assert card["sd version"] == "SD2"


def test_sd2_file_merged_the_webui_way_reproduces_training_output(run, sd2_host) -> None:
    result, _, _ = run
    tensors = load_file(str(result.files[-1]))
    parts = sd2_host.model_parts()
    network = network_from_file(parts, tensors, 2)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 8, 8, generator=gen)
    t = torch.tensor([10, 700])
    with torch.no_grad():
        base_cond = encode_text(parts, CAPTIONS, 2)
        base = parts.unet(x, t, context=base_cond)
        with inject(network):
            cond = encode_text(parts, CAPTIONS, 2)
            trained = parts.unet(x, t, context=cond)
        merged_model = copy.deepcopy(sd2_host.ldm_model)
        merge_the_webui_way(merged_model, tensors, sd2=True)
        merged_parts = parts_from_ldm(merged_model, "sd2-v", "merged")
        merged_cond = merged_model.cond_stage_model(CAPTIONS)  # ldm's own encoding of the merged TE
        merged = merged_parts.unet(x, t, context=merged_cond)
    assert (cond - base_cond).abs().max() > 1e-4  # the text-encoder LoRA does something
    assert (cond - merged_cond).abs().max() < 1e-4
    assert (trained - base).abs().max() > 1e-3
    assert (trained - merged).abs().max() < 1e-4
