"""Load an SD1/SD2 LDM checkpoint with the real `ldm` code, offline."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...files.clip_files import clip_l_folder
from .families import CLIP_L, family_config, family_of
from .ldm_import import MissingDependency, open_clip_problem
from ...host.protocol import Family, ModelParts

if TYPE_CHECKING:
    import torch


class CheckpointError(ValueError):
    pass


def _local_clip_folder(version: str) -> str:
    if Path(version, "config.json").is_file():
        return version
    if version == CLIP_L:
        return str(clip_l_folder())
    raise CheckpointError(f"text encoder {version!r} is neither a local folder nor {CLIP_L}")


@contextmanager
def _offline_clip() -> Iterator[None]:
    """ldm's FrozenCLIPEmbedder calls `from_pretrained(version)` for weights and tokenizer; the
    weights are in the checkpoint, so build the text model from its config alone (as the WebUI does)
    and read tokenizer files from a local folder."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tokenizer_from_pretrained = CLIPTokenizer.from_pretrained

    def model_from_config(cls: type, version: str, *args: Any, **kwargs: Any) -> Any:
        return cls(CLIPTextConfig.from_pretrained(_local_clip_folder(str(version))))

    def tokenizer_local(cls: type, version: str, *args: Any, **kwargs: Any) -> Any:
        return tokenizer_from_pretrained(_local_clip_folder(str(version)), *args, **kwargs)

    with _swapped(CLIPTextModel, "from_pretrained", classmethod(model_from_config)), \
            _swapped(CLIPTokenizer, "from_pretrained", classmethod(tokenizer_local)):
        yield


_RANDOM_FILLS = ("uniform_", "normal_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_",
                 "xavier_uniform_", "xavier_normal_", "orthogonal_")


@contextmanager
def no_random_init() -> Iterator[None]:
    """Modules built only to receive a checkpoint's weights skip drawing random ones first (4.5 s
    of an SD1.5 load on one thread). Callers then check that every weight they need came from the
    file."""
    import torch.nn.init as init

    def keep(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        return tensor

    with ExitStack() as stack:
        for name in _RANDOM_FILLS:
            stack.enter_context(_swapped(init, name, keep))
        yield


@contextmanager
def _swapped(owner: Any, name: str, value: Any) -> Iterator[None]:
    """`owner.name = value` (a class or a module) for the block; what `owner` itself held before
    (or its absence, for an inherited class attribute) comes back afterwards."""
    own = owner.__dict__.get(name, _MISSING)
    setattr(owner, name, value)
    try:
        yield
    finally:
        if own is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, own)


_MISSING = object()


@contextmanager
def _open_clip_without_downloads() -> Iterator[None]:
    """ldm's FrozenOpenCLIPEmbedder asks open_clip for the model *and* its pretrained weights and
    image transforms. The weights are in the checkpoint (the WebUI also passes pretrained=None) and
    the transforms are thrown away, so build the bare model: no download, no torchvision."""
    import sys

    open_clip = sys.modules.get("open_clip")
    if open_clip is None or isinstance(open_clip, MissingDependency):
        yield
        return

    def model_only(arch: str, *args: Any, device: Any = "cpu", **kwargs: Any) -> tuple[Any, None, None]:
        return open_clip.create_model(arch, pretrained=None, device=device), None, None

    with _swapped(open_clip, "create_model_and_transforms", model_only):
        yield


# what a checkpoint must hold (SD2's open_clip also has an unused projection and logit scale)
_NEEDED_BY_ALL = ("model.diffusion_model.", "first_stage_model.")
_NEEDED_TEXT = {
    "sd1": ("cond_stage_model.transformer.",),
    "sd2": ("cond_stage_model.model.transformer.", "cond_stage_model.model.token_embedding.",
            "cond_stage_model.model.positional_embedding", "cond_stage_model.model.ln_final."),
}


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if path.suffix in (".ckpt", ".pt", ".pth"):
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
        return sd.get("state_dict", sd)
    raise CheckpointError(f"{path.name}: expected a .safetensors or .ckpt checkpoint")


def resolve_config(checkpoint: Path, config: Path | None, family: Family | None) -> dict[str, Any]:
    from omegaconf import OmegaConf

    if config is None and checkpoint.with_suffix(".yaml").is_file():
        config = checkpoint.with_suffix(".yaml")
    if config is not None:
        return OmegaConf.to_container(OmegaConf.load(config), resolve=True)  # type: ignore[return-value]
    if family is None and header_has(checkpoint, "conditioner.embedders."):
        return family_config("sdxl")
    if family is None and header_has(checkpoint, "cond_stage_model.model.transformer."):
        raise CheckpointError(f"{checkpoint.name} is an SD2 checkpoint: say which kind with --family "
                              "sd2 (512 px, eps) or sd2-v (768-v), or put its .yaml beside it")
    return family_config(family or "sd1")


def header_has(checkpoint: Path, prefix: str) -> bool:
    """Whether a weight name starts with `prefix`, from the safetensors header alone (a .ckpt
    would have to be loaded: left to the loader)."""
    from ...files.safetensors_header import HeaderError, read_header

    if checkpoint.suffix != ".safetensors":
        return False
    try:
        return any(k.startswith(prefix) for k in read_header(checkpoint))
    except (OSError, HeaderError):
        return False


def load_ldm(checkpoint: Path, config: Path | None = None, family: Family | None = None,
             device: str = "cpu") -> tuple[Any, Family]:
    """Build the LatentDiffusion the config describes and load the checkpoint into it, strictly for
    the UNet, VAE and text encoder. Returns (model in eval mode, family)."""
    import torch

    from .ldm_import import import_ldm, quiet

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise CheckpointError(f"checkpoint not found: {checkpoint}")
    cfg = resolve_config(checkpoint, config, family)
    fam = family_of(cfg)
    if fam != "sd1":
        problem = open_clip_problem()
        if problem:
            raise CheckpointError(f"{checkpoint.name} is {fam}, whose text encoder needs open_clip "
                                  f"(pip install open-clip-torch ftfy): {problem}")
    import_ldm()
    from ldm.util import instantiate_from_config

    with _offline_clip(), _open_clip_without_downloads(), no_random_init(), quiet():
        model = instantiate_from_config(cfg["model"])
    state = read_state_dict(checkpoint)
    missing, unexpected = model.load_state_dict(state, strict=False)
    needed = _NEEDED_BY_ALL + _NEEDED_TEXT["sd1" if fam == "sd1" else "sd2"]
    missing = [k for k in missing if k.startswith(needed) and not k.endswith("position_ids")]
    if missing:
        raise CheckpointError(f"{checkpoint.name} does not fit its config: {len(missing)} missing "
                              f"weights, e.g. {missing[:3]}")
    model.eval().to(device)
    del state
    torch.set_grad_enabled(True)  # instantiate does not change it, but be explicit for callers
    return model, fam


def parts_from_ldm(model: Any, family: Family, checkpoint_name: str) -> ModelParts:
    """ModelParts of a plain ldm LatentDiffusion (standalone) — the WebUI adapter has its own."""
    import torch

    unet = model.model.diffusion_model
    first = next(unet.parameters())
    embedder = model.cond_stage_model
    if family == "sd1":
        text_encoder, tokenizer, clip_skip = embedder.transformer, embedder.tokenizer, 1
    else:
        from .ldm_import import import_open_clip

        text_encoder, tokenizer = embedder.model, import_open_clip().tokenize
        clip_skip = embedder.layer_idx + 1
    return ModelParts(
        unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, vae=model.first_stage_model,
        alphas_cumprod=model.alphas_cumprod.detach().to(torch.float32).cpu(),
        parameterization=model.parameterization, family=family,
        latent_scale=float(model.scale_factor), device=first.device, dtype=first.dtype,
        checkpoint_name=checkpoint_name, clip_skip=clip_skip,
    )
