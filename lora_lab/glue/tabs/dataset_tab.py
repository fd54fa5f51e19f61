"""The Dataset sub-tab: tag, edit captions (with undo), frequencies and pruning, image-by-image
review, repeat folders and the steps planner, checks."""
from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from ... import access
from ...dataset import actions
from ...dataset.actions import CAPTION_OPS, DatasetRef
from ...train.config import resolution_default
from ...host.protocol import Host
from ...jobs import JobConflict, registry
from ...job_view import error_html, follow, pre_html, status_html

GetHost = Callable[[], Host]
REVIEW_GALLERY_LIMIT = 200


def _ref(folder: str, recursive: bool, ext: str, keep: float | None) -> DatasetRef:
    if not folder.strip():
        raise ValueError("enter the dataset folder first")
    access.remember(folder.strip())  # what the user opens here, the API may use too
    return DatasetRef(Path(folder.strip()).expanduser(), bool(recursive), ext.strip() or ".txt",
                      int(keep or 0))


def _guarded(fn: Callable[..., str]) -> Callable[..., str]:
    """Show a bad input's message in the status box instead of a gradio error toast."""
    def run(*args: Any) -> str:
        try:
            return fn(*args)
        except (ValueError, FileNotFoundError, RuntimeError, OSError) as e:
            return error_html(str(e))
    return run


def summary_html(ref: DatasetRef) -> str:
    captions = ref.load()
    captioned = sum(1 for f in captions.files if not f.caption.is_empty())
    lines = [f"{len(captions.files) + len(captions.problems)} image(s), {captioned} captioned"]
    problems = [str(p) for p in captions.scan_problems] + [str(p) for p in captions.problems]
    problems += [f"{p}: shared by {', '.join(i.name for i in imgs)}" for p, imgs in captions.collisions.items()]
    body = "".join(f"<li>{html.escape(p)}</li>" for p in problems[:50])
    more = f"<li>… {len(problems) - 50} more</li>" if len(problems) > 50 else ""
    return (f"<div class='lora-lab-summary'>{html.escape(lines[0])}"
            + (f"<ul class='lora-lab-problems'>{body}{more}</ul>" if problems else "") + "</div>")


def frequency_html(stats: Any) -> str:
    if not stats.tags:
        return "<div>no tags yet</div>"
    top = max(c.count for c in stats.tags)
    rows = "".join(
        f"<tr><td>{html.escape(c.tag)}</td><td>{c.count}</td><td><div class='lora-lab-bar' "
        f"style='width:{100 * c.count / top:.0f}%'></div></td></tr>" for c in stats.tags[:300])
    trigger = f" · trigger: <b>{html.escape(stats.trigger)}</b>" if stats.trigger else ""
    return (f"<div>{stats.captioned} captioned image(s), {len(stats.tags)} distinct tags{trigger}</div>"
            f"<table class='lora-lab-freq'><tr><th>tag</th><th>images</th><th></th></tr>{rows}</table>")


def _history_html(ref: DatasetRef) -> str:
    items = actions.history(ref)
    if not items:
        return "<div>no edits yet</div>"
    rows = "".join(f"<li class='{'lora-lab-undone' if h['undone'] else ''}'>{html.escape(str(h['name']))}"
                   f" — {h['files']} file(s){' (undone)' if h['undone'] else ''}</li>" for h in items[-15:])
    return f"<ol class='lora-lab-history'>{rows}</ol>"


Events = list[Any]  # gradio event listeners whose handlers write captions


def _tag_section(get_host: GetHost, dataset: list[gr.components.Component]) -> Events:
    from ...tagging.model import KNOWN_MODELS

    def model_choices() -> list[str]:
        from ...tagging.model import find_models, taggers_dir

        return [m.name for m in find_models(taggers_dir(get_host().models_dir()))]

    def only_installed() -> str | None:
        """At every page load: the tagger when exactly one is installed (as Auto and Review take it)."""
        names = model_choices()
        return names[0] if len(names) == 1 else None

    with gr.Row():
        model = gr.Dropdown(label="Tagger model (folder with model.onnx + selected_tags.csv, or its name)",
                            choices=[], value=only_installed, allow_custom_value=True,
                            elem_id="lora_lab_tag_model")
        # text, not an emoji: a machine without an emoji font draws an empty box
        refresh = gr.Button("Refresh", elem_id="lora_lab_tag_refresh", scale=0, min_width=80)
        download_name = gr.Dropdown(label="Download a standard tagger", choices=list(KNOWN_MODELS),
                                    elem_id="lora_lab_tag_download_name")
        download = gr.Button("Download", elem_id="lora_lab_tag_download", scale=0)
    with gr.Row():
        general = gr.Slider(0.0, 1.0, 0.35, step=0.01, label="General threshold", elem_id="lora_lab_tag_general")
        character = gr.Slider(0.0, 1.0, 0.85, step=0.01, label="Character threshold",
                              elem_id="lora_lab_tag_character")
        mcut = gr.Checkbox(label="Automatic threshold (MCut)", elem_id="lora_lab_tag_mcut")
    with gr.Row():
        trigger = gr.Textbox(label="Trigger word (first tag)", elem_id="lora_lab_tag_trigger")
        exclude = gr.Textbox(label="Excluded tags (comma-separated)", elem_id="lora_lab_tag_exclude")
        mode = gr.Radio(["skip", "overwrite", "append", "prepend"], value="skip",
                        label="Existing captions", elem_id="lora_lab_tag_mode")
    with gr.Row():
        rating = gr.Radio(["off", "first", "last"], value="off", label="Rating tag", elem_id="lora_lab_tag_rating")
        sort = gr.Radio(["confidence", "model"], value="confidence", label="Order", elem_id="lora_lab_tag_sort")
        escape = gr.Checkbox(label="Escape parentheses", elem_id="lora_lab_tag_escape")
        underscores = gr.Checkbox(label="Underscores to spaces", value=True, elem_id="lora_lab_tag_underscores")
        batch = gr.Number(label="Batch size (0: auto)", value=0, precision=0, elem_id="lora_lab_tag_batch")
    with gr.Row():
        start = gr.Button("Tag images", variant="primary", elem_id="lora_lab_tag_start")
        stop = gr.Button("Stop", elem_id="lora_lab_tag_stop")
    task_id = gr.Textbox(visible=False, elem_id="lora_lab_tag_task")
    gr.HTML(elem_id="lora_lab_tag_progress")  # the WebUI's progress bar goes here (javascript)
    status = gr.HTML(elem_id="lora_lab_tag_status")
    in_webui = get_host().in_webui

    def run_tagging(task: str, folder: str, recursive: bool, ext: str, keep: float, model_name: str, g: float,
                    c: float, m: bool, trig: str, excl: str, md: str, rt: str, so: str, esc: bool,
                    und: bool, bs: float) -> Iterator[str]:
        from ...tagging import TagOptions, TagRunOptions, tag_folder

        try:
            from ...tagging.model import TaggerError, resolve_model

            ref = _ref(folder, recursive, ext, keep)
            if not model_name:
                raise ValueError("choose a tagger model")
            resolve_model(model_name, get_host().models_dir())  # a missing model: one clear message
            options = TagRunOptions(
                tags=TagOptions(general_threshold=g, character_threshold=c, general_mcut=m,
                                character_mcut=m, rating=rt, exclude=tuple(actions.split_list(excl)),
                                replace_underscores=und, escape_parentheses=esc, sort=so,
                                trigger=trig.strip()),
                mode=md, caption_ext=ref.caption_ext, recursive=ref.recursive,
                batch_size=int(bs) if bs else None)
            job = registry.start("tagging", get_host(), lambda host: host.run_job(
                task, lambda: tag_folder(host, ref.folder, model_name, options)))
        except (ValueError, FileNotFoundError, JobConflict, TaggerError) as e:
            yield error_html(str(e))
            return
        yield from follow(job)
        yield status_html(job.status()) + (error_html(job.error) if job.error else pre_html(job.result.summary()))

    def do_download(name: str) -> tuple[str, Any]:
        from ...tagging.model import TaggerError, download_model

        try:
            path = download_model(name, get_host().models_dir())
        except (TaggerError, ValueError) as e:
            return error_html(str(e)), gr.update()
        return pre_html(f"downloaded to {path}"), gr.update(choices=model_choices(), value=path.name)

    refresh.click(lambda: gr.update(choices=model_choices()), outputs=[model])
    download.click(do_download, inputs=[download_name], outputs=[status, model])
    tagged = start.click(run_tagging, inputs=[task_id, *dataset, model, general, character, mcut, trigger,
                                              exclude, mode, rating, sort, escape, underscores, batch],
                         outputs=[status],
                         _js="(...args) => LoraLab.startTask('lora_lab_tag_progress', args)" if in_webui else None)
    stop.click(lambda: get_host().interrupt.set(), outputs=[])
    return [tagged]


def _edit_section(dataset: list[gr.components.Component]) -> Events:
    with gr.Row():
        op = gr.Dropdown(list(CAPTION_OPS), value="add", label="Operation", elem_id="lora_lab_edit_op")
        where = gr.Textbox(label="Only captions matching (e.g. 1girl AND NOT solo; empty: all)",
                           elem_id="lora_lab_edit_where")
    with gr.Row():
        tags = gr.Textbox(label="Tags / trigger / find (comma-separated)", elem_id="lora_lab_edit_tags")
        new = gr.Textbox(label="Replace with", elem_id="lora_lab_edit_new")
        regex = gr.Checkbox(label="Regex", elem_id="lora_lab_edit_regex")
    with gr.Row():
        at = gr.Radio(["start", "end"], value="end", label="Add at", elem_id="lora_lab_edit_at")
        by = gr.Radio(["alpha", "frequency"], value="alpha", label="Sort by", elem_id="lora_lab_edit_by")
    with gr.Row():
        preview = gr.Button("Preview", elem_id="lora_lab_edit_preview")
        apply = gr.Button("Apply", variant="primary", elem_id="lora_lab_edit_apply")
        undo = gr.Button("Undo", elem_id="lora_lab_edit_undo")
        redo = gr.Button("Redo", elem_id="lora_lab_edit_redo")
    status = gr.HTML(elem_id="lora_lab_edit_status")
    history = gr.HTML(elem_id="lora_lab_edit_history")

    def run(dry: bool) -> Callable[..., tuple[str, str]]:
        def handler(folder: str, recursive: bool, ext: str, keep: float, op_name: str, sel: str,
                    t: str, n: str, rx: bool, a: str, b: str) -> tuple[str, str]:
            try:
                ref = _ref(folder, recursive, ext, keep)
                result = actions.caption_op(ref, op_name, tags=t, new=n, regex=rx, at=a, by=b,
                                            where=sel, dry_run=dry)
            except Exception as e:  # OpRefused, bad filters and regexes: the message is the answer
                return error_html(str(e)), gr.update()
            shown = "\n".join(f"{c.path.name}: {c.before or '∅'}  →  {c.after}" for c in result.changes[:30])
            return pre_html(result.summary() + ("\n\n" + shown if shown else "")), _history_html(ref)
        return handler

    def step(undoing: bool) -> Callable[..., tuple[str, str]]:
        def handler(folder: str, recursive: bool, ext: str, keep: float) -> tuple[str, str]:
            try:
                ref = _ref(folder, recursive, ext, keep)
                message = actions.undo(ref) if undoing else actions.redo(ref)
            except Exception as e:  # nothing to undo, files changed outside LoRA Lab
                return error_html(str(e)), gr.update()
            return pre_html(message), _history_html(ref)
        return handler

    inputs = [*dataset, op, where, tags, new, regex, at, by]
    preview.click(run(True), inputs=inputs, outputs=[status, history])
    return [apply.click(run(False), inputs=inputs, outputs=[status, history]),
            undo.click(step(True), inputs=dataset, outputs=[status, history]),
            redo.click(step(False), inputs=dataset, outputs=[status, history])]


def _describe_section(get_host: GetHost, dataset: list[gr.components.Component]) -> None:
    """Natural-language sentences from the host's interrogator, combined with the tags."""
    if not hasattr(get_host(), "interrogate"):
        gr.Markdown("Natural-language captions use the WebUI's interrogator: run LoRA Lab inside the WebUI.")
        return
    with gr.Row():
        template = gr.Textbox(label="Caption template", value="{trigger}, {sentence}. {tags}",
                              elem_id="lora_lab_describe_template")
        overwrite = gr.Checkbox(label="Replace existing sentences", elem_id="lora_lab_describe_overwrite")
        start = gr.Button("Describe images", elem_id="lora_lab_describe_start")
    status = gr.HTML(elem_id="lora_lab_describe_status")

    def describe(folder: str, recursive: bool, ext: str, keep: float, tmpl: str, over: bool) -> Iterator[str]:
        from ...tagging.model import TaggerError

        try:
            ref = _ref(folder, recursive, ext, keep)
            job = registry.start("describing", get_host(),
                                 lambda host: actions.describe_with_host(host, ref, tmpl, over))
        except (ValueError, FileNotFoundError, JobConflict, TaggerError) as e:
            yield error_html(str(e))
            return
        yield from follow(job)
        yield status_html(job.status()) + (error_html(job.error) if job.error
                                           else pre_html(f"{job.result} caption(s) written (one undo reverts them)"))

    start.click(describe, inputs=[*dataset, template, overwrite], outputs=[status])


def _tags_section(dataset: list[gr.components.Component]) -> None:
    with gr.Row():
        fraction = gr.Slider(0.1, 1.0, 0.5, step=0.05, label="Suggest tags in at least this share of images",
                             elem_id="lora_lab_freq_fraction")
        trigger = gr.Textbox(label="Trigger (default: the tag leading most captions)",
                             elem_id="lora_lab_freq_trigger")
        show = gr.Button("Count tags", elem_id="lora_lab_freq_show")
    intrinsic = gr.CheckboxGroup(label="Likely intrinsic features: remove the chosen ones so the trigger absorbs them",
                                 choices=[], elem_id="lora_lab_freq_intrinsic")
    prune = gr.Button("Prune chosen tags", elem_id="lora_lab_freq_prune")
    status = gr.HTML(elem_id="lora_lab_freq_status")
    table = gr.HTML(elem_id="lora_lab_freq_table")

    def count(folder: str, recursive: bool, ext: str, keep: float, frac: float, trig: str) -> tuple[Any, ...]:
        try:
            stats = actions.stats(_ref(folder, recursive, ext, keep), frac, trig.strip() or None)
        except Exception as e:  # bad folder
            return gr.update(choices=[]), error_html(str(e)), ""
        choices = [c.tag for c in stats.intrinsic]
        return gr.update(choices=choices, value=[]), "", frequency_html(stats)

    def do_prune(folder: str, recursive: bool, ext: str, keep: float, chosen: list[str]) -> str:
        try:
            result = actions.caption_op(_ref(folder, recursive, ext, keep), "prune", tags=", ".join(chosen))
        except Exception as e:  # OpRefused or nothing chosen
            return error_html(str(e))
        return pre_html(result.summary())

    show.click(count, inputs=[*dataset, fraction, trigger], outputs=[intrinsic, status, table])
    prune.click(do_prune, inputs=[*dataset, intrinsic], outputs=[status])


def _review_section(dataset: list[gr.components.Component]) -> None:
    items = gr.State([])
    index = gr.State(0)
    with gr.Row():
        load = gr.Button("Load images", elem_id="lora_lab_dsreview_load")
        prev = gr.Button("◀ Previous", elem_id="lora_lab_dsreview_prev")
        nxt = gr.Button("Next ▶", elem_id="lora_lab_dsreview_next")
        position = gr.HTML(elem_id="lora_lab_dsreview_position")
    with gr.Row():
        image = gr.Image(type="filepath", interactive=False, label="Image", elem_id="lora_lab_dsreview_image",
                         height=384)
        with gr.Column():
            caption = gr.Textbox(label="Caption (Ctrl+Enter saves and goes to the next image; ←/→ browse)",
                                 lines=6, elem_id="lora_lab_dsreview_caption")
            save = gr.Button("Save caption", variant="primary", elem_id="lora_lab_dsreview_save")
            status = gr.HTML(elem_id="lora_lab_dsreview_status")
    gallery = gr.Gallery(label="Images", columns=8, height=300, allow_preview=False,
                         elem_id="lora_lab_dsreview_gallery")

    def show(entries: list[list[str]], i: int) -> tuple[Any, ...]:
        if not entries:
            return None, "", "<span>no images</span>", 0
        i = max(0, min(int(i), len(entries) - 1))
        image_path, caption_path = entries[i]
        from ...dataset.captions import read_caption

        try:
            _, cap, _ = read_caption(caption_path)
            text = cap.render()
        except Exception as e:  # unreadable caption: show why, never overwrite it blindly
            text = ""
            return image_path, text, error_html(str(e)), i
        return image_path, text, f"<span>{i + 1} / {len(entries)} · {html.escape(Path(image_path).name)}</span>", i

    def load_images(folder: str, recursive: bool, ext: str, keep: float) -> tuple[Any, ...]:
        try:
            captions = _ref(folder, recursive, ext, keep).load()
        except Exception as e:  # bad folder
            return [], [], None, "", error_html(str(e)), 0
        entries = [[str(f.image), str(f.path)] for f in captions.files]
        thumbs = [(p, Path(p).name) for p, _ in entries[:REVIEW_GALLERY_LIMIT]]
        return (entries, thumbs, *show(entries, 0))

    def move(entries: list[list[str]], i: int, delta: int) -> tuple[Any, ...]:
        return show(entries, int(i) + delta)

    def save_caption(folder: str, recursive: bool, ext: str, keep: float, entries: list[list[str]],
                     i: int, text: str) -> str:
        from ...dataset.caption_ops import edit_caption

        try:
            ref = _ref(folder, recursive, ext, keep)
            result = edit_caption(ref.folder, Path(entries[int(i)][0]), text, ref.caption_ext)
        except Exception as e:  # refused: unreadable file, collision, read-only
            return error_html(str(e))
        return pre_html(result.summary())

    def pick(entries: list[list[str]], evt: gr.SelectData) -> tuple[Any, ...]:
        return show(entries, evt.index)

    view = [image, caption, position, index]
    load.click(load_images, inputs=dataset, outputs=[items, gallery, *view])
    prev.click(lambda e, i: move(e, i, -1), inputs=[items, index], outputs=view)
    nxt.click(lambda e, i: move(e, i, 1), inputs=[items, index], outputs=view)
    gallery.select(pick, inputs=[items], outputs=view)
    save.click(save_caption, inputs=[*dataset, items, index, caption], outputs=[status])


def _layout_section(dataset: list[gr.components.Component], default_resolution: Callable[[], int]) -> None:
    with gr.Row():
        train_dir = gr.Textbox(label="Training folder to create (kohya N_name folders)",
                               elem_id="lora_lab_layout_train")
        name = gr.Textbox(label="Concept name / trigger", elem_id="lora_lab_layout_name")
        repeats = gr.Number(label="Repeats (primary)", value=10, precision=0, elem_id="lora_lab_layout_repeats")
    with gr.Row():
        supporting = gr.Textbox(label="Supporting images or folders (comma-separated, relative to the dataset)",
                                elem_id="lora_lab_layout_supporting")
        supporting_repeats = gr.Number(label="Repeats (supporting)", value=3, precision=0,
                                       elem_id="lora_lab_layout_supporting_repeats")
        copy = gr.Checkbox(label="Copy instead of hard-link", elem_id="lora_lab_layout_copy")
    with gr.Row():
        batch = gr.Number(label="Batch size", value=1, precision=0, elem_id="lora_lab_plan_batch")
        accum = gr.Number(label="Gradient accumulation", value=1, precision=0, elem_id="lora_lab_plan_accum")
        epochs = gr.Number(label="Epochs", value=10, precision=0, elem_id="lora_lab_plan_epochs")
        resolution = gr.Number(label="Resolution (0: skip buckets)", value=default_resolution, precision=0,
                               elem_id="lora_lab_plan_resolution")
    with gr.Row():
        preview = gr.Button("Preview layout", elem_id="lora_lab_layout_preview")
        build_btn = gr.Button("Create folders", variant="primary", elem_id="lora_lab_layout_build")
        plan_btn = gr.Button("Plan steps", elem_id="lora_lab_plan_run")
    output = gr.HTML(elem_id="lora_lab_layout_output")

    def layout(dry: bool) -> Callable[..., str]:
        @_guarded
        def handler(folder: str, recursive: bool, ext: str, keep: float, target: str, nm: str,
                    rep: float, sup: str, sup_rep: float, cp: bool) -> str:
            from ...dataset.layout import build_layout, split_groups

            ref = _ref(folder, recursive, ext, keep)
            if not target.strip() or not nm.strip():
                raise ValueError("give the training folder and the concept name")
            groups = split_groups(ref.folder, nm.strip(), int(rep), actions.split_list(sup),
                                  int(sup_rep), ref.recursive)
            result = build_layout(Path(target.strip()).expanduser(), groups, ref.caption_ext,
                                  "copy" if cp else "link", dry_run=dry)
            return pre_html(result.text())
        return handler

    @_guarded
    def plan(folder: str, recursive: bool, ext: str, keep: float, target: str, b: float, a: float,
             e: float, r: float) -> str:
        from ...dataset.planner import plan as make_plan

        source = Path(target.strip()).expanduser() if target.strip() else _ref(folder, recursive, ext, keep).folder
        result = make_plan(source, batch_size=int(b), grad_accum=int(a), epochs=int(e),
                           resolution=int(r) or None)
        return pre_html(result.text())

    layout_inputs = [*dataset, train_dir, name, repeats, supporting, supporting_repeats, copy]
    preview.click(layout(True), inputs=layout_inputs, outputs=[output])
    build_btn.click(layout(False), inputs=layout_inputs, outputs=[output])
    plan_btn.click(plan, inputs=[*dataset, train_dir, batch, accum, epochs, resolution], outputs=[output])


def _checks_section(get_host: GetHost, dataset: list[gr.components.Component]) -> None:
    default_resolution = resolution_default(get_host)
    with gr.Row():
        resolution = gr.Number(label="Training resolution", value=default_resolution, precision=0,
                               elem_id="lora_lab_check_resolution")
        trigger = gr.Textbox(label="Trigger to check against installed LoRAs", elem_id="lora_lab_check_trigger")
        run = gr.Button("Run checks", variant="primary", elem_id="lora_lab_check_run")
    output = gr.HTML(elem_id="lora_lab_check_output")

    @_guarded
    def check(folder: str, recursive: bool, ext: str, keep: float, res: float, trig: str) -> str:
        from ...dataset.checks import check_dataset
        from ...dataset.trigger import check_trigger

        ref = _ref(folder, recursive, ext, keep)
        report = check_dataset(ref.folder, int(res), ref.recursive, ref.caption_ext)
        text = report.text()
        if trig.strip():
            text += "\n\n" + check_trigger(trig.strip(), get_host().lora_dir()).text()
        return pre_html(text)

    run.click(check, inputs=[*dataset, resolution, trigger], outputs=[output])


def build(get_host: GetHost, shared: dict[str, Any] | None = None) -> None:
    with gr.Row():
        folder = gr.Textbox(label="Dataset folder", placeholder="/path/to/images", scale=4,
                            elem_id="lora_lab_ds_folder")
        recursive = gr.Checkbox(label="Include subfolders", elem_id="lora_lab_ds_recursive")
        ext = gr.Textbox(label="Caption extension", value=".txt", elem_id="lora_lab_ds_ext", scale=0,
                         min_width=100)
        keep = gr.Number(label="Keep tokens", value=1, precision=0, elem_id="lora_lab_ds_keep", scale=0,
                         min_width=100)
        load = gr.Button("Load", variant="primary", elem_id="lora_lab_ds_load", scale=0)
    summary = gr.HTML(elem_id="lora_lab_ds_summary")
    dataset = [folder, recursive, ext, keep]
    if shared is not None:
        shared["dataset_folder"] = folder
    with gr.Tabs(elem_id="lora_lab_ds_tabs"):
        with gr.Tab("Tag", elem_id="lora_lab_ds_tag"):
            writes = _tag_section(get_host, dataset)
        with gr.Tab("Edit captions", elem_id="lora_lab_ds_edit"):
            writes += _edit_section(dataset)
            _describe_section(get_host, dataset)
        with gr.Tab("Tags", elem_id="lora_lab_ds_tags"):
            _tags_section(dataset)
        with gr.Tab("Review", elem_id="lora_lab_ds_review"):
            _review_section(dataset)
        with gr.Tab("Folders & plan", elem_id="lora_lab_ds_layout"):
            _layout_section(dataset, resolution_default(get_host))
        with gr.Tab("Checks", elem_id="lora_lab_ds_checks"):
            _checks_section(get_host, dataset)
    load.click(_guarded(lambda f, r, e, k: summary_html(_ref(f, r, e, k))), inputs=dataset, outputs=[summary])

    def fresh_summary(f: str, r: bool, e: str, k: float) -> Any:
        try:
            return summary_html(_ref(f, r, e, k))
        except (ValueError, OSError):  # the action itself reported the bad folder
            return gr.update()
    for event in writes:  # the counts follow every change to the captions
        event.then(fresh_summary, inputs=dataset, outputs=[summary])
