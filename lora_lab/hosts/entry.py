"""The WebUI entry point `scripts/` calls: which WebUI is running, and its adapter installed as the
process's host. The only module that knows every WebUI adapter."""
from __future__ import annotations

from .webui import current


def install() -> None:
    """Install the adapter for the running WebUI (idempotent; cheap: no model, no torch work)."""
    from .neo.detect import neo_release

    if neo_release() is not None:
        from .neo.host import NeoHost

        current.install(NeoHost)
    else:
        from .a1111.host import A1111Host

        current.install(A1111Host)


def register(script_file: str) -> None:
    """Install the adapter, then register the tab, settings and API with the WebUI."""
    from .webui import register as webui_register

    install()
    webui_register.register(script_file)
