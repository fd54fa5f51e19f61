"""Registration with the WebUI: settings section, tab, API router. Called at script load; keep it
light (no torch work, no onnxruntime, no directory scans)."""
from __future__ import annotations

import secrets

from fastapi import Depends, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from modules import script_callbacks, shared

from .webui_host import get_host

SECTION = ("lora_lab", "LoRA Lab")


def on_ui_settings() -> None:
    import gradio as gr

    options = {
        "lora_lab_tagger_dir": shared.OptionInfo(
            "", "Tagger models folder (empty: models/lora_lab/taggers)", section=SECTION),
        "lora_lab_onnx_providers": shared.OptionInfo(
            "auto", "ONNX Runtime providers for tagging", gr.Dropdown,
            {"choices": ["auto", "CUDA", "CPU"]}, section=SECTION),
        "lora_lab_keep_tagger_loaded": shared.OptionInfo(
            False, "Keep the tagger model loaded after a run", section=SECTION),
    }
    for key, info in options.items():
        shared.opts.add_option(key, info)


def on_ui_tabs() -> list[tuple[object, str, str]]:
    from .tab import build_tab

    return [(build_tab(get_host), "LoRA Lab", "lora_lab")]


def _api_auth(credentials: HTTPBasicCredentials = Depends(HTTPBasic())) -> bool:
    for pair in (shared.cmd_opts.api_auth or "").split(","):
        user, _, password = pair.strip().partition(":")
        if secrets.compare_digest(credentials.username, user) and \
                secrets.compare_digest(credentials.password, password):
            return True
    raise HTTPException(status_code=401, detail="Incorrect username or password",
                        headers={"WWW-Authenticate": "Basic"})


def on_app_started(demo: object, app: object) -> None:
    from .api import make_router

    dependencies = [Depends(_api_auth)] if shared.cmd_opts.api_auth else []
    app.include_router(make_router(get_host, dependencies))  # type: ignore[attr-defined]


def register() -> None:
    script_callbacks.on_ui_settings(on_ui_settings)
    script_callbacks.on_ui_tabs(on_ui_tabs)
    script_callbacks.on_app_started(on_app_started)
