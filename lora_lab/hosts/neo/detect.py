"""Whether the running WebUI is Forge Neo, from Neo's own marker (never from a version guess)."""
from __future__ import annotations

import importlib


def neo_release() -> str | None:
    """Neo's release ("2.26"), or None when this is not Forge Neo."""
    try:
        version = importlib.import_module("modules_forge.forge_version")
    except ImportError:
        return None
    return str(getattr(version, "release", "?")) if getattr(version, "version", None) == "neo" else None
