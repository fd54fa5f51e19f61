"""What the core needs from a host, and nothing more.

A host is the WebUI (`lora_lab.glue.webui.host`) or the standalone loader
(`lora_lab.host.standalone`). Core code receives one and never asks where it came from.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from PIL import Image

Family = Literal["sd1", "sd2", "sd2-v", "sdxl"]
Parameterization = Literal["eps", "v"]


@dataclass
class ModelParts:
    """The pieces of a loaded SD1/SD2/SDXL model the core works with.

    `unet(x, timesteps, context)` predicts noise (eps) or velocity (v); `vae` is ldm's
    `AutoencoderKL`. SD1: `text_encoder` is the HF `CLIPTextModel` and `tokenizer` its
    `CLIPTokenizer`. SD2: `text_encoder` is the OpenCLIP model (text transformer, `attn_mask`,
    `ln_final`) and `tokenizer` is `open_clip.tokenize` (list of str -> LongTensor[n, 77]).
    `clip_skip` is what the host's own generations use (SD2: 2, its "penultimate" layer).
    """

    unet: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: Any
    vae: torch.nn.Module
    alphas_cumprod: torch.Tensor  # float32[1000], the training schedule (never a per-generation override)
    parameterization: Parameterization
    family: Family
    latent_scale: float
    device: torch.device
    dtype: torch.dtype  # dtype of the UNet weights
    checkpoint_name: str
    clip_skip: int = 1
    checkpoint_sha256: str | None = None  # of the checkpoint file, when the host knows it
    # SDXL (sgm DiffusionEngine): `text_encoder`/`tokenizer` are CLIP ViT-L (HF) read at hidden
    # state `te1_hidden_index` (no final norm); `text_encoder_2`/`tokenizer_2` are OpenCLIP bigG and
    # `open_clip.tokenize`; `size_embedders` are the conditioner's three parameter-free Fourier
    # embedders (original size, crop top-left, target size). The UNet then also takes `y`.
    text_encoder_2: torch.nn.Module | None = None
    tokenizer_2: Any = None
    te1_hidden_index: int = 11
    size_embedders: list[torch.nn.Module] | None = None

    @property
    def is_sdxl(self) -> bool:
        return self.family == "sdxl"


@dataclass(frozen=True)
class HostInfo:
    name: str  # "webui" or "standalone"
    version: str  # host version (WebUI version, or LoRA Lab's own for standalone)
    model_family: Family | None  # None while no model is loaded
    checkpoint: str | None


@dataclass
class PreviewRequest:
    prompt: str
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 20
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512


@runtime_checkable
class ProgressSink(Protocol):
    """Where long jobs report: the WebUI progress bar, or a terminal bar."""

    def begin(self, job: str, total: int) -> None: ...

    def update(self, step: int, total: int | None = None, text: str = "",
               image: Image.Image | None = None) -> None: ...

    def end(self) -> None: ...


@runtime_checkable
class InterruptFlag(Protocol):
    def is_set(self) -> bool: ...

    def set(self) -> None: ...

    def clear(self) -> None: ...


@runtime_checkable
class Host(Protocol):
    # Optional, read with getattr: `owns_process = True` when the process is LoRA Lab's own (the
    # standalone host), so the trainer may tune process-wide settings such as the allocator;
    # `render_images(requests, notes=None) -> [(image, infotext)]`: txt2img as a person would run
    # it, `<lora:name:w>` tags in the prompts applied from `lora_dir()` (sweeps need it).
    name: str
    progress: ProgressSink
    interrupt: InterruptFlag

    def info(self) -> HostInfo:
        """Cheap description; must not load a model."""
        ...

    def model_parts(self) -> ModelParts:
        """The loaded model (loading it first if the host loads lazily)."""
        ...

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold the host's model exclusively (no generation runs meanwhile); re-entrant per thread."""
        ...

    def render_preview(self, request: PreviewRequest) -> Image.Image:
        """Generate one image with the host's own pipeline (active hooks included)."""
        ...

    def lora_dir(self) -> Path: ...

    def models_dir(self) -> Path:
        """Where LoRA Lab keeps its own models (taggers)."""
        ...
