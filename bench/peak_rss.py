"""Run a Python module or script in this process and, at exit, write its peak RSS to a JSON file.

    python bench/peak_rss.py OUT.json -m package.module ARGS...
    python bench/peak_rss.py OUT.json script.py ARGS...

A parent's `wait4`/`RUSAGE_CHILDREN` peak is not the child's own: Linux carries the forked copy's
resident size across `execve`, so a child of a large driver process reports the driver's size. The
kernel's VmHWM of the child's own address space, read just before exit, is.
"""
from __future__ import annotations

import atexit
import json
import os
import runpy
import sys


def vm_hwm_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    out, target, *rest = sys.argv[1:]

    def record() -> None:
        with open(out, "w", encoding="utf-8") as f:
            json.dump({"peak_rss_mb": vm_hwm_mb()}, f)

    atexit.register(record)
    if target == "-m":
        module, *args = rest
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [target, *rest]
        sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
        runpy.run_path(target, run_name="__main__")


if __name__ == "__main__":
    main()
