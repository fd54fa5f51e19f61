"""The `/lora-lab/v1/` HTTP API, for the WebUI and the standalone server alike. Each capability
adds its routes from its own module (`api_<name>.add_routes(router, get_host)`)."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException

from ... import __version__
from ...access import FolderAccess, PathNotAllowed
from ...host.protocol import Host, HostCannot
from ...jobs import registry

PREFIX = "/lora-lab/v1"
CAPABILITIES = ["dataset", "train", "sweep"]


def allowed(access: FolderAccess, path: str | Path) -> Path:
    """`path` resolved, or 403 naming the setting that allows more folders."""
    try:
        return access.check(path)
    except PathNotAllowed as e:
        raise HTTPException(403, str(e)) from None


def make_router(get_host: Callable[[], Host], access: FolderAccess,
                dependencies: Sequence[Any] = ()) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["LoRA Lab"], dependencies=list(dependencies))

    @router.get("/info")
    def info() -> dict[str, Any]:
        host_info = get_host().info()
        return {"name": "LoRA Lab", "version": __version__, "host": host_info.name,
                "host_version": host_info.version, "model_family": host_info.model_family,
                "checkpoint": host_info.checkpoint}

    @router.get("/model/fingerprint")
    def fingerprint() -> dict[str, Any]:
        """Weights, flags, modes and hooks of the loaded model, hashed (heavy on a big model)."""
        from ...host.fingerprint import parts_fingerprint

        host = get_host()
        with host.exclusive():
            return parts_fingerprint(host.model_parts())

    @router.get("/model/conditioning-check")
    def conditioning_check(prompt: str = "ohwx, a red square", width: int = 1024,
                           height: int = 1024) -> dict[str, Any]:
        """WebUI: the trainer's conditioning against the WebUI's own for a prompt (max differences)."""
        try:
            return get_host().conditioning_check(prompt, width, height)
        except HostCannot as e:
            raise HTTPException(501, str(e)) from None

    @router.get("/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        job = registry.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        status = job.status()
        if not job.running and hasattr(job.result, "to_dict"):
            status["result"] = job.result.to_dict()
        return status

    for name in CAPABILITIES:
        importlib.import_module(f"{__package__}.{name}").add_routes(router, get_host, access)
    return router
