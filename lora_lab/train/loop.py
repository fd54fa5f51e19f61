"""A training run against the host's loaded model.

`train(host, config)` validates everything that can be checked without the model (settings,
dataset, output folder, resume file) and refuses a second concurrent run before it touches the
model. Then, holding `host.exclusive()` for the whole run: latents are cached, the base model is
frozen, the LoRA is injected, and epochs run. However the run ends — finished, interrupted through
`host.interrupt`, or an exception in a step — the model's flags, modes and forwards are put back,
and the last good LoRA state is saved (interrupt/exception: as `<name>.safetensors`).
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from PIL import Image

from ..files.atomic import write_atomic
from ..files.lora_files import (LOSS_KEYS, STOPPED_KEY, TRAIN_LOSS_KEY, epoch_files, epoch_stem, run_file,
                                 step_stem)
from ..host.progress import EtaClock
from ..host.protocol import Host, ModelParts, PreviewRequest
from .allocator import steady_heap
from .checkpointing import block_forwards
from .config import TrainConfig, TrainConfigError
from .data import Dataset, Draw, Item, epoch_batches, load_dataset, process_caption
from .guard import frozen
from .keys import TE1_PREFIX, TE2_PREFIX, LayoutError, te_targets, unet_targets
from .latents import Interrupted, LatentCache, encode_latents
from .network import LoRANetwork, inject
from .optim import make_optimizer, make_scheduler
from .save import SAVE_DTYPES, card_sidecar, epoch_metadata, output_dir_problems, \
    read_resume_file, resume_problems, run_metadata, save_lora, write_json
from .sdpa import sdpa_attention
from .text import FrozenTextCache, SdxlText, encode_text, size_vector

log = logging.getLogger(__name__)

State = Literal["preparing", "caching", "training", "finished", "interrupted", "failed"]


class TrainingDiverged(RuntimeError):
    """The run's numbers stopped being numbers; the message says what to change."""


class TrainingBusy(RuntimeError):
    refusal = True  # said to the person, not a bug (no traceback)


@dataclass
class TrainStatus:
    """Live state of a run; another thread may read it while the run writes it."""

    name: str = ""
    state: State = "preparing"
    epoch: int = 0  # the epoch in progress (1-based), or the last one finished
    epochs: int = 0
    step: int = 0  # optimizer steps done
    total_steps: int = 0
    loss: float | None = None
    lr: float | None = None
    loss_history: list[float] = field(default_factory=list)  # one loss per optimizer step
    epoch_losses: list[float] = field(default_factory=list)  # mean loss of each finished epoch
    files: list[Path] = field(default_factory=list)  # LoRA files written, in order
    preview: Image.Image | None = None  # the latest preview
    notes: list[str] = field(default_factory=list)
    message: str = ""
    error: str | None = None
    started_at: float = 0.0
    finished_at: float | None = None
    eta_seconds: float | None = None  # from the pace after the first step (None until known)
    # per finished epoch: the deterministic loss on a fixed subset of the training images, and on
    # the held-out images (None without any), and the step each epoch ended at
    stable_losses: list[float] = field(default_factory=list)
    val_losses: list[float | None] = field(default_factory=list)
    epoch_end_steps: list[int] = field(default_factory=list)
    on_note: Callable[[str], None] | None = field(default=None, repr=False)  # e.g. the CLI prints them

    def add_note(self, text: str) -> None:
        self.notes.append(text)
        if self.on_note is not None:
            self.on_note(text)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "epoch": self.epoch, "epochs": self.epochs,
                "step": self.step, "total_steps": self.total_steps, "loss": self.loss,
                "lr": self.lr, "loss_history": list(self.loss_history),
                "epoch_losses": list(self.epoch_losses), "files": [str(f) for f in self.files],
                "notes": list(self.notes), "message": self.message, "error": self.error,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "eta_seconds": self.eta_seconds, "stable_losses": list(self.stable_losses),
                "val_losses": list(self.val_losses), "epoch_end_steps": list(self.epoch_end_steps)}


@dataclass(frozen=True)
class TrainResult:
    state: Literal["finished", "interrupted", "failed"]
    final_file: Path | None  # `<name>.safetensors` when it was written
    files: list[Path]
    steps_done: int
    loss_history: list[float]
    message: str
    error: str | None = None


_RUN_LOCK = threading.Lock()
_last_status: TrainStatus | None = None


def last_status() -> TrainStatus | None:
    """The running run's status, else the last finished one's (None before any run)."""
    return _last_status


VALIDATION_TIMESTEPS = (200, 400, 600, 800)  # as sd-scripts' validation loss


def diffusion_loss(unet: torch.nn.Module, alphas_cumprod: torch.Tensor, latents: torch.Tensor,
                   cond: torch.Tensor | dict[str, torch.Tensor], noise: torch.Tensor, timesteps: torch.Tensor,
                   parameterization: str, min_snr_gamma: float = 0.0) -> torch.Tensor:
    """Per-sample fp32 MSE of the UNet's eps or v prediction at the given noise and timesteps
    (DDPM forward process from `alphas_cumprod`), with min-SNR-γ weights when γ > 0."""
    acp = alphas_cumprod.to(latents.device)[timesteps.to(latents.device)]
    a = acp.sqrt().view(-1, 1, 1, 1)
    s = (1 - acp).sqrt().view(-1, 1, 1, 1)
    noisy = a * latents + s * noise
    target = noise if parameterization == "eps" else a * noise - s * latents
    kwargs = cond if isinstance(cond, dict) else {"context": cond}  # SDXL: context and y
    pred = unet(noisy, timesteps.to(latents.device), **kwargs)
    loss = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    if min_snr_gamma > 0:
        snr = acp / (1 - acp)
        weight = snr.clamp(max=min_snr_gamma) / (snr if parameterization == "eps" else snr + 1)
        loss = loss * weight
    return loss


def train(host: Host, config: TrainConfig, status: TrainStatus | None = None) -> TrainResult:
    """Run one training; `status` (optional) is updated live for a UI to poll.

    Raises TrainConfigError (bad settings, dataset, output folder or resume file) or TrainingBusy
    before the model is touched; everything after that ends in the returned result."""
    global _last_status
    status = status or TrainStatus()
    status.name, status.started_at = config.name, time.time()
    try:
        if not _RUN_LOCK.acquire(blocking=False):
            raise TrainingBusy("a training run is already active; wait for it or interrupt it")
    except TrainingBusy as e:
        _refused(status, e)
        raise
    _last_status = status
    created: Path | None = None  # an output folder this run made, removed again if refused
    try:
        config.validate()
        dataset = load_dataset(config)
        out_dir = config.output_dir or host.lora_dir()
        created = _first_missing(out_dir)
        problems = output_dir_problems(out_dir) or name_in_use(out_dir, config)
        if problems:
            raise TrainConfigError(problems)
        resume = read_resume_file(config.resume_from) if config.resume_from else None
        host.interrupt.clear()  # a stop request left over from an earlier job is not for this run
        with host.exclusive():
            parts = host.model_parts()
            network = _build_network(parts, config)
            if resume is not None:
                assert config.resume_from is not None
                problems = resume_problems(resume, network.expected_shapes(), network.alphas(),
                                           config.resume_from.name)
                if problems:
                    raise TrainConfigError(problems)
                network.load_from_file_tensors(resume)
            return _Run(host, parts, config, dataset, network, out_dir, status).execute()
    except Exception as e:
        if status.state == "preparing":
            _refused(status, e)
            if created is not None:
                _remove_empty_up_to(out_dir, created)  # e.g. a missing checkpoint: no empty folders
        raise
    finally:
        _RUN_LOCK.release()


def name_in_use(folder: Path, config: TrainConfig) -> list[str]:
    """A LoRA of this name already in the output folder is not written over unless the person chose
    to (`overwrite`); continuing a run from one of its own epoch files adds to it."""
    existing = epoch_files(folder, config.name)
    if not existing or config.overwrite:
        return []
    if config.resume_from is not None and Path(config.resume_from).resolve() in {p.resolve() for p in existing}:
        return []
    shown = ", ".join(p.name for p in existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
    return [f"a LoRA named {config.name!r} is already in {folder} ({shown}): choose another name, or allow "
            "replacing it"]


def _first_missing(folder: Path) -> Path | None:
    """The outermost folder of `folder`'s path that does not exist yet (None when it exists)."""
    missing = None
    for path in [folder, *folder.parents]:
        if path.exists():
            return missing
        missing = path
    return missing


def _remove_empty_up_to(folder: Path, top: Path) -> None:
    for path in [folder, *folder.parents]:
        if not path.is_dir() or any(path.iterdir()):
            return
        path.rmdir()
        if path == top:
            return


def _refused(status: TrainStatus, error: Exception) -> None:
    status.state, status.error, status.message = "failed", str(error), str(error)
    status.finished_at = time.time()


def _build_network(parts: ModelParts, config: TrainConfig) -> LoRANetwork:
    if parts.device.type == "cpu" and parts.dtype != torch.float32:
        raise TrainConfigError([f"the model's weights are {parts.dtype} on the CPU; CPU training "
                                "needs fp32 weights"])
    try:
        targets = unet_targets(parts.unet, conv=config.conv_dim > 0, compvis=parts.is_sdxl) \
            if config.unet_lr > 0 else []
        if parts.is_sdxl:
            assert parts.text_encoder_2 is not None
            if config.train_text_encoder:  # CLIP-L: only the layers its hidden state passes through
                targets += te_targets(parts.text_encoder, prefix=TE1_PREFIX, encoder=1,
                                      used=parts.te1_hidden_index)
            if config.effective_te2_lr > 0:  # bigG: every layer (the pooled output reads the last)
                targets += te_targets(parts.text_encoder_2, prefix=TE2_PREFIX, encoder=2, used=10**6)
        elif config.train_text_encoder:
            targets += te_targets(parts.text_encoder, effective_clip_skip(parts, config))
    except LayoutError as e:
        raise TrainConfigError([str(e)]) from None
    if not targets:
        raise TrainConfigError(["nothing to train: every learning rate that applies to this model is 0"])
    return LoRANetwork(targets, config.dim, config.alpha, config.conv_dim,
                       config.effective_conv_alpha, parts.device, config.seed,
                       config.network_dropout, config.rank_dropout, config.module_dropout)


def effective_clip_skip(parts: ModelParts, config: TrainConfig) -> int:
    """The run's clip skip: the configured one, else the host's. SD2 always uses the layer its
    model config names (the WebUI ignores its clip-skip setting for SD2), and so do we."""
    if parts.family != "sd1":
        return parts.clip_skip
    return config.clip_skip or parts.clip_skip


def _grad_scaler(enabled: bool) -> Any:
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


class _Run:
    def __init__(self, host: Host, parts: ModelParts, config: TrainConfig, dataset: Dataset,
                 network: LoRANetwork, out_dir: Path, status: TrainStatus) -> None:
        self.host, self.parts, self.config, self.dataset = host, parts, config, dataset
        self.network, self.out_dir, self.status = network, out_dir, status
        self.device = parts.device
        self.clip_skip = effective_clip_skip(parts, config)
        self.rng = random.Random(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.alphas_cumprod = parts.alphas_cumprod.to(self.device, torch.float32)
        cuda = self.device.type == "cuda"
        self.autocast_dtype = torch.bfloat16 if config.mixed_precision == "bf16" else torch.float16
        self.use_autocast = cuda and (config.mixed_precision != "no" or parts.dtype != torch.float32)
        self.scaler = _grad_scaler(self.use_autocast and self.autocast_dtype == torch.float16)
        self.plan = dataset.plan
        self.total_steps = self.plan.total_steps
        self.steps_done = 0
        self.epochs_done = 0
        self.final_saved = False
        self.session_id = secrets.randbits(31)
        self.triggers = list(dict.fromkeys(s.trigger for s in dataset.subsets if s.trigger))
        self.text: Callable[[list[str]], Any]
        if parts.is_sdxl:
            self.text = SdxlText(parts, config.train_text_encoder, config.effective_te2_lr > 0)
        elif config.train_text_encoder:
            self.text = lambda captions: encode_text(parts, captions, self.clip_skip)
        else:
            self.text = FrozenTextCache(parts, self.clip_skip)
        self.latents = LatentCache()
        self.base_metadata: dict[str, str] = {}
        self.eta_clock = EtaClock()
        # the "stable loss" images: a seeded, fixed subset of the training images
        count = min(config.validation_images, len(dataset.items))
        self.stable_items = random.Random(config.seed + 1).sample(dataset.items, count)

    # --- the run ------------------------------------------------------------------------------

    def execute(self) -> TrainResult:
        status, config = self.status, self.config
        status.epochs, status.total_steps = config.epochs, self.total_steps
        for note in self.dataset.notes:
            status.add_note(note)
        if config.clip_skip and config.clip_skip != self.clip_skip:
            status.add_note(f"clip skip {config.clip_skip} ignored: {self.parts.family} models "
                                f"use clip skip {self.clip_skip} (the layer their config names)")
        if self.parts.family == "sd2-v" and config.resolution < 768:
            status.add_note(f"SD2 768-v models were trained at 768 px; {config.resolution} px "
                                "works but may look softer at the model's own size")
        if self.parts.is_sdxl and config.resolution < 1024:
            status.add_note(f"SDXL models were trained at 1024 px; {config.resolution} px works but the "
                            "LoRA learns less detail at the model's own size")
        if self.parts.is_sdxl and (config.shuffle_caption or config.caption_dropout or config.tag_dropout) \
                and not (config.train_text_encoder and config.effective_te2_lr > 0):
            status.add_note("captions change every draw (shuffle/dropout): a frozen text encoder's output "
                            "is cached per caption variant, so most steps still run it once (no gradient)")
        if self.device.type == "cpu" and config.mixed_precision != "no":
            status.add_note("mixed precision is for CUDA; training in fp32 on the CPU")
        self.base_metadata = run_metadata(config, self.parts, self.dataset, self.clip_skip,
                                          self.session_id, status.started_at, self.total_steps,
                                          self.plan.batches_per_epoch)
        self._write_run_file()
        heap = contextlib.ExitStack()  # our own process on the CPU: no page-fault churn per step
        heap.enter_context(steady_heap(self.device.type == "cpu"
                                       and self.host.owns_process))
        try:
            # the host's own preparation (Forge Neo: trainable tensors, unmerged LoRAs), undone in finally
            heap.enter_context(self.host.prepared_for_training(
                self.parts, any(t.is_te for t in self.network.targets.values())))
            status.state = "caching"
            self.latents = encode_latents(self.parts, self.dataset, config.flip, config.seed,
                                          config.cache_latents_to_disk, self.host.progress,
                                          self.host.interrupt)
            status.state = "training"
            self.host.progress.begin("Training", self.total_steps)
            try:
                with self._model_prepared():
                    self._epochs()
            finally:
                self.host.progress.end()
            status.state = "finished"
            status.message = (f"finished: {self.steps_done} steps, {len(status.files)} file(s) in "
                              f"{self.out_dir}")
        except Interrupted:
            where = ("while caching latents" if status.state == "caching"
                     else f"at step {self.steps_done} of {self.total_steps}")
            status.state = "interrupted"
            status.message = f"interrupted {where}"
            self._save_last_good()
        except Exception as e:
            if isinstance(e, TrainingDiverged):  # the settings', not the code's: a message, no traceback
                log.warning("training stopped: %s", e)
            else:
                log.exception("training failed")
            where = ("while caching latents" if status.state == "caching"
                     else f"at step {self.steps_done + 1} (epoch {status.epoch})")
            status.state = "failed"
            status.error = f"{type(e).__name__}: {e}"
            hint = ("; try a smaller batch size or resolution, gradient checkpointing or fp16"
                    if "out of memory" in str(e).lower() else "")
            status.message = f"failed {where}: {status.error}{hint}; the model is restored"
            self._save_last_good()
        finally:
            heap.close()
            status.finished_at = time.time()
            self._write_run_file()
        final = self.out_dir / f"{self.config.name}.safetensors"
        return TrainResult(status.state, final if self.final_saved else None,  # type: ignore[arg-type]
                           list(status.files), self.steps_done, list(status.loss_history),
                           status.message, status.error)

    @contextlib.contextmanager
    def _model_prepared(self) -> Iterator[None]:
        parts = self.parts
        models = [m for m in (parts.unet, parts.text_encoder, parts.text_encoder_2, parts.vae) if m is not None]
        with frozen(*models), inject(self.network), sdpa_attention(parts.unet, self.network.projections), \
                block_forwards(parts.unet, self.config.gradient_checkpointing), \
                torch.enable_grad():
            self.network.train()
            yield

    def _epochs(self) -> None:
        config, status = self.config, self.status
        optimizer = make_optimizer(self.network.parameter_groups(config.unet_lr, config.te_lr, config.te2_lr),
                                   config)
        scheduler = make_scheduler(optimizer, config, self.total_steps)
        for epoch in range(1, config.epochs + 1):
            status.epoch = epoch
            batches = epoch_batches(self.dataset, config, self.rng)
            if epoch <= config.start_epoch:  # trained before this run: keep the draw order and schedule
                self._skip_epoch(len(batches), scheduler)
                continue
            self._adjust_threads()
            losses: list[float] = []
            for start in range(0, len(batches), config.grad_accum):
                group = batches[start:start + config.grad_accum]
                loss = 0.0
                for batch in group:
                    with self._autocast():
                        micro = self._loss(batch) / len(group)
                    self.scaler.scale(micro).backward()
                    loss += float(micro.detach())
                if config.max_grad_norm > 0:
                    self.scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(self.network.parameters(), config.max_grad_norm)
                self.scaler.step(optimizer)
                self.scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                if not math.isfinite(loss) and not self.network.all_finite():
                    raise TrainingDiverged(
                        f"the loss became {loss} and the LoRA's weights are no longer finite: lower the learning "
                        f"rates (UNet {config.unet_lr:g}, text encoder {config.te_lr:g}) or clip harder "
                        "(max_grad_norm); the epoch files saved before are kept")
                self.steps_done += 1
                losses.append(loss)
                self._report(loss, optimizer)
                if self.host.interrupt.is_set():
                    raise Interrupted
            status.epoch_losses.append(sum(losses) / len(losses))
            self.epochs_done = epoch
            self._end_of_epoch(epoch)
            if epoch < config.epochs and self.host.interrupt.is_set():  # e.g. during the preview
                raise Interrupted

    def _skip_epoch(self, batches: int, scheduler: Any) -> None:
        steps = math.ceil(batches / self.config.grad_accum)
        with warnings.catch_warnings():  # stepping a schedule without optimizer steps is the point here
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(steps):
                scheduler.step()
        self.steps_done += steps
        self.epochs_done += 1
        self.status.step = self.steps_done
        self.status.epoch_end_steps.append(self.steps_done)

    def _loss(self, batch: list[Draw]) -> torch.Tensor:
        config = self.config
        latents = self.latents.batch([(d.item.index, d.flip) for d in batch], self.device)
        captions = [process_caption(d.item, config, self.rng) for d in batch]
        noise = torch.randn(latents.shape, generator=self.generator)
        if config.noise_offset > 0:
            noise += config.noise_offset * torch.randn((latents.shape[0], latents.shape[1], 1, 1),
                                                       generator=self.generator)
        timesteps = torch.randint(0, len(self.alphas_cumprod), (latents.shape[0],),
                                  generator=self.generator)
        cond = self._conditioning(batch, captions)
        loss = diffusion_loss(self.parts.unet, self.alphas_cumprod, latents, cond,
                              noise.to(self.device), timesteps, self.parts.parameterization,
                              config.min_snr_gamma)
        return loss.mean()

    def _conditioning(self, batch: list[Draw], captions: list[str]) -> Any:
        """SD1/SD2: the text encoder's output. SDXL: {"context": CLIP-L ⊕ bigG hidden states,
        "y": bigG pooled ⊕ size embeddings of each draw (size_conditioning decides which sizes)}."""
        if not self.parts.is_sdxl:
            return self.text(captions)
        context, pooled = self.text(captions)
        sizes = [d.item.size_condition(d.flip, self.config.size_conditioning) for d in batch]
        original, crop, target = (torch.tensor([s[i] for s in sizes]) for i in range(3))
        return {"context": context, "y": size_vector(self.parts, pooled, original, crop, target)}

    def validation_loss(self, items: list[Item]) -> float:
        """The mean denoising loss of `items` at VALIDATION_TIMESTEPS with noise fixed by the run's
        seed and each image, captions as written (no shuffle or dropout), no flip, LoRA in eval
        mode: the same number for the same weights, so epochs can be compared."""
        losses = []
        self.network.eval()
        try:
            with torch.no_grad():
                timesteps = torch.tensor(VALIDATION_TIMESTEPS)
                for item in items:
                    latent = self.latents.batch([(item.index, False)], self.device)
                    generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + item.index)
                    noise = torch.randn((len(timesteps), *latent.shape[1:]), generator=generator)
                    batch = [Draw(item, False)] * len(timesteps)
                    with self._autocast():
                        cond = self._conditioning(batch, [item.caption] * len(timesteps))
                        loss = diffusion_loss(self.parts.unet, self.alphas_cumprod,
                                              latent.expand(len(timesteps), -1, -1, -1), cond,
                                              noise.to(self.device), timesteps, self.parts.parameterization)
                    losses.append(float(loss.mean()))
        finally:
            self.network.train()
        return sum(losses) / len(losses)

    def _adjust_threads(self) -> None:
        """On the CPU outside the WebUI: threads for the cores other processes leave free (the host
        has a `threads` tuner); the WebUI's own setting is never touched."""
        tuner = self.host.threads
        if tuner is not None and self.device.type == "cpu":
            tuner.adjust()

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.use_autocast:
            return torch.autocast("cuda", dtype=self.autocast_dtype)
        return contextlib.nullcontext()

    def _report(self, loss: float, optimizer: torch.optim.Optimizer) -> None:
        status = self.status
        status.step = self.steps_done
        status.loss = loss
        status.lr = float(optimizer.param_groups[0]["lr"])
        status.loss_history.append(loss)
        status.eta_seconds = self.eta_clock.remaining(self.steps_done, self.total_steps)
        self.host.progress.update(self.steps_done, self.total_steps, text=self._progress_text())

    def _progress_text(self) -> str:
        s = self.status
        loss = f"{s.loss:.4f}" if s.loss is not None else "-"
        lr = f"{s.lr:.2e}" if s.lr is not None else "-"
        text = f"epoch {s.epoch}/{s.epochs} · loss {loss} · lr {lr}"
        if s.stable_losses:
            text += f" · stable {s.stable_losses[-1]:.4f}"
        if s.val_losses and s.val_losses[-1] is not None:
            text += f" · val {s.val_losses[-1]:.4f}"
        return text

    def _end_of_epoch(self, epoch: int) -> None:
        config = self.config
        self.status.epoch_end_steps.append(self.steps_done)
        if config.validation:
            self.status.stable_losses.append(self.validation_loss(self.stable_items))
            held = self.dataset.holdout
            self.status.val_losses.append(self.validation_loss(held) if held else None)
            self.host.progress.update(self.steps_done, self.total_steps, text=self._progress_text())
        last = epoch == config.epochs
        every = config.preview_every_n_epochs
        image = self._preview() if every and (epoch % every == 0 or last) else None
        if last:
            self._save(None, image, epoch_end=True)
        elif epoch % config.save_every_n_epochs == 0:
            self._save(epoch, image, epoch_end=True)

    def _preview(self) -> Image.Image | None:
        config = self.config
        side = config.preview_size or config.resolution
        request = PreviewRequest(prompt=config.preview_prompt or self.dataset.first_caption(),
                                 negative_prompt=config.preview_negative, seed=config.preview_seed,
                                 steps=config.preview_steps, cfg_scale=config.preview_cfg,
                                 width=side, height=side)
        self.network.eval()
        self.network.set_multiplier(1.0)
        try:
            image = self.host.render_preview(request)
        except Exception as e:  # a failed preview must not cost the run
            log.exception("preview failed")
            self.status.add_note(f"preview after epoch {self.status.epoch} failed: {e}")
            return None
        finally:
            self.network.train()
        self.status.preview = image
        self.host.progress.update(self.steps_done, self.total_steps, text=self._progress_text(),
                                  image=image)
        return image

    # --- files --------------------------------------------------------------------------------

    def _save(self, epoch: int | None, image: Image.Image | None, epoch_end: bool = False,
              stopped: str | None = None) -> None:
        """An epoch file, the final file, or (`stopped`: why the run ended early) a step file."""
        config = self.config
        stem = step_stem(config.name, self.steps_done) if stopped else epoch_stem(config.name, epoch)
        path = self.out_dir / f"{stem}.safetensors"
        meta = epoch_metadata(self.base_metadata, stem, self.epochs_done, self.steps_done, stem)
        if epoch_end and self.status.epoch_losses:
            meta[TRAIN_LOSS_KEY] = f"{self.status.epoch_losses[-1]:.6f}"
        if self.status.stable_losses:  # the evidence the grid and review read later
            meta[LOSS_KEYS["stable"]] = f"{self.status.stable_losses[-1]:.6f}"
            if self.status.val_losses[-1] is not None:
                meta[LOSS_KEYS["val"]] = f"{self.status.val_losses[-1]:.6f}"
        note = f"LoRA Lab run {self.session_id}: epoch {self.epochs_done}, step {self.steps_done}"
        if stopped:
            meta[STOPPED_KEY] = stopped
            note += f"; not a finished LoRA: {stopped}"
        save_lora(path, self.network.state_dict_for_file(SAVE_DTYPES[config.save_precision]), meta)
        write_json(self.out_dir / f"{stem}.json",
                   card_sidecar(self.parts.family, self.triggers, self.parts.checkpoint_name, note))
        if image is not None:
            buffer = BytesIO()
            image.save(buffer, format="PNG")
            write_atomic(self.out_dir / f"{stem}.preview.png", buffer.getvalue())
        self.status.files.append(path)
        if epoch is None and not stopped:
            self.final_saved = True

    def _save_last_good(self) -> None:
        """After an interrupt or a failed step: the LoRA as of the last completed step."""
        if self.final_saved or self.steps_done == 0:
            return
        if not self.network.all_finite():
            self.status.add_note("the LoRA weights are not finite (NaN/inf); nothing saved")
            return
        reason = self.status.message.split(":")[0]  # "interrupted at step 128 of 680", "failed at step 4 (epoch 1)"
        try:
            self._save(None, None, stopped=reason)
        except Exception as e:
            log.exception("saving the last good state failed")
            self.status.add_note(f"saving the last good state failed: {e}")
            return
        saved = self.status.files[-1].name
        self.status.message += f"; saved step {self.steps_done} as {saved} (not a finished LoRA)"

    def _write_run_file(self) -> None:
        """The run file (`files.lora_files`): the settings, the step plan and how the run went."""
        data = {"lora_lab_version": self.base_metadata.get("lora_lab_version"),
                "checkpoint": self.parts.checkpoint_name, "family": self.parts.family,
                "config": self.config.to_dict(), "plan": self.plan.to_dict(),
                "result": self.status.to_dict()}
        try:
            write_json(run_file(self.out_dir, self.config.name), data)
        except OSError as e:
            self.status.add_note(f"could not write the run file: {e}")
