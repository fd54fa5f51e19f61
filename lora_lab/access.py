"""Which folders the HTTP API may read and write.

The WebUI's API is reachable by anyone on the network under `--listen` (and `--api-auth` is optional),
so a route that takes a path must not become a way to edit or list any folder the process can reach.
A path is allowed when, with symlinks and `..` resolved, it lies inside an allowed root: the roots the
host gives (the WebUI's data folder, its Lora folder, LoRA Lab's home), those the user lists in the
setting, and the folders the user has opened in the tab.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path


class PathNotAllowed(PermissionError):
    pass


def split_roots(text: str) -> list[Path]:
    """Folders from a setting: one per line (or separated by the OS path separator)."""
    parts = [p.strip() for line in (text or "").splitlines() for p in line.split(os.pathsep)]
    return [Path(p).expanduser() for p in parts if p]


_opened: set[Path] = set()  # folders the user opened in the tab, in this process
_opened_lock = threading.Lock()


def remember(folder: str | Path) -> None:
    """A folder the user opened in the tab: the API may use it from now on (until restart)."""
    if not str(folder).strip():
        return
    path = Path(folder).expanduser().resolve()
    if path.is_dir():
        with _opened_lock:
            _opened.add(path)


class FolderAccess:
    def __init__(self, fixed: Callable[[], Iterable[Path]], how_to_allow: str) -> None:
        """`fixed`: the host's and the setting's roots, read at each check (settings change);
        `how_to_allow`: names the setting or option in the refusal."""
        self._fixed = fixed
        self.how_to_allow = how_to_allow

    def roots(self) -> list[Path]:
        with _opened_lock:
            opened = list(_opened)
        return [Path(r).expanduser().resolve() for r in self._fixed()] + opened

    def check(self, path: str | Path) -> Path:
        """The path, resolved, if it lies inside an allowed root; else PathNotAllowed."""
        resolved = Path(path).expanduser().resolve()
        for root in self.roots():
            if resolved.is_relative_to(root):  # the root itself included
                return resolved
        raise PathNotAllowed(f"{path} is outside the folders LoRA Lab's API may use; {self.how_to_allow}")
