"""`python -m lora_lab ui`: the LoRA Lab tab outside the WebUI, with the /lora-lab/v1 API beside it."""
from __future__ import annotations

import socket
import threading
from pathlib import Path

import gradio as gr
import uvicorn
from fastapi import FastAPI

from ...access import FolderAccess
from ...host.protocol import Host
from ...glue.api.router import make_router
from ...glue.tabs.tab import build_tab
from .host import StandaloneHost

ROOT = Path(__file__).resolve().parents[3]  # the extension folder (javascript/, style.css)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_page(host: Host) -> gr.Blocks:
    """The tab inside an outer page, with the same ids, CSS and JS the WebUI gives it."""
    css = (ROOT / "style.css").read_text(encoding="utf-8")
    js = (ROOT / "javascript" / "lora_lab.js").read_text(encoding="utf-8")
    tab = build_tab(lambda: host)  # built outside the page: a Blocks made inside one renders twice
    with gr.Blocks(title="LoRA Lab", css=css, analytics_enabled=False) as page:
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("LoRA Lab", elem_id="tab_lora_lab"):
                tab.render()
        page.load(None, None, None, _js=f"() => {{ {js}\n }}")
    return page


def folder_access(host: StandaloneHost, allow: list[Path]) -> FolderAccess:
    """LoRA Lab's home (Lora, sweeps, models), the `--allow-root` folders and those opened in the tab."""
    def roots() -> list[Path]:
        return [host.home, host.lora_dir(), *host.sweep_roots(), *allow]
    return FolderAccess(roots, "start `python -m lora_lab ui` with --allow-root FOLDER, or open the "
                               "folder in the tab first")


def make_app(host: StandaloneHost, allow: list[Path] | None = None) -> FastAPI:
    app = FastAPI(title="LoRA Lab")
    app.include_router(make_router(lambda: host, folder_access(host, list(allow or []))))
    page = build_page(host)
    page.queue(concurrency_count=2)
    return gr.mount_gradio_app(app, page, path="/")


class Server:
    """uvicorn on 127.0.0.1 in a background thread (tests) or the foreground (CLI)."""

    def __init__(self, host: Host, port: int = 0, allow: list[Path] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        config = uvicorn.Config(make_app(host, allow), host="127.0.0.1", port=self.port,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self) -> "Server":
        self._thread = threading.Thread(target=self.server.run, daemon=True)
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"server on {self.url} did not start")
            threading.Event().wait(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)

    def run_forever(self) -> None:
        print(f"LoRA Lab running on {self.url}", flush=True)
        self.server.run()
