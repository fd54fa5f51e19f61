"""`/lora-lab/v1/dataset/…`: tagging (a background job), caption edits with undo/redo, statistics,
folders, the steps plan and checks."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from ...access import FolderAccess
from ...dataset import actions
from ...dataset.actions import DatasetRef
from ...dataset.journal import JournalError
from ...host.protocol import Host
from ...jobs import JobConflict, registry


class Dataset(BaseModel):
    folder: str
    recursive: bool = False
    caption_ext: str = ".txt"
    keep_tokens: int = 0

    def ref(self, access: FolderAccess) -> DatasetRef:
        """The dataset, its folder checked against the folders the API may use (403 otherwise)."""
        from .router import allowed

        return DatasetRef(allowed(access, self.folder), self.recursive, self.caption_ext, self.keep_tokens)


class TagRequest(Dataset):
    model: str
    general_threshold: float = 0.35
    character_threshold: float = 0.85
    mcut: bool = False
    rating: str = "off"
    exclude: list[str] = []
    replace_underscores: bool = True
    escape_parentheses: bool = False
    sort: str = "confidence"
    trigger: str = ""
    mode: str = "skip"
    batch_size: int | None = None


class CaptionOpRequest(Dataset):
    tags: str = ""
    new: str = ""
    regex: bool = False
    at: str = "end"
    keep: int | None = None
    by: str = "alpha"
    where: str = ""
    dry_run: bool = False


class CaptionEdit(Dataset):
    image: str
    text: str


class PlanRequest(BaseModel):
    folder: str
    batch_size: int = 1
    grad_accum: int = 1
    epochs: int = 10
    flip: bool = False
    resolution: int | None = None


class CheckRequest(Dataset):
    resolution: int = 512
    trigger: str = ""


class LayoutRequest(Dataset):
    train_dir: str
    name: str
    repeats: int = 10
    supporting: list[str] = []
    supporting_repeats: int = 3
    copy_files: bool = False
    dry_run: bool = False


def _answer(fn: Callable[[], Any]) -> Any:
    """Bad input is a 400 with the message; the files are as they were."""
    try:
        return fn()
    except JobConflict as e:
        raise HTTPException(409, str(e)) from None
    except FileNotFoundError as e:
        raise HTTPException(404, str(e)) from None
    except (ValueError, RuntimeError, OSError, JournalError) as e:
        raise HTTPException(400, str(e)) from None


def add_routes(router: APIRouter, get_host: Callable[[], Host], access: FolderAccess) -> None:
    from .router import allowed

    @router.get("/dataset/taggers")
    def taggers() -> list[dict[str, Any]]:
        from ...tagging.model import find_models, taggers_dir

        return [{"name": m.name, "path": str(m.path), "size_bytes": m.size_bytes}
                for m in find_models(taggers_dir(get_host().models_dir()))]

    @router.post("/dataset/tag")
    def tag(request: TagRequest) -> dict[str, Any]:
        from ...tagging import TagOptions, TagRunOptions, tag_folder

        def start() -> dict[str, Any]:
            options = TagRunOptions(
                tags=TagOptions(general_threshold=request.general_threshold,
                                character_threshold=request.character_threshold,
                                general_mcut=request.mcut, character_mcut=request.mcut,
                                rating=request.rating, exclude=tuple(request.exclude),
                                replace_underscores=request.replace_underscores,
                                escape_parentheses=request.escape_parentheses, sort=request.sort,
                                trigger=request.trigger),
                mode=request.mode, caption_ext=request.caption_ext, recursive=request.recursive,
                batch_size=request.batch_size)
            folder = request.ref(access).folder
            if "/" in request.model or "\\" in request.model:  # a tagger folder, not a name
                allowed(access, request.model)
            if not folder.is_dir():
                raise FileNotFoundError(f"dataset folder not found: {folder}")
            job = registry.start("tagging", get_host(),
                                 lambda host: tag_folder(host, folder, request.model, options))
            return job.status()
        return _answer(start)

    @router.post("/dataset/tag/interrupt")
    def interrupt_tagging() -> dict[str, Any]:
        job = registry.active("tagging")
        if job is not None:
            get_host().interrupt.set()
        return {"interrupted": job is not None}

    @router.post("/dataset/captions/undo")
    def undo(request: Dataset) -> dict[str, str]:
        return _answer(lambda: {"message": actions.undo(request.ref(access))})

    @router.post("/dataset/captions/redo")
    def redo(request: Dataset) -> dict[str, str]:
        return _answer(lambda: {"message": actions.redo(request.ref(access))})

    @router.post("/dataset/captions/history")
    def history(request: Dataset) -> list[dict[str, object]]:
        return _answer(lambda: actions.history(request.ref(access)))

    @router.post("/dataset/captions/stats")
    def stats(request: Dataset, min_fraction: float = 0.5, trigger: str = "") -> dict[str, object]:
        ref = request.ref(access)
        return _answer(lambda: actions.stats(ref, min_fraction, trigger or None).to_dict(ref.folder.resolve()))

    @router.post("/dataset/captions/edit")
    def edit(request: CaptionEdit) -> dict[str, object]:
        from ...dataset.caption_ops import edit_caption

        ref = request.ref(access)
        image = allowed(access, ref.folder / request.image)
        return _answer(lambda: edit_caption(ref.folder, image, request.text, ref.caption_ext).to_dict())

    @router.post("/dataset/captions/{op}")
    def caption_op(op: str, request: CaptionOpRequest) -> dict[str, object]:
        return _answer(lambda: actions.caption_op(
            request.ref(access), op, tags=request.tags, new=request.new, regex=request.regex, at=request.at,
            keep=request.keep, by=request.by, where=request.where, dry_run=request.dry_run).to_dict())

    @router.post("/dataset/plan")
    def plan(request: PlanRequest) -> dict[str, object]:
        from ...dataset.planner import plan as make_plan

        folder = allowed(access, request.folder)
        return _answer(lambda: make_plan(folder, batch_size=request.batch_size,
                                         grad_accum=request.grad_accum, epochs=request.epochs,
                                         flip=request.flip, resolution=request.resolution).to_dict())

    @router.post("/dataset/check")
    def check(request: CheckRequest) -> dict[str, object]:
        from ...dataset.checks import check_dataset
        from ...dataset.trigger import check_trigger

        def run() -> dict[str, object]:
            ref = request.ref(access)
            report: dict[str, object] = check_dataset(ref.folder, request.resolution, ref.recursive,
                                                      ref.caption_ext).to_dict()
            if request.trigger.strip():
                report["trigger"] = check_trigger(request.trigger, get_host().lora_dir()).to_dict()
            return report
        return _answer(run)

    @router.post("/dataset/layout")
    def layout(request: LayoutRequest) -> dict[str, object]:
        from ...dataset.layout import build_layout, split_groups

        ref = request.ref(access)
        train_dir = allowed(access, request.train_dir)
        supporting = [str(allowed(access, ref.folder / s)) for s in request.supporting]

        def run() -> dict[str, object]:
            groups = split_groups(ref.folder, request.name, request.repeats, supporting,
                                  request.supporting_repeats, ref.recursive)
            return build_layout(train_dir, groups, ref.caption_ext,
                                "copy" if request.copy_files else "link", request.dry_run).to_dict()
        return _answer(run)
