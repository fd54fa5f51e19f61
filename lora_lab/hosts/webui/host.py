"""What A1111 and Forge Neo share as WebUIs: progress into `shared.state`, Interrupt, the queue lock,
jobs as WebUI tasks, txt2img through `processing`, and their folders. Each WebUI's adapter
(`hosts/a1111`, `hosts/neo`) subclasses `WebUIHost` with what it does with its own model objects."""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from modules import call_queue, paths, shared

from ...host.progress import ReentrantExclusive
from ...host.protocol import Host, ModelParts, PreviewRequest
from .task import run_as_webui_task

if TYPE_CHECKING:
    from PIL import Image

T = TypeVar("T")
SWEEP_SUBFOLDER = "lora-lab"  # under the WebUI's grids folders


class WebUIProgress:
    """Reports into `shared.state`, which the WebUI's progress bar polls."""

    def begin(self, job: str, total: int) -> None:
        state = shared.state
        if state.time_start is None or not state.job:
            state.time_start = time.time()
        state.job = job
        state.job_count = total
        state.job_no = 0
        state.textinfo = None

    def update(self, step: int, total: int | None = None, text: str = "",
               image: Image.Image | None = None) -> None:
        state = shared.state
        state.job_no = step
        if total is not None:
            state.job_count = total
        if text:
            state.textinfo = text
        if image is not None:
            state.assign_current_image(image)

    def end(self) -> None:
        shared.state.textinfo = None


class WebUIInterrupt:
    def is_set(self) -> bool:
        return bool(shared.state.interrupted)

    def set(self) -> None:
        shared.state.interrupt()

    def clear(self) -> None:
        shared.state.interrupted = False


@lru_cache(maxsize=1)
def webui_version() -> str:
    from modules import launch_utils

    return launch_utils.git_tag()


class WebUIHost(Host):
    name = "webui"
    in_webui = True

    def __init__(self) -> None:
        self.progress = WebUIProgress()
        self.interrupt = WebUIInterrupt()
        self.exclusive_lock = ReentrantExclusive(call_queue.queue_lock)

    def exclusive(self) -> AbstractContextManager[None]:
        return self.exclusive_lock()

    def loaded_base(self) -> str | None:
        """"sd1", "sd2" or "sdxl": the base of the model txt2img uses, which the WebUI's Lora loader
        tells LoRA versions apart by (None: no model)."""
        raise NotImplementedError

    def load_checkpoint_from_settings(self) -> None:
        """Load the checkpoint (and VAE) the settings name, after a run that switched checkpoints."""
        raise NotImplementedError

    def reread_lora_files(self) -> None:
        """Make the next generation read LoRA files from disk, so a file rewritten under a name the
        WebUI has applied serves its new weights (A1111's Lora extension checks the file's mtime)."""

    def learned_conditioning(self, parts: ModelParts, prompt: str, width: int, height: int) -> Any:
        """The WebUI's own conditioning for `prompt` at this size (its get_learned_conditioning)."""
        raise NotImplementedError

    def conditioning_check(self, prompt: str, width: int, height: int) -> dict[str, object]:
        """How far the trainer's conditioning for `prompt` is from the WebUI's own at this size
        (frozen text encoders): max absolute differences. The trainer reads the first 77 tokens."""
        import torch

        from ...train.text import SdxlText, encode_text, size_vector

        with self.exclusive(), torch.no_grad():
            parts = self.model_parts()
            theirs = self.learned_conditioning(parts, prompt, width, height)
            if not parts.is_sdxl:
                ours = encode_text(parts, [prompt], parts.clip_skip)
                return {"family": parts.family,
                        "crossattn_max_diff": float((ours - theirs[:, :ours.shape[1]].to(ours)).abs().max())}
            context, pooled = SdxlText(parts, False, False)([prompt])
            size = torch.tensor([[height, width]])
            crop = torch.tensor([[int(shared.opts.sdxl_crop_top), int(shared.opts.sdxl_crop_left)]])
            vector = size_vector(parts, pooled, size, crop, size)
        crossattn = theirs["crossattn"][:, :context.shape[1]].to(context)
        return {"family": parts.family, "crossattn_max_diff": float((context - crossattn).abs().max()),
                "vector_max_diff": float((vector - theirs["vector"].to(vector)).abs().max())}

    def run_job(self, task_id: str, work: Callable[[], T]) -> T:
        return run_as_webui_task(task_id, work) if task_id.startswith("task(") else work()

    def render_images(self, requests: list[PreviewRequest],
                      notes: list[str] | None = None) -> list[tuple[Image.Image, str]]:
        """txt2img through the WebUI's own pipeline, as a person would run it: `<lora:name:w>` tags
        load files with the built-in Lora extension. One image per batch (batch size 1, one seed
        each), so every image equals a plain txt2img with its prompt and seed. All requests share
        size, steps and CFG (a sweep cell's do)."""
        from modules import processing

        if not requests:
            return []
        first = requests[0]
        model = shared.sd_model
        p = processing.StableDiffusionProcessingTxt2Img(
            sd_model=model, prompt=[r.prompt for r in requests],
            negative_prompt=[r.negative_prompt for r in requests], seed=[r.seed for r in requests],
            steps=first.steps, cfg_scale=first.cfg_scale, width=first.width, height=first.height,
            sampler_name="Euler", batch_size=1, n_iter=len(requests), do_not_save_grid=True,
            do_not_save_samples=True,
            override_settings={"sd_model_checkpoint": model.sd_checkpoint_info.name},
            override_settings_restore_afterwards=True,
        )
        with self.exclusive():
            try:
                processed = processing.process_images(p)
            finally:
                p.close()
        missing = [c for c in processed.comments.splitlines() if c.startswith("Lora not found")]
        if missing:  # the images would silently show the base model
            raise RuntimeError(f"{missing[0]} (is the file in {self.lora_dir()}?)")
        return list(zip(processed.images, processed.infotexts))  # fewer than asked: interrupted

    def lora_dir(self) -> Path:
        return Path(shared.cmd_opts.lora_dir)

    def runs_dir(self) -> Path:
        """Where one-run (`auto`) flows keep their folders: beside the WebUI's other outputs."""
        return Path(paths.data_path) / "outputs" / "lora_lab_auto"

    def models_dir(self) -> Path:
        return Path(paths.models_path) / "lora_lab"

    def sweep_roots(self) -> list[Path]:
        outdirs = [shared.opts.outdir_grids, shared.opts.outdir_txt2img_grids]
        return list(dict.fromkeys(Path(d) / SWEEP_SUBFOLDER for d in outdirs if d))
