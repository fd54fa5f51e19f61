"""Latents of every training image, encoded once (and its mirror when flips are on), kept in memory
and optionally on disk beside the dataset.

A disk entry's name hashes the image's size and mtime, its crop, the flip and a fingerprint of the
VAE weights, so a changed image or another VAE never reuses a stale latent.
"""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..dataset.images import STATE_DIR, load_rgb
from ..host.protocol import InterruptFlag, ModelParts, ProgressSink
from .data import Dataset, Item

ENCODE_BATCH = 4


class Interrupted(Exception):
    pass


def image_tensor(item: Item, flip: bool) -> torch.Tensor:
    """RGB in [-1, 1], shape (3, h, w): scaled to cover the bucket, centre-cropped, maybe mirrored."""
    image = load_rgb(item.path)
    fit = item.fit
    resample = Image.LANCZOS if fit.scale > 1 else Image.BOX
    image = image.resize(fit.resized, resample).crop(fit.crop_box())
    if flip:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def vae_fingerprint(vae: torch.nn.Module) -> str:
    params = list(vae.parameters())
    digest = hashlib.sha1()
    for p in (params[0], params[-1]):
        digest.update(p.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _disk_path(root: Path, item: Item, flip: bool, fingerprint: str, scale: float) -> Path:
    st = item.path.stat()
    key = (f"{item.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{item.fit.resized}|{item.bucket}"
           f"|{flip}|{fingerprint}|{scale}")
    return root / STATE_DIR / "latents" / f"{hashlib.sha1(key.encode()).hexdigest()}.safetensors"


class LatentCache:
    """(item index, flipped) -> latent (4, h/8, w/8), fp32 on the CPU."""

    def __init__(self) -> None:
        self.latents: dict[tuple[int, bool], torch.Tensor] = {}

    def batch(self, keys: list[tuple[int, bool]], device: torch.device) -> torch.Tensor:
        return torch.stack([self.latents[k] for k in keys]).to(device)


def posterior(vae: torch.nn.Module, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the VAE's latent distribution, in fp32, read from its encoder and quant_conv:
    ldm's `encode()` returns that distribution, but sgm's SDXL wrapper and Forge Neo's VAE encode
    straight to a sample (the computation is ldm's DiagonalGaussianDistribution's)."""
    if getattr(vae, "quant_conv", None) is None:
        dist = vae.encode(pixels)
        return dist.mean.float(), dist.std.float()
    mean, logvar = torch.chunk(vae.quant_conv(vae.encoder(pixels)), 2, dim=1)
    return mean.float(), torch.exp(0.5 * torch.clamp(logvar.float(), -30.0, 20.0))


@contextlib.contextmanager
def vae_in_fp32(vae: torch.nn.Module, needed: bool) -> Iterator[None]:
    """SDXL's VAE overflows in fp16: cast it up for caching, then back (fp16 -> fp32 -> fp16 is
    exact, and the same Parameter objects keep their data)."""
    dtype = next(vae.parameters()).dtype
    if not needed or dtype != torch.float16:
        yield
        return
    vae.float()
    try:
        yield
    finally:
        vae.to(dtype)


def encode_latents(parts: ModelParts, dataset: Dataset, flip: bool, seed: int, to_disk: bool,
                   progress: ProgressSink, interrupt: InterruptFlag) -> LatentCache:
    """Encode every (image, flip) once. Sampled from the VAE's posterior with a per-image generator
    (reproducible, and the host's global RNG is left alone)."""
    cache = LatentCache()
    vae = parts.vae
    with vae_in_fp32(vae, parts.is_sdxl):
        _encode_all(parts, dataset, flip, seed, to_disk, progress, interrupt, cache)
    return cache


def _encode_all(parts: ModelParts, dataset: Dataset, flip: bool, seed: int, to_disk: bool,
                progress: ProgressSink, interrupt: InterruptFlag, cache: LatentCache) -> None:
    from safetensors.torch import load_file, save_file

    vae = parts.vae
    first = next(vae.parameters())
    fingerprint = vae_fingerprint(vae) if to_disk else ""
    wanted = [(item, f) for item in dataset.items for f in ((False, True) if flip else (False,))]
    wanted += [(item, False) for item in dataset.holdout]  # validation only: never flipped
    todo: list[tuple[Item, bool, Path | None]] = []
    for item, f in wanted:
        path = _disk_path(dataset.root, item, f, fingerprint, parts.latent_scale) if to_disk else None
        if path is not None and path.is_file():
            cache.latents[(item.index, f)] = load_file(str(path))["latent"]
        else:
            todo.append((item, f, path))
    progress.begin("Caching latents", len(wanted))
    done = len(wanted) - len(todo)
    try:
        by_bucket: dict[tuple[int, int], list[tuple[Item, bool, Path | None]]] = {}
        for entry in todo:
            by_bucket.setdefault(entry[0].bucket, []).append(entry)
        for entries in by_bucket.values():
            for start in range(0, len(entries), ENCODE_BATCH):
                if interrupt.is_set():
                    raise Interrupted
                chunk = entries[start:start + ENCODE_BATCH]
                pixels = torch.stack([image_tensor(item, f) for item, f, _ in chunk])
                with torch.no_grad():
                    mean, std = posterior(vae, pixels.to(first.device, first.dtype))
                for i, (item, f, path) in enumerate(chunk):
                    generator = torch.Generator().manual_seed(seed * 100_003 + item.index * 2 + f)
                    noise = torch.randn(mean.shape[1:], generator=generator).to(mean.device)
                    latent = ((mean[i] + std[i] * noise) * parts.latent_scale).cpu().contiguous()
                    if not torch.isfinite(latent).all():
                        raise ValueError(f"{item.path.name}: the VAE produced NaN/inf latents")
                    cache.latents[(item.index, f)] = latent
                    if path is not None:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        save_file({"latent": latent}, str(path))
                done += len(chunk)
                progress.update(done, len(wanted), text=f"latents {done}/{len(wanted)}")
    finally:
        progress.end()
