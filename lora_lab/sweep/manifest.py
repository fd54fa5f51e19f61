"""The sweep manifest: one JSON file describing a sweep folder, written after every cell.

It records the parameters, every cell (checkpoint, epoch file, weight, prompts, seeds) with its
image files and infotexts, and the grid pages with where each image sits on them. Paths of files
in the sweep are relative to the manifest's folder, so the folder can be moved; the LoRA files
(which live in the Lora folder) are stored as given. Loading validates everything and names the
first bad field, e.g. `cells[3].images[1].seed`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from ..files.jsonfile import JsonFileError, read_json, write_json_atomic
from .pages import PageLayout
from .plan import SweepPlan

SCHEMA = "lora-lab/sweep"
VERSION = 1
MANIFEST_NAME = "sweep.json"


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and the field."""


@dataclass
class ManifestImage:
    prompt: int  # index into the cell's prompts
    seed: int
    file: str | None = None  # relative to the manifest folder; None until rendered
    infotext: str = ""
    scores: dict[str, Any] | None = None  # automatic measures (sweep/scores.py), once scored


@dataclass
class ManifestCell:
    index: int
    checkpoint: str
    row: int | None  # None: the no-LoRA baseline, shown in every row
    col: int
    lora: str | None
    weight: float | None
    label: str
    prompts: list[str]
    seeds: list[int]
    images: list[ManifestImage]
    scores: dict[str, Any] | None = None  # the cell's automatic measures and score, once scored

    @property
    def done(self) -> bool:
        return all(image.file is not None for image in self.images)


@dataclass
class ManifestRow:
    lora: str
    label: str
    epoch: int | None
    file: str  # the LoRA file


@dataclass
class ManifestColumn:
    weight: float | None
    label: str


@dataclass
class ManifestPage:
    file: str
    checkpoint: str
    number: int
    rows: list[int]
    cols: list[int]
    slots: list[tuple[int, int, int, int, int, int]]  # cell, image, x0, y0, x1, y1

    @property
    def cells(self) -> list[int]:
        return list(dict.fromkeys(slot[0] for slot in self.slots))


@dataclass
class SweepManifest:
    path: Path
    family: str
    created: str
    parameters: dict[str, Any]
    checkpoints: list[str]
    prompts: list[str]
    negative_prompt: str
    seeds: list[int]
    rows: list[ManifestRow]
    columns: list[ManifestColumn]
    cells: list[ManifestCell]
    pages: list[ManifestPage] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def relative(self, path: Path) -> str:
        """How `path` is stored: relative to the manifest folder where possible."""
        path = os.path.abspath(path)
        try:
            return Path(os.path.relpath(path, os.path.abspath(self.folder))).as_posix()
        except ValueError:  # another drive on Windows
            return Path(path).as_posix()

    def resolve(self, stored: str) -> Path:
        path = Path(stored)
        return path if path.is_absolute() else self.folder / path

    def record_image(self, cell: int, image: int, file: Path, infotext: str = "") -> None:
        """Note that image `image` of cell `cell` was saved as `file`."""
        target = self.cells[cell].images[image]
        target.file = self.relative(file)
        target.infotext = infotext

    def image_path(self, cell: int, image: int) -> Path | None:
        stored = self.cells[cell].images[image].file
        return None if stored is None else self.resolve(stored)

    def load_image(self, cell: int, image: int) -> Image.Image | None:
        """The image, or None if it was not rendered or its file is gone: a `render_page` loader."""
        path = self.image_path(cell, image)
        if path is None or not path.is_file():
            return None
        with Image.open(path) as opened:
            opened.load()
            return opened

    def listed_file(self, stored: str) -> Path:
        """The path of an image or page this manifest lists; anything else is refused, so a
        route serving sweep files cannot be walked out of the sweep."""
        if stored not in self.image_files() and stored not in {page.file for page in self.pages}:
            raise ManifestError(f"{stored!r} is not a file of the sweep {self.path}")
        return self.resolve(stored)

    def add_page(self, file: Path, layout: PageLayout) -> None:
        self.pages.append(ManifestPage(
            self.relative(file), layout.checkpoint, layout.number, list(layout.rows), list(layout.cols),
            [(s.cell, s.image, *s.box) for s in layout.slots],
        ))

    def image_files(self) -> dict[str, tuple[int, int]]:
        """Every rendered image's stored path → (cell, image)."""
        return {
            image.file: (cell.index, i)
            for cell in self.cells for i, image in enumerate(cell.images) if image.file is not None
        }

    def save(self) -> None:
        write_json_atomic(self.path, self.to_json())

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "version": VERSION, "family": self.family, "created": self.created,
            "parameters": self.parameters, "checkpoints": self.checkpoints, "prompts": self.prompts,
            "negative_prompt": self.negative_prompt, "seeds": self.seeds,
            "rows": [vars(r) for r in self.rows],
            "columns": [vars(c) for c in self.columns],
            "cells": [
                {**_without_empty_scores({k: v for k, v in vars(c).items() if k != "images"}),
                 "images": [_without_empty_scores(vars(i)) for i in c.images]}
                for c in self.cells
            ],
            "pages": [{**vars(p), "slots": [list(s) for s in p.slots]} for p in self.pages],
        }


def _without_empty_scores(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if not (k == "scores" and v is None)}


def _scores(data: dict[str, Any]) -> dict[str, Any] | None:
    value = data.get("scores")
    return value if isinstance(value, dict) else None


def new_manifest(plan: SweepPlan, path: Path, parameters: dict[str, Any] | None = None) -> SweepManifest:
    """A manifest for `plan` at `path` (a .json file; its folder holds the sweep) with no images yet."""
    return SweepManifest(
        path=Path(path), family=plan.family, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        parameters=dict(parameters or {}), checkpoints=list(plan.checkpoints), prompts=list(plan.prompts),
        negative_prompt=plan.negative_prompt, seeds=list(plan.seeds),
        rows=[ManifestRow(r.lora, r.label, r.epoch, str(r.file)) for r in plan.rows],
        columns=[ManifestColumn(c.weight, c.label) for c in plan.columns],
        cells=[
            ManifestCell(c.index, c.checkpoint, c.row, c.col, c.lora, c.weight, c.label, list(c.prompts),
                         list(c.seeds), [ManifestImage(p, s) for p, s in c.images])
            for c in plan.cells
        ],
    )


class _Doc:
    """Typed access to a parsed JSON document with error messages that name the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> ManifestError:
        return ManifestError(f"{self.path}: {where}: {problem}")

    def get(self, obj: Any, key: str, kind: type | tuple[type, ...], where: str, *,
            nullable: bool = False) -> Any:
        if not isinstance(obj, dict):
            raise self.fail(where, "expected an object")
        if key not in obj:
            raise self.fail(f"{where}.{key}" if where else key, "missing")
        value = obj[key]
        if value is None and nullable:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # JSON has one number type: accept ints for floats, never bools for numbers.
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            names = " or ".join(k.__name__ for k in kinds) + (" or null" if nullable else "")
            raise self.fail(f"{where}.{key}" if where else key, f"expected {names}, got {value!r:.60}")
        return value

    def list_of(self, obj: Any, key: str, kind: type, where: str) -> list[Any]:
        items = self.get(obj, key, list, where)
        name = f"{where}.{key}" if where else key
        for i, item in enumerate(items):
            if not isinstance(item, kind) or (isinstance(item, bool) and kind is not bool):
                raise self.fail(f"{name}[{i}]", f"expected {kind.__name__}, got {item!r:.60}")
        return items

    def index(self, value: int | None, size: int, where: str) -> None:
        if value is not None and not 0 <= value < size:
            raise self.fail(where, f"{value} is out of range (0–{size - 1})")


def load_manifest(path: Path | str) -> SweepManifest:
    path = Path(path)
    try:
        data = read_json(path)
    except JsonFileError as e:
        raise ManifestError(str(e)) from None
    doc = _Doc(path)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ManifestError(f"{path} is not a LoRA Lab sweep manifest")
    version = doc.get(data, "version", int, "")
    if version > VERSION:
        raise ManifestError(
            f"{path} was written by a newer LoRA Lab (manifest version {version}); update LoRA Lab"
        )
    if version < 1:
        raise doc.fail("version", f"{version} is not a known version")

    rows = [
        ManifestRow(doc.get(r, "lora", str, f"rows[{i}]"), doc.get(r, "label", str, f"rows[{i}]"),
                    doc.get(r, "epoch", int, f"rows[{i}]", nullable=True),
                    doc.get(r, "file", str, f"rows[{i}]"))
        for i, r in enumerate(doc.get(data, "rows", list, ""))
    ]
    columns = [
        ManifestColumn(doc.get(c, "weight", float, f"columns[{i}]", nullable=True),
                       doc.get(c, "label", str, f"columns[{i}]"))
        for i, c in enumerate(doc.get(data, "columns", list, ""))
    ]
    cells = []
    for i, c in enumerate(doc.get(data, "cells", list, "")):
        where = f"cells[{i}]"
        prompts = doc.list_of(c, "prompts", str, where)
        seeds = doc.list_of(c, "seeds", int, where)
        images = []
        for j, image in enumerate(doc.get(c, "images", list, where)):
            at = f"{where}.images[{j}]"
            prompt = doc.get(image, "prompt", int, at)
            doc.index(prompt, len(prompts), f"{at}.prompt")
            images.append(ManifestImage(prompt, doc.get(image, "seed", int, at),
                                        doc.get(image, "file", str, at, nullable=True),
                                        doc.get(image, "infotext", str, at), _scores(image)))
        cell = ManifestCell(
            doc.get(c, "index", int, where), doc.get(c, "checkpoint", str, where),
            doc.get(c, "row", int, where, nullable=True), doc.get(c, "col", int, where),
            doc.get(c, "lora", str, where, nullable=True), doc.get(c, "weight", float, where, nullable=True),
            doc.get(c, "label", str, where), prompts, seeds, images, _scores(c),
        )
        if cell.index != i:
            raise doc.fail(f"{where}.index", f"is {cell.index}, expected {i}")
        doc.index(cell.row, len(rows), f"{where}.row")
        doc.index(cell.col, len(columns), f"{where}.col")
        if (cell.row is None) != (columns[cell.col].weight is None):
            raise doc.fail(where, "only baseline cells (row null) go in the baseline column (weight null)")
        cells.append(cell)
    pages = []
    for i, p in enumerate(doc.get(data, "pages", list, "")):
        where = f"pages[{i}]"
        slots = []
        for j, slot in enumerate(doc.get(p, "slots", list, where)):
            if not (isinstance(slot, list) and len(slot) == 6 and all(type(v) is int for v in slot)):
                raise doc.fail(f"{where}.slots[{j}]", "expected [cell, image, x0, y0, x1, y1]")
            doc.index(slot[0], len(cells), f"{where}.slots[{j}][0]")
            doc.index(slot[1], len(cells[slot[0]].images), f"{where}.slots[{j}][1]")
            slots.append(tuple(slot))
        pages.append(ManifestPage(doc.get(p, "file", str, where), doc.get(p, "checkpoint", str, where),
                                  doc.get(p, "number", int, where), doc.list_of(p, "rows", int, where),
                                  doc.list_of(p, "cols", int, where), slots))
    return SweepManifest(
        path=path, family=doc.get(data, "family", str, ""), created=doc.get(data, "created", str, ""),
        parameters=doc.get(data, "parameters", dict, ""),
        checkpoints=doc.list_of(data, "checkpoints", str, ""),
        prompts=doc.list_of(data, "prompts", str, ""),
        negative_prompt=doc.get(data, "negative_prompt", str, ""),
        seeds=doc.list_of(data, "seeds", int, ""), rows=rows, columns=columns, cells=cells, pages=pages,
    )
