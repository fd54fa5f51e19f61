"""Long jobs (tagging, training) run in a worker thread, observable by the UI and the API.

A job sees a host whose progress sink also records into the job, so the same run shows in the
WebUI's own progress bar (through the host) and in LoRA Lab's status (through the job).
"""
from __future__ import annotations

import itertools
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .host.progress import RecordingProgress
from .host.protocol import Host, ProgressSink

if TYPE_CHECKING:
    from PIL import Image


KEEP_FINISHED = 20



def is_refusal(error: BaseException) -> bool:
    """Bad input or a state the person can change (a missing folder, a busy trainer), as opposed
    to a bug. Exceptions mark themselves with `refusal = True`; ValueErrors and OS errors are."""
    return isinstance(error, (ValueError, OSError)) or bool(getattr(error, "refusal", False))

class JobConflict(RuntimeError):
    pass


class TeeProgress:
    def __init__(self, *sinks: ProgressSink) -> None:
        self.sinks = sinks

    def begin(self, job: str, total: int) -> None:
        for sink in self.sinks:
            sink.begin(job, total)

    def update(self, step: int, total: int | None = None, text: str = "",
               image: Image.Image | None = None) -> None:
        for sink in self.sinks:
            sink.update(step, total, text, image)

    def end(self) -> None:
        for sink in self.sinks:
            sink.end()


class HostView:
    """The host as a job sees it: everything delegated, progress also recorded."""

    def __init__(self, host: Host, recorder: RecordingProgress) -> None:
        self._host = host
        self.progress = TeeProgress(host.progress, recorder)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._host, name)


@dataclass
class Job:
    id: str
    kind: str
    recorder: RecordingProgress = field(default_factory=RecordingProgress)
    started: float = field(default_factory=time.time)
    ended: float | None = None
    result: Any = None
    error: str | None = None
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.ended is None

    def wait(self, timeout: float | None = None) -> bool:
        if self.thread is not None:
            self.thread.join(timeout)
        return not self.running

    def status(self) -> dict[str, Any]:
        r = self.recorder
        return {"id": self.id, "kind": self.kind, "running": self.running, "job": r.job,
                "step": r.step, "total": r.total, "text": r.text, "started": self.started,
                "ended": self.ended, "error": self.error}


class JobRegistry:
    """At most one running job per kind (a second tagging or training run is refused)."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def start(self, kind: str, host: Host, work: Callable[[Host], Any]) -> Job:
        with self._lock:
            active = self.active(kind)
            if active is not None:
                raise JobConflict(f"a {kind} job is already running ({active.recorder.text or 'starting'})")
            job = Job(id=f"{kind}-{next(self._ids)}", kind=kind)
            self._jobs[job.id] = job
            finished = [j.id for j in self._jobs.values() if not j.running]
            for old in finished[:-KEEP_FINISHED]:  # results (loss histories, previews) add up
                del self._jobs[old]
        view = HostView(host, job.recorder)

        def run() -> None:
            try:
                job.result = work(view)  # type: ignore[arg-type]
            except Exception as e:  # reported through status, not lost in a thread
                if is_refusal(e):  # bad input, said in words: the message is the whole story
                    job.error = str(e)
                    print(f"LoRA Lab: {job.id} refused: {e}", file=sys.stderr)
                else:  # a bug: keep the traceback where developers look
                    job.error = f"{type(e).__name__}: {e}"
                    traceback.print_exc()
                job.recorder.text = job.error
            finally:
                job.ended = time.time()

        job.thread = threading.Thread(target=run, name=f"lora-lab-{job.id}", daemon=True)
        job.thread.start()
        return job

    def active(self, kind: str) -> Job | None:
        return next((j for j in self._jobs.values() if j.kind == kind and j.running), None)

    def latest(self, kind: str) -> Job | None:
        jobs = [j for j in self._jobs.values() if j.kind == kind]
        return jobs[-1] if jobs else None

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)


registry = JobRegistry()
