"""One entry point per dataset action, shared by the Dataset tab and the HTTP API (the CLI has
its own argument parsing but calls the same functions underneath)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import caption_ops
from .caption_edits import CaptionStats, caption_stats
from .captions import CaptionSet, load_captions, parse_caption
from .journal import Journal
from .tag_filter import parse_filter
from ..host.protocol import NO_INTERROGATOR, HostCannot

CAPTION_OPS = ("add", "trigger", "remove", "replace", "dedupe", "sort", "normalize", "prune")


@dataclass(frozen=True)
class DatasetRef:
    folder: Path
    recursive: bool = False
    caption_ext: str = ".txt"
    keep_tokens: int = 0

    def load(self) -> CaptionSet:
        folder = Path(self.folder).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {folder}")
        return load_captions(folder, self.recursive, self.caption_ext, self.keep_tokens)

    def journal(self) -> Journal:
        return Journal(Path(self.folder).expanduser().resolve())


def split_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def caption_op(ref: DatasetRef, op: str, *, tags: str = "", new: str = "", regex: bool = False,
               at: str = "end", keep: int | None = None, by: str = "alpha", where: str = "",
               dry_run: bool = False) -> caption_ops.OpResult:
    """Run batch operation `op` (one of CAPTION_OPS) on the captions `where` selects (a filter
    expression: `tag`, `a AND NOT b`, `a OR b`; empty: all)."""
    if op not in CAPTION_OPS:
        raise ValueError(f"unknown operation {op!r}: expected one of {', '.join(CAPTION_OPS)}")
    captions = ref.load()
    selected = parse_filter(where) if where.strip() else None
    common: dict[str, Any] = {"where": selected, "dry_run": dry_run}
    if op == "add":
        return caption_ops.add_tags(captions, split_list(tags), at=at, **common)
    if op == "trigger":
        if not tags.strip():
            raise ValueError("give the trigger word")
        return caption_ops.set_trigger(captions, tags.strip(), **common)
    if op in ("remove", "prune"):
        chosen = [tags] if regex else split_list(tags)
        if not chosen:
            raise ValueError("give the tags to remove")
        if op == "prune":
            return caption_ops.prune_tags(captions, chosen, **common)
        return caption_ops.remove_tags(captions, chosen, regex=regex, **common)
    if op == "replace":
        if not tags.strip():
            raise ValueError("give the tag (or pattern) to replace")
        return caption_ops.replace_tag(captions, tags.strip(), new.strip(), regex=regex, **common)
    if op == "dedupe":
        return caption_ops.dedupe_tags(captions, **common)
    if op == "sort":
        return caption_ops.sort_tags(captions, keep_tokens=keep, by=by, **common)
    return caption_ops.normalize(captions, **common)


def stats(ref: DatasetRef, min_fraction: float = 0.5, trigger: str | None = None,
          where: str = "") -> CaptionStats:
    captions = ref.load()
    files = captions.files
    if where.strip():
        selected = parse_filter(where)
        files = [f for f in files if selected.matches({t.casefold() for t in f.caption.tags})]
    return caption_stats(files, min_fraction, trigger or None, ref.keep_tokens)


def undo(ref: DatasetRef, force: bool = False) -> str:
    entry = ref.journal().undo(force=force)
    return f"undid '{entry.name}' ({len(entry.files)} file(s) restored)"


def redo(ref: DatasetRef, force: bool = False) -> str:
    entry = ref.journal().redo(force=force)
    return f"redid '{entry.name}' ({len(entry.files)} file(s))"


def history(ref: DatasetRef) -> list[dict[str, object]]:
    journal = ref.journal()
    return [{**h, "undone": False} for h in journal.history()] + \
        [{**h, "undone": True} for h in journal.redoable()]


def describe_with_host(host: Any, ref: DatasetRef, template: str = "{trigger}, {sentence}. {tags}",
                       overwrite: bool = False) -> int:
    """Add a natural-language sentence from the host's interrogator (the WebUI's, when it has one)
    to each caption, combined with its tags by `template`; one journalled operation. Captions that
    already have a sentence keep it unless `overwrite`. Returns the number of captions written."""
    if not host.supports("interrogate"):
        raise HostCannot(NO_INTERROGATOR)
    from .captions import encode_caption
    from .images import ImageProblem, load_rgb
    from .journal import Operation

    captions = ref.load()
    todo = [f for f in captions.files if overwrite or not f.caption.sentence]
    operation = Operation("describe")
    host.progress.begin("Describing", len(todo))
    try:
        for i, f in enumerate(todo):
            if host.interrupt.is_set():
                break
            try:
                sentence = host.interrogate(load_rgb(f.image)).strip().rstrip(".")
                sentence = sentence[:1].upper() + sentence[1:]  # BLIP writes lower case; a caption
                # sentence starts with a capital (that is how the caption parser tells it from tags)
            except ImageProblem:
                continue  # reported by the dataset checks; nothing to describe
            tags = f.caption.plain_tags()
            trigger, rest = (tags[0], tags[1:]) if tags else ("", [])
            text = template.format(trigger=trigger, sentence=sentence, tags=", ".join(rest))
            operation.write(f.path, encode_caption(parse_caption(text.strip(" ,")).render(), f.fmt),
                            before=f.data)
            host.progress.update(i + 1, len(todo), f"described {f.image.name}")
    finally:
        host.progress.end()
    entry = ref.journal().commit(operation)
    return len(entry.files) if entry else 0
