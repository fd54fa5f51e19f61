"""Progress on the command line: a redrawn bar on a terminal, plain lines when the output goes to a
file or a pipe (one per interval and one at the end, never carriage-return redraws)."""
from __future__ import annotations

import io

from lora_lab.host.progress import TerminalProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(progress: TerminalProgress, steps: int) -> None:
    progress.begin("Training", steps)
    for step in range(1, steps + 1):
        progress.update(step, text=f"loss {1 / step:.3f}")
    progress.end()


def test_piped_progress_is_plain_lines_at_a_sensible_rate() -> None:
    out = io.StringIO()
    run(TerminalProgress(out), 500)
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3 and lines[-1].startswith("Training: [") and "500/500" in lines[-1]


def test_piped_progress_can_report_every_step(monkeypatch) -> None:
    monkeypatch.setenv("LORA_LAB_PROGRESS_EVERY", "0")
    out = io.StringIO()
    run(TerminalProgress(out), 5)
    assert [line.split("] ")[1].split()[0] for line in out.getvalue().splitlines()][:5] == \
        ["1/5", "2/5", "3/5", "4/5", "5/5"]


def test_a_terminal_gets_one_redrawn_line() -> None:
    out = Terminal()
    run(TerminalProgress(out, min_interval=0.0), 3)
    assert out.getvalue().count("\r") >= 3 and out.getvalue().count("\n") == 1
