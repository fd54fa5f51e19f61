"""Is this trigger word a good one: what CLIP makes of it, and is it already taken?

Token count uses CLIP's real BPE (every SD family shares it), built offline. Clashes are looked up
in installed LoRAs without loading a tensor: only the safetensors header JSON (`__metadata__`) and
the WebUI's `<name>.json` sidecar ("activation text") are read.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files.safetensors_header import read_metadata as read_safetensors_metadata

COMMON_TOKEN_ID = 10_000  # BPE ids follow merge order: a whole word below this is an everyday word
LONG_TRIGGER_TOKENS = 4


@dataclass(frozen=True)
class TokenPiece:
    token: str  # as in CLIP's vocabulary; `</w>` ends a word
    id: int
    text: str  # readable form


@dataclass
class TokenCount:
    text: str
    pieces: list[TokenPiece]

    @property
    def count(self) -> int:
        return len(self.pieces)

    @property
    def common_word(self) -> bool:
        return self.count == 1 and self.pieces[0].token.endswith("</w>") \
            and self.pieces[0].id < COMMON_TOKEN_ID


def count_tokens(text: str, tokenizer: Any = None) -> TokenCount:
    """CLIP tokens of text (without the start/end tokens every prompt gets)."""
    if tokenizer is None:
        from ..files.clip_files import clip_tokenizer

        tokenizer = clip_tokenizer()
    tokens = tokenizer.tokenize(text)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    return TokenCount(text, [TokenPiece(t, int(i), tokenizer.convert_tokens_to_string([t]).strip())
                             for t, i in zip(tokens, ids)])


@dataclass(frozen=True)
class Clash:
    file: Path  # the LoRA
    where: str  # which field, e.g. "ss_output_name" or "activation text in x.json"
    value: str  # the text that contains the trigger


@dataclass
class TriggerReport:
    trigger: str
    tokens: TokenCount
    lora_dir: Path | None = None
    files_scanned: int = 0
    clashes: list[Clash] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)  # files that could not be read
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "trigger": self.trigger,
            "tokens": self.tokens.count,
            "pieces": [vars(p) for p in self.tokens.pieces],
            "lora_dir": str(self.lora_dir) if self.lora_dir else None,
            "files_scanned": self.files_scanned,
            "clashes": [{"file": str(c.file), "where": c.where, "value": c.value}
                        for c in self.clashes],
            "problems": [{"file": str(p), "reason": r} for p, r in self.problems],
            "notes": list(self.notes),
        }

    def text(self) -> str:
        pieces = " + ".join(f"{p.text or p.token} ({p.id})" for p in self.tokens.pieces)
        lines = [f"trigger {self.trigger!r}: {self.tokens.count} CLIP token(s): {pieces}"]
        lines += [f"note: {n}" for n in self.notes]
        if self.lora_dir is not None:
            lines.append(f"{self.files_scanned} LoRA file(s) scanned in {self.lora_dir}: "
                         + (f"{len(self.clashes)} use(s) of the trigger" if self.clashes else "none use it"))
            lines += [f"  {c.file.name}: {c.where}: {c.value}" for c in self.clashes]
            lines += [f"  unreadable {p}: {r}" for p, r in self.problems]
        return "\n".join(lines)


def check_trigger(trigger: str, lora_dir: Path | None = None, tokenizer: Any = None) -> TriggerReport:
    trigger = trigger.strip()
    if not _words(trigger):
        raise ValueError("the trigger needs at least one letter or digit")
    report = TriggerReport(trigger, count_tokens(trigger, tokenizer))
    if report.tokens.common_word:
        report.notes.append(f"{trigger!r} is an everyday word to CLIP: its meaning will mix with "
                            f"your subject; a rare made-up word trains cleaner")
    if report.tokens.count >= LONG_TRIGGER_TOKENS:
        report.notes.append(f"{report.tokens.count} tokens is long for a trigger; 1–3 is typical")
    if "," in trigger:
        report.notes.append("contains ',': caption tags are split on commas, so it would become "
                            "several tags")
    if lora_dir is not None:
        report.lora_dir = Path(lora_dir)
        if not report.lora_dir.is_dir():  # a fresh install: no LoRA yet, so none can clash
            report.notes.append(f"no LoRA folder yet ({lora_dir}): no existing LoRA to clash with")
        for path in _lora_files(report.lora_dir) if report.lora_dir.is_dir() else ():
            report.files_scanned += 1
            try:
                report.clashes += clashes_in(path, trigger)
            except (OSError, ValueError) as e:
                report.problems.append((path, str(e)))
    return report


def _words(text: str) -> list[str]:
    # CLIP splits on punctuation too, so `ohwx_woman`, `ohwx-woman` and `ohwx woman` all say the same
    return re.findall(r"[^\W_]+", text.lower())


def _contains(text: str, trigger_words: list[str]) -> bool:
    words = _words(text)
    n = len(trigger_words)
    return any(words[i:i + n] == trigger_words for i in range(len(words) - n + 1))


def _lora_files(root: Path) -> Iterator[Path]:
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:  # a symlink loop
            dirs.clear()
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(".safetensors"):
                yield Path(folder, name)


def clashes_in(path: Path, trigger: str) -> list[Clash]:
    """Where the LoRA at path already uses the trigger: its name, training tags and folders,
    modelspec trigger phrase, and the WebUI sidecar's activation text."""
    words = _words(trigger)
    found: list[Clash] = []

    def check(where: str, value: str) -> None:
        if _contains(value, words):
            found.append(Clash(path, where, value))

    check("file name", path.stem)
    metadata = read_safetensors_metadata(path)
    check("ss_output_name", metadata.get("ss_output_name", ""))
    check("modelspec.trigger_phrase", metadata.get("modelspec.trigger_phrase", ""))
    for folder, tags in _json_object(metadata, "ss_tag_frequency").items():
        check("ss_tag_frequency folder", str(folder))
        if isinstance(tags, dict):
            for tag, count in tags.items():
                if _contains(str(tag), words):
                    found.append(Clash(path, f"ss_tag_frequency tag ({count}× in {folder})", str(tag)))
    for folder in _json_object(metadata, "ss_dataset_dirs"):
        check("ss_dataset_dirs folder", str(folder))
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            user = json.loads(sidecar.read_text(encoding="utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            user = {}  # the WebUI ignores a broken sidecar too
        if isinstance(user, dict):
            check(f"activation text in {sidecar.name}", str(user.get("activation text") or ""))
    return found


def _json_object(metadata: dict[str, str], key: str) -> dict:
    try:
        value = json.loads(metadata.get(key) or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
