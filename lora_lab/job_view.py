"""Showing a running job in the tab: a generator handler yields a status bar until the job ends.

Works the same in the WebUI (whose queue runs generator handlers) and standalone; the job itself
also reports through the host, so the WebUI's own progress state follows it."""
from __future__ import annotations

import html
import time
from collections.abc import Iterator
from typing import Any

from .jobs import Job


def status_html(status: dict[str, Any], now: float | None = None) -> str:
    step, total = int(status.get("step") or 0), int(status.get("total") or 0)
    elapsed = (status.get("ended") or now or time.time()) - status["started"]
    eta = ""
    if status["running"] and step and total > step:
        eta = f" · ETA {elapsed / step * (total - step):.0f}s"
    fraction = step / total if total else 0.0
    text = str(status.get("text") or "")
    text = "" if text == status.get("error") else html.escape(text)  # the caller shows the error once
    state = "running" if status["running"] else ("failed" if status.get("error") else "done")
    return (f"<div class='lora-lab-job lora-lab-job-{state}'>"
            f"<progress max='1' value='{fraction:.4f}'></progress> "
            f"<span>{html.escape(status.get('job') or status['kind'])}: {step}/{total}"
            f" · {elapsed:.0f}s{eta}</span><div class='lora-lab-job-text'>{text}</div></div>")


def follow(job: Job, interval: float = 0.5) -> Iterator[str]:
    """Status HTML every `interval` seconds while the job runs (the caller yields it to gradio)."""
    while job.running:
        yield status_html(job.status())
        job.wait(interval)


def error_html(message: str) -> str:
    return f"<div class='lora-lab-error'>{html.escape(message)}</div>"


def pre_html(text: str) -> str:
    return f"<pre class='lora-lab-pre'>{html.escape(text)}</pre>"
