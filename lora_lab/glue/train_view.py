"""What the Train sub-tab shows of a run: status line, loss chart, files."""
from __future__ import annotations

import html
from typing import Any


def loss_chart_svg(losses: list[float], epoch_losses: list[float], width: int = 560, height: int = 140) -> str:
    """Per-step loss (thin) with a moving average (thick), as inline SVG."""
    if len(losses) < 2:
        return "<div class='lora-lab-chart-empty'>the loss chart fills in as training runs</div>"
    window = max(1, len(losses) // 30)
    smooth = [sum(losses[max(0, i - window + 1): i + 1]) / len(losses[max(0, i - window + 1): i + 1])
              for i in range(len(losses))]
    low, high = min(losses), max(losses)
    span = (high - low) or 1.0

    def points(values: list[float]) -> str:
        step = width / (len(values) - 1)
        return " ".join(f"{i * step:.1f},{height - (v - low) / span * (height - 10) - 5:.1f}"
                        for i, v in enumerate(values))

    epochs = ", ".join(f"{v:.4f}" for v in epoch_losses[-10:])
    return (f"<svg class='lora-lab-loss' viewBox='0 0 {width} {height}' width='100%' height='{height}'>"
            f"<polyline fill='none' stroke='currentColor' stroke-opacity='0.3' points='{points(losses)}'/>"
            f"<polyline fill='none' stroke='var(--color-accent, #f97316)' stroke-width='2' "
            f"points='{points(smooth)}'/></svg>"
            f"<div class='lora-lab-loss-axis'>loss {low:.4f} – {high:.4f} over {len(losses)} steps"
            + (f" · epoch means: {epochs}" if epochs else "") + "</div>")


def status_html(status: dict[str, Any]) -> str:
    state = status["state"]
    line = (f"{html.escape(status['name'])}: {state} · epoch {status['epoch']}/{status['epochs']} · "
            f"step {status['step']}/{status['total_steps']}")
    if status.get("loss") is not None:
        line += f" · loss {status['loss']:.4f}"
    if status.get("lr") is not None:
        line += f" · lr {status['lr']:.2e}"
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
    parts.append(loss_chart_svg(status.get("loss_history", []), status.get("epoch_losses", [])))
    return "".join(parts)
