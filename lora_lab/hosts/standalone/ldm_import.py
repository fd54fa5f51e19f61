"""Import `ldm` (the WebUI's `repositories/stable-diffusion-stability-ai`, or PyPI's
`stable-diffusion-sdkit`) and `open_clip` where `torchvision` cannot be imported.

Both import torchvision at module level but never use it for what LoRA Lab does: `ldm` logs image
grids with `torchvision.utils`, `open_clip` builds image preprocessing (`torchvision.transforms`) and
freezes ResNet batch norms (`torchvision.ops`); SD2's text encoder needs none of that. When a real
import fails we put a stand-in into `sys.modules` for the duration of that import only, so nothing
else in the process ever sees it. Names taken from a stand-in are placeholders: reading their
attributes works (a default argument like `InterpolationMode.BICUBIC`), calling one raises with the
reason the real import failed.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager


class Unavailable:
    """What a stand-in module hands out for any name."""

    def __init__(self, name: str, reason: str) -> None:
        self._name, self._reason = name, reason

    def __getattr__(self, attr: str) -> Unavailable:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Unavailable(f"{self._name}.{attr}", self._reason)

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise ImportError(f"{self._name} is unavailable here: {self._reason}")

    def __repr__(self) -> str:
        return f"<unavailable {self._name}>"


class MissingDependency(types.ModuleType):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name)
        self.__spec__ = importlib.machinery.ModuleSpec(name, None)
        self.__path__: list[str] = []
        self._reason = reason

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Unavailable(f"{self.__name__}.{attr}", self._reason)


def _importable(name: str) -> str | None:
    try:
        importlib.import_module(name)
        return None
    except Exception as e:  # a broken install raises more than ImportError (e.g. a CUDA torchvision)
        return f"{type(e).__name__}: {e}"


_TORCHVISION = ["torchvision.utils", "torchvision.transforms.functional", "torchvision.ops.misc"]


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


@contextmanager
def quiet() -> Iterator[None]:
    """Hold back what ldm, sgm and lightning print while they import and build models (xformers
    missing, 'DiffusionWrapper has N params', deprecations): noise to a LoRA Lab user. Errors still
    raise; the held-back text is dropped."""
    import io
    import warnings
    from contextlib import redirect_stdout

    with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*pkg_resources.*")
        warnings.filterwarnings("ignore", message=".*rank_zero_only.*")
        yield


def _import_lightning_first() -> None:
    # Libraries that probe for torchvision themselves (torchmetrics via pytorch_lightning) must be
    # imported before a stand-in exists, or they take it for the real thing.
    with quiet():
        importlib.import_module("pytorch_lightning")


def open_clip_problem() -> str | None:
    """Why `open_clip` (SD2's text encoder) cannot be imported, or None when it can."""
    try:
        import_open_clip()
        return None
    except Exception as e:
        return f"{type(e).__name__}: {e}"


def import_open_clip() -> types.ModuleType:
    if "open_clip" in sys.modules and not isinstance(sys.modules["open_clip"], MissingDependency):
        return sys.modules["open_clip"]
    _import_lightning_first()
    with _stand_ins(_TORCHVISION), quiet():
        return importlib.import_module("open_clip")


def import_ldm() -> types.ModuleType:
    """Import and return `ldm.models.diffusion.ddpm` (which pulls in the UNet, VAE and encoders).

    Without a usable `open_clip` (SD1 does not need it) ldm gets a stand-in for it too."""
    if "ldm.models.diffusion.ddpm" in sys.modules:
        return sys.modules["ldm.models.diffusion.ddpm"]
    _import_lightning_first()
    missing_open_clip = ["open_clip"] if open_clip_problem() else []
    with _stand_ins(_TORCHVISION + missing_open_clip), quiet():
        ddpm = importlib.import_module("ldm.models.diffusion.ddpm")
        importlib.import_module("ldm.modules.encoders.modules")
    return ddpm
