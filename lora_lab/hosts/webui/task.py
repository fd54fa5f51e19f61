"""Running a LoRA Lab job as a WebUI task, so the WebUI's own progress bar follows it."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_as_webui_task(task_id: str, work: Callable[[], T]) -> T:
    """Register `task_id` with the WebUI's progress tracking (what `/internal/progress` and the
    bar that `requestProgress` draws read) for as long as `work` runs."""
    from modules import progress, shared

    progress.add_task_to_queue(task_id)
    progress.start_task(task_id)
    shared.state.begin(job=task_id)
    try:
        return work()
    finally:
        shared.state.end()
        progress.finish_task(task_id)

