"""The Forge Neo adapter: `shared.sd_model` is a `ForgeDiffusionEngine` (SD1.5 or SDXL for LoRA
Lab) whose networks sit in Comfy-style patchers. Neo loads lazily, under `torch.inference_mode`,
merges LoRAs into the weights when a patcher is loaded, and caches applied LoRAs by file name; each
of those is handled here (`training.py` holds what a run changes and undoes)."""
from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from modules import shared

from ...host.protocol import Family, HostInfo, ModelParts, PreviewRequest
from ..webui.host import WebUIHost
from .detect import neo_release
from .text import PairEmbedder, neo_text_encoders, temporarily
from .training import trainable_model, training_problems, unmerge_loras

if TYPE_CHECKING:
    from PIL import Image

NAME = "forge-neo"


def loaded_engine() -> Any:
    """The loaded engine without loading one (None while Neo holds its placeholder)."""
    from modules import sd_models

    model = sd_models.model_data.sd_model
    return None if model is None or type(model).__name__ == "FakeInitialModel" else model


def family_of_engine(engine: Any) -> Family | None:
    if engine is None:
        return None
    if getattr(engine, "is_sdxl", False) and type(engine).__name__ == "StableDiffusionXL":
        return "sdxl"
    return "sd1" if getattr(engine, "is_sd1", False) else None


def load_engine() -> Any:
    """The engine txt2img would use, loading it the way Neo's own pipeline does (call with the
    queue lock held)."""
    from modules import sd_models
    from modules_forge import main_entry

    selected = sd_models.select_checkpoint()
    loading = (sd_models.model_data.forge_loading_parameters or {}).get("checkpoint_info")
    if loaded_engine() is None or getattr(loading, "filename", None) != getattr(selected, "filename", None):
        main_entry.refresh_model_loading_parameters()  # the checkpoint the settings name now
    engine, _ = sd_models.forge_model_reload()
    return engine


class NeoHost(WebUIHost):
    name = NAME

    def info(self) -> HostInfo:
        engine = loaded_engine()
        info = getattr(engine, "sd_checkpoint_info", None)
        return HostInfo(name=self.name, version=neo_release(), model_family=family_of_engine(engine),
                        checkpoint=getattr(info, "name", None))

    def model_parts(self) -> ModelParts:
        with self.exclusive():
            engine = load_engine()
            family = family_of_engine(engine)
            if family is None:
                raise RuntimeError(f"LoRA Lab trains SD1.5 and SDXL models in Forge Neo; the loaded model is "
                                   f"{type(engine).__name__} (Neo has no SD2): load an SD1.5 or SDXL checkpoint")
            problems = training_problems(engine)
            if problems:
                raise RuntimeError("; ".join(problems))
            unmerge_loras()  # the base weights, not what the last generation merged into them
        objects = engine.forge_objects_original
        unet = objects.unet.model.diffusion_model
        predictor = objects.unet.model.predictor
        clip = objects.clip.cond_stage_model
        tokenizers = objects.clip.tokenizer
        first = next(unet.parameters())
        info = engine.sd_checkpoint_info
        te1, te2 = neo_text_encoders(engine, family)
        parts = ModelParts(
            unet=unet, text_encoder=clip.clip_l.transformer, tokenizer=tokenizers.clip_l,
            vae=objects.vae.first_stage_model, alphas_cumprod=predictor.alphas_cumprod.detach().float().cpu(),
            parameterization="v" if predictor.prediction_type == "v_prediction" else "eps",
            family=family, latent_scale=float(objects.vae.first_stage_model.latent_format.scale_factor),
            device=first.device, dtype=first.dtype, checkpoint_name=info.name_for_extra,
            clip_skip=int(getattr(shared.opts, "CLIP_stop_at_last_layers", 1)) if family == "sd1" else 1,
            checkpoint_sha256=getattr(info, "sha256", None), encode_te1=te1, encode_te2=te2,
        )
        if family == "sdxl":
            parts.text_encoder_2 = clip.clip_g.transformer
            parts.tokenizer_2 = tokenizers.clip_g
            parts.size_embedders = [PairEmbedder(engine.embedder) for _ in range(3)]
        return parts

    def prepared_for_training(self, parts: ModelParts, text_encoders: bool) -> AbstractContextManager[None]:
        return trainable_model(loaded_engine(), parts, text_encoders)

    def loaded_base(self) -> str | None:
        return family_of_engine(loaded_engine())

    def load_checkpoint_from_settings(self) -> None:
        load_engine()

    def render_preview(self, request: PreviewRequest) -> Image.Image:
        """One image through Neo's own pipeline, with no other network added; patched forwards (an
        in-training LoRA) stay active."""
        from modules import processing

        p = processing.StableDiffusionProcessingTxt2Img(
            prompt=request.prompt, negative_prompt=request.negative_prompt, seed=request.seed,
            steps=request.steps, cfg_scale=request.cfg_scale, width=request.width, height=request.height,
            sampler_name="Euler", do_not_save_grid=True, do_not_save_samples=True)
        p.disable_extra_networks = True
        p.clear_prompt_cache()  # a text-encoder LoRA changes the conditioning, not the prompt
        with self.exclusive():
            try:
                processed = processing.process_images(p)
            finally:
                p.close()
        return processed.images[0]

    def render_images(self, requests: list[PreviewRequest],
                      notes: list[str] | None = None) -> list[tuple[Image.Image, str]]:
        self.reread_lora_files()
        return super().render_images(requests, notes)

    def reread_lora_files(self) -> None:
        """Neo applies LoRAs again only when the set of (file, weights) changes, so a file rewritten
        under a name it has applied would keep serving the old weights."""
        engine = loaded_engine()
        if engine is not None:
            engine.current_lora_hash = str([])

    def lora_load_report(self, name: str) -> dict[str, object]:
        """Match a LoRA file's keys the way Neo's Lora loader does and count the modules matched."""
        from backend.patcher.lora import load_lora, model_lora_keys_clip, model_lora_keys_unet
        from backend.utils import load_torch_file

        networks = sys.modules.get("networks")
        if networks is None:
            raise RuntimeError("Neo's built-in Lora extension (sd_forge_lora) is not loaded")
        with self.exclusive():
            engine = load_engine()
            networks.list_available_networks()
            on_disk = networks.available_networks.get(name)
            if on_disk is None:
                raise FileNotFoundError(f"no LoRA named {name!r} in {self.lora_dir()}")
            objects = engine.forge_objects_original
            state = load_torch_file(on_disk.filename, safe_load=True)
            _, unmatched = load_lora(state, model_lora_keys_unet(objects.unet.model))
            _, unmatched = load_lora(unmatched, model_lora_keys_clip(objects.clip.cond_stage_model))
        prefixes = {k.split(".", 1)[0] for k in state}
        missed = {k.split(".", 1)[0] for k in unmatched}
        return {"file": on_disk.filename, "file_modules": len(prefixes),
                "matched_modules": len(prefixes - missed), "unmatched": sorted(missed)[:20]}

    def learned_conditioning(self, parts: ModelParts, prompt: str, width: int, height: int) -> Any:
        """At the clip skip the trainer uses (Neo sets its engine's per generation, from the setting)."""
        from modules import prompt_parser

        engine = loaded_engine()
        text = getattr(engine, "text_processing_engine", None)  # SD1; SDXL reads fixed layers
        with temporarily(text, "clip_skip", parts.clip_skip) if text is not None else nullcontext():
            return engine.get_learned_conditioning(
                prompt_parser.SdConditioning([prompt], width=width, height=height))
