"""Batch caption edits as one undoable journal operation each.

An operation computes every new caption first, then refuses, before writing anything, if one of
the files it would change is shared by two images (`x.png` + `x.jpg` -> `x.txt`) or must not be
written (read-only, symlink, folder not writable): a half-applied batch edit is harder to reason
about than a clear "fix this first". Captions that cannot be read safely (not UTF-8, several
lines) are never written and are listed in the result. Only files whose bytes change are written,
each in its own encoding, BOM and line ending.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..files.atomic import WriteRefused, WritesRefused, check_writable
from .caption_edits import Edit, add, chain, dedupe, remove, replace, sort, tag_frequency, trigger
from .captions import (Caption, CaptionEncodingError, CaptionFile, CaptionProblem, CaptionSet,
                       TextFormat, caption_path, encode_caption, file_stamp, read_caption,
                       same_file_key, stem_collisions, tag_key)
from .images import is_image_name
from .journal import Journal, Operation
from .tag_filter import TagFilter


class OpRefused(ValueError):
    """Nothing was written: the listed files must be fixed first."""

    def __init__(self, name: str, problems: list[CaptionProblem]) -> None:
        shown = "\n".join(f"  {p}" for p in problems[:10])
        more = f"\n  … and {len(problems) - 10} more" if len(problems) > 10 else ""
        super().__init__(f"{name}: refused, nothing was written; {len(problems)} caption file(s) "
                         f"cannot be written:\n{shown}{more}")
        self.name = name
        self.problems = problems


@dataclass
class Change:
    image: Path
    path: Path
    before: str | None  # caption text before (None: there was no caption file)
    after: str


@dataclass
class OpResult:
    name: str
    changes: list[Change] = field(default_factory=list)  # written (or, in a dry run, to be written)
    unchanged: list[Path] = field(default_factory=list)  # selected captions already as asked
    not_selected: int = 0  # captions the filter left out
    problems: list[CaptionProblem] = field(default_factory=list)  # captions left untouched, why
    blocked: list[CaptionProblem] = field(default_factory=list)  # dry run: why applying would refuse
    journal_id: str | None = None  # what one undo reverts; None when nothing was written
    dry_run: bool = False

    @property
    def changed(self) -> list[Path]:
        return [c.path for c in self.changes]

    def summary(self) -> str:
        verb = "would change" if self.dry_run else "changed"
        parts = [f"{self.name}: {verb} {len(self.changes)}, unchanged {len(self.unchanged)}"]
        if self.not_selected:
            parts.append(f"not selected {self.not_selected}")
        if self.problems:
            parts.append(f"left untouched {len(self.problems)}")
        if self.blocked:
            parts.append(f"REFUSED: {len(self.blocked)} file(s) cannot be written")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "dry_run": self.dry_run, "journal_id": self.journal_id,
                "changed": [str(c.path) for c in self.changes],
                "unchanged": len(self.unchanged), "not_selected": self.not_selected,
                "problems": [{"path": str(p.path), "reason": p.reason} for p in self.problems],
                "blocked": [{"path": str(p.path), "reason": p.reason} for p in self.blocked]}


def _collision_problems(captions: CaptionSet, paths: list[Path]) -> list[CaptionProblem]:
    if not captions.collisions:
        return []
    shared = {same_file_key(os.fspath(p)): images for p, images in captions.collisions.items()}
    out = []
    reported: set[str] = set()
    for path in paths:
        key = same_file_key(os.fspath(path))
        images = shared.get(key)
        if images and key not in reported:
            reported.add(key)
            names = " and ".join(i.name for i in images)
            out.append(CaptionProblem(path, f"is the caption of both {names}; rename one image so "
                                            "each has its own caption"))
    return out


def apply_edit(captions: CaptionSet, name: str, edit: Edit, where: TagFilter | None = None,
               rewrite: bool = False, dry_run: bool = False) -> OpResult:
    """Apply `edit` to every caption (or those `where` selects) as one journal operation.

    An image without a caption file counts as an empty caption: an edit that gives it tags
    creates the file. `rewrite`: write captions whose text is not in canonical form even when
    their tags did not change (normalising). Raises OpRefused (nothing written) when a file to be
    changed cannot be; with dry_run the reasons are in `result.blocked` instead. On success the
    CaptionSet is updated to what is now on disk. A caption that changed on disk since the
    CaptionSet was loaded refuses the operation too, rather than overwrite that change."""
    result = OpResult(name, problems=list(captions.problems), dry_run=dry_run)
    new_format = captions.default_format()
    pending: list[tuple[CaptionFile, Caption, str, bytes, TextFormat]] = []
    for f in captions.files:
        old = f.caption
        if where is not None and not where.matches({tag_key(t) for t in old.tags}):
            result.not_selected += 1
            continue
        new = edit(old)
        if (new == old and not (rewrite and f.data is not None)) or (f.data is None and new.is_empty()):
            result.unchanged.append(f.path)
            continue
        fmt = f.fmt if f.data is not None else new_format
        text = new.render()
        data = encode_caption(text, fmt)
        if data == f.data:
            result.unchanged.append(f.path)
            continue
        pending.append((f, new, text, data, fmt))
    result.changes = [Change(f.image, f.path, None if f.data is None else f.caption.render(), text)
                      for f, _, text, _, _ in pending]
    blocked = _collision_problems(captions, [f.path for f, *_ in pending])
    blocked += _stale_or_unwritable([f for f, *_ in pending], writable=dry_run)
    if dry_run:
        result.blocked = blocked
        return result
    if blocked:
        raise OpRefused(name, blocked)
    if not pending:
        return result
    operation = Operation(name)
    for f, _, _, data, _ in pending:
        operation.write(f.path, data, before=f.data)
    try:
        entry = Journal(captions.root).commit(operation)
    except WritesRefused as e:
        raise OpRefused(name, [CaptionProblem(r.path, r.reason) for r in e.refused]) from None
    result.journal_id = entry.id if entry else None
    for f, new, _, data, fmt in pending:
        f.caption, f.data, f.fmt, f.stamp = new, data, fmt, file_stamp(os.stat(f.path))
    return result


def _stale_or_unwritable(files: list[CaptionFile], writable: bool) -> list[CaptionProblem]:
    """Captions changed on disk since they were read (an edit would overwrite that change), and,
    if `writable`, those that must not be written (the journal checks that itself on commit)."""
    out = []
    dirs: dict[str, bool] = {}
    for f in files:
        try:
            st = check_writable(f.path, dirs) if writable else os.stat(f.path)
        except FileNotFoundError:
            st = None
        except WriteRefused as e:
            out.append(CaptionProblem(f.path, e.reason))
            continue
        if (None if st is None else file_stamp(st)) != f.stamp:
            out.append(CaptionProblem(f.path, "changed on disk since the captions were loaded; "
                                              "load them again"))
    return out


# --- the operations the UI and command line offer -------------------------------------------------

def add_tags(captions: CaptionSet, tags: str | list[str], at: str = "end", first: str | None = None,
             where: TagFilter | None = None, dry_run: bool = False) -> OpResult:
    """Add tags at the start or end of each caption; `first` (a trigger word) then goes first.
    Tags a caption already has stay where they are, so running it again changes nothing."""
    edits = [add(tags, at)] if tags else []
    if first:
        edits.append(trigger(first))
    if not edits:
        raise ValueError("nothing to add: give tags or a trigger")
    label = ", ".join([tags] if isinstance(tags, str) else tags) if tags else ""
    name = f"add {label}" + (f" (trigger {first})" if first else "") if label else f"trigger {first}"
    return apply_edit(captions, name, chain(*edits), where, dry_run=dry_run)


def set_trigger(captions: CaptionSet, word: str, where: TagFilter | None = None,
                dry_run: bool = False) -> OpResult:
    """Make `word` the first tag of every caption (idempotent: never doubled)."""
    return apply_edit(captions, f"trigger {word}", trigger(word), where, dry_run=dry_run)


def remove_tags(captions: CaptionSet, tags: str | list[str], regex: bool = False,
                where: TagFilter | None = None, dry_run: bool = False, name: str = "remove") -> OpResult:
    label = ", ".join([tags] if isinstance(tags, str) else tags)
    return apply_edit(captions, f"{name} {label}", remove(tags, regex), where, dry_run=dry_run)


def prune_tags(captions: CaptionSet, tags: list[str], where: TagFilter | None = None,
               dry_run: bool = False) -> OpResult:
    """Remove the intrinsic tags chosen from `suggest_intrinsic`."""
    return remove_tags(captions, tags, where=where, dry_run=dry_run, name="prune")


def replace_tag(captions: CaptionSet, old: str, new: str, regex: bool = False,
                where: TagFilter | None = None, dry_run: bool = False) -> OpResult:
    mode = " (regex)" if regex else ""
    return apply_edit(captions, f"replace {old} -> {new}{mode}", replace(old, new, regex), where,
                      dry_run=dry_run)


def dedupe_tags(captions: CaptionSet, where: TagFilter | None = None,
                dry_run: bool = False) -> OpResult:
    return apply_edit(captions, "dedupe", dedupe(), where, dry_run=dry_run)


def sort_tags(captions: CaptionSet, keep_tokens: int | None = None, by: str = "alpha",
              where: TagFilter | None = None, dry_run: bool = False) -> OpResult:
    """Sort tags alphabetically, or by how many captions have them ("frequency", most first),
    leaving the first `keep_tokens` tags (default: the set's) or everything before `|||` in place."""
    keep = captions.keep_tokens if keep_tokens is None else keep_tokens
    if by == "alpha":
        return apply_edit(captions, f"sort (keep {keep})", sort(keep), where, dry_run=dry_run)
    if by != "frequency":
        raise ValueError(f"sort by 'alpha' or 'frequency', got {by!r}")
    counts = {tag_key(c.tag): c.count for c in tag_frequency(captions.files)}
    return apply_edit(captions, f"sort by frequency (keep {keep})",
                      sort(keep, key=lambda t: (-counts.get(tag_key(t), 0), t.casefold(), t)),
                      where, dry_run=dry_run)


def normalize(captions: CaptionSet, where: TagFilter | None = None,
              dry_run: bool = False) -> OpResult:
    """Rewrite captions in canonical form: `, ` between tags, single spaces, no empty tags."""
    return apply_edit(captions, "normalize", lambda c: c, where, rewrite=True, dry_run=dry_run)


def edit_caption(root: Path, image: Path, text: str | Caption, ext: str = ".txt") -> OpResult:
    """Set one image's caption (the review gallery's editor), journalled like a batch edit.

    Text is written as given (lines joined with `, `), in the file's existing encoding."""
    root = Path(root).resolve()
    image = Path(image).resolve()
    if not is_image_name(image):
        raise ValueError(f"not an image file name: {image}")
    target = caption_path(image, ext)
    name = f"edit {target.name}"
    try:
        data, old, fmt = read_caption(target)
    except CaptionEncodingError as e:  # never overwrite what we cannot read
        raise OpRefused(name, [CaptionProblem(target, e.reason)]) from None
    if isinstance(text, Caption):
        new_text = text.render()
    else:
        new_text = ", ".join(line.strip() for line in text.splitlines() if line.strip())
    result = OpResult(name)
    if data is None and not new_text:
        result.unchanged.append(target)
        return result
    new_data = encode_caption(new_text, fmt)
    if new_data == data:
        result.unchanged.append(target)
        return result
    siblings = [p for p in image.parent.iterdir()
                if is_image_name(p) and p.stem.casefold() == image.stem.casefold()]
    blocked = [CaptionProblem(target, f"is the caption of both {' and '.join(i.name for i in images)}; "
                                      "rename one image so each has its own caption")
               for images in stem_collisions(siblings, ext).values()]
    if blocked:
        raise OpRefused(name, blocked)
    operation = Operation(name)
    operation.write(target, new_data, before=data)
    try:
        entry = Journal(root).commit(operation)
    except WritesRefused as e:
        raise OpRefused(name, [CaptionProblem(r.path, r.reason) for r in e.refused]) from None
    result.journal_id = entry.id if entry else None
    result.changes.append(Change(image, target, None if data is None else old.render(), new_text))
    return result
