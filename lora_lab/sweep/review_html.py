"""HTML for the Review tab: the hit-rate heat map, the recommendation, a cell's rating strip."""
from __future__ import annotations

import html
from collections.abc import Sequence

from .manifest import SweepManifest
from .review import HIT, MISS, HitRates, Recommendation, Tally
from .weights import format_weight

Matrix = Sequence[Sequence[Tally]]
MARKS = {HIT: "✓", MISS: "✗"}


def _colour(rate: float) -> str:
    """Red (0 %) through yellow to green (100 %)."""
    return f"hsl({round(rate * 120)}, 70%, 38%)"


def _cell(tally: Tally, recommended: bool = False) -> str:
    classes = ["lora-lab-rate"] + (["lora-lab-best"] if recommended else [])
    if not tally.rated:
        title = f"{tally.unrated} not rated" if tally.unrated else "no images"
        return f"<td class='{' '.join(classes)} lora-lab-unrated' title='{title}'>–</td>"
    title = f"{tally.hits} hit(s), {tally.misses} miss(es), {tally.unrated} not rated"
    rate = tally.rate or 0.0
    return (f"<td class='{' '.join(classes)}' style='background:{_colour(rate)}' title='{title}'>"
            f"{rate:.0%}<small> {tally.hits}/{tally.rated}</small></td>")


def _loss_cell(losses: dict[str, float | None] | None) -> str:
    if not losses:
        return "<td class='lora-lab-loss-cell'>–</td>"
    shown = " / ".join("–" if losses.get(k) is None else f"{losses[k]:.4f}" for k in ("stable", "val"))
    return f"<td class='lora-lab-loss-cell' title='validation loss: stable / held-out'>{shown}</td>"


def _table(rates: HitRates, matrix: Matrix, baseline: Tally | None, best: tuple[int, int] | None,
           caption: str, losses: Sequence[dict[str, float | None]] = ()) -> str:
    head = "".join(f"<th>{html.escape(format_weight(w))}</th>" for w in rates.weights)
    if baseline is not None:
        head = "<th>no LoRA</th>" + head
    show_losses = any(v is not None for row in losses for v in row.values())
    if show_losses:
        head = "<th>loss stable / val</th>" + head
    rows = []
    for r, label in enumerate(rates.rows):
        cells = "".join(_cell(t, best == (r, c)) for c, t in enumerate(matrix[r]))
        if baseline is not None:
            cells = (_cell(baseline) if r == 0 else "<td class='lora-lab-rate lora-lab-same'>〃</td>") + cells
        if show_losses:
            cells = _loss_cell(losses[r] if r < len(losses) else None) + cells
        rows.append(f"<tr><th scope='row'>{html.escape(label)}</th>{cells}</tr>")
    return (f"<table class='lora-lab-heatmap'><caption>{html.escape(caption)}</caption>"
            f"<thead><tr><th>epoch \\ weight</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def heatmap(rates: HitRates, recommendation: Recommendation | None,
            losses: Sequence[dict[str, float | None]] = ()) -> str:
    """Hit rate per epoch × weight over all checkpoints, then per checkpoint when there are several."""
    best = None
    if recommendation is not None:
        best = (recommendation.row, rates.weights.index(recommendation.weight))
    tables = [_table(rates, rates.matrix, rates.baseline, best, "Hit rate, all checkpoints"
                     if len(rates.by_checkpoint) > 1 else "Hit rate", losses)]
    if len(rates.by_checkpoint) > 1:
        for checkpoint, matrix in rates.by_checkpoint.items():
            total = rates.checkpoint_total(checkpoint).describe()
            tables.append(_table(rates, matrix, rates.baseline_by_checkpoint.get(checkpoint), None,
                                 f"{checkpoint or 'current checkpoint'}: {total}"))
    return f"<div class='lora-lab-heatmaps'>{''.join(tables)}</div>"


def recommendation_html(recommendation: Recommendation | None) -> str:
    if recommendation is None:
        return ("<div class='lora-lab-recommendation'>Rate images (H = hit, M = miss) to get a "
                "recommendation.</div>")
    advice = "".join(f"<li>{html.escape(a)}</li>" for a in recommendation.advice)
    tag = f"<lora:{recommendation.lora}:{format_weight(recommendation.weight)}>"
    return (f"<div class='lora-lab-recommendation'><b>Recommended: {html.escape(recommendation.label)} at "
            f"weight {format_weight(recommendation.weight)}</b> — <code>{html.escape(tag)}</code>"
            f"<p>{html.escape(recommendation.reason)}</p>{f'<ul>{advice}</ul>' if advice else ''}</div>")


def strip(manifest: SweepManifest, cell: int, image: int, ratings: dict[str, str]) -> str:
    """One mark per image of the cell (✓ hit, ✗ miss, · unrated), the current one outlined."""
    marks = []
    for i, item in enumerate(manifest.cells[cell].images):
        rating = ratings.get(item.file or "", "")
        mark = MARKS.get(rating, "·") if item.file else "∅"
        current = " lora-lab-current" if i == image else ""
        marks.append(f"<span class='lora-lab-mark lora-lab-{rating or 'unrated'}{current}' "
                     f"title='image {i + 1}, seed {item.seed}'>{mark}</span>")
    c = manifest.cells[cell]
    return (f"<div class='lora-lab-strip'><span>cell {cell + 1} of {len(manifest.cells)}: "
            f"<b>{html.escape(c.label)}</b> · image {image + 1} of {len(c.images)}</span> "
            f"{''.join(marks)}</div>")


def message(text: str, error: bool = False) -> str:
    kind = " lora-lab-error" if error else ""
    return f"<div class='lora-lab-message{kind}'>{html.escape(text)}</div>" if text else ""


MEASURES = ("score", "fidelity", "adherence", "diversity", "influence")


def _measure_table(manifest: SweepManifest, cells: dict, measure: str) -> str:
    """One measure per epoch × weight (mean over checkpoints); the score table colours 0-1."""
    weights = [c.weight for c in manifest.columns if c.weight is not None]
    head = "".join(f"<th>{html.escape(format_weight(w))}</th>" for w in weights)
    rows = []
    for r, row in enumerate(manifest.rows):
        tds = []
        for w in weights:
            entries = [cells[str(c.index)] for c in manifest.cells
                       if c.row == r and c.weight == w and str(c.index) in cells]
            values = [e[measure] for e in entries if e.get(measure) is not None]
            gated = next((e["gated"] for e in entries if e.get("gated")), None)
            if measure == "score" and gated:
                tds.append(f"<td class='lora-lab-rate' title='{html.escape(gated)}'>gated</td>")
            elif not values:
                tds.append("<td>–</td>")
            else:
                value = sum(values) / len(values)
                if measure in ("score", "fidelity", "adherence"):  # 0 bad … 1 good: the hit-rate colours
                    tds.append(f"<td class='lora-lab-rate' style='background:{_colour(min(1.0, value))}'>"
                               f"{value:.2f}</td>")
                else:  # neither end is good in itself: plain numbers
                    tds.append(f"<td class='lora-lab-measure'>{value:.2f}</td>")
        rows.append(f"<tr><th scope='row'>{html.escape(row.label)}</th>{''.join(tds)}</tr>")
    caption = "Score (F1 of fidelity and adherence)" if measure == "score" else measure.capitalize()
    return (f"<table class='lora-lab-heatmap lora-lab-{measure}'><caption>{caption}</caption><thead><tr>"
            f"<th>epoch \\ weight</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def scores_table(manifest: SweepManifest, view: dict | None) -> str:
    """Automatic scores per epoch × weight — score, fidelity, adherence, diversity, influence —
    the shortlist and how well the scores agree with the person's hit rates; or how to get them."""
    if view is None:
        return ("<div class='lora-lab-message' id='lora_lab_review_scores'>Not scored yet: <b>Score with "
                "the tagger</b> measures fidelity, adherence, diversity and influence of every cell.</div>")
    cells = view.get("cells", {})
    tables = "".join(_measure_table(manifest, cells, m) for m in MEASURES)
    shortlist = "".join(f"<li>{html.escape(s['label'])} <code>&lt;lora:{html.escape(s['lora'])}:"
                        f"{format_weight(s['weight'])}&gt;</code> {s['score']:.2f}</li>"
                        for s in view.get("shortlist", []))
    agreement = view.get("agreement")
    trust = ("" if agreement is None else
             f"<div>agreement with your hit rates (rank correlation): {agreement:+.2f}</div>")
    return (f"<div id='lora_lab_review_scores'><div>Tagger {html.escape(str(view.get('tagger')))}</div>"
            f"<div class='lora-lab-heatmaps'>{tables}</div>"
            f"<div>Review these first:</div><ol class='lora-lab-shortlist'>{shortlist}</ol>{trust}"
            "<div class='lora-lab-status'>Scores are proxies measured with a tagger; you decide.</div></div>")
