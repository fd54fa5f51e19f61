"""Registration with the WebUI: settings section, tab, API router. Called at script load; keep it
light (no torch work, no onnxruntime, no directory scans)."""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from modules import script_callbacks, shared

from ...access import FolderAccess, split_roots
from .current import get_host

SECTION = ("lora_lab", "LoRA Lab")
API_ROOTS = "lora_lab_api_roots"


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
        API_ROOTS: shared.OptionInfo(
            "", "Folders the LoRA Lab API may read and write, one per line (always allowed: the WebUI's "
            "data folder, its Lora folder, its grids folders and the folders opened in the LoRA Lab tab)",
            gr.Textbox, {"lines": 3}, section=SECTION),
    }
    for key, info in options.items():
        shared.opts.add_option(key, info)


def on_ui_tabs() -> list[tuple[object, str, str]]:
    from ...glue.tabs.tab import build_tab

    return [(build_tab(get_host), "LoRA Lab", "lora_lab")]


def _api_auth_dependency() -> Any:
    from fastapi import Depends, HTTPException
    from fastapi.security import HTTPBasic, HTTPBasicCredentials

    def check(credentials: HTTPBasicCredentials = Depends(HTTPBasic())) -> bool:
        if _credentials_ok(credentials.username, credentials.password):
            return True
        raise HTTPException(status_code=401, detail="Incorrect username or password",
                            headers={"WWW-Authenticate": "Basic"})

    return Depends(check)


def _credentials_ok(username: str, password: str) -> bool:
    for pair in (shared.cmd_opts.api_auth or "").split(","):
        user, _, given = pair.strip().partition(":")
        if secrets.compare_digest(username, user) and secrets.compare_digest(password, given):
            return True
    return False


def folder_access() -> FolderAccess:
    def roots() -> list[Path]:
        from modules import paths_internal

        host = get_host()
        return [Path(paths_internal.data_path), host.lora_dir(), *host.sweep_roots(),
                *split_roots(str(getattr(shared.opts, API_ROOTS, "") or ""))]
    return FolderAccess(roots, f"add it in Settings → LoRA Lab → 'Folders the LoRA Lab API may read and "
                               f"write' ({API_ROOTS}), or open it in the LoRA Lab tab first")


def on_app_started(demo: object, app: object) -> None:
    from ...glue.api.router import make_router

    dependencies = [_api_auth_dependency()] if shared.cmd_opts.api_auth else []
    app.include_router(make_router(get_host, folder_access(), dependencies))  # type: ignore[attr-defined]


def on_before_ui() -> None:
    from .xyz_axes import on_before_ui as add_xyz_axes

    add_xyz_axes()


CALLBACKS = {"ui_settings": on_ui_settings, "ui_tabs": on_ui_tabs, "app_started": on_app_started,
             "before_ui": on_before_ui}


def register(script_file: str) -> None:
    """Register our callbacks, attributed to `script_file`.

    The public `on_*` functions find the caller with `inspect.stack()`, which reads the source of
    every frame: ~45 ms per call at script-load depth. `add_callback(..., filename=...)` skips that;
    fall back to the public API if a host lacks it."""
    add = getattr(script_callbacks, "add_callback", None)
    lists = getattr(script_callbacks, "callback_map", {})
    for category, callback in CALLBACKS.items():
        key = f"callbacks_{category}"
        if add is not None and key in lists:
            add(lists[key], callback, category=category, filename=script_file)
        else:
            getattr(script_callbacks, f"on_{category}")(callback)
