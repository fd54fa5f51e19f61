"""Reading and atomically writing the small JSON files of a sweep folder."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


class JsonFileError(ValueError):
    """A JSON file that cannot be read; the message names the file."""


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON: a reader sees the old file or the new one, never a mix.

    One fsync of one file: these are written after every cell or rating, often while the
    WebUI writes images, when a system-wide sync would stall."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise JsonFileError(f"{path} does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise JsonFileError(f"{path} is not valid JSON ({e})") from None
