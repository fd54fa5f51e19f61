"""A training run's settings: one typed object, its validation, presets and file form."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Scheduler = Literal["constant", "cosine", "cosine_with_restarts", "linear"]
Precision = Literal["no", "fp16", "bf16"]
SavePrecision = Literal["fp16", "fp32", "bf16"]

SCHEDULERS = ("constant", "cosine", "cosine_with_restarts", "linear")
# optimizer -> the package it needs (None: torch itself). Never installed by LoRA Lab.
OPTIMIZERS: dict[str, str | None] = {"adamw": None, "adamw8bit": "bitsandbytes",
                                     "lion": "lion_pytorch", "prodigy": "prodigyopt"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+-]*$")
_HOLDOUT_COUNT = re.compile(r"^\d+(\.\d+)?%?$")


class TrainConfigError(ValueError):
    """One or more settings are unusable; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class TrainConfig:
    dataset_dir: Path
    name: str
    output_dir: Path | None = None  # None: the host's LoRA folder
    overwrite: bool = False  # replace files of an existing LoRA of this name in the output folder
    preset: str | None = None  # recorded only; `from_preset` applies the values

    # network
    dim: int = 64
    alpha: float = 64.0
    conv_dim: int = 0  # > 0 adds LoCon on ResBlocks and down/upsamplers
    conv_alpha: float | None = None  # None: = conv_dim
    network_dropout: float = 0.0
    rank_dropout: float = 0.0
    module_dropout: float = 0.0

    # optimisation
    unet_lr: float = 1e-4
    te_lr: float = 5e-5  # 0: UNet only (text-encoder outputs are then cached); SDXL: CLIP-L (TE1)
    te2_lr: float | None = None  # SDXL's OpenCLIP bigG (TE2); None: te_lr
    optimizer: str = "adamw"
    weight_decay: float = 1e-2
    scheduler: Scheduler = "constant"
    warmup_steps: int = 0
    restarts: int = 1  # cycles of cosine_with_restarts
    epochs: int = 10
    batch_size: int = 1
    grad_accum: int = 1
    max_grad_norm: float = 1.0  # 0: no clipping
    seed: int = 42
    mixed_precision: Precision = "fp16"  # CUDA only; CPU always trains in fp32
    gradient_checkpointing: bool = False

    # diffusion loss
    noise_offset: float = 0.0
    min_snr_gamma: float = 0.0  # 0: off

    # data
    resolution: int = 512
    enable_bucket: bool = True
    min_bucket_reso: int | None = None  # None: min(256, resolution)
    max_bucket_reso: int | None = None  # None: max(1024, resolution)
    caption_extension: str = ".txt"
    keep_tokens: int = 0
    shuffle_caption: bool = False
    caption_dropout: float = 0.0
    tag_dropout: float = 0.0
    prepend_trigger: bool = False  # put the folder's trigger first when a caption lacks it
    flip: bool = False
    cache_latents_to_disk: bool = False
    clip_skip: int | None = None  # None: the host's setting
    # SDXL's size conditioning: "real" = the image's own size and crop offset, bucket as target
    # (kohya sd-scripts, most published SDXL LoRAs); "bucket" = bucket size and a zero crop for all
    # three (what the WebUI feeds when it generates)
    size_conditioning: Literal["real", "bucket"] = "real"

    # evidence: after every epoch a deterministic loss (fixed noise, fixed timesteps, LoRA in eval
    # mode) on `validation_images` training images ("stable loss") and on held-out images
    validation: bool = True
    validation_images: int = 4
    holdout: str = ""  # images kept out of training for the validation loss: "2", "10%" or a folder

    # output
    save_every_n_epochs: int = 1
    save_precision: SavePrecision = "fp16"
    preview_every_n_epochs: int = 0  # 0: no previews
    preview_prompt: str = ""  # empty: the first image's caption
    preview_negative: str = ""
    preview_seed: int = 1234
    preview_steps: int = 20
    preview_cfg: float = 7.0
    preview_size: int | None = None  # None: the training resolution
    resume_from: Path | None = None  # network weights (.safetensors) to start from
    # epochs `resume_from` already trained: the run goes on at epoch start_epoch + 1, with the same
    # epoch numbers, files and learning-rate schedule as an uninterrupted run (not bit-identical:
    # the optimizer's moments and the noise stream start afresh)
    start_epoch: int = 0
    comment: str = ""

    def __post_init__(self) -> None:
        self.alpha = float(self.alpha)
        if self.conv_alpha is not None:
            self.conv_alpha = float(self.conv_alpha)
        self.dataset_dir = Path(self.dataset_dir)
        if self.output_dir is not None:
            self.output_dir = Path(self.output_dir)
        if self.resume_from is not None:
            self.resume_from = Path(self.resume_from)
        if self.min_bucket_reso is None:
            self.min_bucket_reso = min(256, self.resolution)
        if self.max_bucket_reso is None:
            self.max_bucket_reso = max(1024, self.resolution)

    @property
    def effective_conv_alpha(self) -> float:
        return float(self.conv_dim if self.conv_alpha is None else self.conv_alpha)

    @property
    def train_text_encoder(self) -> bool:
        return self.te_lr > 0

    @property
    def effective_te2_lr(self) -> float:
        return self.te_lr if self.te2_lr is None else self.te2_lr

    def problems(self) -> list[str]:
        """Everything wrong with the values themselves (no file system or model access)."""
        p: list[str] = []
        if not _NAME.match(self.name or "") or self.name.endswith("."):
            p.append(f"name {self.name!r}: use letters, digits, spaces, '_', '-', '.', '+' "
                     "(it becomes a file name)")
        if self.dim <= 0:
            p.append(f"dim must be > 0 (got {self.dim})")
        if self.alpha <= 0:
            p.append(f"alpha must be > 0 (got {self.alpha})")
        if self.conv_dim < 0:
            p.append(f"conv_dim must be >= 0 (got {self.conv_dim})")
        if self.conv_dim > 0 and self.effective_conv_alpha <= 0:
            p.append(f"conv_alpha must be > 0 (got {self.conv_alpha})")
        for key in ("network_dropout", "rank_dropout", "module_dropout", "caption_dropout",
                    "tag_dropout"):
            value = getattr(self, key)
            if not 0 <= value < 1:
                p.append(f"{key} must be in [0, 1) (got {value})")
        if self.te2_lr is not None and self.te2_lr < 0:
            p.append(f"te2_lr must be >= 0 (got {self.te2_lr})")
        if self.validation_images < 1:
            p.append(f"validation_images must be >= 1 (got {self.validation_images})")
        holdout = self.holdout.strip()
        if holdout and not (_HOLDOUT_COUNT.match(holdout) or holdout_is_folder(holdout)):
            p.append(f"holdout {self.holdout!r}: a count (2), a percentage (10%) or a folder")
        if self.size_conditioning not in ("real", "bucket"):
            p.append(f"size_conditioning {self.size_conditioning!r}: choose real or bucket")
        if self.unet_lr < 0 or self.te_lr < 0:
            p.append(f"learning rates must be >= 0 (got unet {self.unet_lr}, text encoder {self.te_lr})")
        elif self.unet_lr == 0 and self.te_lr == 0 and not self.te2_lr:
            p.append("both learning rates are 0: nothing would be trained")
        if self.optimizer not in OPTIMIZERS:
            p.append(f"optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        else:
            package = OPTIMIZERS[self.optimizer]
            if package and importlib.util.find_spec(package) is None:
                p.append(f"optimizer {self.optimizer} needs the {package} package, which is not "
                         "installed (LoRA Lab never installs it); use adamw")
        if self.weight_decay < 0:
            p.append(f"weight_decay must be >= 0 (got {self.weight_decay})")
        if self.scheduler not in SCHEDULERS:
            p.append(f"scheduler {self.scheduler!r}: choose one of {', '.join(SCHEDULERS)}")
        for key in ("epochs", "batch_size", "grad_accum", "restarts", "save_every_n_epochs",
                    "preview_steps"):
            if getattr(self, key) < 1:
                p.append(f"{key} must be >= 1 (got {getattr(self, key)})")
        for key in ("warmup_steps", "keep_tokens", "preview_every_n_epochs"):
            if getattr(self, key) < 0:
                p.append(f"{key} must be >= 0 (got {getattr(self, key)})")
        if self.max_grad_norm < 0 or self.noise_offset < 0 or self.min_snr_gamma < 0:
            p.append("max_grad_norm, noise_offset and min_snr_gamma must be >= 0")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            p.append(f"mixed_precision {self.mixed_precision!r}: choose no, fp16 or bf16")
        if self.save_precision not in ("fp16", "fp32", "bf16"):
            p.append(f"save_precision {self.save_precision!r}: choose fp16, fp32 or bf16")
        for key in ("resolution", "min_bucket_reso", "max_bucket_reso"):
            value = getattr(self, key)
            if value < 64 or value % 64:
                p.append(f"{key} must be a multiple of 64 (got {value})")
        if self.preview_size is not None and (self.preview_size < 64 or self.preview_size % 64):
            p.append(f"preview_size must be a multiple of 64 (got {self.preview_size})")
        if self.enable_bucket and not self.min_bucket_reso <= self.resolution <= self.max_bucket_reso:
            p.append(f"resolution {self.resolution} must lie between min_bucket_reso "
                     f"{self.min_bucket_reso} and max_bucket_reso {self.max_bucket_reso}")
        if not self.caption_extension.startswith(".") or len(self.caption_extension) < 2:
            p.append(f"caption_extension {self.caption_extension!r} must look like '.txt'")
        if self.clip_skip is not None and not 1 <= self.clip_skip <= 12:
            p.append(f"clip_skip must be between 1 and 12 (got {self.clip_skip})")
        if self.start_epoch and (self.resume_from is None or not 0 < self.start_epoch < self.epochs):
            p.append(f"start_epoch {self.start_epoch}: needs resume_from (the weights after that epoch) "
                     f"and must be below epochs ({self.epochs})")
        if self.resume_from is not None and self.resume_from.suffix.lower() != ".safetensors":
            p.append(f"resume_from {self.resume_from.name}: only .safetensors network weights can "
                     "be resumed (.ckpt/.pt files can run code when loaded)")
        return p

    def validate(self) -> None:
        problems = self.problems()
        if problems:
            raise TrainConfigError(problems)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, Path):
                out[key] = str(value)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from plain values (a config file, an API body); unknown keys are an error."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise TrainConfigError([f"unknown setting(s): {', '.join(unknown)}"])
        missing = [k for k in ("dataset_dir", "name") if k not in values]
        if missing:
            raise TrainConfigError([f"missing setting(s): {', '.join(missing)}"])
        kwargs = {}
        problems = []
        for key, value in values.items():
            try:
                kwargs[key] = _coerce(known[key], value)
            except (TypeError, ValueError):
                problems.append(f"{key}: {value!r} is not a valid {known[key].type}")
        if problems:
            raise TrainConfigError(problems)
        return cls(**kwargs)

    @classmethod
    def from_preset(cls, preset: str, dataset_dir: Path, name: str, family: str | None = None,
                    **overrides: Any) -> TrainConfig:
        if preset not in PRESETS:
            raise TrainConfigError([f"preset {preset!r}: choose one of {', '.join(PRESETS)}"])
        return cls.from_dict({**preset_values(preset, family), "preset": preset, "dataset_dir": dataset_dir,
                              "name": name, **overrides})


def _coerce(f: dataclasses.Field[Any], value: Any) -> Any:
    kind = str(f.type)
    if isinstance(value, str) and value.strip().lower() in ("none", "null") and "None" in kind:
        value = None
    if value is None:
        if "None" not in kind:
            raise ValueError
        return None
    if kind.startswith("Path"):
        return Path(value)
    if kind.startswith("bool"):
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, (bool, int)):
            raise TypeError
        return bool(value)
    if kind.startswith("int"):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(value)
    if kind.startswith("float"):
        return float(value)
    return str(value)


PRESETS: dict[str, dict[str, Any]] = {
    # one subject with a trigger word; the trigger stays first and fixed while the tags shuffle
    "character": {"dim": 64, "alpha": 64.0, "unet_lr": 1e-4, "te_lr": 5e-5, "prepend_trigger": True,
                  "keep_tokens": 1, "shuffle_caption": True, "flip": False, "epochs": 10},
    # a look rather than a subject: UNet only, no trigger pinned, flips are harmless
    "style": {"dim": 64, "alpha": 64.0, "unet_lr": 1e-4, "te_lr": 0.0, "prepend_trigger": False,
              "keep_tokens": 0, "shuffle_caption": True, "caption_dropout": 0.05, "flip": True,
              "epochs": 10},
    # an object or pose with a trigger word
    "concept": {"dim": 32, "alpha": 32.0, "unet_lr": 1e-4, "te_lr": 5e-5, "prepend_trigger": True,
                "keep_tokens": 1, "shuffle_caption": True, "flip": True, "epochs": 10},
}


# What a family changes in the defaults and presets: SDXL trains at 1024 px, and the peers' SDXL
# advice is the UNet alone (kohya sd-scripts: "--network_train_unet_only is highly recommended",
# OneTrainer's SDXL preset trains no text encoder) at a smaller dim; SD2-768-v at 768 px.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "sdxl": {"resolution": 1024, "te_lr": 0.0, "dim": 32, "alpha": 16.0},
    "sd2-v": {"resolution": 768},
}


def holdout_is_folder(spec: str) -> bool:
    """A holdout given as a folder (a path) rather than a count or a percentage."""
    return "/" in spec or "\\" in spec


def family_resolution(family: str | None) -> int:
    return int(FAMILY_DEFAULTS.get(family or "", {}).get("resolution", 512))


def resolution_default(get_host: Callable[[], Any]) -> Callable[[], int]:
    """A form default that follows the loaded model: its family's training size, read each time
    it is called (gradio calls it at every page load)."""
    def value() -> int:
        try:
            return family_resolution(get_host().info().model_family)
        except Exception:  # a form renders before a model is there
            return 512
    return value


def preset_values(name: str, family: str | None = None) -> dict[str, Any]:
    """A preset's settings for the loaded (or chosen) model family."""
    values = dict(PRESETS[name])
    extra = FAMILY_DEFAULTS.get(family or "", {})
    values.update(extra)
    if family == "sdxl" and name == "concept":
        values.update(dim=16, alpha=8.0)
    return values


def load_config_file(path: Path) -> dict[str, Any]:
    """Settings from a `.toml` (Python 3.11+) or `.json` file, as plain values."""
    path = Path(path)
    if not path.is_file():
        raise TrainConfigError([f"config file not found: {path}"])
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
    elif path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:
            raise TrainConfigError([f"{path.name}: TOML needs Python 3.11+; use a .json config"]) from None
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    else:
        raise TrainConfigError([f"{path.name}: expected a .toml or .json config file"])
    if not isinstance(data, dict):
        raise TrainConfigError([f"{path.name}: expected a table of settings"])
    for key in ("dataset_dir", "output_dir", "resume_from"):  # relative to the file, not the cwd
        if isinstance(data.get(key), str):
            data[key] = str(path.parent / Path(data[key]).expanduser())
    return data
