"""Sub-tab "Review": open a sweep, mark each image hit or miss (buttons, or H / M / U and the arrow
keys from `javascript/lora_lab.js`), read the hit rate per epoch × weight, promote the winner.

Works in the WebUI and in `python -m lora_lab ui`; the sweep core loads on first use. The
position (sweep, cell, image) lives in hidden inputs, so a failed action changes nothing."""
from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from ... import access

from ...host.protocol import Host

GetHost = Callable[[], Host]
Outputs = tuple[Any, ...]
# message, cell picker, image, strip, gallery, heat map, recommendation, final name, path, cell, image
N_OUTPUTS = 11
PROMOTE_MODES = ["Copy (keep the epoch file)", "Rename"]


def _cell_choice(manifest: Any, index: int) -> str:
    cell = manifest.cells[index]
    done = "" if cell.done else " (not rendered)"
    return f"{index + 1}. {cell.label}{done}"


def _cell_index(choice: str | None) -> int:
    head = (choice or "").split(".", 1)[0]
    return int(head) - 1 if head.isdigit() else 0


def _gallery(manifest: Any, cell: int) -> list[tuple[str, str]]:
    c = manifest.cells[cell]
    items = []
    for i, image in enumerate(c.images):
        path = manifest.image_path(cell, i)
        if path is not None and path.is_file():
            prompt = f"prompt {image.prompt + 1} · " if len(c.prompts) > 1 else ""
            items.append((str(path), f"{prompt}seed {image.seed}"))
    return items


def view(path: str, cell: int, image: int, note: str = "", *, new_cell: bool = True,
         opened: bool = False) -> Outputs:
    """Every output for showing image `image` of cell `cell` of the sweep at `path`."""
    from ...sweep import review_html as html
    from ...sweep.review_data import open_sweep, report

    from ...sweep.scoring import scores_view

    manifest = open_sweep(path)
    result = report(manifest)
    scores = scores_view(manifest, result.ratings)
    cell = min(max(int(cell), 0), len(manifest.cells) - 1)
    image = min(max(int(image), 0), len(manifest.cells[cell].images) - 1)
    shown = manifest.image_path(cell, image)
    item = manifest.cells[cell].images[image]
    rating = result.ratings.get(item.file or "", "not rated")
    caption = f"{manifest.cells[cell].label} · seed {item.seed} · {rating}"
    return (
        html.message(note),
        gr.update(choices=[_cell_choice(manifest, i) for i in range(len(manifest.cells))],
                  value=_cell_choice(manifest, cell)),
        gr.update(value=str(shown) if shown is not None and shown.is_file() else None, label=caption),
        html.strip(manifest, cell, image, result.ratings),
        gr.update(value=_gallery(manifest, cell)) if new_cell else gr.update(),
        html.heatmap(result.rates, result.recommendation, result.losses) + html.scores_table(manifest, scores),
        html.recommendation_html(result.recommendation),
        gr.update(value=f"{manifest.family}-best") if opened else gr.update(),
        str(manifest.path), cell, image,
    )


def _failed(e: Exception) -> Outputs:
    from ...sweep.review_html import message

    return (message(str(e), error=True), *[gr.update()] * (N_OUTPUTS - 1))


def _guarded(fn: Callable[..., Outputs]) -> Callable[..., Outputs]:
    """Show a bad path, a broken manifest or a refused action as a message; change nothing else."""
    @functools.wraps(fn)
    def run(*args: Any) -> Outputs:
        try:
            return fn(*args)
        except (ValueError, OSError) as e:  # the core's errors are ValueErrors with the reason
            return _failed(e)
    return run


@_guarded
def open_sweep(path: str) -> Outputs:
    from ...sweep.review_data import open_sweep as load

    manifest = load(path)
    access.remember(manifest.path.parent)
    first = next((i for i, c in enumerate(manifest.cells) if c.done), 0)
    done = sum(c.done for c in manifest.cells)
    note = (f"{manifest.family}: {done} of {len(manifest.cells)} cells rendered, "
            f"{len(manifest.checkpoints)} checkpoint(s). H = hit, M = miss, U = clear, "
            "← → = previous / next image.")
    return view(str(manifest.path), first, 0, note, opened=True)


def _step(manifest: Any, cell: int, image: int, delta: int) -> tuple[int, int]:
    """The next (delta 1) or previous (-1) rendered image, across cells; stays at the ends."""
    slots = [(c.index, i) for c in manifest.cells if c.done for i in range(len(c.images))]
    if not slots:
        return cell, image
    here = (cell, image)
    if here in slots:
        at = slots.index(here) + delta
    else:  # an unrendered cell: the first slot after (or last before) it
        at = next((k for k, s in enumerate(slots) if s > here), len(slots)) - (1 if delta < 0 else 0)
    cell, image = slots[min(max(at, 0), len(slots) - 1)]
    return cell, image


@_guarded
def step(path: str, cell: float, image: float, delta: int) -> Outputs:
    from ...sweep.review_data import open_sweep as load

    new_cell, new_image = _step(load(path), int(cell), int(image), delta)
    return view(path, new_cell, new_image, new_cell=new_cell != int(cell))


@_guarded
def mark(path: str, cell: float, image: float, value: str) -> Outputs:
    """Rate the image shown and move on to the next one."""
    from ...sweep.review_data import open_sweep as load, rate

    manifest = load(path)
    rate(manifest, int(cell), int(image), value)
    word = "cleared" if value == "unrated" else f"marked {value}"
    note = f"Image {int(image) + 1} of {manifest.cells[int(cell)].label} {word}."
    new_cell, new_image = _step(manifest, int(cell), int(image), 1)
    return view(path, new_cell, new_image, note, new_cell=new_cell != int(cell))


@_guarded
def pick_cell(path: str, choice: str, cell: float) -> Outputs:
    index = _cell_index(choice)
    if not path or index == int(cell):
        return (*[gr.update()] * N_OUTPUTS,)
    return view(path, index, 0)


@_guarded
def pick_image(path: str, cell: float, evt: gr.SelectData) -> Outputs:
    return view(path, int(cell), int(evt.index), new_cell=False)


def promote(get_host: GetHost, path: str, final_name: str, mode: str) -> str:
    from ...sweep import review_html as html
    from ...sweep.review_data import open_sweep as load, promote_file

    try:
        label, paths = promote_file(load(path), final_name, get_host().lora_dir(),
                                    move=mode == PROMOTE_MODES[1])
    except (ValueError, OSError) as e:
        return html.message(str(e), error=True)
    verb = "Renamed" if mode == PROMOTE_MODES[1] else "Copied"
    return html.message(f"{verb} {label} to {paths[0]}" + (f" (+ {len(paths) - 1} side file(s))"
                                                           if len(paths) > 1 else ""))


def recent_sweeps(get_host: GetHost, folder: str) -> dict[str, Any]:
    from ...sweep.folders import find_sweeps

    roots = [Path(folder.strip()).expanduser()] if folder.strip() else get_host().sweep_roots()
    return gr.update(choices=[str(p) for p in find_sweeps(roots)])


@_guarded
def rescore(get_host: GetHost, path: str, cell: int, image: int, tagger: str) -> Outputs:
    """Tag the sweep's images and the training images, score every cell, show the result."""
    from ...sweep.review_data import open_sweep as load
    from ...sweep.scoring import choose_tagger, score_sweep

    if not path:
        raise ValueError("open a sweep first")
    try:
        folder = choose_tagger(tagger.strip() or None, get_host().models_dir())
    except RuntimeError as e:  # a tagger that cannot be used: its reason
        raise ValueError(str(e)) from None
    document = score_sweep(load(path), folder)
    return view(path, cell, image, f"scored {len(document['cells'])} cell(s) with {document['tagger']}",
                new_cell=False)


STANDALONE_NOTE = (
    "<div class='lora-lab-message' id='lora_lab_review_standalone'>Sweeps come from the Auto sub-tab (or "
    "<code>python -m lora_lab auto</code>), which renders them here with this checkpoint, or from the WebUI: "
    "txt2img → Script → <b>LoRA Lab grid</b>. Open one (copy a WebUI sweep's folder here, or run "
    "<code>python -m lora_lab ui --allow-root FOLDER</code>) to mark hits and misses and get the "
    "recommendation.</div>")


def run_report(path: str) -> str:
    """The report of the auto run a sweep belongs to (its folder's parent), if there is one."""
    from ...auto.report import REPORT_NAME
    from ...auto.state import STATE_NAME
    from .auto_tab import report_frame

    if not path:
        return ""
    run = Path(path).parent.parent
    return report_frame(run / REPORT_NAME) if (run / STATE_NAME).is_file() else ""


def build(get_host: GetHost, shared: dict[str, Any] | None = None) -> None:
    if not get_host().in_webui:
        gr.HTML(STANDALONE_NOTE)
    with gr.Row(elem_id="lora_lab_review_open_row"):
        path = gr.Textbox(label="Sweep (its sweep.json or folder)", elem_id="lora_lab_review_path", scale=4)
        recent = gr.Dropdown(label="Recent sweeps", choices=[], elem_id="lora_lab_review_recent", scale=4)
        folder = gr.Textbox(label="Look in (empty: where the grid saves)", elem_id="lora_lab_review_folder",
                            scale=2)
        find = gr.Button("Find sweeps", elem_id="lora_lab_review_find", scale=0, min_width=100)
        load = gr.Button("Open", variant="primary", elem_id="lora_lab_review_load", scale=0, min_width=80)
    note = gr.HTML(elem_id="lora_lab_review_message")
    with gr.Row(elem_id="lora_lab_review_body"):
        with gr.Column(scale=3):
            cell = gr.Dropdown(label="Cell", choices=[], elem_id="lora_lab_review_cell")
            image = gr.Image(label="Image", interactive=False, elem_id="lora_lab_review_image", height=420)
            strip = gr.HTML(elem_id="lora_lab_review_strip")
            with gr.Row(elem_id="lora_lab_review_buttons"):
                prev = gr.Button("◀ Previous (←)", elem_id="lora_lab_review_prev")
                hit = gr.Button("Hit (H)", variant="primary", elem_id="lora_lab_review_hit")
                miss = gr.Button("Miss (M)", variant="stop", elem_id="lora_lab_review_miss")
                clear = gr.Button("Clear (U)", elem_id="lora_lab_review_clear")
                nxt = gr.Button("Next (→) ▶", elem_id="lora_lab_review_next")
            gallery = gr.Gallery(label="Images of this cell", columns=6, allow_preview=False,
                                 elem_id="lora_lab_review_gallery")
        with gr.Column(scale=2):
            rates = gr.HTML(elem_id="lora_lab_review_rates")
            advice = gr.HTML(elem_id="lora_lab_review_recommendation")
            with gr.Row():
                final_name = gr.Textbox(label="Final name", elem_id="lora_lab_review_final_name", scale=3)
                mode = gr.Radio(PROMOTE_MODES, value=PROMOTE_MODES[0], label="How",
                                elem_id="lora_lab_review_promote_mode", scale=3)
            promote_button = gr.Button("Promote the recommended file", elem_id="lora_lab_review_promote")
            promoted = gr.HTML(elem_id="lora_lab_review_promoted")
            with gr.Row():
                tagger = gr.Textbox(label="Tagger (empty: the only one installed)", elem_id="lora_lab_review_tagger",
                                    scale=3)
                score_button = gr.Button("Score with the tagger", elem_id="lora_lab_review_score", scale=2)
    auto_report = gr.HTML(elem_id="lora_lab_review_auto_report")
    current_path = gr.Textbox(visible=False, elem_id="lora_lab_review_current_path")
    current_cell = gr.Number(value=0, precision=0, visible=False, elem_id="lora_lab_review_current_cell")
    current_image = gr.Number(value=0, precision=0, visible=False, elem_id="lora_lab_review_current_image")
    for component in (path, recent, folder, cell, final_name, current_path, current_cell, current_image):
        component.do_not_save_to_config = True  # per-session values, not UI defaults (ui-config.json)

    outputs = [note, cell, image, strip, gallery, rates, advice, final_name, current_path, current_cell,
               current_image]
    position = [current_path, current_cell, current_image]
    find.click(fn=lambda f: recent_sweeps(get_host, f), inputs=[folder], outputs=[recent])
    load.click(fn=open_sweep, inputs=[path], outputs=outputs).then(
        fn=run_report, inputs=[current_path], outputs=[auto_report])
    recent.select(fn=lambda chosen: (gr.update(value=chosen), *open_sweep(chosen)), inputs=[recent],
                  outputs=[path, *outputs]).then(fn=run_report, inputs=[current_path], outputs=[auto_report])
    cell.select(fn=pick_cell, inputs=[current_path, cell, current_cell], outputs=outputs)
    gallery.select(fn=pick_image, inputs=[current_path, current_cell], outputs=outputs)
    hit.click(fn=lambda p, c, i: mark(p, c, i, "hit"), inputs=position, outputs=outputs)
    miss.click(fn=lambda p, c, i: mark(p, c, i, "miss"), inputs=position, outputs=outputs)
    clear.click(fn=lambda p, c, i: mark(p, c, i, "unrated"), inputs=position, outputs=outputs)
    prev.click(fn=lambda p, c, i: step(p, c, i, -1), inputs=position, outputs=outputs)
    nxt.click(fn=lambda p, c, i: step(p, c, i, 1), inputs=position, outputs=outputs)
    score_button.click(fn=lambda p, c, i, t: rescore(get_host, p, c, i, t), inputs=[*position, tagger],
                       outputs=outputs)
    promote_button.click(fn=lambda p, n, m: promote(get_host, p, n, m),
                         inputs=[current_path, final_name, mode], outputs=[promoted])

