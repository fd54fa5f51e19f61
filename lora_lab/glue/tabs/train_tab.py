"""The Train sub-tab: a run's settings (presets, the planner's numbers live), start/stop, status,
loss chart and previews. In the WebUI the run also drives the WebUI's own progress bar."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from ... import access
from ...host.protocol import Host
from ...jobs import JobConflict, registry
from ...train.config import OPTIMIZERS, PRESETS, SCHEDULERS, TrainConfig, TrainConfigError, holdout_is_folder, \
    preset_values, resolution_default
from ...train.data import holdout_count
from ...job_view import error_html, pre_html
from ...train.status_view import status_html

GetHost = Callable[[], Host]


Field = tuple[str, Callable[[], gr.components.Component]]


def _groups(resolution: Any = 512) -> list[tuple[str | None, list[Field]]]:
    """The form as the task flows: (None, the basics a person always sets), then collapsed groups
    of (title, settings) for the rest. Each setting is (TrainConfig field, component factory).
    `resolution`: its default, or a callable gradio evaluates at each page load."""
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
        (None, [
            ("dataset_dir", text("Dataset (folder of N_trigger folders, or of images)", placeholder="/path/to/train")),
            ("name", text("LoRA name", placeholder="my_lora")),
            ("epochs", num("Epochs", d.epochs, 0)), ("save_every_n_epochs", num("Save every N epochs", 1, 0)),
            ("resolution", lambda: gr.Number(label="Resolution", value=resolution, precision=0)),
            ("dim", num("Network dim", d.dim, 0)), ("alpha", num("Network alpha", d.alpha)),
            ("unet_lr", num("UNet learning rate", d.unet_lr)),
            ("te_lr", num("Text encoder lr (0: UNet only)", d.te_lr)),
        ]),
        ("Steps and optimiser", [
            ("batch_size", num("Batch size", d.batch_size, 0)), ("grad_accum", num("Gradient accumulation", 1, 0)),
            ("optimizer", choice("Optimizer", list(OPTIMIZERS), d.optimizer)),
            ("scheduler", choice("Scheduler", list(SCHEDULERS), d.scheduler)),
            ("warmup_steps", num("Warmup steps", 0, 0)),
            ("max_grad_norm", num("Max grad norm (0: off)", d.max_grad_norm)), ("seed", num("Seed", d.seed, 0)),
        ]),
        ("Captions and images", [
            ("keep_tokens", num("Keep tokens", d.keep_tokens, 0)), ("shuffle_caption", check("Shuffle tags")),
            ("prepend_trigger", check("Trigger first when missing")),
            ("caption_dropout", num("Caption dropout", 0.0)), ("flip", check("Flip")),
        ]),
        ("Validation", [
            ("validation", check("Validation loss after every epoch", d.validation)),
            ("validation_images", num("Training images for the stable loss", d.validation_images, 0)),
            ("holdout", text("Hold out of training (a count, 10%, or a folder; empty: none)")),
        ]),
        ("Network and loss", [
            ("conv_dim", num("Conv dim (LoCon; 0: off)", 0, 0)), ("conv_alpha", num("Conv alpha", 0)),
            ("noise_offset", num("Noise offset", 0.0)), ("min_snr_gamma", num("Min-SNR γ (0: off)", 0.0)),
        ]),
        ("SDXL", [
            ("te2_lr", lambda: gr.Number(label="Text encoder 2 lr (OpenCLIP bigG; empty: as text encoder)",
                                         value=None)),
            ("size_conditioning", choice("Size conditioning", ["real", "bucket"], d.size_conditioning)),
        ]),
        ("GPU", [
            ("mixed_precision", choice("Mixed precision", ["no", "fp16", "bf16"], d.mixed_precision)),
            ("gradient_checkpointing", check("Gradient checkpointing")),
        ]),
        ("Output and previews", [
            ("output_dir", text("Output folder (empty: the Lora folder)")),
            ("overwrite", check("Replace a LoRA of the same name (its files are overwritten)")),
            ("save_precision", choice("Save as", ["fp16", "fp32", "bf16"], d.save_precision)),
            ("preview_every_n_epochs", num("Preview every N epochs (0: off)", 1, 0)),
            ("preview_prompt", text("Preview prompt (empty: the first caption)")),
            ("resume_from", text("Resume from network weights (.safetensors)")),
        ]),
    ]


def config_from_form(names: list[str], values: list[Any]) -> TrainConfig:
    given: dict[str, Any] = {}
    for name, value in zip(names, values):
        if isinstance(value, str):
            value = value.strip()
            if value == "" and name in ("output_dir", "resume_from", "preview_prompt", "holdout"):
                continue
        if value is None and name == "te2_lr":
            continue
        if name == "conv_alpha" and not value:
            continue
        given[name] = value
    return TrainConfig.from_dict(given)


_seconds_per_step: list[float] = []  # of the last finished run in this process: the time estimate


def plan_text(dataset: str, epochs: float, batch: float, accum: float, holdout: str = "") -> str:
    from ...dataset.planner import plan

    if not dataset.strip():
        return "<div class='lora-lab-message'>The plan (images × repeats, steps) shows here once the dataset is set.</div>"
    try:
        p = plan(Path(dataset.strip()).expanduser(), batch_size=int(batch or 1), grad_accum=int(accum or 1),
                 epochs=int(epochs or 1))
    except (ValueError, FileNotFoundError, OSError) as e:
        return error_html(str(e))
    text = p.text()
    spec = (holdout or "").strip()
    if spec and not holdout_is_folder(spec):
        try:
            text += f"\nvalidation: {holdout_count(spec, p.images)} of {p.images} image(s) held out of training"
        except ValueError:
            text += f"\nvalidation: {spec!r} is not a count or a percentage"
    if _seconds_per_step:
        minutes = _seconds_per_step[-1] * p.total_steps / 60
        text += f"\n≈ {minutes:.0f} min at the last run's {_seconds_per_step[-1]:.2f} s/step"
    return pre_html(text)


def _rows(fields: list[Field], components: list[gr.components.Component], per_row: int = 4) -> None:
    for i in range(0, len(fields), per_row):
        with gr.Row():
            for name, make in fields[i: i + per_row]:
                component = make()
                component.elem_id = f"lora_lab_train_{name}"
                components.append(component)


def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def build(get_host: GetHost, shared: dict[str, Any] | None = None) -> None:
    in_webui = get_host().in_webui
    gpu = has_gpu()
    preset = gr.Dropdown(label="Preset (fills in the settings for a kind of LoRA)", choices=list(PRESETS),
                         value=None, elem_id="lora_lab_train_preset")
    components: list[gr.components.Component] = []
    fields: list[Field] = []
    # the loaded model's family decides the default size (SDXL 1024), read when the page opens
    for title, group in _groups(resolution_default(get_host)):
        if title == "GPU" and not gpu:  # nothing to set on a CPU host: it trains in fp32
            with gr.Column(visible=False):
                _rows(group, components)
        elif title is None:
            _rows(group, components, per_row=3)
        else:
            with gr.Accordion(f"Advanced: {title.lower()}", open=False,
                              elem_id=f"lora_lab_train_group_{title.split()[0].lower()}"):
                _rows(group, components)
        fields += group
    by_name = dict(zip([n for n, _ in fields], components))
    if not gpu:
        by_name["mixed_precision"].value = "no"  # hidden: a CPU trains in fp32
    task_id = gr.Textbox(visible=False, elem_id="lora_lab_train_task")
    with gr.Row(elem_id="lora_lab_train_actions"):
        with gr.Column(scale=1, min_width=160):
            start = gr.Button("Train", variant="primary", elem_id="lora_lab_train_start")
            stop = gr.Button("Stop (saves the last good state)", elem_id="lora_lab_train_stop")
        plan = gr.HTML(elem_id="lora_lab_train_plan")
    gr.HTML(elem_id="lora_lab_train_progress")  # the WebUI's progress bar goes here (javascript)
    with gr.Row():
        status = gr.HTML(elem_id="lora_lab_train_status")
        preview = gr.Image(label="Latest preview", interactive=False, elem_id="lora_lab_train_preview", height=256)
    if shared and "dataset_folder" in shared:
        # follow the Dataset sub-tab's folder until the person types a different one here
        prefilled = gr.State("")

        def follow_folder(folder: str, current: str, last: str) -> tuple[Any, str]:
            if current.strip() and current != last:
                return gr.update(), last
            return gr.update(value=folder), folder
        source = shared["dataset_folder"]
        for event in (source.blur, source.submit):  # not .change: one event per keystroke races
            event(follow_folder, inputs=[source, by_name["dataset_dir"], prefilled],
                  outputs=[by_name["dataset_dir"], prefilled])

    names = [n for n, _ in fields]

    def run(task: str, *values: Any) -> Iterator[tuple[Any, Any]]:
        from ...train.loop import TrainStatus, train

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
            return host.run_job(task, lambda: train(host, config, live))

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
        done = live.to_dict()
        if done["state"] == "finished" and done["step"] and done["finished_at"]:
            _seconds_per_step.append((done["finished_at"] - done["started_at"]) / done["step"])
        final = status_html(done) + (error_html(job.error) if job.error else "")
        yield final, live.preview if live.preview is not None else gr.update()

    def apply_preset(name: str | None) -> list[Any]:
        values = preset_values(name, get_host().info().model_family) if name in PRESETS else {}
        return [gr.update(value=values[n]) if n in values else gr.update() for n in names]

    start.click(run, inputs=[task_id, *components], outputs=[status, preview],
                _js="(...args) => LoraLab.startTask('lora_lab_train_progress', args)" if in_webui else None)
    stop.click(lambda: get_host().interrupt.set(), outputs=[])
    preset.change(apply_preset, inputs=[preset], outputs=components)
    planner_inputs = [by_name["dataset_dir"], by_name["epochs"], by_name["batch_size"], by_name["grad_accum"],
                      by_name["holdout"]]
    for component in planner_inputs:
        component.change(plan_text, inputs=planner_inputs, outputs=[plan])
