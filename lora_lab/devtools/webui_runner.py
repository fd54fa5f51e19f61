"""Start and stop a real A1111 WebUI checkout (tier 2 tests, startup benchmark).

Runs it offline on 127.0.0.1 with a private `--data-dir`, so the developer's own WebUI data is never
touched; readiness is the "Startup time:" line (requests sent earlier can crash v1.10.1's start:
middleware is added after the server begins listening).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = ["--skip-prepare-environment", "--skip-install", "--skip-version-check",
         "--skip-python-version-check", "--skip-torch-cuda-test", "--no-download-sd-model",
         "--do-not-download-clip", "--use-cpu", "all", "--precision", "full", "--no-half",
         "--no-half-vae", "--api", "--server-name", "127.0.0.1"]
REPO = Path(__file__).resolve().parents[2]
# A linked checkout has no `origin` remote; the WebUI reports that with a traceback, harmlessly.
EXPECTED_TRACEBACKS = ("Failed reading extension data from Git repository",)
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


def webui_checkout() -> Path | None:
    value = os.environ.get("LORA_LAB_WEBUI")
    if not value:
        return None
    path = Path(value)
    return path if (path / "webui.py").is_file() and (path / "venv" / "bin" / "python").exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unexpected_tracebacks(log: str, expected: tuple[str, ...] = EXPECTED_TRACEBACKS) -> list[str]:
    """Each traceback in a WebUI log that no `expected` message announced, with the lines around it.

    The WebUI's `errors.report` prints `*** message` and then the indented traceback; uvicorn prints
    `ERROR: ...` before its own. A chained traceback belongs to the one before it."""
    lines = log.splitlines()
    found: list[str] = []
    for i, line in enumerate(lines):
        if line.strip() != "Traceback (most recent call last):":
            continue
        before = [x.strip() for x in lines[max(0, i - 3):i] if x.strip()]
        if before and before[-1].startswith(_CHAINED):
            continue  # same verdict as the traceback it continues
        announced = bool(before) and any(m in before[-1] for m in expected)
        if not announced:
            found.append("\n".join(lines[max(0, i - 2):i + 30]))
    return found


class WebUI:
    """A1111 v1.10.1."""

    flags = FLAGS

    def __init__(self, checkout: Path, data_dir: Path, checkpoint: Path | None,
                 with_extension: bool = True, extra_args: list[str] | None = None) -> None:
        for folder in (checkout, data_dir):
            if any(part.startswith(".") for part in folder.resolve().parts):
                # gradio 3.41 answers 403 for files under a dot-folder: the WebUI's javascript fails
                raise ValueError(f"{folder} is under a folder starting with '.': gradio will not serve "
                                 "the WebUI's files from there; use another folder")
        self.checkout, self.data_dir = checkout, data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "webui.log"
        extensions = data_dir / "extensions"
        extensions.mkdir(parents=True, exist_ok=True)
        link = extensions / "lora-lab"
        if with_extension and not link.exists():
            link.symlink_to(REPO, target_is_directory=True)
        if not with_extension and link.is_symlink():
            link.unlink()
        self.args = [str(checkout / "venv" / "bin" / "python"), "launch.py", *self.flags,
                     "--port", str(self.port), "--data-dir", str(data_dir), *(extra_args or [])]
        self.checkpoint = checkpoint
        if checkpoint is not None:
            self.args += self.checkpoint_args(checkpoint)
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0

    def checkpoint_args(self, checkpoint: Path) -> list[str]:
        return ["--ckpt", str(checkpoint)]

    def model_ready(self, log: bytes) -> bool:
        """A1111 loads the checkpoint in the background after start-up."""
        return b"Model loaded in" in log

    def start(self, timeout: float = 240, wait_for_model: bool = True) -> "WebUI":
        """Start and wait for "Startup time:" (and, with a checkpoint, for the model: the WebUI
        loads it in the background after start-up)."""
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        env.pop("COMMANDLINE_ARGS", None)
        began = time.monotonic()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(self.args, cwd=self.checkout, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        while time.monotonic() - began < timeout:
            log = self.log.read_bytes()
            if not self.startup_seconds and b"Startup time:" in log:
                self.startup_seconds = time.monotonic() - began
            model_ready = not wait_for_model or self.checkpoint is None or self.model_ready(log)
            if self.startup_seconds and model_ready:
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"WebUI did not start:\n{tail}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def get(self, path: str, timeout: float = 60) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.load(response)

    def post(self, path: str, payload: dict[str, Any], timeout: float = 600) -> Any:
        request = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)

    def __enter__(self) -> "WebUI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
