"""Where sweeps are written and found: one folder per sweep, `<root>/<number>-<family>/sweep.json`.
The roots are the host's (`Host.sweep_roots`: the WebUI's grids folders, or `<home>/sweeps`)."""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from .manifest import MANIFEST_NAME

_UNSAFE = re.compile(r"[^\w.-]+")
_NUMBERED = re.compile(r"^(\d+)-")


def new_sweep_folder(root: Path, family: str) -> Path:
    """A new, empty folder `<root>/<next number>-<family>`; never reuses an existing one."""
    root.mkdir(parents=True, exist_ok=True)
    name = _UNSAFE.sub("_", family).strip("._")[:60] or "lora"
    numbers = [int(m[1]) for entry in os.listdir(root) if (m := _NUMBERED.match(entry))]
    number = max(numbers, default=0) + 1
    while True:
        folder = root / f"{number:05d}-{name}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:  # another sweep took this number meanwhile
            number += 1


def find_sweeps(roots: Iterable[Path], limit: int = 50) -> list[Path]:
    """Manifests in `roots` and one or two folder levels below, newest first."""
    found: dict[Path, float] = {}
    for root in roots:
        for pattern in (MANIFEST_NAME, f"*/{MANIFEST_NAME}", f"*/*/{MANIFEST_NAME}"):
            for path in Path(root).glob(pattern):
                try:
                    found[path.resolve()] = path.stat().st_mtime
                except OSError:
                    continue
    return sorted(found, key=lambda p: found[p], reverse=True)[:limit]
