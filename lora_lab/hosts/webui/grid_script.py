"""The selectable txt2img script "LoRA Lab grid": its inputs (in `grid_args.ARG_NAMES` order, which
is also the API's `script_args` order) and `run`, which hands over to `grid_run`.

Imported at WebUI start: only the family scan of the sweep core loads before the first run."""
from __future__ import annotations

from typing import Any

import gradio as gr
from modules import processing, scripts

from ...sweep.grid_args import ARG_NAMES, TITLE, GridArgs, from_infotext, parse_args
from .current import get_host

_families: list[Any] | None = None  # LoraFamily list; scanned once, again on refresh


def _scan_families() -> list[Any]:
    from ...sweep.family import FamilyError, list_families

    global _families
    try:
        _families = list_families(get_host().lora_dir())
    except FamilyError:
        _families = []
    return _families


def family_keys() -> list[str]:
    return [f.key for f in (_families if _families is not None else _scan_families())]


def epoch_names(key: str | None) -> list[str]:
    family = next((f for f in _families or [] if f.key == key), None)
    return [file.name for file in family.files] if family else []


def checkpoint_titles() -> list[str]:
    from modules import sd_models

    return list(sd_models.checkpoint_tiles())


def _refresh(key: str | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    from modules import sd_models

    _scan_families()
    sd_models.list_models()
    keys = family_keys()
    return (gr.update(choices=keys), gr.update(choices=epoch_names(key)),
            gr.update(choices=checkpoint_titles()))


def _family_changed(key: str | None, chosen: list[str] | None) -> dict[str, Any]:
    names = epoch_names(key)
    kept = [name for name in chosen or [] if name in names] if names else chosen or []
    return gr.update(choices=names, value=kept)


class LoraLabGrid(scripts.Script):
    def title(self) -> str:
        return TITLE

    def show(self, is_img2img: bool) -> bool:
        return not is_img2img

    def ui(self, is_img2img: bool) -> list[gr.components.Component]:
        from modules.ui_components import FormRow, ToolButton

        default = GridArgs()
        with FormRow():
            family = gr.Dropdown(label="LoRA", choices=family_keys(), value=None, allow_custom_value=True,
                                 elem_id=self.elem_id("family"), scale=4)
            refresh = ToolButton(value="\U0001f504", elem_id=self.elem_id("refresh"),
                                 tooltip="Look again for LoRA files and checkpoints")
            epochs = gr.Dropdown(label="Epoch files (none: all)", choices=[], value=[], multiselect=True,
                                 elem_id=self.elem_id("epochs"), scale=6)
        with FormRow():
            weights = gr.Textbox(label="Weights", value=default.weights, elem_id=self.elem_id("weights"),
                                 placeholder="0.4-1.0 [4] · 0-1 (+0.25) · 0.5, 0.8, 1", scale=3)
            seeds = gr.Number(label="Seeds per cell", value=default.seeds, precision=0, minimum=1,
                              elem_id=self.elem_id("seeds"), scale=1)
            baseline = gr.Checkbox(label='"No LoRA" column', value=default.baseline,
                                   elem_id=self.elem_id("baseline"), scale=1)
        checkpoints = gr.Dropdown(label="Checkpoints (none: the current one)", choices=checkpoint_titles(),
                                  value=[], multiselect=True, elem_id=self.elem_id("checkpoints"))
        with gr.Accordion("Showcase prompts", open=False, elem_id=self.elem_id("showcase_box")):
            showcase = gr.Textbox(label="Templates in Dynamic Prompts syntax, one a line (none: the prompt)",
                                  lines=3, elem_id=self.elem_id("showcase"))
            with FormRow():
                showcase_count = gr.Number(label="Prompts to expand", value=default.showcase_count,
                                           precision=0, minimum=1, elem_id=self.elem_id("showcase_count"))
                showcase_seed = gr.Number(label="Expansion seed (-1: the image seed)",
                                          value=default.showcase_seed, precision=0,
                                          elem_id=self.elem_id("showcase_seed"))
                wildcards = gr.Textbox(label="Wildcards folder", elem_id=self.elem_id("wildcards"))
        inputs = [family, epochs, weights, checkpoints, baseline, seeds, showcase, showcase_count,
                  showcase_seed, wildcards]
        assert len(inputs) == len(ARG_NAMES)
        family.change(fn=_family_changed, inputs=[family, epochs], outputs=[epochs], show_progress="hidden")
        refresh.click(fn=_refresh, inputs=[family], outputs=[family, epochs, checkpoints],
                      show_progress="hidden")
        self.infotext_fields = [(component, lambda params, name=name: from_infotext(params, name))
                                for component, name in zip(inputs, ARG_NAMES)]
        return inputs

    def run(self, p: processing.StableDiffusionProcessingTxt2Img, *values: Any) -> processing.Processed:
        from .grid_run import GridRun

        try:
            sweep = GridRun(p, parse_args(values))  # reads and checks every setting
        except ValueError as e:  # the core's errors carry the reason
            if getattr(p, "is_api", False):  # a 400 with the reason, not a 500 with a traceback
                from fastapi import HTTPException

                raise HTTPException(400, str(e)) from e
            raise
        return sweep.run()
