"""Writing what a run produces, as sd-scripts writes it and the WebUI reads it: the safetensors file
with `ss_*`/`sshs_*`/`modelspec.*` metadata, the `<name>.json` card sidecar, the run's own config.

`sshs_model_hash` is sd-scripts' (and the WebUI's `addnet_hash_safetensors`): the sha256 of the
file's bytes after the safetensors header — the tensor data only, so editing metadata keeps it.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from .. import __version__
from ..files.atomic import write_atomic
from ..host.protocol import ModelParts
from .config import TrainConfig, TrainConfigError
from .data import Dataset

SAVE_DTYPES = {"fp16": torch.float16, "fp32": torch.float32, "bf16": torch.bfloat16}
# ss_base_model_version: the WebUI shows a LoRA only for models of the base its value starts with
_VERSION = {"sd1": "sd_v1", "sd2": "sd_v2", "sd2-v": "sd_v2_v", "sdxl": "sdxl_base_v1-0"}
_ARCHITECTURE = {"sd1": "stable-diffusion-v1/lora", "sd2": "stable-diffusion-v2-512/lora",
                 "sd2-v": "stable-diffusion-v2-768-v/lora", "sdxl": "stable-diffusion-xl-v1-base/lora"}
_CARD_VERSION = {"sd1": "SD1", "sd2": "SD2", "sd2-v": "SD2", "sdxl": "SDXL"}


def data_section_sha256(blob: bytes) -> str:
    header = int.from_bytes(blob[:8], "little")
    return hashlib.sha256(memoryview(blob)[8 + header:]).hexdigest()


def legacy_hash(blob: bytes) -> str:
    return hashlib.sha256(blob[0x100000:0x110000]).hexdigest()[:8]


def run_metadata(config: TrainConfig, parts: ModelParts, dataset: Dataset, clip_skip: int,
                 session_id: int, started_at: float, total_steps: int,
                 batches_per_epoch: int) -> dict[str, str]:
    """Everything that is the same for every file of a run."""
    v2 = parts.family in ("sd2", "sd2-v")
    network_args: dict[str, str] = {}
    if config.conv_dim:
        network_args.update(conv_dim=str(config.conv_dim), conv_alpha=str(config.effective_conv_alpha))
    for key in ("rank_dropout", "module_dropout"):
        if getattr(config, key):
            network_args[key] = str(getattr(config, key))
    meta: dict[str, Any] = {
        "ss_session_id": session_id,
        "ss_training_started_at": started_at,
        "ss_learning_rate": config.unet_lr,
        "ss_unet_lr": config.unet_lr,
        "ss_text_encoder_lr": config.te_lr if not parts.is_sdxl else
        json.dumps([config.te_lr, config.effective_te2_lr]),
        "ss_num_train_images": dataset.num_train_images,
        "ss_num_reg_images": 0,
        "ss_num_batches_per_epoch": batches_per_epoch,
        "ss_num_epochs": config.epochs,
        "ss_gradient_checkpointing": config.gradient_checkpointing,
        "ss_gradient_accumulation_steps": config.grad_accum,
        "ss_max_train_steps": total_steps,
        "ss_lr_warmup_steps": config.warmup_steps,
        "ss_lr_scheduler": config.scheduler,
        "ss_network_module": "networks.lora",
        "ss_network_dim": config.dim,
        "ss_network_alpha": config.alpha,
        "ss_network_dropout": config.network_dropout,
        "ss_network_args": json.dumps(network_args) if network_args else None,
        "ss_mixed_precision": config.mixed_precision if parts.device.type == "cuda" else "no",
        "ss_full_fp16": False,
        "ss_v2": v2,
        "ss_base_model_version": _VERSION[parts.family],
        "ss_clip_skip": clip_skip,
        "ss_max_token_length": None,
        "ss_cache_latents": True,
        "ss_seed": config.seed,
        "ss_lowram": False,
        "ss_noise_offset": config.noise_offset or None,
        "ss_min_snr_gamma": config.min_snr_gamma or None,
        "ss_training_comment": config.comment or None,
        "ss_optimizer": _optimizer_name(config),
        "ss_max_grad_norm": config.max_grad_norm,
        "ss_caption_dropout_rate": config.caption_dropout,
        "ss_caption_dropout_every_n_epochs": 0,
        "ss_caption_tag_dropout_rate": config.tag_dropout,
        "ss_prior_loss_weight": 1.0,
        "ss_loss_type": "l2",
        "ss_batch_size_per_device": config.batch_size,
        "ss_total_batch_size": config.batch_size * config.grad_accum,
        "ss_resolution": f"({config.resolution}, {config.resolution})",
        "ss_color_aug": False,
        "ss_flip_aug": config.flip,
        "ss_random_crop": False,
        "ss_shuffle_caption": config.shuffle_caption,
        "ss_enable_bucket": config.enable_bucket,
        "ss_bucket_no_upscale": False,
        "ss_min_bucket_reso": config.min_bucket_reso if config.enable_bucket else None,
        "ss_max_bucket_reso": config.max_bucket_reso if config.enable_bucket else None,
        "ss_keep_tokens": config.keep_tokens,
        "ss_dataset_dirs": json.dumps(dataset.dataset_dirs()),
        "ss_tag_frequency": json.dumps(dataset.tag_frequency()),
        "ss_bucket_info": json.dumps(dataset.bucket_info()) if config.enable_bucket else None,
        "ss_sd_model_name": parts.checkpoint_name,
        "ss_new_sd_model_hash": parts.checkpoint_sha256,
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": _ARCHITECTURE[parts.family],
        "modelspec.implementation": "diffusers",
        "modelspec.resolution": f"{config.resolution}x{config.resolution}",
        "modelspec.prediction_type": "v" if parts.parameterization == "v" else "epsilon",
        "modelspec.encoder_layer": clip_skip if clip_skip > 1 and not parts.is_sdxl else None,
        "ss_network_train_unet_only": config.te_lr == 0 and config.effective_te2_lr == 0 if parts.is_sdxl else None,
        "lora_lab_size_conditioning": config.size_conditioning if parts.is_sdxl else None,
        "lora_lab_v_prediction": True if parts.parameterization == "v" else None,
        "lora_lab_version": __version__,
    }
    return {k: str(v) for k, v in meta.items() if v is not None}


def _optimizer_name(config: TrainConfig) -> str:
    names = {"adamw": "torch.optim.adamw.AdamW", "adamw8bit": "bitsandbytes.optim.adamw.AdamW8bit",
             "lion": "lion_pytorch.lion_pytorch.Lion", "prodigy": "prodigyopt.prodigy.Prodigy"}
    return f"{names[config.optimizer]}(weight_decay={config.weight_decay})"


def save_lora(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write the file atomically with sd-scripts' hashes added to the metadata."""
    # sd-scripts hashes a serialisation with the ss_* keys only; the data section (and so the model
    # hash) is the same bytes in the final file, whose header differs.
    ss_only = safetensors_bytes(tensors, {k: v for k, v in metadata.items() if k.startswith("ss_")})
    meta = {**metadata, "sshs_model_hash": data_section_sha256(ss_only),
            "sshs_legacy_hash": legacy_hash(ss_only)}
    write_atomic(path, safetensors_bytes(tensors, meta))


def epoch_metadata(base: dict[str, str], output_name: str, epoch: int, steps: int,
                   title: str) -> dict[str, str]:
    meta = dict(base)
    meta.update({"ss_output_name": output_name, "ss_epoch": str(epoch), "ss_steps": str(steps),
                 "ss_training_finished_at": str(time.time()), "modelspec.title": title,
                 "modelspec.date": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return meta


def card_sidecar(family: str, triggers: list[str], checkpoint: str, note: str) -> dict[str, Any]:
    """The WebUI's user-metadata file (`<name>.json`) for the Lora card."""
    return {"description": f"Trained with LoRA Lab on {checkpoint}.",
            "sd version": _CARD_VERSION[family], "activation text": ", ".join(triggers),
            "preferred weight": 1.0, "negative text": "", "notes": note}


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def read_resume_file(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a `.safetensors` network file (never a pickle)."""
    if path.suffix.lower() != ".safetensors":
        raise TrainConfigError([f"{path.name}: only .safetensors network weights can be resumed"])
    if not path.is_file():
        raise TrainConfigError([f"resume file not found: {path}"])
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own SafetensorError on a damaged file
        raise TrainConfigError([f"{path.name}: not a readable safetensors file ({e})"]) from None


def resume_problems(tensors: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]],
                    alphas: dict[str, float], name: str) -> list[str]:
    problems: list[str] = []
    unknown = sorted(set(tensors) - set(expected))
    if unknown:
        problems.append(f"{name}: {len(unknown)} tensor(s) this network does not have, e.g. "
                        f"{unknown[0]} (was it trained with other modules, e.g. conv or text-encoder "
                        "layers?)")
    wrong = [(k, tuple(v.shape), expected[k]) for k, v in tensors.items()
             if k in expected and tuple(v.shape) != expected[k]]
    if wrong:
        k, got, want = wrong[0]
        problems.append(f"{name}: {len(wrong)} tensor(s) have other shapes, e.g. {k} is {list(got)} "
                        f"but this network needs {list(want)} (another dim or model?)")
    differ = [k for k in tensors if k in alphas and tensors[k].numel() == 1
              and abs(float(tensors[k]) - alphas[k]) > 1e-3]
    if differ:
        k = differ[0]
        problems.append(f"{name}: alpha {float(tensors[k]):g} of {k} differs from this run's "
                        f"{alphas[k]:g}; train with the file's alpha")
    if not any(k in expected for k in tensors):
        problems.append(f"{name}: none of its tensors belong to this network")
    return problems


def output_dir_problems(folder: Path) -> list[str]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return [f"output folder {folder} cannot be created: {e.strerror or e}"]
    probe = folder / ".lora_lab-write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        return [f"output folder {folder} is not writable: {e.strerror or e}"]
    return []
