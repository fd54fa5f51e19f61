"""The standalone host's txt2img: `<lora:name:w>` tags in a prompt apply LoRA files from its Lora
folder (as the WebUI's Lora extension does), and each image comes with an infotext in the
WebUI's format, so a sweep rendered here is recorded exactly like one rendered in the WebUI."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING

from ...host.protocol import ModelParts, PreviewRequest

if TYPE_CHECKING:
    from PIL import Image

SAMPLER = "Euler"  # lora_lab.hosts.standalone.sampling: Euler on the model's own sigmas, as the WebUI's "Euler"


def find_lora(lora_dir: Path, name: str) -> Path:
    """The file a `<lora:name:…>` tag means: the stem `name` anywhere under the Lora folder."""
    from ...sweep.family import lora_files

    for path in lora_files(lora_dir) if lora_dir.is_dir() else ():
        if path.suffix.lower() == ".safetensors" and path.stem == name:
            return path
    raise FileNotFoundError(f"Lora not found: {name} (no {name}.safetensors under {lora_dir})")


def infotext(request: PreviewRequest, checkpoint: str) -> str:
    lines = [request.prompt]
    if request.negative_prompt:
        lines.append(f"Negative prompt: {request.negative_prompt}")
    lines.append(f"Steps: {request.steps}, Sampler: {SAMPLER}, CFG scale: {request.cfg_scale:g}, "
                 f"Seed: {request.seed}, Size: {request.width}x{request.height}, Model: {checkpoint}")
    return "\n".join(lines)


def render(parts: ModelParts, lora_dir: Path, requests: Sequence[PreviewRequest],
           notes: list[str] | None = None) -> list[tuple[Image.Image, str]]:
    """Each request's image and infotext; consecutive requests with the same tags share one load
    of their files. A tag naming no file is an error (a sweep must not silently drop its LoRA)."""
    from .sampling import sample
    from ...sweep.prompts import find_tags, multipliers, without_lora_tags
    from ...train.applied import LoraUse, applied_loras

    def tags(request: PreviewRequest) -> tuple[tuple[str, tuple[float, float]], ...]:
        return tuple((t.name, multipliers(t)) for t in find_tags(request.prompt))

    out: list[tuple[Image.Image, str]] = []
    for key, group in groupby(requests, key=tags):
        uses = [LoraUse(find_lora(lora_dir, name), te, unet) for name, (te, unet) in key]
        with applied_loras(parts, uses) as unmatched:
            if notes is not None:
                notes += [n for n in unmatched if n not in notes]
            for request in group:
                image = sample(parts, replace(request, prompt=without_lora_tags(request.prompt)))
                out.append((image, infotext(request, parts.checkpoint_name)))
    return out
