"""Start and stop a real Forge Neo 2.26 build (tier 3 tests, start-up benchmark): `dev/forge-neo.sh`
builds one; LORA_LAB_NEO names it. Same runner as A1111's, with Neo's flags: CPU only (`--cpu`),
loopback, a private data folder (Neo looks for extensions and models there), checkpoints from a
folder (Neo loads its model lazily, at the first generation)."""
from __future__ import annotations

import os
from pathlib import Path

from .webui_runner import WebUI

NEO_FLAGS = ["--skip-prepare-environment", "--skip-install", "--skip-version-check",
             "--skip-python-version-check", "--skip-torch-cuda-test", "--cpu", "--api",
             "--server-name", "127.0.0.1"]
VERSION_UID = {"VERSION_UID": "PY313"}  # without it Neo waits on "Press Enter to Continue"


def neo_checkout() -> Path | None:
    value = os.environ.get("LORA_LAB_NEO")
    if not value:
        return None
    path = Path(value)
    return path if (path / "modules_forge").is_dir() and (path / "venv" / "bin" / "python").exists() else None


class Neo(WebUI):
    """Forge Neo: `checkpoint` is a folder of checkpoints (`--ckpt-dirs`); the first generation loads one."""

    flags = NEO_FLAGS

    def __init__(self, checkout: Path, data_dir: Path, checkpoint: Path | None, **kwargs: object) -> None:
        config = data_dir / "config.json"
        if not config.exists():
            import json

            data_dir.mkdir(parents=True, exist_ok=True)
            config.write_text(json.dumps(VERSION_UID), encoding="utf-8")
        super().__init__(checkout, data_dir, checkpoint, **kwargs)  # type: ignore[arg-type]
        # gradio 4 serves files only from allowed paths, which default to the data folder: with a
        # private one, Neo's own javascript and css would answer 403
        self.args += ["--gradio-allowed-path", str(checkout)]

    def checkpoint_args(self, checkpoint: Path) -> list[str]:
        return ["--ckpt-dirs", str(checkpoint if checkpoint.is_dir() else checkpoint.parent)]

    def model_ready(self, log: bytes) -> bool:
        return True  # lazy: nothing to wait for at start
