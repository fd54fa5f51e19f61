"""What the core needs from a host, and nothing more.

A host is the WebUI (`lora_lab.hosts.a1111.host`) or the standalone loader
(`lora_lab.hosts.standalone.host`). Core code receives one and never asks where it came from.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from .threads import ThreadTuner

T = TypeVar("T")

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
    # Hosts whose text encoders run through their own engines (Forge Neo): the trainer calls these
    # instead of encoding itself. `encode_te1(captions, clip_skip)` → the (first) encoder's context;
    # SDXL: `encode_te2(captions)` → (bigG's penultimate hidden state, pooled output).
    encode_te1: Callable[[list[str], int], torch.Tensor] | None = None
    encode_te2: Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]] | None = None

    @property
    def is_sdxl(self) -> bool:
        return self.family == "sdxl"


@dataclass(frozen=True)
class HostInfo:
    name: str  # the adapter's `Host.name`: "webui" (A1111), "forge-neo" or "standalone"
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


NO_INTERROGATOR = "this host has no image interrogator; natural-language captions need the A1111 WebUI's"


class HostCannot(NotImplementedError):
    """A capability this host does not have; the message says which and where it exists."""


class Host:
    """The contract. The first six methods every adapter implements; the rest are capabilities
    with defaults that say "this host cannot" (ask with `supports`)."""

    name: str = "host"
    progress: ProgressSink
    interrupt: InterruptFlag
    # LoRA Lab's own process (standalone): the trainer may tune process-wide settings (allocator)
    owns_process: bool = False
    # CPU threads for the load on the machine; None: the host's own setting is left alone
    threads: ThreadTuner | None = None
    # inside a WebUI: long jobs run as its tasks, so its own progress bar and Interrupt follow them
    in_webui: bool = False

    # --- every host ---------------------------------------------------------------------------
    def info(self) -> HostInfo:
        """Cheap description; must not load a model."""
        raise NotImplementedError

    def model_parts(self) -> ModelParts:
        """The loaded model (loading it first if the host loads lazily)."""
        raise NotImplementedError

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold the host's model exclusively (no generation runs meanwhile); re-entrant per thread."""
        raise NotImplementedError

    def render_preview(self, request: PreviewRequest) -> Image.Image:
        """Generate one image with the host's own pipeline (active hooks included)."""
        raise NotImplementedError

    def lora_dir(self) -> Path:
        raise NotImplementedError

    def prepared_for_training(self, parts: ModelParts, text_encoders: bool) -> AbstractContextManager[None]:
        """Make the loaded model trainable for one run (the UNet, and the text encoders when they
        train) and put everything back on exit, also after an error or Stop. Most hosts hold a
        trainable model already."""
        return nullcontext()

    def models_dir(self) -> Path:
        """Where LoRA Lab keeps its own models (taggers)."""
        raise NotImplementedError

    # --- capabilities -------------------------------------------------------------------------
    def supports(self, capability: str) -> bool:
        """Whether this adapter implements the optional method `capability` (e.g. "render_images")."""
        return getattr(type(self), capability, None) is not getattr(Host, capability)

    def render_images(self, requests: list[PreviewRequest],
                      notes: list[str] | None = None) -> list[tuple[Image.Image, str]]:
        """txt2img as a person would run it: `<lora:name:w>` tags in the prompts apply files from
        `lora_dir()`; each image with its infotext. Sweeps and Auto need it."""
        raise HostCannot(f"the {self.name} host cannot render sweeps")

    def checkpoint_problem(self) -> str | None:
        """Why the model cannot be trained on, known before loading it (None: nothing known)."""
        return None

    def checkpoint_file(self) -> Path | None:
        """The checkpoint file this host loads itself (standalone); None where the host's own UI
        chooses the model (WebUIs)."""
        return None

    def runs_dir(self) -> Path:
        """Where one-run (`auto`) flows keep their folders."""
        return self.models_dir().parent / "auto"

    def sweep_roots(self) -> list[Path]:
        """The folders this host's sweeps go to (the review lists what is there)."""
        return []

    def run_job(self, task_id: str, work: Callable[[], T]) -> T:
        """Run a long job; a WebUI registers `task_id` so its progress bar follows it."""
        return work()

    def interrogate(self, image: Image.Image) -> str:
        """A sentence about the image from the host's interrogator."""
        raise HostCannot(NO_INTERROGATOR)

    def conditioning_check(self, prompt: str, width: int, height: int) -> dict[str, object]:
        """The trainer's conditioning for `prompt` against the host's own (max differences)."""
        raise HostCannot("only a WebUI host has its own conditioning to compare with")

    def lora_load_report(self, name: str) -> dict[str, object]:
        """How many of a LoRA file's modules the host's own Lora loader matches."""
        raise HostCannot("only a WebUI host loads LoRAs with its own loader")
