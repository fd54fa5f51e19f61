"""Tag a folder: scan, refuse what must not be written, infer, write every caption as one undoable
journal operation."""
from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files.atomic import WriteRefused, check_writable
from ..dataset.caption_edits import trigger as trigger_first
from ..dataset.captions import (Caption, CaptionEncodingError, TextFormat, caption_path,
                                check_caption_ext, encode_caption, merge_tags, read_caption,
                                stem_collisions)
from ..dataset.images import ImageProblem, find_images
from ..dataset.journal import Journal, Operation
from ..host.protocol import Host
from .labels import read_labels
from .model import TAGS_FILE, load_tagger, resolve_model, unload_taggers
from .postprocess import Selection, TagOptions, select_tags
from .predict import predict_files

MODES = ("overwrite", "append", "prepend", "skip")


@dataclass(frozen=True)
class TagRunOptions:
    tags: TagOptions = field(default_factory=TagOptions)
    mode: str = "skip"  # what to do with an existing caption: overwrite | append | prepend | skip
    caption_ext: str = ".txt"
    recursive: bool = False
    batch_size: int | None = None  # None: the model's fixed batch, else 8 on GPU, 1 on CPU
    workers: int | None = None  # decode threads
    providers: tuple[str, ...] | None = None  # None: CUDA when available, then CPU
    threads: int | None = None  # ONNX Runtime intra-op threads; None: the usable cores
    keep_loaded: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        check_caption_ext(self.caption_ext)
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str


@dataclass
class TagRunResult:
    folder: Path
    model: str
    images: int = 0  # image files found
    written: list[Path] = field(default_factory=list)  # captions created or changed
    unchanged: list[Path] = field(default_factory=list)  # tagged; the caption already said exactly that
    skipped: list[Path] = field(default_factory=list)  # kept their existing caption (mode skip)
    problems: list[Problem] = field(default_factory=list)  # everything refused, with the reason
    not_done: list[Path] = field(default_factory=list)  # left untouched by an interrupt
    interrupted: bool = False
    journal_id: str | None = None  # the operation one undo reverts
    providers: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def tagged(self) -> int:
        return len(self.written) + len(self.unchanged)

    def summary(self) -> str:
        where = (f" on {', '.join(p.replace('ExecutionProvider', '') for p in self.providers)}"
                 if self.providers else "")
        lines = [f"tagged {self.tagged} of {self.images} image(s) with {self.model}{where} in "
                 f"{self.seconds:.1f}s ({len(self.written)} caption(s) written, "
                 f"{len(self.unchanged)} unchanged)"]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} with an existing caption (mode skip)")
        if self.interrupted:
            lines.append(f"interrupted: {len(self.not_done)} image(s) not tagged, their captions untouched")
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {p.path}: {p.reason}" for p in self.problems]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "model": self.model, "images": self.images,
                "tagged": self.tagged, "written": [str(p) for p in self.written],
                "unchanged": [str(p) for p in self.unchanged],
                "skipped": [str(p) for p in self.skipped],
                "problems": [{"path": str(p.path), "reason": p.reason} for p in self.problems],
                "not_done": [str(p) for p in self.not_done], "interrupted": self.interrupted,
                "journal_id": self.journal_id, "providers": self.providers, "seconds": self.seconds}


@dataclass
class _Existing:
    caption_file: Path
    caption: Caption  # empty when there is no caption file
    fmt: TextFormat | None  # None: a new file, written like the dataset's other captions


def _plan(images: list[Path], options: TagRunOptions,
          result: TagRunResult) -> tuple[dict[Path, _Existing], TextFormat]:
    """The images to tag with what their caption file holds now, and the format most existing
    captions use (for new ones); refusals go to result."""
    collisions = stem_collisions(images, options.caption_ext)
    shared = {image: target for target, group in collisions.items() for image in group}
    writable_dirs: dict[str, bool] = {}
    todo: dict[Path, _Existing] = {}
    formats: Counter[TextFormat] = Counter()
    for image in images:
        if image in shared:
            others = ", ".join(p.name for p in collisions[shared[image]] if p != image)
            result.problems.append(Problem(image, f"shares the caption file {shared[image].name} "
                                                  f"with {others}; rename one of them"))
            continue
        target = caption_path(image, options.caption_ext)
        try:
            check_writable(target, writable_dirs)
            data, caption, fmt = read_caption(target)
        except WriteRefused as e:
            result.problems.append(Problem(image, f"caption {target.name} {e.reason}; not tagged"))
            continue
        except CaptionEncodingError as e:
            result.problems.append(Problem(image, f"caption {target.name}: {e.reason}"))
            continue
        if data is not None:
            formats[fmt] += 1
        if options.mode == "skip" and not caption.is_empty():
            result.skipped.append(image)
            continue
        todo[image] = _Existing(target, caption, fmt if data is not None else None)
    return todo, formats.most_common(1)[0][0] if formats else TextFormat()


def caption_bytes(existing: Caption | None, fmt: TextFormat, tags: list[str], mode: str,
                  trigger: str = "") -> bytes | None:
    """The new caption file content (None: leave the file as it is)."""
    merged = merge_tags(existing, tags, mode)
    if merged is None:
        return None
    if trigger:  # the trigger leads even when new tags are appended to an older caption
        merged = trigger_first(trigger)(merged)
    return encode_caption(merged.render(), fmt)


def tag_folder(host: Host, folder: Path, model: str | Path,
               options: TagRunOptions | None = None) -> TagRunResult:
    """Tag every image in `folder` with `model` (a tagger folder, or a name under
    `host.models_dir()/taggers`). One journal operation holds every caption written, so one undo
    reverts the run; an interrupt keeps what was finished."""
    options = options or TagRunOptions()
    started = time.monotonic()
    host.interrupt.clear()  # a stop request left over from an earlier job is not for this one
    folder = Path(folder).resolve()  # the journal keys files by their path under the real folder
    model_dir = resolve_model(model, host.models_dir())
    read_labels(model_dir / TAGS_FILE)  # a broken model fails before anything else happens
    result = TagRunResult(folder=folder, model=model_dir.name)
    scan = find_images(folder, options.recursive)
    result.images = len(scan.images)
    result.problems += [Problem(p.path, p.reason) for p in scan.problems]
    if not os.access(folder, os.W_OK):
        raise ValueError(f"cannot write in {folder}: the folder is read-only")
    todo, new_format = _plan(scan.images, options, result)
    if todo:
        _tag(host, folder, model_dir, todo, new_format, options, result)
    result.seconds = time.monotonic() - started
    return result


def preview_tags(host: Host, image: Path, model: str | Path, options: TagOptions | None = None,
                 providers: tuple[str, ...] | None = None) -> Selection:
    """Scored tags for one image, nothing written (raises ImageProblem for a bad image). The model
    stays loaded for the next preview; `unload_taggers` frees it."""
    tagger = load_tagger(resolve_model(model, host.models_dir()), providers)
    (prediction,) = predict_files(tagger, [Path(image)], batch_size=1, workers=1)
    if prediction.scores is None:
        raise ImageProblem(Path(image), prediction.problem or "could not be tagged")
    return select_tags(prediction.scores, tagger.labels, options or TagOptions())


def _tag(host: Host, folder: Path, model_dir: Path, todo: dict[Path, _Existing],
         new_format: TextFormat, options: TagRunOptions, result: TagRunResult) -> None:
    journal = Journal(folder)
    operation = Operation(f"tag with {model_dir.name}")
    tagger = load_tagger(model_dir, options.providers, options.threads)
    result.providers = list(tagger.providers)
    trigger = options.tags.trigger
    done: set[Path] = set()
    tagged: list[Path] = []
    host.progress.begin("Tagging", len(todo))
    try:
        predictions = predict_files(tagger, todo, options.batch_size, options.workers, host.interrupt)
        for step, prediction in enumerate(predictions, start=1):
            image = prediction.path
            done.add(image)
            if prediction.scores is None:
                result.problems.append(Problem(image, prediction.problem or "could not be tagged"))
            else:
                existing = todo[image]
                tags = select_tags(prediction.scores, tagger.labels, options.tags).caption_tags(trigger)
                data = caption_bytes(existing.caption, existing.fmt or new_format, tags, options.mode,
                                     trigger)
                if data is not None:
                    operation.write(existing.caption_file, data)
                tagged.append(image)
            host.progress.update(step, len(todo), text=image.name)
    finally:
        host.progress.end()
        result.not_done = [image for image in todo if image not in done]
        result.interrupted = bool(result.not_done) and host.interrupt.is_set()
        _commit(journal, operation, todo, tagged, result)
        if not options.keep_loaded:
            unload_taggers(model_dir)


def _commit(journal: Journal, operation: Operation, todo: dict[Path, _Existing],
            tagged: list[Path], result: TagRunResult) -> None:
    dirs: dict[str, bool] = {}
    refused: set[Path] = set()
    for image in tagged:
        target = todo[image].caption_file
        if target not in operation.changes:
            continue
        try:  # it may have become read-only while we were tagging
            check_writable(target, dirs)
        except WriteRefused as e:
            del operation.changes[target]
            refused.add(image)
            result.problems.append(Problem(image, f"caption {target.name} {e.reason}; not written"))
    entry = journal.commit(operation)
    result.journal_id = entry.id if entry else None
    changed = set(entry.files) if entry else set()
    for image in tagged:
        if image in refused:
            continue
        rel = os.path.relpath(os.path.abspath(todo[image].caption_file), journal.root)
        (result.written if rel in changed else result.unchanged).append(image)
