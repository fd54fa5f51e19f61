"""The run's report: one self-contained HTML page (styles inline, images embedded as small JPEG
thumbnails, no scripts), readable anywhere it is copied to and shown as is in the Review tab."""
from __future__ import annotations

import base64
import html
from io import BytesIO
from pathlib import Path
from typing import Any

from PIL import Image

from .summary import MEASURES

THUMB = 192
REPORT_NAME = "report.html"

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d232a;background:#fff;max-width:1400px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde}
h3{font-size:15px;margin:16px 0 6px}
.rec{background:#eef7ee;border:1px solid #9c9;padding:12px 16px;border-radius:6px;margin:12px 0}
.rec code{font-size:16px;font-weight:600}
table{border-collapse:collapse;margin:6px 0} td,th{border:1px solid #ccd;padding:3px 7px;text-align:right}
th{background:#f3f4f7} td.l,th.l{text-align:left} .muted{color:#667}
.heat td{min-width:54px} .gated{color:#a33}
.imgs{display:flex;flex-wrap:wrap;gap:6px} .imgs figure{margin:0;width:%dpx}
.imgs img{width:%dpx;height:auto;display:block;border:1px solid #ccd}
.imgs figcaption{font-size:11px;color:#556;overflow-wrap:anywhere}
.cols{display:flex;gap:28px;flex-wrap:wrap} .cols>div{flex:1;min-width:420px}
pre{background:#f5f5f7;padding:8px;white-space:pre-wrap;overflow-wrap:anywhere}
.in{background:#eef3ff} .out{background:#fff7e8}
""" % (THUMB, THUMB)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _colour(value: float | None, low: float, high: float) -> str:
    if value is None:
        return "#f4f4f4"
    t = 0.5 if high <= low else (value - low) / (high - low)
    t = max(0.0, min(1.0, t))
    return f"hsl({int(10 + 110 * t)},60%,{int(88 - 22 * t)}%)"


def thumbnail(path: Path, size: int = THUMB) -> str:
    """A data URI of `path` scaled to `size` px (empty when the file is gone)."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((size, size))
            buffer = BytesIO()
            image.save(buffer, format="JPEG", quality=82)
    except OSError:
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(path: Path, caption: str) -> str:
    uri = thumbnail(path)
    body = f'<img src="{uri}" alt="{_e(caption)}">' if uri else '<div class="muted">(missing)</div>'
    return f"<figure>{body}<figcaption>{_e(caption)}</figcaption></figure>"


def _stages(doc: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td class=l>{_e(s['name'])}</td><td class=l>{_e(s['state'])}</td>"
                   f"<td>{s['seconds']:.1f}</td></tr>" for s in doc["stages"])
    total = sum(s["seconds"] for s in doc["stages"])
    return (f"<table><tr><th class=l>stage</th><th class=l>state</th><th>seconds</th></tr>{rows}"
            f"<tr><th class=l>total</th><th></th><th>{total:.1f}</th></tr></table>")


def _plan(v: dict[str, Any]) -> str:
    plan = v.get("plan")
    if not plan:
        return "<p class=muted>no plan yet</p>"
    s = plan["settings"]
    items = [("folder", plan["folder"]), ("images", plan["images"]), ("repeats", plan["repeats"]),
             ("images × repeats per epoch", plan["samples_per_epoch"]), ("epochs", plan["epochs"]),
             ("steps", plan["total_steps"]), ("save every", f"{s.get('save_every_n_epochs')} epochs"),
             ("resolution", s.get("resolution", "model default")), ("dim / alpha", f"{s.get('dim')} / {s.get('alpha')}"),
             ("learning rates", f"UNet {s.get('unet_lr')}, text encoder {s.get('te_lr')}"),
             ("holdout", s.get("holdout") or "none"), ("seed", s.get("seed"))]
    rows = "".join(f"<tr><td class=l>{_e(k)}</td><td class=l>{_e(val)}</td></tr>" for k, val in items)
    advice = "".join(f"<li>{_e(a['message'])}</li>" for a in plan.get("advice", []))
    return f"<table>{rows}</table>" + (f"<p>Planner advice:</p><ul>{advice}</ul>" if advice else "")


def _loss_chart(epochs: list[dict[str, Any]], curve: list[dict[str, Any]] | None = None) -> str:
    series = {"train": "train_loss", "validation": "val_loss", "stable (fixed training images)": "stable_loss"}
    colours = {"train": "#3366cc", "validation": "#dc3912", "stable (fixed training images)": "#109618"}
    points = [e for e in (curve or epochs) if e.get("epoch") is not None]
    values = [e[k] for e in points for k in series.values() if e.get(k) is not None]
    if len(points) < 1 or not values:
        return "<p class=muted>no losses recorded</p>"
    w, h, pad = 520, 220, 40
    lo, hi = min(values), max(values)
    hi = hi if hi > lo else lo + 1e-6
    first, last = points[0]["epoch"], points[-1]["epoch"]
    span = max(1, last - first)

    def xy(epoch: int, value: float) -> str:
        return f"{pad + (w - 2 * pad) * (epoch - first) / span:.1f},{h - pad - (h - 2 * pad) * (value - lo) / (hi - lo):.1f}"

    svg = [f'<svg width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg" font-size="11">',
           f'<rect x="{pad}" y="{pad}" width="{w - 2 * pad}" height="{h - 2 * pad}" fill="none" stroke="#ccd"/>',
           f'<text x="4" y="{pad + 4}">{hi:.4f}</text><text x="4" y="{h - pad}">{lo:.4f}</text>']
    for e in points:
        svg.append(f'<text x="{xy(e["epoch"], lo).split(",")[0]}" y="{h - pad + 14}" text-anchor="middle">{e["epoch"]}</text>')
    legend_y = 14
    for label, key in series.items():
        pts = [xy(e["epoch"], e[key]) for e in points if e.get(key) is not None]
        if not pts:
            continue
        svg.append(f'<polyline fill="none" stroke="{colours[label]}" stroke-width="2" points="{" ".join(pts)}"/>')
        svg += [f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="3" fill="{colours[label]}"/>' for p in pts]
        svg.append(f'<text x="{w - 220}" y="{legend_y}" fill="{colours[label]}">— {_e(label)}</text>')
        legend_y += 13
    svg.append(f'<text x="{w / 2}" y="{h - 6}" text-anchor="middle">epoch</text></svg>')
    saved = {e["epoch"]: Path(e["file"]).name for e in epochs if e.get("epoch") is not None}
    rows = "".join(f"<tr><td>{e['epoch']}</td><td class=l>{_e(saved.get(e['epoch'], ''))}</td>"
                   f"<td>{_num(e.get('train_loss'), 4)}</td><td>{_num(e.get('val_loss'), 4)}</td>"
                   f"<td>{_num(e.get('stable_loss'), 4)}</td></tr>" for e in points)
    table = ("<table><tr><th>epoch</th><th class=l>file</th><th>train</th><th>validation</th><th>stable</th></tr>"
             f"{rows}</table>")
    return "".join(svg) + table


def _heatmaps(v: dict[str, Any]) -> str:
    cells = v.get("cells", [])
    lora_cells = [c for c in cells if c["lora"] is not None]
    if not lora_cells:
        return "<p class=muted>no sweep yet</p>"
    weights = sorted({c["weight"] for c in lora_cells})
    epochs = list(dict.fromkeys((c["epoch"], c["lora"]) for c in lora_cells))
    baseline = next((c for c in cells if c["lora"] is None), None)
    out = []
    for measure in MEASURES:
        values = [c["scores"][measure] for c in lora_cells if c["scores"][measure] is not None]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        head = "".join(f"<th>{w:g}</th>" for w in weights)
        rows = []
        for epoch, lora in epochs:
            tds = []
            for w in weights:
                cell = next((c for c in lora_cells if c["lora"] == lora and c["weight"] == w), None)
                value = cell["scores"][measure] if cell else None
                gated = f' class=gated title="{_e(cell["gated"])}"' if cell and cell.get("gated") else ""
                tds.append(f'<td style="background:{_colour(value, lo, hi)}"{gated}>{_num(value)}</td>')
            rows.append(f"<tr><td class=l>epoch {epoch if epoch is not None else '?'}</td>{''.join(tds)}</tr>")
        base = ""
        if baseline is not None and baseline["scores"][measure] is not None:
            base = f"<p class=muted>no LoRA: {_num(baseline['scores'][measure])}</p>"
        out.append(f"<div><h3>{measure}</h3><table class=heat><tr><th class=l>epoch \\ weight</th>{head}</tr>"
                   f"{''.join(rows)}</table>{base}</div>")
    return '<div class=cols>' + "".join(out) + "</div>"


def _shortlist(v: dict[str, Any], manifest: Any) -> str:
    if not v.get("shortlist") or manifest is None:
        return "<p class=muted>nothing scored yet</p>"
    baseline = next((c for c in manifest.cells if c.lora is None), None)
    parts = []
    for rank, entry in enumerate(v["shortlist"], 1):
        cell = manifest.cells[entry["cell"]]
        figures = []
        for image in cell.images:
            if image.file is None:
                continue
            prompt = manifest.prompts[image.prompt]
            figures.append(_figure(manifest.resolve(image.file), f"p{image.prompt + 1} seed {image.seed}: {prompt}"))
        base_figures = []
        if baseline is not None and rank == 1:
            for image in baseline.images:
                if image.file is not None:
                    base_figures.append(_figure(manifest.resolve(image.file), f"no LoRA, p{image.prompt + 1} seed {image.seed}"))
        parts.append(f"<h3>{rank}. <code>&lt;lora:{_e(entry['lora'])}:{entry['weight']:g}&gt;</code> — score "
                     f"{entry['score']:.3f} ({_e(entry['label'])})</h3><div class=imgs>{''.join(figures)}</div>")
        if base_figures:
            parts.append(f"<p class=muted>The same prompts and seeds without the LoRA:</p><div class=imgs>{''.join(base_figures)}</div>")
    return "".join(parts)


def _influence(v: dict[str, Any]) -> str:
    data = v.get("influence_map")
    if not data or not data["rows"]:
        return "<p class=muted>no influence measured</p>"
    head = "".join(f"<th>{_e(c)}</th>" for c in data["columns"])
    rows = []
    for row in data["rows"]:
        tds = "".join(f'<td style="background:{_colour(x, 0.0, 0.6)}">{_num(x, 2)}</td>' for x in row["values"])
        where = "in-domain (training caption)" if row["domain"] == "in" else "out-of-domain (showcase)"
        rows.append(f'<tr><td class="l {row["domain"]}" title="{_e(row["prompt"])}">{_e(row["prompt"][:70])}'
                    f'<br><span class=muted>{where}</span></td>{tds}</tr>')
    return (f"<p class=muted>1 − similarity to the no-LoRA image with the same prompt and seed: high where the LoRA "
            f"acts, near 0 where the base model takes over.</p><table class=heat><tr><th class=l>prompt</th>{head}</tr>"
            f"{''.join(rows)}</table>")


def _variant_section(v: dict[str, Any], title: str) -> str:
    from ..sweep.manifest import load_manifest

    manifest = load_manifest(v["manifest"]) if v.get("manifest") and Path(v["manifest"]).is_file() else None
    rec = v.get("recommendation")
    rec_html = (f'<div class=rec>Recommended: <code>{_e(rec["prompt_tag"])}</code><br>file: {_e(rec["file"])}<br>'
                f'<span class=muted>why: {_e(rec["why"])}</span></div>') if rec else ""
    return (f"<h2>{_e(title)}</h2>{rec_html}<h3>Plan</h3>{_plan(v)}<h3>Loss per epoch</h3>{_loss_chart(v.get('epochs', []), v.get('loss_curve'))}"
            f"<h3>Scores per epoch × weight</h3><p class=muted>Proxies measured with a tagger; you decide. "
            f"Score = F1 of fidelity and adherence; a red cell was gated to 0 (hover for why).</p>{_heatmaps(v)}"
            f"<h3>Shortlist</h3>{_shortlist(v, manifest)}<h3>Where the LoRA acts</h3>{_influence(v)}")


def _dataset(doc: dict[str, Any]) -> str:
    parts = []
    checks = doc.get("dataset")
    if checks:
        parts.append(f"<p>{checks['images']} usable image(s), {checks['captioned']} captioned before tagging.</p>")
        if checks["left_out"]:
            items = "".join(f"<li>{_e(b['path'])}: {_e(b['reason'])}</li>" for b in checks["left_out"])
            parts.append(f"<p>Left out:</p><ul>{items}</ul>")
        if checks["warnings"]:
            items = "".join(f"<li>{_e(w)}</li>" for w in checks["warnings"])
            parts.append(f"<p>Warnings:</p><ul>{items}</ul>")
    pruning = doc.get("pruning")
    if pruning and pruning["proposal"]:
        tags = ", ".join(f"{p['tag']} ({p['share']:.0%})" for p in pruning["proposal"])
        state = "removed" if pruning["applied"] else "proposed, not applied"
        parts.append(f"<p>Pruning ({state}): {_e(tags)}</p>")
    return "".join(parts)


def _comparison(doc: dict[str, Any]) -> str:
    comp = doc.get("comparison")
    if not comp:
        return ""
    rows = "".join(f"<tr><td class=l>{_e(k.replace('_', ' '))}</td><td>{_num(val['captioned'])}</td>"
                   f"<td>{_num(val['captionless'])}</td></tr>" for k, val in comp["measures"].items())
    return (f"<h2>Captioned vs captionless</h2><div class=rec>{_e(comp['verdict'])}</div>"
            f"<table><tr><th class=l>at each variant's best cell</th><th>captioned</th><th>captionless</th></tr>"
            f"{rows}</table>")


def render_report(doc: dict[str, Any], name: str) -> str:
    body = [f"<h1>LoRA Lab run: {_e(name)}</h1>"]
    if "variants" in doc:
        body.append(_comparison(doc))
    body.append(f"<h2>Stages</h2>{_stages(doc)}{_dataset(doc)}")
    if "variants" in doc:
        body += [_variant_section(v, f"Variant: {v['variant']} ({v['lora']})") for v in doc["variants"]]
    else:
        body.append(_variant_section(doc, name))
    body.append(f"<h2>Run it again</h2><p>The same command continues an unfinished run and skips what is done:</p>"
                f"<pre>{_e(doc.get('command') or '')}</pre>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>LoRA Lab: {_e(name)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>")


def write_report(doc: dict[str, Any], name: str, folder: Path) -> Path:
    from ..files.atomic import write_atomic
    from ..files.jsonfile import write_json_atomic

    path = folder / REPORT_NAME
    write_json_atomic(folder / "report.json", doc)
    write_atomic(path, render_report(doc, name).encode("utf-8"))
    return path
