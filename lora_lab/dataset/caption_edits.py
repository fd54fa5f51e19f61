"""Edits of one caption (pure `Caption -> Caption` functions) and dataset-wide tag statistics.

Tags are matched by `tag_key` (case, underscores and escaped parentheses do not matter) except in
regex mode, which sees the text as written. Edits act on tags only: the sentence and the `|||`
keep separator are never changed, and stay where they are relative to the tags around them.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .captions import (KEEP_SEPARATOR, Caption, CaptionFile, dedupe_tags, make_caption, split_tags,
                       tag_key)

Edit = Callable[[Caption], Caption]


def _rebuild(c: Caption, head: list[str], tail: list[str]) -> Caption:
    """`c` with tags `head` (before its sentence, if it has one) then `tail`."""
    return make_caption(head + tail, c.sentence, len(head))


def _halves(c: Caption) -> tuple[list[str], list[str]]:
    if not c.sentence:
        return [], c.tags
    return c.tags[:c.sentence_at], c.tags[c.sentence_at:]


def user_tags(text_or_tags: str | Iterable[str]) -> list[str]:
    """Tags a person typed: `"a, b"` or `["a", "b"]`; empty input is refused."""
    items = [text_or_tags] if isinstance(text_or_tags, str) else list(text_or_tags)
    tags = [t for item in items for t in split_tags(item) if t != KEEP_SEPARATOR]
    if not tags:
        raise ValueError("no tag given")
    return dedupe_tags(tags)


def add(tags: str | Iterable[str], at: str = "end") -> Edit:
    """Add the tags a caption lacks, at its start or its end (after the sentence if that is last)."""
    if at not in ("start", "end"):
        raise ValueError(f"at must be 'start' or 'end', got {at!r}")
    wanted = user_tags(tags)

    def edit(c: Caption) -> Caption:
        have = {tag_key(t) for t in c.tags}
        new = [t for t in wanted if tag_key(t) not in have]
        if not new:
            return c
        if at == "start":
            return make_caption(new + c.tags, c.sentence, c.sentence_at + len(new))
        return make_caption(c.tags + new, c.sentence, c.sentence_at)
    return edit


def trigger(word: str) -> Edit:
    """Make `word` the first tag (before the sentence too). Running it again changes nothing."""
    tags = user_tags(word)
    if len(tags) != 1:
        raise ValueError(f"a trigger is one tag, got {len(tags)}: {', '.join(tags)}")
    first = tags[0]
    key = tag_key(first)

    def edit(c: Caption) -> Caption:
        if c.tags and c.tags[0] == first and (c.sentence is None or c.sentence_at > 0) \
                and all(tag_key(t) != key for t in c.tags[1:]):
            return c
        head, tail = _halves(c)
        head = [first] + [t for t in head if tag_key(t) != key]
        return _rebuild(c, head, [t for t in tail if tag_key(t) != key])
    return edit


def _matcher(patterns: Iterable[str], regex: bool) -> Callable[[str], bool]:
    if regex:
        compiled = [compile_regex(p) for p in patterns]
        return lambda tag: any(p.fullmatch(tag) for p in compiled)
    keys = {tag_key(t) for t in user_tags(list(patterns))}
    return lambda tag: tag_key(tag) in keys


def compile_regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"invalid regular expression {pattern!r}: {e}") from None


def remove(tags: str | Iterable[str], regex: bool = False) -> Edit:
    """Drop matching tags (regex mode: patterns must match the whole tag)."""
    match = _matcher([tags] if isinstance(tags, str) else tags, regex)

    def edit(c: Caption) -> Caption:
        if not any(t != KEEP_SEPARATOR and match(t) for t in c.tags):
            return c
        head, tail = _halves(c)
        keep = [t for t in head if t == KEEP_SEPARATOR or not match(t)]
        return _rebuild(c, keep, [t for t in tail if t == KEEP_SEPARATOR or not match(t)])
    return edit


def replace(old: str, new: str, regex: bool = False) -> Edit:
    """Tag-aware replace: `girl` -> `woman` changes the tag `girl`, never `1girl`. Regex mode
    substitutes inside each tag (`re.sub`), never across tags. `new` may be several tags
    (`"a, b"`) or empty (the tag is removed); a result that duplicates another tag is dropped."""
    if regex:
        pattern = compile_regex(old)
        try:
            pattern.sub(new, "")
        except (re.error, IndexError) as e:
            raise ValueError(f"invalid replacement {new!r} for {old!r}: {e}") from None

        def change(tag: str) -> list[str] | None:
            out = pattern.sub(new, tag)
            return None if out == tag else [t for t in split_tags(out) if t != KEEP_SEPARATOR]
    else:
        olds = user_tags(old)
        if len(olds) != 1:
            raise ValueError(f"replace one tag at a time, got {len(olds)}: {', '.join(olds)}")
        old_key = tag_key(olds[0])
        replacement = [t for t in split_tags(new) if t != KEEP_SEPARATOR]

        def change(tag: str) -> list[str] | None:
            return list(replacement) if tag_key(tag) == old_key else None

    def edit(c: Caption) -> Caption:
        results = [None if t == KEEP_SEPARATOR else change(t) for t in c.tags]
        if all(r is None for r in results):
            return c
        produced: set[str] = set()
        out: list[tuple[str, bool]] = []  # (tag, before the sentence)
        for i, (tag, result) in enumerate(zip(c.tags, results)):
            before = bool(c.sentence) and i < c.sentence_at
            for t in ([tag] if result is None else result):
                out.append((t, before))
                if result is not None:
                    produced.add(tag_key(t))
        seen: set[str] = set()
        head: list[str] = []
        tail: list[str] = []
        # drop the later copy when a replacement duplicates a tag; other duplicates are dedupe's job
        for t, before in out:
            key = tag_key(t)
            if key in produced and key in seen:
                continue
            seen.add(key)
            (head if before else tail).append(t)
        return _rebuild(c, head, tail)
    return edit


def dedupe() -> Edit:
    """Keep the first of tags that are the same by `tag_key`."""
    def edit(c: Caption) -> Caption:
        head, tail = _halves(c)
        head = dedupe_tags(head)
        seen = {tag_key(t) for t in head if t != KEEP_SEPARATOR}
        tail = [t for t in dedupe_tags(tail) if t == KEEP_SEPARATOR or tag_key(t) not in seen]
        return c if len(head) + len(tail) == len(c.tags) else _rebuild(c, head, tail)
    return edit


def sort(keep_tokens: int = 0, key: Callable[[str], object] | None = None) -> Edit:
    """Sort the tags after the fixed head (the first `keep_tokens` tags, or everything up to
    `|||`) and before a second `|||` if there is one. Default order: alphabetical."""
    order = key or (lambda t: (t.casefold(), t))

    def edit(c: Caption) -> Caption:
        start = c.fixed_count(keep_tokens)
        end = c.tags.index(KEEP_SEPARATOR, start) if KEEP_SEPARATOR in c.tags[start:] else len(c.tags)
        middle = sorted(c.tags[start:end], key=order)
        if middle == c.tags[start:end]:
            return c
        return make_caption(c.tags[:start] + middle + c.tags[end:], c.sentence, c.sentence_at)
    return edit


def chain(*edits: Edit) -> Edit:
    def edit(c: Caption) -> Caption:
        for e in edits:
            c = e(c)
        return c
    return edit


# --- statistics -----------------------------------------------------------------------------------

@dataclass
class TagCount:
    tag: str  # the most common spelling
    count: int  # images whose caption has it
    images: list[Path]

    def fraction(self, total: int) -> float:
        return self.count / total if total else 0.0


def tag_frequency(files: Iterable[CaptionFile]) -> list[TagCount]:
    """Each tag with the images that have it; most frequent first, then alphabetical."""
    images: dict[str, list[Path]] = {}
    spellings: dict[str, Counter[str]] = {}
    for f in files:
        seen: set[str] = set()
        for tag in f.caption.tags:
            if tag == KEEP_SEPARATOR:
                continue
            key = tag_key(tag)
            spellings.setdefault(key, Counter())[tag] += 1
            if key not in seen:
                seen.add(key)
                images.setdefault(key, []).append(f.image)
    counts = [TagCount(spellings[k].most_common(1)[0][0], len(v), v) for k, v in images.items()]
    counts.sort(key=lambda c: (-c.count, c.tag.casefold(), c.tag))
    return counts


def infer_trigger(files: Iterable[CaptionFile]) -> str | None:
    """The tag that leads at least half of the tagged captions, if one does."""
    firsts = Counter(f.caption.tags[0] for f in files if f.caption.tags)
    total = sum(firsts.values())
    if not total:
        return None
    tag, count = firsts.most_common(1)[0]
    return tag if tag != KEEP_SEPARATOR and count * 2 >= total else None


def suggest_intrinsic(files: Iterable[CaptionFile], min_fraction: float = 0.5,
                      trigger: str | None = None, keep_tokens: int = 0) -> list[TagCount]:
    """Tags in at least `min_fraction` of the tagged captions: traits the trigger should absorb
    (prune them so the LoRA learns them as part of the concept). The trigger (given, or the tag
    leading most captions) and the fixed head of each caption are never suggested."""
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min fraction must be in (0, 1], got {min_fraction}")
    tagged = [f for f in files if f.caption.plain_tags()]
    if not tagged:
        return []
    trig = trigger if trigger is not None else infer_trigger(tagged)
    protected = {tag_key(trig)} if trig else set()
    for f in tagged:
        protected.update(tag_key(t) for t in f.caption.tags[:f.caption.fixed_count(keep_tokens)])
    need = math.ceil(min_fraction * len(tagged) - 1e-9)
    return [c for c in tag_frequency(tagged) if c.count >= need and tag_key(c.tag) not in protected]


@dataclass
class CaptionStats:
    images: int  # images considered (after the filter)
    captioned: int  # with at least one tag or a sentence
    trigger: str | None  # given, or inferred (the tag leading most captions)
    tags: list[TagCount]
    intrinsic: list[TagCount]  # prune candidates (see `suggest_intrinsic`)
    min_fraction: float

    def to_dict(self, relative_to: Path | None = None) -> dict[str, object]:
        def name(p: Path) -> str:
            return str(p.relative_to(relative_to)) if relative_to else str(p)

        def row(c: TagCount) -> dict[str, object]:
            return {"tag": c.tag, "count": c.count, "fraction": round(c.fraction(self.captioned), 4),
                    "images": [name(p) for p in c.images]}
        return {"images": self.images, "captioned": self.captioned, "trigger": self.trigger,
                "min_fraction": self.min_fraction, "tags": [row(c) for c in self.tags],
                "intrinsic": [row(c) for c in self.intrinsic]}


def caption_stats(files: Iterable[CaptionFile], min_fraction: float = 0.5, trigger: str | None = None,
                  keep_tokens: int = 0) -> CaptionStats:
    chosen = list(files)
    captioned = [f for f in chosen if not f.caption.is_empty()]
    trig = trigger if trigger is not None else infer_trigger(captioned)
    return CaptionStats(len(chosen), len(captioned), trig, tag_frequency(captioned),
                        suggest_intrinsic(captioned, min_fraction, trig, keep_tokens), min_fraction)
