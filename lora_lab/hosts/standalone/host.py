"""The standalone host: an LDM checkpoint loaded with the real `ldm` code, progress on the terminal,
Ctrl-C as Interrupt. Used by the CLI, `python -m lora_lab ui` and the tests."""
from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import __version__
from ...host.progress import InterruptEvent, ReentrantExclusive, TerminalProgress
from ...host.threads import ThreadTuner
from ...host.protocol import Family, Host, HostInfo, ModelParts, PreviewRequest, ProgressSink

if TYPE_CHECKING:
    from PIL import Image


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_home() -> Path:
    return Path(os.environ.get("LORA_LAB_HOME", Path.home() / "lora_lab"))


class StandaloneHost(Host):
    name = "standalone"
    owns_process = True  # LoRA Lab's own process: the trainer may tune its allocator (train/allocator.py)

    def __init__(self, checkpoint: Path | None = None, config: Path | None = None,
                 family: Family | None = None, device: str = "cpu", home: Path | None = None,
                 progress: ProgressSink | None = None, threads: int | None = None,
                 sgm_root: Path | None = None) -> None:
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.config = Path(config) if config else None
        self.family = family
        self.device = device
        self.home = Path(home) if home else default_home()
        self.progress: ProgressSink = progress or TerminalProgress()
        self.interrupt = InterruptEvent()
        self.exclusive_lock = ReentrantExclusive()
        self._parts: ModelParts | None = None
        self._model: Any = None
        self._load_lock = threading.Lock()
        self.threads = ThreadTuner(threads)  # CPU threads for the load on the machine (not in the WebUI)
        self.sgm_root = Path(sgm_root) if sgm_root else None  # SDXL: generative-models (or a WebUI's)

    def info(self) -> HostInfo:
        family = self._parts.family if self._parts else self._configured_family()
        return HostInfo(name=self.name, version=__version__, model_family=family,
                        checkpoint=self.checkpoint.name if self.checkpoint else None)

    def _configured_family(self) -> Family | None:
        if self.checkpoint is None:
            return None
        if not hasattr(self, "_family_from_config"):
            from .families import family_of
            from .ldm_loader import resolve_config

            try:
                self._family_from_config: Family | None = family_of(
                    resolve_config(self.checkpoint, self.config, self.family))
            except (OSError, ValueError, KeyError):
                self._family_from_config = None
        return self._family_from_config

    def checkpoint_problem(self) -> str | None:
        """Why the checkpoint cannot be trained on, from its file alone (None: it looks loadable)."""
        from .ldm_loader import header_has, resolve_config

        if self._parts is not None:
            return None
        if self.checkpoint is None:
            return "no checkpoint: pass --checkpoint PATH (an SD1, SD2 or SDXL checkpoint)"
        if not self.checkpoint.is_file():
            return f"checkpoint not found: {self.checkpoint}"
        try:
            resolve_config(self.checkpoint, self.config, self.family)
        except (OSError, ValueError, KeyError) as e:
            return str(e)
        if self.checkpoint.suffix == ".safetensors" and not header_has(self.checkpoint, "model.diffusion_model."):
            return (f"{self.checkpoint.name} is not a Stable Diffusion checkpoint (it has no UNet weights: a LoRA, "
                    "VAE or embedding file?); LoRA Lab trains on SD1, SD2 and SDXL checkpoints")
        return None

    @property
    def loaded(self) -> bool:
        return self._parts is not None

    def model_parts(self) -> ModelParts:
        with self._load_lock:
            if self._parts is None:
                if self.checkpoint is None:
                    raise RuntimeError("no checkpoint: start with --checkpoint PATH")
                from .families import family_of
                from .ldm_loader import load_ldm, parts_from_ldm, resolve_config

                cfg = resolve_config(self.checkpoint, self.config, self.family)
                if family_of(cfg) == "sdxl":
                    from ..sgm_parts import parts_from_sgm
                    from .sgm_loader import load_sgm

                    self._model = load_sgm(self.checkpoint, cfg, self.device, self.sgm_root)
                    self._parts = parts_from_sgm(self._model, self.checkpoint.stem)
                else:
                    self._model, family = load_ldm(self.checkpoint, self.config, self.family, self.device)
                    self._parts = parts_from_ldm(self._model, family, self.checkpoint.stem)
                self._parts.checkpoint_sha256 = file_sha256(self.checkpoint)
            return self._parts

    @property
    def ldm_model(self) -> Any:
        self.model_parts()
        return self._model

    def exclusive(self) -> AbstractContextManager[None]:
        return self.exclusive_lock()

    def render_preview(self, request: PreviewRequest) -> Image.Image:
        from .sampling import sample

        with self.exclusive():
            return sample(self.model_parts(), request)

    def render_images(self, requests: list[PreviewRequest],
                      notes: list[str] | None = None) -> list[tuple[Image.Image, str]]:
        """txt2img as a person would run it: `<lora:name:w>` tags apply files from `lora_dir()`."""
        from .txt2img import render

        with self.exclusive():
            return render(self.model_parts(), self.lora_dir(), requests, notes)

    def lora_dir(self) -> Path:
        return self.home / "Lora"

    def runs_dir(self) -> Path:
        return self.home / "auto"

    def sweep_roots(self) -> list[Path]:
        return [self.home / "sweeps"]

    def checkpoint_file(self) -> Path | None:
        return self.checkpoint

    def models_dir(self) -> Path:
        return self.home / "models"
