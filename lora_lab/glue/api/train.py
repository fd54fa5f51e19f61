"""`/lora-lab/v1/train`: start a run (a background job), poll its status, interrupt it."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, HTTPException

from ...access import FolderAccess
from ...host.protocol import Host, HostCannot
from ...jobs import JobConflict, registry


def add_routes(router: APIRouter, get_host: Callable[[], Host], access: FolderAccess) -> None:
    from .router import allowed

    @router.post("/train")
    def start(settings: dict[str, Any] = Body(...)) -> dict[str, Any]:
        """Body: TrainConfig fields (`dataset_dir` and `name` required), optionally `preset`."""
        from ...train.config import TrainConfig, TrainConfigError
        from ...train.loop import TrainStatus, train

        from ...train.config import FAMILY_DEFAULTS

        family = get_host().info().model_family
        values = dict(settings)
        preset = values.pop("preset", None)
        try:
            if preset:
                config = TrainConfig.from_preset(preset, values.pop("dataset_dir", ""),
                                                 values.pop("name", ""), family, **values)
            else:  # the loaded family's defaults (SDXL: 1024 px, UNet only) under what was sent
                config = TrainConfig.from_dict({**FAMILY_DEFAULTS.get(family or "", {}), **values})
            config.validate()
            # the run reads the dataset and writes to the output folder: both must be allowed
            for path in (config.dataset_dir, config.output_dir, config.resume_from):
                if path is not None:
                    allowed(access, path)
            live = TrainStatus()
            job = registry.start("training", get_host(), lambda host: train(host, config, live))
        except TrainConfigError as e:
            raise HTTPException(400, {"problems": e.problems}) from None
        except JobConflict as e:
            raise HTTPException(409, str(e)) from None
        return {"job": job.id, "name": config.name}

    @router.get("/train/status")
    def status() -> dict[str, Any]:
        from ...train.loop import last_status

        current = last_status()
        job = registry.latest("training")
        body: dict[str, Any] = current.to_dict() if current else {"state": "idle"}
        if job is not None:
            body["job"] = job.id
            body["running"] = job.running
            if job.error:
                body["error"] = job.error
        return body

    @router.post("/train/interrupt")
    def interrupt() -> dict[str, Any]:
        job = registry.active("training")
        if job is not None:
            get_host().interrupt.set()
        return {"interrupted": job is not None}

    @router.get("/train/verify/{name}")
    def verify(name: str) -> dict[str, Any]:
        """How many of a LoRA file's modules the WebUI's own Lora loader matches (WebUI only)."""
        try:
            return get_host().lora_load_report(name)
        except HostCannot as e:
            raise HTTPException(501, str(e)) from None
        except FileNotFoundError as e:
            raise HTTPException(404, str(e)) from None
