"""The `/lora-lab/v1/` HTTP API, for the WebUI and the standalone server alike."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter

from .. import __version__
from ..host.protocol import Host

PREFIX = "/lora-lab/v1"


def make_router(get_host: Callable[[], Host], dependencies: Sequence[Any] = ()) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["LoRA Lab"], dependencies=list(dependencies))

    @router.get("/info")
    def info() -> dict[str, Any]:
        host_info = get_host().info()
        return {"name": "LoRA Lab", "version": __version__, "host": host_info.name,
                "host_version": host_info.version, "model_family": host_info.model_family,
                "checkpoint": host_info.checkpoint}

    return router
