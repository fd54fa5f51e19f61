"""glibc's malloc held steady for a CPU training run in a process LoRA Lab owns.

By default glibc gives large freed blocks back to the kernel (munmap, heap trimming) and a UNet step
that frees and re-allocates its activations then faults every page in again: ~600 000 minor
faults (2.4 GB of zeroed pages) per SD1.5 step at 256 px, ~17 % of the step on one thread. For the
run, every allocation comes from the heap and the heap is not trimmed; afterwards the thresholds
are set to the values glibc's own dynamic tuning settles on and the free memory is given back.

Only where LoRA Lab owns the process (the standalone host: CLI and `ui`): the WebUI's allocator is
the WebUI's. Elsewhere (musl, macOS, Windows) this does nothing.
"""
from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
_DEFAULT_MMAP_MAX = 65536
_SETTLED_MMAP_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
_NO_TRIM = (1 << 31) - 1


@lru_cache(maxsize=1)
def _glibc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 (musl has no such symbol)
        return libc
    except (OSError, AttributeError):
        return None


@contextmanager
def steady_heap(enabled: bool = True) -> Iterator[bool]:
    """For the block: no mmap'd allocations and no heap trimming. Yields whether it applied."""
    libc = _glibc() if enabled else None
    applied = bool(libc and libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, _NO_TRIM))
    try:
        yield applied
    finally:
        if libc is not None:
            libc.mallopt(M_MMAP_MAX, _DEFAULT_MMAP_MAX)
            libc.mallopt(M_MMAP_THRESHOLD, _SETTLED_MMAP_THRESHOLD)
            libc.mallopt(M_TRIM_THRESHOLD, 2 * _SETTLED_MMAP_THRESHOLD)
            libc.malloc_trim(0)
