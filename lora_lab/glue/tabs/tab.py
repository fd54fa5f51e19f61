"""The LoRA Lab tab (gradio 3.41 API subset that Forge's gradio 4 also has: gr.update, no .style/Box).

Built once by the WebUI's `on_ui_tabs`, or by `python -m lora_lab ui` inside an outer page; building
it must stay cheap (no model, no onnxruntime, no folder scans). Each sub-tab lives in its own
module with `build(get_host)`, called inside its `gr.Tab`."""
from __future__ import annotations

import html
import importlib
from collections.abc import Callable
from typing import Any

import gradio as gr

from ... import __version__
from ...host.protocol import Host

GetHost = Callable[[], Host]

SECTIONS = [("Auto", "auto_tab"), ("Dataset", "dataset_tab"), ("Train", "train_tab"), ("Review", "review_tab")]


def status_html(get_host: GetHost) -> str:
    try:
        info = get_host().info()
    except Exception as e:  # the tab must render even when the host is not ready
        return f"<div class='lora-lab-status lora-lab-error'>{html.escape(str(e))}</div>"
    model = (f"{html.escape(info.checkpoint)} ({info.model_family or 'not loaded'})"
             if info.checkpoint else "no model loaded")
    return (f"<div class='lora-lab-status'>LoRA Lab {__version__} · host: {info.name} "
            f"{html.escape(info.version)} · model: {model}</div>")


def build_tab(get_host: GetHost) -> gr.Blocks:
    with gr.Blocks(analytics_enabled=False) as blocks:
        with gr.Row(elem_id="lora_lab_header"):
            status = gr.HTML(status_html(get_host), elem_id="lora_lab_status")
            refresh = gr.Button("Refresh", elem_id="lora_lab_refresh", scale=0, min_width=80)
        shared: dict[str, Any] = {}  # components one sub-tab offers the next (the dataset folder)
        with gr.Tabs(elem_id="lora_lab_tabs"):
            for label, module in SECTIONS:
                section = importlib.import_module(f"{__package__}.{module}")
                with gr.Tab(label, elem_id=f"lora_lab_{module}"):
                    section.build(get_host, shared)
            with gr.Tab("About", elem_id="lora_lab_about_tab"):
                gr.Markdown(
                    "**LoRA Lab** takes a folder of images to a LoRA chosen with evidence: prepare "
                    "the dataset, train against the loaded model, then sweep epochs × weights in "
                    "txt2img (script *LoRA Lab grid*) and review hit rates.",
                    elem_id="lora_lab_about")
        refresh.click(fn=lambda: status_html(get_host), inputs=[], outputs=[status])
    return blocks
