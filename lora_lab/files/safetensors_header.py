"""Reading a safetensors file's JSON header without touching its tensors (LoRA discovery, trigger
clashes, the WebUI loader check)."""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

MAX_HEADER_BYTES = 100_000_000  # the format's own limit; a larger length means it is not one


class HeaderError(ValueError):
    pass


def read_header(path: Path) -> dict[str, Any]:
    """The whole header: tensor entries and `__metadata__`."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise HeaderError("too short to be a safetensors file")
        (length,) = struct.unpack("<Q", head)
        if not 2 <= length <= MAX_HEADER_BYTES:
            raise HeaderError(f"not a safetensors file (header length {length})")
        raw = f.read(length)
    if len(raw) < length:
        raise HeaderError("truncated safetensors header")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HeaderError(f"safetensors header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise HeaderError("safetensors header is not a JSON object")
    return header


def read_metadata(path: Path) -> dict[str, str]:
    """`__metadata__` as strings (a writer that stored non-strings gets them as JSON)."""
    meta = read_header(path).get("__metadata__")
    if not isinstance(meta, dict):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
