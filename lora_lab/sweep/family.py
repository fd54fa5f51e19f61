"""Finding the epoch files of a LoRA training run in a Lora folder.

kohya-style trainers write `name-000002.safetensors`, … (`-step00000500` for step saves) and the
final `name.safetensors`; every file of one run carries the same `ss_session_id`/
`ss_training_started_at`, and either the same `ss_output_name` (sd-scripts) or its own stem
(LoRA Lab, so that the WebUI sees no alias clash). A family is the files of one run: grouped by output
name (metadata first, file name second) and split by run, so renamed epoch files stay with their
run and two runs that share a name in different subfolders do not mix.

In `<lora:…>` each file is addressed by its stem: the WebUI marks an `ss_output_name` shared by
several files as a forbidden alias and resolves those names by file name instead.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..files.lora_files import EPOCH_NAME, STEP_NAME
from ..files.safetensors_header import HeaderError, read_metadata

LORA_SUFFIXES = (".safetensors", ".pt", ".ckpt")


class FamilyError(ValueError):
    """A Lora folder or name that cannot be used; the message says why."""


def natural_key(text: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text))


def read_safetensors_metadata(path: Path) -> dict[str, str]:
    """The `__metadata__` of a safetensors file, reading only its JSON header."""
    try:
        return read_metadata(path)
    except HeaderError as e:
        raise FamilyError(f"{path.name}: {e}") from None


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(str(text).strip()) if text is not None else None
    except ValueError:
        return None


def float_or_none(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class EpochFile:
    path: Path
    name: str  # what goes into <lora:NAME:…>: the file stem
    kind: str  # "epoch", "step", "final" (no suffix) or "other" (renamed)
    epoch: int | None
    steps: int | None
    output_name: str | None
    run: str | None
    started_at: float | None
    problem: str | None = None  # why the metadata could not be read
    name_clash: bool = False  # another file in the folder has this stem; the WebUI may load that one
    base_model: str | None = None  # "sd1", "sd2" or "sdxl" as the WebUI reads it; None: no metadata

    @property
    def label(self) -> str:
        if self.kind == "final":
            return "final" if self.epoch is None else f"final (epoch {self.epoch})"
        if self.kind == "epoch":
            return f"epoch {self.epoch}"
        if self.kind == "step":
            return f"step {self.steps}" if self.epoch is None else f"epoch {self.epoch}, step {self.steps}"
        return self.name if self.epoch is None else f"{self.name} (epoch {self.epoch})"

    def sort_key(self) -> tuple[Any, ...]:
        final = self.kind == "final"
        return (self.epoch is None, self.epoch or 0, final, self.steps or 0, natural_key(self.name))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "path": str(self.path), "label": self.label, "kind": self.kind,
            "epoch": self.epoch, "steps": self.steps, "problem": self.problem, "name_clash": self.name_clash,
        }


@dataclass(frozen=True)
class LoraFamily:
    name: str
    run: str | None
    files: tuple[EpochFile, ...]  # in training order, final last

    @property
    def key(self) -> str:
        """Identifies the family in a picker; `find_family(folder, key)` accepts it."""
        return self.name if self.run is None else f"{self.name}@{self.run}"

    @property
    def started_at(self) -> float | None:
        return max((f.started_at for f in self.files if f.started_at is not None), default=None)

    @property
    def tag_names(self) -> frozenset[str]:
        """Names that mean this LoRA in a prompt tag, lower-cased: the output name and every stem."""
        return frozenset({self.name.lower(), *(f.name.lower() for f in self.files)})

    def file(self, name: str) -> EpochFile:
        for f in self.files:
            if f.name == name:
                return f
        names = ", ".join(f.name for f in self.files)
        raise FamilyError(f"{name!r} is not a file of LoRA {self.name!r}; it has {names}")

    def warnings(self, model_base: str | None = None) -> list[str]:
        """Problems worth telling before a sweep; with `model_base` (the loaded model's "sd1", "sd2"
        or "sdxl"), also files trained for another base, which the WebUI applies wrongly or not at
        all without a word."""
        out = [f"{f.path.name}: {f.problem}" for f in self.files if f.problem]
        out += [f"{f.path.name}: trained on {_BASE_LABEL[f.base_model]}, but the loaded model is "
                f"{_BASE_LABEL.get(model_base, model_base)}; the WebUI will apply it wrongly or not at all"
                for f in self.files if model_base and f.base_model and f.base_model != model_base]
        out += [
            f"{f.path.name}: another file in the Lora folder is also named {f.name!r}; "
            "the WebUI may load that one"
            for f in self.files if f.name_clash
        ]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "name": self.name, "run": self.run, "started_at": self.started_at,
            "files": [f.to_json() for f in self.files], "warnings": self.warnings(),
        }


def lora_files(folder: Path) -> Iterator[Path]:
    seen: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        st = os.stat(root)
        if (st.st_dev, st.st_ino) in seen:  # a symlink loop
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = sorted((d for d in dirs if not d.startswith(".")), key=natural_key)
        for name in sorted(files, key=natural_key):
            if not name.startswith(".") and name.lower().endswith(LORA_SUFFIXES):
                yield Path(root) / name


_BASE_LABEL = {"sd1": "SD1", "sd2": "SD2", "sdxl": "SDXL"}


def base_model(meta: dict[str, str]) -> str | None:
    """The base a LoRA was trained for, by the WebUI's own rule (`NetworkOnDisk.detect_version`)."""
    if str(meta.get("ss_base_model_version", "")).startswith("sdxl_"):
        return "sdxl"
    if meta.get("ss_v2") == "True":
        return "sd2"
    return "sd1" if meta else None


def _describe(path: Path) -> tuple[EpochFile, str]:
    """The file and the base name its file name implies."""
    stem = path.name[: -len(next(s for s in LORA_SUFFIXES if path.name.lower().endswith(s)))]
    meta: dict[str, str] = {}
    problem = None
    if path.suffix.lower() == ".safetensors":
        try:
            meta = read_safetensors_metadata(path)
        except (FamilyError, OSError) as e:
            problem = str(e).removeprefix(f"{path.name}: ")
    kind, base, name_epoch, steps = "final", stem, None, None
    if m := EPOCH_NAME.match(stem):
        kind, base, name_epoch = "epoch", m["base"], int(m["epoch"])
    elif m := STEP_NAME.match(stem):
        kind, base, steps = "step", m["base"], int(m["steps"])
    output_name = meta.get("ss_output_name") or None
    if output_name == stem and kind != "final":
        output_name = base  # a per-epoch output name (LoRA Lab's, against WebUI alias clashes)
    if output_name and base != output_name:
        kind = "other"  # renamed: the name pattern says nothing about the run
    meta_epoch = _int_or_none(meta.get("ss_epoch"))
    run = meta.get("ss_session_id") or meta.get("ss_training_started_at") or None
    file = EpochFile(
        path=path, name=stem, kind=kind,
        epoch=meta_epoch if meta_epoch is not None else name_epoch,
        steps=steps if steps is not None else _int_or_none(meta.get("ss_steps")),
        output_name=output_name, run=run,
        started_at=float_or_none(meta.get("ss_training_started_at")), problem=problem,
        base_model=base_model(meta),
    )
    return file, output_name or base


def list_families(folder: Path | str) -> list[LoraFamily]:
    """Every LoRA family under `folder` (recursive), sorted by name then newest run first."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FamilyError(f"Lora folder {folder} does not exist")
    described = [_describe(p) for p in lora_files(folder)]
    stems = Counter(f.name for f, _ in described)
    groups: dict[tuple[str, str | None], list[EpochFile]] = {}
    for f, name in described:
        if stems[f.name] > 1:
            f = replace(f, name_clash=True)
        groups.setdefault((name, f.run), []).append(f)
    # Files without a run id (.pt, stripped metadata) join the newest run of the same name.
    for name, run in [k for k in groups if k[1] is None]:
        runs = [k for k in groups if k[0] == name and k[1] is not None]
        if runs:
            newest = max(runs, key=lambda k: _newest(groups[k]))
            groups[newest] += groups.pop((name, None))
    families = [
        LoraFamily(name=name, run=run, files=tuple(sorted(files, key=EpochFile.sort_key)))
        for (name, run), files in groups.items()
    ]
    return sorted(families, key=lambda fam: (natural_key(fam.name), -_newest(list(fam.files))))


def family_of_files(name: str, paths: list[Path]) -> LoraFamily:
    """The family made of exactly these files (e.g. one run's epoch files, whatever their run ids
    say after a resumed run), in training order."""
    files = sorted((_describe(Path(p))[0] for p in paths), key=EpochFile.sort_key)
    if not files:
        raise FamilyError(f"LoRA {name!r} has no files")
    return LoraFamily(name=name, run=files[-1].run, files=tuple(files))


def _newest(files: list[EpochFile]) -> float:
    started = [f.started_at for f in files if f.started_at is not None]
    if started:
        return max(started)
    return max(f.path.stat().st_mtime for f in files)


def find_family(folder: Path | str, name: str) -> LoraFamily:
    """The family called `name` (an output name, a `name@run` key or any of its file stems).

    When several runs share the name, the newest run wins; `list_families` shows them all."""
    name = name.strip()
    if not name:
        raise FamilyError("no LoRA name given")
    families = list_families(folder)
    for match in (
        lambda fam: fam.key == name,
        lambda fam: fam.name == name,
        lambda fam: fam.name.lower() == name.lower(),
        lambda fam: any(f.name.lower() == name.lower() for f in fam.files),
    ):
        found = [fam for fam in families if match(fam)]
        if found:
            return max(found, key=lambda fam: _newest(list(fam.files)))
    if not families:
        raise FamilyError(f"no LoRA files (.safetensors, .pt, .ckpt) in {folder}")
    known = ", ".join(sorted({fam.name for fam in families}, key=natural_key)[:20])
    raise FamilyError(f"no LoRA named {name!r} in {folder}; found: {known}")
