"""The selectable txt2img script "LoRA Lab grid"."""
from __future__ import annotations

import gradio as gr
from modules import images, processing, scripts, shared
from modules.processing import Processed


class LoraLabGrid(scripts.Script):
    def title(self) -> str:
        return "LoRA Lab grid"

    def show(self, is_img2img: bool) -> bool:
        return not is_img2img

    def ui(self, is_img2img: bool) -> list[gr.components.Component]:
        name = gr.Textbox(label="LoRA name", elem_id=self.elem_id("lora"))
        weights = gr.Textbox(label="Weights", value="0.5, 0.8, 1", elem_id=self.elem_id("weights"))
        return [name, weights]

    def run(self, p: processing.StableDiffusionProcessingTxt2Img, name: str, weights: str) -> Processed:
        from ..sweep.prompts import set_lora_weight
        from ..sweep.weights import parse_weights

        values = parse_weights(weights)
        processing.fix_seed(p)
        base_prompt = p.prompt
        shared.state.job_count = len(values) * p.n_iter
        cells, infotexts = [], []
        first: Processed | None = None
        for weight in values:
            if shared.state.interrupted:
                break
            p.prompt = set_lora_weight(base_prompt, name, weight)
            processed = processing.process_images(p)
            first = first or processed
            cells.append(processed.images[0])
            infotexts.append(processed.infotexts[0])
        p.prompt = base_prompt
        if first is None:
            return Processed(p, [], p.seed, "")
        grid = images.image_grid(cells, rows=1)
        return Processed(p, [grid, *cells], p.seed, "", infotexts=[infotexts[0], *infotexts])
