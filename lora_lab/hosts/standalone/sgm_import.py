"""Import `sgm` (Stability-AI generative-models: SDXL) from a WebUI folder or a checkout.

`sgm` is on no package registry; the WebUI carries it in `repositories/generative-models`. Like the
WebUI (modules/paths.py) we put its folder on `sys.path` only for the import — the checkout's own
`scripts/` package would otherwise shadow every extension's `scripts` — and give the modules SDXL
imports but never uses for inference or LoRA training (`sgm.data`, taming's LPIPS, and the
torchvision/kornia pieces of the image embedders, scipy for the LMS sampler) import-time stand-ins when they cannot be imported,
as `ldm_import` does for ldm.
"""
from __future__ import annotations

import importlib
import os
import sys
import types
import warnings
from pathlib import Path

from .ldm_import import MissingDependency, _import_lightning_first, _stand_ins, import_open_clip, quiet

# The WebUI's own mutes (modules/paths.py: mute_sdxl_imports), applied the same way.
_WEBUI_MUTED = {"sgm.data": "the WebUI replaces it too (training data modules)",
                "taming.modules.losses.lpips": "the WebUI replaces it too (autoencoder training loss)"}
_UNUSED = ["kornia", "scipy", "scipy.integrate", "torchvision", "torchvision.transforms", "torchvision.models",
           "torchvision.utils", "torchvision.transforms.functional", "torchvision.ops.misc"]
HOW_TO_POINT = ("SDXL needs `sgm` (Stability-AI generative-models), which the WebUI ships in "
                "repositories/generative-models: set LORA_LAB_WEBUI to a WebUI folder (e.g. one built "
                "by `bash dev/webui.sh DIR`) or LORA_LAB_SGM to a generative-models checkout")


class SgmUnavailable(RuntimeError):
    pass


def sgm_root(webui: Path | None = None, checkout: Path | None = None) -> Path | None:
    """The folder holding the `sgm` package: an explicit checkout or WebUI folder first, then
    LORA_LAB_SGM, then LORA_LAB_WEBUI's repositories/generative-models."""
    candidates: list[Path] = []
    if checkout is not None:
        candidates.append(Path(checkout))
    if webui is not None:
        candidates.append(Path(webui) / "repositories" / "generative-models")
    if os.environ.get("LORA_LAB_SGM"):
        candidates.append(Path(os.environ["LORA_LAB_SGM"]))
    if os.environ.get("LORA_LAB_WEBUI"):
        candidates.append(Path(os.environ["LORA_LAB_WEBUI"]) / "repositories" / "generative-models")
    for candidate in candidates:
        if (candidate / "sgm" / "__init__.py").is_file():
            return candidate.resolve()
    return None


def sgm_root_in(folder: Path) -> Path:
    """`folder` as an sgm root: a WebUI folder (its repositories/generative-models) or a
    generative-models checkout; unchanged when it is neither (import_sgm then says so)."""
    return sgm_root(webui=folder, checkout=folder) or Path(folder)


def import_sgm(root: Path | None = None) -> types.ModuleType:
    """Import and return `sgm` with its UNet, autoencoder and conditioner modules loaded.

    Reuses an `sgm` already imported (inside the WebUI it always is). Raises SgmUnavailable, with
    how to point LoRA Lab at one, when there is none."""
    loaded = sys.modules.get("sgm")
    if loaded is not None and not isinstance(loaded, MissingDependency):
        return loaded
    root = root if root is not None else sgm_root()
    if root is None:
        raise SgmUnavailable(HOW_TO_POINT)
    _import_lightning_first()
    import_open_clip()  # with its own torchvision stand-ins, before ours exist
    for name, why in _WEBUI_MUTED.items():
        if name not in sys.modules:
            sys.modules[name] = _muted(name, why)
    sys.path.insert(0, str(root))
    try:
        with _stand_ins(_UNUSED), quiet():
            sgm = importlib.import_module("sgm")
            for name in ("sgm.modules.diffusionmodules.openaimodel", "sgm.modules.encoders.modules",
                         "sgm.models.diffusion", "sgm.modules.diffusionmodules.denoiser_scaling",
                         "sgm.modules.diffusionmodules.discretizer"):
                importlib.import_module(name)
    finally:
        sys.path.remove(str(root))
    # sgm's attention enters torch.backends.cuda.sdp_kernel() on every call, which now warns
    warnings.filterwarnings("ignore", message=".*sdp_kernel.*", category=FutureWarning)
    if not str(Path(sgm.__file__).resolve()).startswith(str(root)):
        raise SgmUnavailable(f"`import sgm` found {sgm.__file__}, not the one in {root}")
    return sgm


def _muted(name: str, why: str) -> types.ModuleType:
    module = MissingDependency(name, why)
    # the attributes sgm reads from these at import time; None as the WebUI sets them
    module.LPIPS = None  # type: ignore[attr-defined]
    module.StableDataModuleFromConfig = None  # type: ignore[attr-defined]
    return module
