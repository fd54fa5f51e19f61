"""What a run writes: keys the WebUI's Lora loader maps onto real modules, weights that reproduce the
in-training output when merged the WebUI's way, sd-scripts metadata and hashes, card sidecars,
previews made with the LoRA active, and the run's own settings file."""
from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from lora_lab.devtools.sample_dataset import build_sample_dataset
from lora_lab.hosts.standalone.ldm_loader import parts_from_ldm
from lora_lab.host.protocol import PreviewRequest
from lora_lab.train import TrainConfig, TrainResult, train
from lora_lab.train.network import inject
from lora_lab.train.text import encode_text

from .webui_lora import merge_the_webui_way, modules_in_file, network_from_file, webui_layer_mapping, \
    webui_name

# --- one run for the whole module -----------------------------------------------------------------

@pytest.fixture(scope="module")
def run(standalone_host, tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, TrainConfig]:
    root = tmp_path_factory.mktemp("train-output")
    dataset = build_sample_dataset(root / "data", trigger="ohwx", images=4, repeats=2)
    config = TrainConfig(dataset_dir=dataset, name="shapes", output_dir=root / "lora", dim=4, alpha=4,
                         conv_dim=4, conv_alpha=2, unet_lr=2e-3, te_lr=1e-3, epochs=2, flip=True,
                         resolution=64, min_bucket_reso=64, max_bucket_reso=128,
                         save_precision="fp32", preview_every_n_epochs=1, preview_steps=2)
    result = train(standalone_host, config)
    assert result.state == "finished", result.message
    return result, config


def test_files_of_a_run(run: tuple[TrainResult, TrainConfig]) -> None:
    result, config = run
    out = config.output_dir
    assert out is not None
    assert [p.name for p in result.files] == ["shapes-000001.safetensors", "shapes.safetensors"]
    assert result.final_file == out / "shapes.safetensors"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["shapes-000001.json", "shapes-000001.preview.png", "shapes-000001.safetensors",
                     "shapes.json", "shapes.lora_lab.json", "shapes.preview.png", "shapes.safetensors"]
    card = json.loads((out / "shapes.json").read_text(encoding="utf-8"))
    assert (card["activation text"], card["sd version"], card["preferred weight"]) == ("ohwx", "SD1", 1.0)
    run_file = json.loads((out / "shapes.lora_lab.json").read_text(encoding="utf-8"))
    assert run_file["config"]["conv_dim"] == 4 and run_file["result"]["state"] == "finished"
    assert len(run_file["result"]["loss_history"]) == result.steps_done == 16
    assert run_file["plan"]["total_steps"] == 16


def test_keys_map_onto_real_modules_with_matching_shapes(run, standalone_host) -> None:
    result, _ = run
    tensors = load_file(str(result.files[-1]))
    mapping = webui_layer_mapping(standalone_host.ldm_model)
    modules = modules_in_file(tensors)
    unet = [m for m in modules if m.startswith("lora_unet_")]
    te = [m for m in modules if m.startswith("lora_te_")]
    assert len(te) == 2 * 6  # 2 CLIP layers × q/k/v/out/fc1/fc2
    linear = [m for m in unet if not re.search(r"resnets|samplers", m)]
    assert len(linear) == 16 * 12  # SD1's 16 transformers × 12 layers, as in real files
    for name, parts in modules.items():
        assert set(parts) == {"lora_down.weight", "lora_up.weight", "alpha"}, name
        target = mapping.get(webui_name(name))
        assert isinstance(target, (torch.nn.Linear, torch.nn.Conv2d)), name
        down, up = parts["lora_down.weight"], parts["lora_up.weight"]
        assert parts["alpha"].shape == ()
        if isinstance(target, torch.nn.Linear):
            assert down.shape == (down.shape[0], target.in_features), name
            assert up.shape == (target.out_features, down.shape[0]), name
        else:
            assert down.shape == (down.shape[0], target.in_channels, *target.kernel_size), name
            assert up.shape == (target.out_channels, down.shape[0], 1, 1), name
        conv3 = isinstance(target, torch.nn.Conv2d) and target.kernel_size != (1, 1)
        assert (down.shape[0], float(parts["alpha"])) == ((4, 2.0) if conv3 else (4, 4.0)), name


def test_saved_file_merged_the_webui_way_reproduces_training_output(run, standalone_host) -> None:
    result, _ = run
    tensors = load_file(str(result.files[-1]))
    parts = standalone_host.model_parts()
    network = network_from_file(parts, tensors, 1)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 8, 8, generator=gen)
    t = torch.tensor([10, 700])
    captions = ["ohwx, red circle", "ohwx, blue square, white background"]
    with torch.no_grad():
        base = parts.unet(x, t, context=encode_text(parts, captions, 1))
        with inject(network):
            trained = parts.unet(x, t, context=encode_text(parts, captions, 1))
        merged_model = copy.deepcopy(standalone_host.ldm_model)
        merge_the_webui_way(merged_model, tensors)
        merged_parts = parts_from_ldm(merged_model, "sd1", "merged")
        merged = merged_parts.unet(x, t, context=encode_text(merged_parts, captions, 1))
    assert (trained - base).abs().max() > 1e-3  # the LoRA does something
    assert (trained - merged).abs().max() < 1e-4


def test_metadata_and_hashes(run, tiny_checkpoint: Path) -> None:
    result, config = run
    metas = []
    for path, epoch, steps in zip(result.files, (1, 2), (8, 16)):
        blob = path.read_bytes()
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
        header = int.from_bytes(blob[:8], "little")
        assert meta["sshs_model_hash"] == hashlib.sha256(blob[8 + header:]).hexdigest()
        assert meta["ss_output_name"] == path.stem
        assert (meta["ss_epoch"], meta["ss_steps"]) == (str(epoch), str(steps))
        metas.append(meta)
    final = metas[-1]
    assert final["ss_base_model_version"] == "sd_v1" and final["ss_v2"] == "False"
    assert final["ss_network_module"] == "networks.lora"
    assert (final["ss_network_dim"], final["ss_network_alpha"]) == ("4", "4.0")
    assert json.loads(final["ss_network_args"]) == {"conv_dim": "4", "conv_alpha": "2.0"}
    assert (final["ss_unet_lr"], final["ss_text_encoder_lr"]) == ("0.002", "0.001")
    assert (final["ss_num_train_images"], final["ss_num_epochs"], final["ss_max_train_steps"]) == \
        ("8", "2", "16")
    assert final["ss_resolution"] == "(64, 64)" and final["ss_sd_model_name"] == "tiny-sd1"
    assert final["ss_new_sd_model_hash"] == hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    assert json.loads(final["ss_tag_frequency"])["2_ohwx"]["ohwx"] == 4
    assert json.loads(final["ss_dataset_dirs"]) == {"2_ohwx": {"n_repeats": 2, "img_count": 4}}
    assert final["modelspec.architecture"] == "stable-diffusion-v1/lora"
    for key in ("ss_session_id", "ss_training_started_at"):
        assert metas[0][key] == final[key]
    assert float(final["ss_training_finished_at"]) >= float(final["ss_training_started_at"])


def test_previews_show_the_lora(run, standalone_host) -> None:
    result, config = run
    out = config.output_dir
    assert out is not None
    preview = Image.open(out / "shapes.preview.png")
    assert preview.size == (64, 64)
    assert standalone_host.progress.image is not None
    request = PreviewRequest(prompt="ohwx, red circle, white background", seed=config.preview_seed,
                             steps=2, cfg_scale=config.preview_cfg, width=64, height=64)
    base = standalone_host.render_preview(request)
    assert list(base.getdata()) != list(preview.convert("RGB").getdata())
