"""Import the `ldm` package (the WebUI's `repositories/stable-diffusion-stability-ai`, or PyPI's
`stable-diffusion-sdkit`) where `open_clip` or `torchvision` cannot be imported.

`ldm` imports both at module level but SD1 never uses them (`open_clip` is SD2's text encoder,
`torchvision.utils.make_grid` only logs training images). When a real import fails we put a stand-in
into `sys.modules` for the duration of the `ldm` import only, so nothing else in the process ever
sees it; any later use of the stand-in raises with the reason.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager


class MissingDependency(types.ModuleType):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name)
        self.__spec__ = importlib.machinery.ModuleSpec(name, None)
        self.__path__: list[str] = []
        self._reason = reason

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):
            raise AttributeError(attr)
        reason = self._reason

        def unavailable(*args: object, **kwargs: object) -> None:
            raise ImportError(f"{self.__name__}.{attr} is unavailable here: {reason}")

        return unavailable


def _importable(name: str) -> str | None:
    try:
        importlib.import_module(name)
        return None
    except Exception as e:  # a broken install raises more than ImportError (e.g. a CUDA torchvision)
        return f"{type(e).__name__}: {e}"


@contextmanager
def _stand_ins(names: list[str]) -> Iterator[None]:
    added: list[str] = []
    for name in names:
        reason = _importable(name)
        if reason is None:
            continue
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            sub = ".".join(parts[: i])
            if sub not in sys.modules:
                sys.modules[sub] = MissingDependency(sub, reason)
                added.append(sub)
    try:
        yield
    finally:
        for sub in added:
            sys.modules.pop(sub, None)


def import_ldm() -> types.ModuleType:
    """Import and return `ldm.models.diffusion.ddpm` (which pulls in the UNet, VAE and encoders)."""
    if "ldm.models.diffusion.ddpm" in sys.modules:
        return sys.modules["ldm.models.diffusion.ddpm"]
    # Libraries that probe for torchvision themselves (torchmetrics via pytorch_lightning) must be
    # imported before a stand-in exists, or they take it for the real thing.
    importlib.import_module("pytorch_lightning")
    with _stand_ins(["torchvision.utils", "open_clip"]):
        ddpm = importlib.import_module("ldm.models.diffusion.ddpm")
        importlib.import_module("ldm.modules.encoders.modules")
    return ddpm
