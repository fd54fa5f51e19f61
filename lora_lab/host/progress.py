"""Host-independent progress and interrupt primitives (the standalone host uses them directly)."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image


class InterruptEvent:
    """An InterruptFlag backed by a threading.Event."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()


@contextmanager
def ctrl_c_sets(flag: InterruptEvent) -> Iterator[None]:
    """First Ctrl-C asks the running job to stop cleanly; a second one raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()
        print("\nStopping after the current step (Ctrl-C again to abort)...", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class EtaClock:
    """Time left, from the pace after the first report: the first step carries the warm-up (lazy
    allocation, thread start, caches) and would inflate an estimate many times over. None until
    a second report gives a pace."""

    def __init__(self) -> None:
        self._first: tuple[int, float] | None = None

    def remaining(self, step: int, total: int, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        if self._first is None:
            if step > 0:
                self._first = (step, now)
            return None
        first_step, first_time = self._first
        if step <= first_step:
            return None
        return (now - first_time) / (step - first_step) * max(0, total - step)


class TerminalProgress:
    """A one-line progress bar with rate and ETA on a terminal stream. Without a terminal (output
    piped to a file or a log) it writes plain lines instead, one every `plain_interval` seconds and
    one at the end, as pip and tqdm do, rather than a long line of carriage-return redraws."""

    def __init__(self, stream: IO[str] | None = None, min_interval: float = 0.1,
                 plain_interval: float | None = None) -> None:
        self.stream = stream or sys.stderr
        self.plain = not _is_terminal(self.stream)
        if plain_interval is None:  # LORA_LAB_PROGRESS_EVERY=0: a line per report (benchmarks read them)
            every = os.environ.get("LORA_LAB_PROGRESS_EVERY", "")
            plain_interval = float(every) if every.replace(".", "", 1).isdigit() else 10.0
        self.min_interval = plain_interval if self.plain else min_interval
        self.job = ""
        self.total = 0
        self.step = 0
        self.text = ""
        self.last_image: Image.Image | None = None
        self._start = 0.0
        self._last_draw = 0.0
        self._clock = EtaClock()
        self._eta: float | None = None

    def begin(self, job: str, total: int) -> None:
        self.job, self.total, self.step, self.text = job, total, 0, ""
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._clock, self._eta = EtaClock(), None

    def update(self, step: int, total: int | None = None, text: str = "",
               image: Image.Image | None = None) -> None:
        self.step = step
        if total is not None:
            self.total = total
        if text:
            self.text = text
        if image is not None:
            self.last_image = image
        now = time.monotonic()
        self._eta = self._clock.remaining(step, self.total, now)
        if now - self._last_draw >= self.min_interval or (step >= self.total and not self.plain):
            self._last_draw = now
            self._draw(now)

    def end(self) -> None:
        self._draw(time.monotonic())
        if not self.plain:
            self.stream.write("\n")
        self.stream.flush()

    def _draw(self, now: float) -> None:
        total = max(self.total, 1)
        done = min(self.step, total)
        width = 24
        filled = int(width * done / total)
        elapsed = now - self._start
        eta = "    ?" if self._eta is None else f"{self._eta:5.1f}s"
        line = (f"{self.job}: [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} "
                f"{elapsed:5.1f}s eta {eta} {self.text}")
        self.stream.write(f"{line.rstrip()}\n" if self.plain else f"\r{line[:160].ljust(80)}")
        self.stream.flush()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class RecordingProgress:
    """Keeps every report; for callers that show progress themselves (API status, tests)."""

    def __init__(self) -> None:
        self.job = ""
        self.total = 0
        self.step = 0
        self.text = ""
        self.image: Image.Image | None = None
        self.active = False
        self.updates: list[tuple[int, int, str]] = []

    def begin(self, job: str, total: int) -> None:
        self.job, self.total, self.step, self.text, self.active = job, total, 0, "", True

    def update(self, step: int, total: int | None = None, text: str = "",
               image: Image.Image | None = None) -> None:
        self.step = step
        if total is not None:
            self.total = total
        if text:
            self.text = text
        if image is not None:
            self.image = image
        self.updates.append((self.step, self.total, self.text))

    def end(self) -> None:
        self.active = False


class ReentrantExclusive:
    """A lock that a thread may re-enter; `lock` may be a plain non-re-entrant lock (the WebUI's)."""

    def __init__(self, lock: threading.Lock | None = None) -> None:
        self._lock = lock or threading.Lock()
        self._local = threading.local()

    @contextmanager
    def __call__(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self._lock.acquire()
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth -= 1
            if self._local.depth == 0:
                self._lock.release()

    @contextmanager
    def held_by_caller(self) -> Iterator[None]:
        """Declare that this thread already holds the underlying lock (e.g. the WebUI's GPU wrapper)."""
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth -= 1
