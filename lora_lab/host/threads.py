"""How many CPU threads a run outside the WebUI uses.

torch's default takes every core. When another process is busy on the same cores, torch's threads
spin waiting for each other: measured on a 2-core machine with one busy process, a tiny-model run at
256 px took 22.4 s with 2 threads and 7.5 s with 1 (quiet: 6.0 s with 2, 8.6 s with 1); at 128 px
16.0 s against 3.8 s. So the count leaves out the cores other processes keep busy (the 1-minute load
average, or the threads runnable right now, less our own), re-checked every epoch. Inside the WebUI
its own setting stands.
"""
from __future__ import annotations

import os


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def pick_threads(cpus: int, load: float, own: int = 0, runnable: int | None = None) -> int:
    """Threads for `cpus` cores. `load`: the 1-minute load average, `own` of which is ours;
    `runnable`: the threads running right now (the reader included), which sees a process that
    started seconds ago, before the average does."""
    others = max(0.0, load - own)
    if runnable is not None:
        others = max(others, float(runnable - max(own, 1)))
    return max(1, min(cpus, int(cpus - others + 0.5)))


def system_load() -> tuple[float, int | None] | None:
    """(1-minute load average, threads runnable now), where the system says."""
    try:
        fields = open("/proc/loadavg", encoding="ascii").read().split()
        return float(fields[0]), int(fields[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        pass
    try:
        return os.getloadavg()[0], None
    except (AttributeError, OSError):
        return None


class ThreadTuner:
    """Sets torch's thread count for the current load; `fixed` (a user's choice: `--threads`, or
    LORA_LAB_THREADS) wins."""

    def __init__(self, fixed: int | None = None) -> None:
        env = os.environ.get("LORA_LAB_THREADS", "")
        self.fixed = fixed or (int(env) if env.isdigit() and int(env) > 0 else None)
        self.current = 0

    def adjust(self) -> int:
        import torch

        load = system_load()
        wanted = self.fixed or (usable_cpus() if load is None else
                                pick_threads(usable_cpus(), load[0], self.current, load[1]))
        if wanted != torch.get_num_threads():
            torch.set_num_threads(wanted)
        self.current = wanted
        return wanted
