"""Routes `/lora-lab/v1/sweep/…`: LoRA families in the Lora folder, sweeps and their manifests,
ratings, hit rates with the recommendation, promotion, and the sweep's image files.

A sweep is named by `path`: its sweep.json or its folder. Bad input answers 400 (404 for a missing
sweep) with the reason in `detail`."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from ...access import FolderAccess
from ...host.protocol import Host


class RatingsRequest(BaseModel):
    path: str = Field(description="the sweep's sweep.json or folder")
    ratings: dict[str, str | None] = Field(
        description='image path as the manifest stores it → "hit", "miss", or "unrated"/null to clear')


class PromoteRequest(BaseModel):
    path: str = Field(description="the sweep's sweep.json or folder")
    final_name: str = Field(description="new file name in the same folder (suffix optional)")
    move: bool = Field(False, description="rename instead of copy")
    row: int | None = Field(None, description="promote this epoch row instead of the recommended one")


class RescoreRequest(BaseModel):
    path: str = Field(description="the sweep's sweep.json or folder")
    tagger: str = Field("", description="tagger folder or name (empty: the only one installed)")
    dataset: str = Field("", description="training images (empty: from the LoRA's run file)")


@contextmanager
def _answers() -> Iterator[None]:
    """The core's errors (ValueErrors with the reason) as HTTP answers."""
    from ...sweep.family import FamilyError
    from ...sweep.manifest import ManifestError

    try:
        yield
    except FileNotFoundError as e:
        raise HTTPException(404, str(e)) from None
    except (ManifestError, FamilyError) as e:
        raise HTTPException(404 if "does not exist" in str(e) else 400, str(e)) from None
    except (ValueError, OSError) as e:
        raise HTTPException(400, str(e)) from None


def add_routes(router: APIRouter, get_host: Callable[[], Host], access: FolderAccess) -> None:
    from .router import allowed

    @router.get("/sweep/families")
    def families() -> dict[str, Any]:
        from ...sweep.family import list_families

        folder = get_host().lora_dir()
        with _answers():
            return {"lora_dir": str(folder), "families": [f.to_json() for f in list_families(folder)]}

    @router.get("/sweep/sweeps")
    def sweeps(folder: str = "") -> dict[str, list[str]]:
        from ...sweep.folders import find_sweeps

        roots = [allowed(access, folder)] if folder else get_host().sweep_roots()
        return {"roots": [str(r) for r in roots], "sweeps": [str(p) for p in find_sweeps(roots)]}

    @router.get("/sweep/manifest")
    def manifest(path: str) -> dict[str, Any]:
        from ...sweep.review_data import open_sweep

        with _answers():
            sweep = open_sweep(allowed(access, path))
            return {"path": str(sweep.path), **sweep.to_json()}

    @router.get("/sweep/ratings")
    def ratings(path: str) -> dict[str, Any]:
        from ...sweep.review import load_ratings
        from ...sweep.review_data import open_sweep

        with _answers():
            return {"ratings": load_ratings(open_sweep(allowed(access, path)))}

    @router.post("/sweep/ratings")
    def set_ratings(request: RatingsRequest) -> dict[str, Any]:
        from ...sweep.review import set_ratings as save
        from ...sweep.review_data import open_sweep

        with _answers():
            return {"ratings": save(open_sweep(allowed(access, request.path)), request.ratings)}

    @router.get("/sweep/hit-rates")
    def hit_rates(path: str) -> dict[str, Any]:
        from ...sweep.review_data import open_sweep, report

        with _answers():
            return report(open_sweep(allowed(access, path))).to_json()

    @router.get("/sweep/scores")
    def scores(path: str) -> dict[str, Any]:
        """The cells' automatic scores (tagger proxies), the shortlist and the agreement with the
        person's hit rates."""
        from ...sweep.review import load_ratings
        from ...sweep.review_data import open_sweep
        from ...sweep.scoring import scores_view

        with _answers():
            manifest = open_sweep(allowed(access, path))
            view = scores_view(manifest, load_ratings(manifest))
        if view is None:
            raise HTTPException(404, f"{manifest.path} is not scored yet: POST /lora-lab/v1/sweep/rescore")
        return view

    @router.post("/sweep/rescore")
    def rescore(request: RescoreRequest) -> dict[str, Any]:
        """Score (again) with a tagger, as a background job (GET /jobs/{id})."""
        from ...jobs import JobConflict, registry
        from ...sweep.review_data import open_sweep
        from ...sweep.scoring import ScoringError, choose_tagger, score_sweep
        from ...tagging.model import TaggerError

        with _answers():
            manifest = open_sweep(allowed(access, request.path))
            dataset = allowed(access, request.dataset) if request.dataset.strip() else None
            try:
                tagger = choose_tagger(request.tagger.strip() or None, get_host().models_dir())
            except (ScoringError, TaggerError) as e:
                raise HTTPException(400, str(e)) from None
            try:
                job = registry.start("scoring", get_host(), lambda host: score_sweep(manifest, tagger, dataset))
            except JobConflict as e:
                raise HTTPException(409, str(e)) from None
        return job.status()

    @router.post("/sweep/promote")
    def promote(request: PromoteRequest) -> dict[str, Any]:
        from ...sweep.review_data import open_sweep, promote_file

        with _answers():
            label, paths = promote_file(open_sweep(allowed(access, request.path)), request.final_name, get_host().lora_dir(),
                                        move=request.move, row=request.row)
        return {"promoted": label, "files": [str(p) for p in paths]}

    @router.get("/sweep/file")
    def file(path: str, name: str) -> FileResponse:
        """An image or page of the sweep (`name` as the manifest stores it); nothing else."""
        from ...sweep.review_data import open_sweep

        with _answers():
            target = open_sweep(allowed(access, path)).listed_file(name)
            if not target.is_file():
                raise FileNotFoundError(f"{target} is gone")
        return FileResponse(target)
