"""The Auto sub-tab: the one-run flow as a guided panel — a folder of images in, a ranked
shortlist and its report out. In the WebUI it trains on the loaded model and renders the sweep
with the WebUI's own pipeline; standalone, with the checkpoint it was started with. The same
settings again continue an unfinished run."""
from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from ... import access
from ...auto.options import BUDGETS, PRESETS, AutoOptions
from ...host.protocol import Host
from ...jobs import JobConflict, registry
from ...job_view import error_html, pre_html, status_html

GetHost = Callable[[], Host]

INTRO = ("One run from a folder of images to a ranked shortlist: checks (bad images left out), tagging "
         "where captions are missing (trigger first), the pruning proposal, repeat folders and a plan, training "
         "with validation loss, a sweep of epochs × weights with a no-LoRA baseline, scores and a report. "
         "Start again with the same settings to continue after Stop.")


def runs_dir(host: Host) -> Path:
    return host.runs_dir()


def report_frame(path: Path | None) -> str:
    """The self-contained report inside an iframe (its styles stay its own)."""
    if path is None or not path.is_file():
        return ""
    page = path.read_text(encoding="utf-8")
    return (f"<div class='lora-lab-message'>Report: {html.escape(str(path))}</div>"
            f"<iframe class='lora-lab-report' srcdoc=\"{html.escape(page, quote=True)}\" "
            "style='width:100%;height:900px;border:1px solid #ccd;background:#fff'></iframe>")


def parse_settings(text: str) -> dict[str, str]:
    out = {}
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"training setting {line.strip()!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def options_from_form(host: Host, dataset: str, name: str, trigger: str, preset: str, budget: str, ab: bool,
                      prune: bool, out: str, tagger: str, templates: str, negative: str, steps: float,
                      seed: float, settings: str, epochs: float | None = None,
                      samples_per_epoch: float | None = None) -> AutoOptions:
    if not (dataset or "").strip():
        raise ValueError("choose the dataset folder")
    if not (name or "").strip():
        raise ValueError("give the LoRA a name")
    name = name.strip()
    return AutoOptions(
        dataset=Path(dataset.strip()).expanduser().resolve(), name=name,
        out=Path(out.strip()).expanduser().resolve() if (out or "").strip() else runs_dir(host) / name,
        trigger=trigger.strip() or None, preset=preset, budget=budget, ab_captions=bool(ab), prune=bool(prune),
        tagger=tagger.strip() or None, templates=[t for t in (templates or "").splitlines() if t.strip()],
        negative_prompt=negative or "", sweep_steps=int(steps or 20), seed=int(seed or 0),
        epochs=_positive_or_none("epochs", epochs),
        samples_per_epoch=_positive_or_none("samples per epoch", samples_per_epoch),
        train=parse_settings(settings))


def _positive_or_none(label: str, value: float | None) -> int | None:
    """An optional whole number ≥ 1 from a number field; empty (or 0): the budget decides."""
    if value is None or value == 0:
        return None
    if value < 1 or value != int(value):
        raise ValueError(f"{label} must be a whole number of at least 1, or empty for the budget's (got {value:g})")
    return int(value)


def build(get_host: GetHost, shared: dict[str, Any] | None = None) -> None:
    in_webui = get_host().in_webui
    gr.Markdown(INTRO, elem_id="lora_lab_auto_intro")
    with gr.Row():
        dataset = gr.Textbox(label="Folder of images", placeholder="/path/to/images", elem_id="lora_lab_auto_dataset",
                             scale=4)
        name = gr.Textbox(label="LoRA name", placeholder="my_lora", elem_id="lora_lab_auto_name", scale=2)
        trigger = gr.Textbox(label="Trigger word (empty: the N_trigger folder's, else the name)",
                             elem_id="lora_lab_auto_trigger", scale=2)
    with gr.Row():
        preset = gr.Dropdown(label="Kind of LoRA", choices=list(PRESETS), value="character",
                             elem_id="lora_lab_auto_preset")
        budget = gr.Radio(label="Budget", choices=list(BUDGETS), value="standard", elem_id="lora_lab_auto_budget")
        ab = gr.Checkbox(label="Also train without captions and compare (A/B)", elem_id="lora_lab_auto_ab")
        prune = gr.Checkbox(label="Accept the pruning proposal (remove tags most captions share; undoable)",
                            elem_id="lora_lab_auto_prune")
    with gr.Accordion("Advanced", open=False, elem_id="lora_lab_auto_advanced"):
        with gr.Row():
            out = gr.Textbox(label=f"Run folder (empty: {runs_dir(get_host())}/NAME)", elem_id="lora_lab_auto_out")
            tagger = gr.Textbox(label="Tagger (empty: the only one installed)", elem_id="lora_lab_auto_tagger")
        with gr.Row():
            steps = gr.Number(label="Sweep sampling steps", value=20, precision=0, elem_id="lora_lab_auto_steps")
            seed = gr.Number(label="Seed", value=42, precision=0, elem_id="lora_lab_auto_seed")
            negative = gr.Textbox(label="Negative prompt for the sweep", elem_id="lora_lab_auto_negative")
        with gr.Row():  # what the CLI's --epochs and --samples-per-epoch set
            epochs = gr.Number(label="Epochs (empty: the budget's)", value=None, precision=0,
                               elem_id="lora_lab_auto_epochs")
            samples = gr.Number(label="Samples per epoch (empty: the budget's)", value=None, precision=0,
                                elem_id="lora_lab_auto_samples")
        templates = gr.Textbox(label="Your showcase templates, one per line (Dynamic Prompts syntax, {trigger}); "
                               "empty: the preset's", lines=3, elem_id="lora_lab_auto_templates")
        settings = gr.Textbox(label="Training settings, one KEY=VALUE per line (as `train --set`)", lines=2,
                              elem_id="lora_lab_auto_settings")
        fresh = gr.Checkbox(label="Start over: delete an earlier run in the run folder and its LoRA files first "
                            "(to change its settings)", elem_id="lora_lab_auto_fresh")
    task_id = gr.Textbox(visible=False, elem_id="lora_lab_auto_task")
    with gr.Row():
        start = gr.Button("Start (or continue)", variant="primary", elem_id="lora_lab_auto_start")
        stop = gr.Button("Stop (keeps what is finished)", elem_id="lora_lab_auto_stop")
    gr.HTML(elem_id="lora_lab_auto_progress")  # the WebUI's progress bar goes here (javascript)
    status = gr.HTML(elem_id="lora_lab_auto_status")
    log = gr.HTML(elem_id="lora_lab_auto_log")
    report = gr.HTML(elem_id="lora_lab_auto_report")
    inputs = [dataset, name, trigger, preset, budget, ab, prune, out, tagger, templates, negative, steps, seed,
              settings, epochs, samples]
    for component in (dataset, name, trigger, out, fresh):
        component.do_not_save_to_config = True

    def run(task: str, start_over: bool, *values: Any) -> Iterator[tuple[str, str, str]]:
        from ...auto.flow import run_auto

        host = get_host()
        try:
            options = options_from_form(host, *values)
        except ValueError as e:
            yield error_html(str(e)), "", ""
            return
        for folder in (options.dataset, options.out):
            access.remember(folder)
        lines: list[str] = []
        checkpoint_file = host.checkpoint_file()
        checkpoint = str(checkpoint_file) if checkpoint_file else None

        def work(view: Host) -> Any:
            return view.run_job(task,
                                 lambda: run_auto(view, options, checkpoint, lines.append, fresh=bool(start_over)))

        try:
            job = registry.start("auto", host, work)
        except JobConflict as e:
            yield error_html(str(e)), "", ""
            return
        while job.running:
            yield status_html(job.status()), pre_html("\n".join(lines)), gr.update()
            job.wait(1.0)
        doc = job.result if isinstance(job.result, dict) else {}
        if job.error:
            message = job.error if isinstance(job.error, str) else str(job.error)
            yield error_html(message), pre_html("\n".join(lines)), ""
            return
        summary = _summary(doc, options)
        report_path = Path(doc["report"]) if doc.get("report") else None
        yield summary, pre_html("\n".join(lines)), report_frame(report_path)

    start.click(run, inputs=[task_id, fresh, *inputs], outputs=[status, log, report],
                _js="(...args) => LoraLab.startTask('lora_lab_auto_progress', args)" if in_webui else None)
    stop.click(lambda: get_host().interrupt.set(), outputs=[])


def _summary(doc: dict[str, Any], options: AutoOptions) -> str:
    state = doc.get("state")
    if state == "interrupted":
        return ("<div class='lora-lab-message'>Stopped; everything finished is kept. Press Start with the same "
                "settings to continue.</div>")
    if state == "failed":
        return error_html(f"Stopped by an error in {doc.get('error')}; fix it and press Start to continue.")
    parts = []
    for v in doc.get("variants") or [doc]:
        rec = v.get("recommendation")
        if rec:
            label = f" ({v['variant']})" if "variant" in v else ""
            parts.append(f"<b>Recommended{html.escape(label)}:</b> <code>{html.escape(rec['prompt_tag'])}</code> — "
                         f"{html.escape(rec['why'])}")
    if doc.get("comparison"):
        parts.append(html.escape(doc["comparison"]["verdict"]))
    parts.append(f"<span class='lora-lab-muted'>Run folder: {html.escape(str(options.out))} (the report, "
                 "auto.json and the command that runs it again)</span>")
    return "<div class='lora-lab-message'>" + "<br>".join(parts) + "</div>"
