"""What the Train sub-tab shows of a run: status line, loss chart, files."""
from __future__ import annotations

import html
from typing import Any


def loss_chart_svg(losses: list[float], epoch_losses: list[float], width: int = 560, height: int = 170,
                   evidence: dict[str, list[tuple[int, float]]] | None = None) -> str:
    """Per-step loss (thin) with a moving average (thick), as inline SVG with a loss axis and a
    step axis; `evidence`: per-epoch points ({"stable": [(step, loss)], "val": …}) drawn on it."""
    if len(losses) < 2:
        return "<div class='lora-lab-chart-empty'>the loss chart fills in as training runs</div>"
    window = max(1, len(losses) // 30)
    smooth = [sum(losses[max(0, i - window + 1): i + 1]) / len(losses[max(0, i - window + 1): i + 1])
              for i in range(len(losses))]
    evidence = {k: v for k, v in (evidence or {}).items() if v}
    points_all = [loss for series in evidence.values() for _, loss in series]
    low, high = min(losses + points_all), max(losses + points_all)
    span = (high - low) or 1.0
    left, bottom, top, right = 60, 34, 8, 12  # room for the axis labels
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + i * plot_w / (len(losses) - 1)

    def y(v: float) -> float:
        return top + plot_h - (v - low) / span * plot_h

    def points(values: list[float]) -> str:
        return " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))

    label = "font-size='10' fill='currentColor'"
    ticks = []
    for v in (low, (low + high) / 2, high):
        ticks.append(f"<line x1='{left - 4}' x2='{left}' y1='{y(v):.1f}' y2='{y(v):.1f}' stroke='currentColor'/>"
                     f"<text x='{left - 6}' y='{y(v) + 3:.1f}' text-anchor='end' {label}>{v:.3f}</text>")
    for i in sorted({0, (len(losses) - 1) // 2, len(losses) - 1}):
        ticks.append(f"<line x1='{x(i):.1f}' x2='{x(i):.1f}' y1='{top + plot_h}' y2='{top + plot_h + 4}' "
                     f"stroke='currentColor'/><text x='{x(i):.1f}' y='{top + plot_h + 15}' text-anchor='middle' "
                     f"{label}>{i + 1}</text>")
    axes = (f"<polyline fill='none' stroke='currentColor' stroke-opacity='0.6' "
            f"points='{left},{top} {left},{top + plot_h} {left + plot_w},{top + plot_h}'/>"
            f"<text x='12' y='{top + plot_h / 2:.1f}' text-anchor='middle' transform='rotate(-90 12 "
            f"{top + plot_h / 2:.1f})' {label}>loss</text>"
            f"<text x='{left + plot_w / 2:.1f}' y='{height - 3}' text-anchor='middle' {label}>step</text>")
    colours = {"stable": "#2563eb", "val": "#16a34a"}
    marks = []
    for name, series in evidence.items():
        xs = [x(min(step, len(losses)) - 1) for step, _ in series]
        line = " ".join(f"{px:.1f},{y(v):.1f}" for px, (_, v) in zip(xs, series))
        marks.append(f"<polyline class='lora-lab-{name}' fill='none' stroke='{colours.get(name, 'gray')}' "
                     f"stroke-dasharray='4 2' points='{line}'/>")
        marks += [f"<circle cx='{px:.1f}' cy='{y(v):.1f}' r='3' fill='{colours.get(name, 'gray')}'/>"
                  for px, (_, v) in zip(xs, series)]
    epochs = ", ".join(f"{v:.4f}" for v in epoch_losses[-10:])
    legend = "".join(f" · <span style='color:{colours.get(n, 'gray')}'>● {n} loss</span>" for n in evidence)
    return (f"<svg class='lora-lab-loss' viewBox='0 0 {width} {height}' width='100%' height='{height}'>"
            f"{axes}{''.join(ticks)}{''.join(marks)}"
            f"<polyline fill='none' stroke='currentColor' stroke-opacity='0.3' points='{points(losses)}'/>"
            f"<polyline fill='none' stroke='var(--color-accent, #f97316)' stroke-width='2' "
            f"points='{points(smooth)}'/></svg>"
            f"<div class='lora-lab-loss-axis'>loss {low:.4f} – {high:.4f} over {len(losses)} steps"
            + (f" · epoch means: {epochs}" if epochs else "") + legend + "</div>")


def status_html(status: dict[str, Any]) -> str:
    state = status["state"]
    line = (f"{html.escape(status['name'])}: {state} · epoch {status['epoch']}/{status['epochs']} · "
            f"step {status['step']}/{status['total_steps']}")
    if status.get("loss") is not None:
        line += f" · loss {status['loss']:.4f}"
    if status.get("lr") is not None:
        line += f" · lr {status['lr']:.2e}"
    eta = status.get("eta_seconds")
    if state == "training" and eta is not None:
        line += f" · ETA {eta / 60:.1f} min" if eta >= 90 else f" · ETA {eta:.0f} s"
    parts = [f"<div class='lora-lab-train-state lora-lab-train-{state}'>{line}</div>"]
    if status.get("message"):
        parts.append(f"<div>{html.escape(status['message'])}</div>")
    if status.get("error"):
        parts.append(f"<div class='lora-lab-error'>{html.escape(status['error'])}</div>")
    if status.get("notes"):
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in status["notes"])
        parts.append(f"<ul class='lora-lab-notes'>{notes}</ul>")
    if status.get("files"):
        files = "".join(f"<li>{html.escape(f)}</li>" for f in status["files"])
        parts.append(f"<ul class='lora-lab-files'>{files}</ul>")
    ends = status.get("epoch_end_steps", [])
    evidence = {"stable": list(zip(ends, status.get("stable_losses", []))),
                "val": [(e, v) for e, v in zip(ends, status.get("val_losses", [])) if v is not None]}
    parts.append(loss_chart_svg(status.get("loss_history", []), status.get("epoch_losses", []),
                                evidence=evidence))
    return "".join(parts)
