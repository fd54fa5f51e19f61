"""The Train sub-tab: a run's settings (presets, the planner's numbers live), start/stop, status,
loss chart and previews. In the WebUI the run also drives the WebUI's own progress bar."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from .. import access

from ..host.protocol import Host
from ..jobs import JobConflict, registry
from ..train.config import OPTIMIZERS, PRESETS, SCHEDULERS, TrainConfig, TrainConfigError
from .job_view import error_html, pre_html
from .train_view import status_html
from .webui_task import maybe_as_task

GetHost = Callable[[], Host]


def _fields() -> list[tuple[str, Callable[[], gr.components.Component]]]:
    """The settings the form shows, in order: (TrainConfig field, component factory)."""
    def num(label: str, value: float, precision: int | None = None) -> Callable[[], gr.Number]:
        return lambda: gr.Number(label=label, value=value, precision=precision)

    def text(label: str, value: str = "", placeholder: str = "") -> Callable[[], gr.Textbox]:
        return lambda: gr.Textbox(label=label, value=value, placeholder=placeholder)

    def check(label: str, value: bool = False) -> Callable[[], gr.Checkbox]:
        return lambda: gr.Checkbox(label=label, value=value)

    def choice(label: str, choices: list[str], value: str) -> Callable[[], gr.Dropdown]:
        return lambda: gr.Dropdown(label=label, choices=choices, value=value)

    d = TrainConfig(dataset_dir=Path("."), name="x")
    return [
        ("dataset_dir", text("Dataset (folder of N_trigger folders, or of images)", placeholder="/path/to/train")),
        ("name", text("LoRA name", placeholder="my_lora")),
        ("output_dir", text("Output folder (empty: the WebUI's Lora folder)")),
        ("epochs", num("Epochs", d.epochs, 0)), ("save_every_n_epochs", num("Save every N epochs", 1, 0)),
        ("batch_size", num("Batch size", d.batch_size, 0)), ("grad_accum", num("Gradient accumulation", 1, 0)),
        ("resolution", num("Resolution", d.resolution, 0)),
        ("dim", num("Network dim", d.dim, 0)), ("alpha", num("Network alpha", d.alpha)),
        ("conv_dim", num("Conv dim (LoCon; 0: off)", 0, 0)), ("conv_alpha", num("Conv alpha", 0)),
        ("unet_lr", num("UNet learning rate", d.unet_lr)), ("te_lr", num("Text encoder lr (0: UNet only)", d.te_lr)),
        ("optimizer", choice("Optimizer", list(OPTIMIZERS), d.optimizer)),
        ("scheduler", choice("Scheduler", list(SCHEDULERS), d.scheduler)),
        ("warmup_steps", num("Warmup steps", 0, 0)), ("max_grad_norm", num("Max grad norm (0: off)", d.max_grad_norm)),
        ("keep_tokens", num("Keep tokens", d.keep_tokens, 0)), ("shuffle_caption", check("Shuffle tags")),
        ("prepend_trigger", check("Trigger first when missing")), ("caption_dropout", num("Caption dropout", 0.0)),
        ("flip", check("Flip")), ("noise_offset", num("Noise offset", 0.0)),
        ("min_snr_gamma", num("Min-SNR γ (0: off)", 0.0)), ("seed", num("Seed", d.seed, 0)),
        ("mixed_precision", choice("Mixed precision (GPU)", ["no", "fp16", "bf16"], d.mixed_precision)),
        ("gradient_checkpointing", check("Gradient checkpointing")),
        ("save_precision", choice("Save as", ["fp16", "fp32", "bf16"], d.save_precision)),
        ("preview_every_n_epochs", num("Preview every N epochs (0: off)", 1, 0)),
        ("preview_prompt", text("Preview prompt (empty: the first caption)")),
        ("resume_from", text("Resume from network weights (.safetensors)")),
    ]


def config_from_form(names: list[str], values: list[Any]) -> TrainConfig:
    given: dict[str, Any] = {}
    for name, value in zip(names, values):
        if isinstance(value, str):
            value = value.strip()
            if value == "" and name in ("output_dir", "resume_from", "preview_prompt"):
                continue
        if name == "conv_alpha" and not value:
            continue
        given[name] = value
    return TrainConfig.from_dict(given)


def plan_text(dataset: str, epochs: float, batch: float, accum: float) -> str:
    from ..dataset.planner import plan

    if not dataset.strip():
        return ""
    try:
        p = plan(Path(dataset.strip()).expanduser(), batch_size=int(batch or 1), grad_accum=int(accum or 1),
                 epochs=int(epochs or 1))
    except (ValueError, FileNotFoundError, OSError) as e:
        return error_html(str(e))
    return pre_html(p.text())


def build(get_host: GetHost) -> None:
    in_webui = get_host().name == "webui"
    with gr.Row():
        preset = gr.Dropdown(label="Preset", choices=list(PRESETS), value=None, elem_id="lora_lab_train_preset")
        plan = gr.HTML(elem_id="lora_lab_train_plan")
    fields = _fields()
    components: list[gr.components.Component] = []
    for i in range(0, len(fields), 4):
        with gr.Row():
            for name, make in fields[i: i + 4]:
                component = make()
                component.elem_id = f"lora_lab_train_{name}"
                components.append(component)
    by_name = dict(zip([n for n, _ in fields], components))
    task_id = gr.Textbox(visible=False, elem_id="lora_lab_train_task")
    with gr.Row():
        start = gr.Button("Train", variant="primary", elem_id="lora_lab_train_start")
        stop = gr.Button("Stop (saves the last good state)", elem_id="lora_lab_train_stop")
    gr.HTML(elem_id="lora_lab_train_progress")  # the WebUI's progress bar goes here (javascript)
    with gr.Row():
        status = gr.HTML(elem_id="lora_lab_train_status")
        preview = gr.Image(label="Latest preview", interactive=False, elem_id="lora_lab_train_preview", height=256)

    names = [n for n, _ in fields]

    def run(task: str, *values: Any) -> Iterator[tuple[Any, Any]]:
        from ..train.loop import TrainStatus, train

        try:
            config = config_from_form(names, list(values))
            config.validate()
            for folder in (config.dataset_dir, config.output_dir):
                if folder is not None:
                    access.remember(folder)
        except (TrainConfigError, ValueError) as e:
            yield error_html(str(e)), gr.update()
            return
        live = TrainStatus()

        def work(host: Host) -> Any:
            return maybe_as_task(in_webui, task, lambda: train(host, config, live))

        try:
            job = registry.start("training", get_host(), work)
        except JobConflict as e:
            yield error_html(str(e)), gr.update()
            return
        shown = None
        while job.running:
            image = live.preview if live.preview is not shown else None
            shown = live.preview
            yield status_html(live.to_dict()), image if image is not None else gr.update()
            job.wait(1.0)
        final = status_html(live.to_dict()) + (error_html(job.error) if job.error else "")
        yield final, live.preview if live.preview is not None else gr.update()

    def apply_preset(name: str | None) -> list[Any]:
        values = PRESETS.get(name or "", {})
        return [gr.update(value=values[n]) if n in values else gr.update() for n in names]

    start.click(run, inputs=[task_id, *components], outputs=[status, preview],
                _js="(...args) => LoraLab.startTask('lora_lab_train_progress', args)" if in_webui else None)
    stop.click(lambda: get_host().interrupt.set(), outputs=[])
    preset.change(apply_preset, inputs=[preset], outputs=components)
    planner_inputs = [by_name["dataset_dir"], by_name["epochs"], by_name["batch_size"], by_name["grad_accum"]]
    for component in planner_inputs:
        component.change(plan_text, inputs=planner_inputs, outputs=[plan])
