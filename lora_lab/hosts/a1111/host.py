"""The A1111 WebUI v1.10.1 adapter: `shared.sd_model` is ldm's LatentDiffusion (SD1/SD2) or sgm's
DiffusionEngine (SDXL), its built-in Lora extension merges LoRAs into the weights, and it has an
interrogator."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modules import shared

from ...host.protocol import Family, HostInfo, ModelParts, PreviewRequest
from ..webui.host import WebUIHost, webui_version

if TYPE_CHECKING:
    from PIL import Image


def loaded_model() -> object | None:
    """The loaded model without triggering a load (`shared.sd_model` would load one)."""
    from modules import sd_models

    return sd_models.model_data.sd_model


def model_base(model: object) -> str | None:
    """"sd1", "sd2" or "sdxl": the base the WebUI tells LoRA versions apart by (None: no model)."""
    if model is None:
        return None
    if getattr(model, "is_sdxl", False):
        return "sdxl"
    return "sd2" if getattr(model, "is_sd2", False) else "sd1"


def family_of_model(model: object) -> Family | None:
    """The family LoRA Lab trains (None: no model)."""
    base = model_base(model)
    if base == "sd2":
        return "sd2-v" if getattr(model, "parameterization", "eps") == "v" else "sd2"
    return {"sd1": "sd1", "sdxl": "sdxl"}.get(base or "")  # type: ignore[return-value]


def training_problems(model: object) -> list[str]:
    """Why the loaded model cannot be trained correctly as the WebUI holds it (nothing touched)."""
    problems = []
    opts = shared.cmd_opts
    if opts.lowvram or opts.medvram or (getattr(opts, "medvram_sdxl", False) and model_base(model) == "sdxl"):
        flag = "--lowvram" if opts.lowvram else "--medvram" if opts.medvram else "--medvram-sdxl"
        problems.append(f"the WebUI runs with {flag}, which moves parts of the model off the GPU between "
                        "steps; LoRA Lab needs the whole model in place: restart the WebUI without it")
    unet = model.model.diffusion_model  # type: ignore[attr-defined]
    dtypes = {p.dtype for p in unet.parameters()}
    fp8 = [d for d in dtypes if "float8" in str(d)]
    if fp8:
        problems.append("the UNet's weights are stored in fp8 (Settings → Optimizations → FP8 weight); "
                        "gradients through fp8 weights are not exact: set it to Disable, reload the "
                        "model, then train")
    if getattr(model, "is_sdxl_inpaint", False):
        problems.append("the loaded SDXL model is an inpainting model; train on an SDXL base model")
    return problems


class A1111Host(WebUIHost):
    name = "webui"

    def info(self) -> HostInfo:
        model = loaded_model()
        info = getattr(model, "sd_checkpoint_info", None)
        return HostInfo(name=self.name, version=webui_version(), model_family=family_of_model(model),
                        checkpoint=getattr(info, "name", None))

    def model_parts(self) -> ModelParts:
        """The loaded model's parts, with any LoRA the last generation merged into the weights taken
        out again (else training would silently train on top of it)."""
        model = shared.sd_model
        family = family_of_model(model)
        if family is None:
            raise RuntimeError("LoRA Lab trains SD1, SD2 and SDXL models; the loaded model is none of them")
        problems = training_problems(model)
        if problems:
            raise RuntimeError("; ".join(problems))
        restore_base_weights(model)
        if family == "sdxl":
            return self._sdxl_parts(model)
        wrapped = model.cond_stage_model.wrapped  # ldm's embedder under the WebUI's hijack
        if family == "sd1":
            text_encoder, tokenizer = wrapped.transformer, wrapped.tokenizer
            clip_skip = int(shared.opts.CLIP_stop_at_last_layers)
        else:  # OpenCLIP; the WebUI always encodes at the layer the model config names
            import open_clip

            text_encoder, tokenizer, clip_skip = wrapped.model, open_clip.tokenize, wrapped.layer_idx + 1
        unet = model.model.diffusion_model
        first = next(unet.parameters())
        return ModelParts(
            unet=unet, text_encoder=text_encoder, tokenizer=tokenizer,
            vae=model.first_stage_model, alphas_cumprod=training_schedule(model),
            parameterization=model.parameterization, family=family,
            latent_scale=float(model.scale_factor), device=first.device, dtype=first.dtype,
            checkpoint_name=model.sd_checkpoint_info.name_for_extra, clip_skip=clip_skip,
            checkpoint_sha256=getattr(model.sd_checkpoint_info, "sha256", None),  # None with --no-hashing
        )

    def _sdxl_parts(self, model: Any) -> ModelParts:
        """sgm's DiffusionEngine: the WebUI wraps both text embedders (`.wrapped` is sgm's)."""
        from ..sgm_parts import parts_from_sgm

        embedders = model.conditioner.embedders
        te1, te2 = (getattr(e, "wrapped", e) for e in embedders[:2])
        parts = parts_from_sgm(model, model.sd_checkpoint_info.name_for_extra, te1, te2)
        parts.alphas_cumprod = training_schedule(model)
        parts.parameterization = model.parameterization  # the WebUI's extend_sdxl read it off the denoiser
        parts.checkpoint_sha256 = getattr(model.sd_checkpoint_info, "sha256", None)
        return parts

    def learned_conditioning(self, parts: ModelParts, prompt: str, width: int, height: int) -> Any:
        from modules import prompt_parser

        return shared.sd_model.get_learned_conditioning(
            prompt_parser.SdConditioning([prompt], width=width, height=height))

    def render_preview(self, request: PreviewRequest) -> Image.Image:
        """One image through the WebUI's own pipeline. Patched forwards (an in-training LoRA) stay
        active; no other network is added, and cached conditionings are dropped because a
        text-encoder LoRA changes them without changing the prompt."""
        from modules import processing

        model = shared.sd_model
        override = {"sd_model_checkpoint": model.sd_checkpoint_info.name}
        if "sd_lora" in shared.opts.data_labels:
            override["sd_lora"] = "None"
        processing.StableDiffusionProcessing.cached_c = [None, None]
        processing.StableDiffusionProcessing.cached_uc = [None, None]
        p = processing.StableDiffusionProcessingTxt2Img(
            sd_model=model, prompt=request.prompt, negative_prompt=request.negative_prompt,
            seed=request.seed, steps=request.steps, cfg_scale=request.cfg_scale,
            width=request.width, height=request.height, sampler_name="Euler",
            do_not_save_grid=True, do_not_save_samples=True, override_settings=override,
            override_settings_restore_afterwards=True,
        )
        p.disable_extra_networks = True
        with self.exclusive():
            try:
                processed = processing.process_images(p)
            finally:
                p.close()
                restore_base_weights(model)
        return processed.images[0]

    def loaded_base(self) -> str | None:
        return model_base(shared.sd_model)

    def load_checkpoint_from_settings(self) -> None:
        from modules import sd_models, sd_vae

        sd_models.reload_model_weights()
        sd_vae.reload_vae_weights()

    def lora_load_report(self, name: str) -> dict[str, object]:
        """Load a LoRA file the way the built-in Lora extension does and count the modules it
        matched (it drops unmatched keys silently)."""
        from ...files.safetensors_header import read_header

        networks = sys.modules.get("networks")
        if networks is None:
            raise RuntimeError("the built-in Lora extension is not loaded")
        with self.exclusive():
            networks.list_available_networks()
            on_disk = networks.available_networks.get(name)
            if on_disk is None:
                raise FileNotFoundError(f"no LoRA named {name!r} in {self.lora_dir()}")
            net = networks.load_network(name, on_disk)
        prefixes = {k.split(".", 1)[0] for k in read_header(Path(on_disk.filename)) if k != "__metadata__"}
        matched = {m.network_key.split(".", 1)[0] for m in net.modules.values()}  # file-side names
        return {"file": on_disk.filename, "file_modules": len(prefixes), "matched_modules": len(net.modules),
                "unmatched": sorted(prefixes - matched)[:20]}

    def interrogate(self, image: Image.Image) -> str:
        """A sentence about the image from the WebUI's interrogator (BLIP + CLIP)."""
        with self.exclusive():
            return str(shared.interrogator.interrogate(image.convert("RGB")))

def training_schedule(model: Any) -> Any:
    """float32[1000] on the CPU: the model's own schedule, never a per-generation override (the
    WebUI keeps the original as `alphas_cumprod_original` while one is active)."""
    import torch

    alphas = getattr(model, "alphas_cumprod_original", None)
    if alphas is None:
        alphas = model.alphas_cumprod
    return alphas.detach().to(torch.float32).cpu()


def restore_base_weights(model: object) -> None:
    """Take out what the built-in Lora extension merged into the weights (it keeps backups and
    only restores them at a later forward)."""
    networks = sys.modules.get("networks")  # extensions-builtin/Lora, imported by its script
    if networks is None or not hasattr(networks, "network_restore_weights_from_backup"):
        return
    import torch

    networks.loaded_networks.clear()
    with torch.no_grad():  # the WebUI leaves UNet weights requiring grad; copy_ on them needs this
        for module in model.modules():  # type: ignore[attr-defined]
            if getattr(module, "network_current_names", ()) != ():
                networks.network_restore_weights_from_backup(module)
                module.network_current_names = ()
