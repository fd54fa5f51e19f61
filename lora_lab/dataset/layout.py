"""kohya's `N_name` training layout: reading it, and building it from a flat folder.

A training folder holds one sub-folder per group, named `<repeats>_<name>` (`10_ohwx woman`): every
image inside is seen `repeats` times per epoch, and `name` is the caption of images that have none.

Building never touches the originals: images are hard-linked (or copied where a link cannot be
made, e.g. across drives), captions are always copied so that editing a training caption never
edits the original. Everything is planned before anything is written; an existing different file
at a destination stops the whole build with nothing written.
"""
from __future__ import annotations

import errno
import filecmp
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..files.atomic import TMP_MARK
from .images import ImageProblem, find_images

_REPEAT_FOLDER = re.compile(r"([0-9]+)(?:_(.*))?", re.DOTALL)

Mode = Literal["link", "copy"]
Action = Literal["link", "copy", "present"]  # "present": the same file is already there


def parse_repeat_folder(name: str) -> tuple[int, str] | None:
    """(repeats, name) of a kohya folder name like `10_ohwx woman`; None if it is not one.

    As in sd-scripts, everything after the first `_` is the name (it may contain `_`), and a bare
    number is a group with an empty name. Zero repeats would train nothing, so it is not a group."""
    match = _REPEAT_FOLDER.fullmatch(name)
    if match is None or int(match.group(1)) < 1:
        return None
    return int(match.group(1)), match.group(2) or ""


def repeat_folder_name(repeats: int, name: str) -> str:
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1 (got {repeats})")
    if not name.strip() or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"group name {name!r} cannot be a folder name")
    return f"{repeats}_{name.strip()}"


@dataclass
class Group:
    """One `N_name` folder of a training layout."""

    folder: Path
    repeats: int
    name: str
    images: list[Path]


@dataclass
class LayoutScan:
    groups: list[Group]
    ignored: list[Path]  # sub-folders without a repeat count; kohya skips them too
    problems: list[ImageProblem]


def read_groups(train_dir: Path) -> LayoutScan:
    """The `N_name` groups directly under train_dir (images directly inside each, as kohya reads them)."""
    train_dir = Path(train_dir)
    if not train_dir.is_dir():
        raise FileNotFoundError(f"not a folder: {train_dir}")
    groups: list[Group] = []
    ignored: list[Path] = []
    problems: list[ImageProblem] = []
    for entry in sorted(train_dir.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        parsed = parse_repeat_folder(entry.name)
        if parsed is None:
            ignored.append(entry)
            continue
        scan = find_images(entry)
        problems.extend(scan.problems)
        groups.append(Group(entry, parsed[0], parsed[1], scan.images))
    return LayoutScan(groups, ignored, problems)


@dataclass(frozen=True)
class GroupSpec:
    """A group to build: these images, seen `repeats` times an epoch, under `N_name`."""

    name: str
    repeats: int
    images: tuple[Path, ...]

    @property
    def folder_name(self) -> str:
        return repeat_folder_name(self.repeats, self.name)


def split_groups(source: Path, name: str, repeats: int, supporting: Iterable[Path | str] = (),
                 supporting_repeats: int = 3, recursive: bool = False) -> list[GroupSpec]:
    """Primary and supporting groups from a flat folder.

    `supporting` names images (paths, or names relative to source) or folders of images that get
    fewer repeats; every other image under source is primary."""
    source = Path(source)
    scan = find_images(source, recursive)
    chosen: list[Path] = []
    for item in supporting:
        path = Path(item) if Path(item).is_absolute() else source / item
        if path.is_dir():
            chosen.extend(find_images(path, recursive).images)
        elif path.is_file():
            chosen.append(path)
        else:
            raise FileNotFoundError(f"supporting image not found: {item}")
    chosen_keys = {os.path.realpath(p) for p in chosen}
    primary = tuple(p for p in scan.images if os.path.realpath(p) not in chosen_keys)
    groups = [GroupSpec(name, repeats, primary)] if primary else []
    if chosen:
        groups.append(GroupSpec(name, supporting_repeats, tuple(dict.fromkeys(chosen))))
    if not groups:
        raise ValueError(f"no images in {source}")
    return groups


@dataclass(frozen=True)
class FileAction:
    source: Path
    dest: Path
    action: Action


@dataclass(frozen=True)
class Conflict:
    dest: Path
    reason: str


@dataclass
class LayoutResult:
    train_dir: Path
    folders: list[Path]
    actions: list[FileAction] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    applied: bool = False

    def count(self, action: str) -> int:
        return sum(1 for a in self.actions if a.action == action)

    def to_dict(self) -> dict:
        return {
            "train_dir": str(self.train_dir),
            "applied": self.applied,
            "folders": [str(f) for f in self.folders],
            "linked": self.count("link"), "copied": self.count("copy"),
            "already_present": self.count("present"),
            "files": [{"source": str(a.source), "dest": str(a.dest), "action": a.action}
                      for a in self.actions],
            "conflicts": [{"dest": str(c.dest), "reason": c.reason} for c in self.conflicts],
        }

    def text(self) -> str:
        if self.conflicts:
            lines = [f"Nothing written: {len(self.conflicts)} conflict(s) in {self.train_dir}"]
            lines += [f"  {c.dest}: {c.reason}" for c in self.conflicts]
            return "\n".join(lines)
        verb = "Built" if self.applied else "Would build"
        lines = [f"{verb} {len(self.folders)} folder(s) in {self.train_dir}:"]
        for folder in self.folders:
            n = sum(1 for a in self.actions if a.dest.parent == folder)
            lines.append(f"  {folder.name}/  {n} file(s)")
        lines.append(f"hard-linked {self.count('link')}, copied {self.count('copy')}, "
                     f"already there {self.count('present')}; originals untouched")
        return "\n".join(lines)


def plan_layout(train_dir: Path, groups: Sequence[GroupSpec], caption_ext: str = ".txt",
                mode: Mode = "link", with_captions: bool = True) -> LayoutResult:
    """What `build_layout` would do, with every conflict found; writes nothing. Without
    `with_captions` the images go alone (each one's caption is then its folder's trigger)."""
    train_dir = Path(train_dir)
    if train_dir.exists() and not train_dir.is_dir():
        raise ValueError(f"{train_dir} exists and is not a folder")
    folders = list(dict.fromkeys(train_dir / g.folder_name for g in groups))
    result = LayoutResult(train_dir, folders)
    claimed: dict[Path, Path] = {}
    for group in groups:
        folder = train_dir / group.folder_name
        if folder.exists() and not folder.is_dir():
            result.conflicts.append(Conflict(folder, "exists and is not a folder"))
            continue
        for image in group.images:
            files: list[tuple[Path, Mode]] = [(image, mode)]
            caption = image.with_suffix(caption_ext)
            if with_captions and caption.is_file():
                files.append((caption, "copy"))
            for src, how in files:
                dest = folder / src.name
                action = _action(src, dest, how, claimed, result.conflicts)
                if action is not None:
                    claimed[dest] = src
                    result.actions.append(action)
    return result


def _action(src: Path, dest: Path, how: Mode, claimed: dict[Path, Path],
            conflicts: list[Conflict]) -> FileAction | None:
    if dest in claimed:
        if os.path.realpath(claimed[dest]) != os.path.realpath(src):
            conflicts.append(Conflict(dest, f"both {claimed[dest]} and {src} would go here"))
        return None
    if os.path.lexists(dest):
        if not dest.is_file():
            conflicts.append(Conflict(dest, "exists and is not a regular file"))
            return None
        if not _same_content(src, dest):
            conflicts.append(Conflict(dest, f"a different file is already there (from {src})"))
            return None
        return FileAction(src, dest, "present")
    return FileAction(src, dest, how)


def _same_content(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def build_layout(train_dir: Path, groups: Sequence[GroupSpec], caption_ext: str = ".txt",
                 mode: Mode = "link", dry_run: bool = False, with_captions: bool = True) -> LayoutResult:
    """Create the `N_name` folders and fill them; all or nothing when there are conflicts."""
    result = plan_layout(train_dir, groups, caption_ext, mode, with_captions)
    if result.conflicts or dry_run:
        return result
    for folder in result.folders:
        folder.mkdir(parents=True, exist_ok=True)
    done: list[FileAction] = []
    for action in result.actions:
        if action.action == "present":
            done.append(action)
        elif action.action == "link" and _try_link(action.source, action.dest):
            done.append(action)
        else:
            copy_atomic(action.source, action.dest)
            done.append(FileAction(action.source, action.dest, "copy"))
    result.actions = done
    result.applied = True
    return result


# no hard links across drives (EXDEV) or on FAT/exFAT and some network shares
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}


def _try_link(src: Path, dest: Path) -> bool:
    try:
        os.link(src, dest)
    except OSError as e:
        if e.errno in _NO_LINK:
            return False
        raise
    return True


def link_or_copy(src: Path, dest: Path) -> None:
    """A hard link where the file system allows one, else an atomic copy."""
    if not _try_link(src, dest):
        copy_atomic(src, dest)


def copy_atomic(src: Path, dest: Path) -> None:
    """Copy through a temporary sibling, so that an interrupted copy leaves no partial file."""
    tmp = dest.with_name(f"{TMP_MARK}{dest.name}")
    try:
        shutil.copy2(src, tmp)
        if os.path.lexists(dest):  # appeared since planning: never overwrite
            raise FileExistsError(f"{dest} appeared while building the layout; not overwritten")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
