"""Caption files: reading them without losing a byte, and the tag model every edit works on.

A caption is `tag, tag, …`, optionally with one natural-language sentence among the tags
(`trigger, A photo of a girl in a field. 1girl, solo`) and optionally with sd-scripts'
`keep_tokens_separator` (`trigger ||| 1girl, solo`), kept in `Caption.tags` as the item `|||`.

Files are UTF-8 with or without BOM, LF or CRLF, with or without a final newline; `TextFormat`
records which, so a rewrite changes only the caption. A file that is not valid UTF-8 is reported
(`CaptionEncodingError`) and never written.
"""
from __future__ import annotations

import functools
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .images import IMAGE_EXTENSIONS, ImageProblem, find_images

KEEP_SEPARATOR = "|||"
UTF8_BOM = b"\xef\xbb\xbf"
MERGE_MODES = ("overwrite", "append", "prepend", "skip")


class CaptionEncodingError(ValueError):
    def __init__(self, path: Path | None, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path is not None else reason)
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class TextFormat:
    bom: bool = False
    newline: str = "\n"
    final_newline: bool = False


def decode_caption(data: bytes, path: Path | None = None) -> tuple[str, TextFormat]:
    """Text with newlines as "\\n" and without the final one, plus how to encode it back."""
    bom = data.startswith(UTF8_BOM)
    body = data[3:] if bom else data
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CaptionEncodingError(path, "UTF-16 text (it starts with a UTF-16 byte-order mark); "
                                         "captions must be UTF-8: re-save it as UTF-8")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CaptionEncodingError(
            path, f"not valid UTF-8 (byte 0x{body[e.start]:02X} at offset {e.start + 3 * bom}; "
                  "probably saved in a legacy code page): re-save it as UTF-8") from None
    if "\r\n" in text:
        newline = "\r\n"
        text = text.replace("\r\n", "\n")
    elif "\n" not in text and "\r" in text:
        newline = "\r"
        text = text.replace("\r", "\n")
    else:
        newline = "\n"
    final = text.endswith("\n")
    if final:
        text = text[:-1]
    return text, TextFormat(bom, newline, final)


def encode_caption(text: str, fmt: TextFormat = TextFormat()) -> bytes:
    if fmt.final_newline:
        text += "\n"
    if fmt.newline != "\n":
        text = text.replace("\n", fmt.newline)
    data = text.encode("utf-8")
    return UTF8_BOM + data if fmt.bom else data


# --- the tag model --------------------------------------------------------------------------------

@dataclass
class Caption:
    """`trigger, A photo of a girl in a field. 1girl, solo` is tags ["trigger", "1girl", "solo"],
    the sentence, and sentence_at 1."""
    tags: list[str]
    sentence: str | None = None
    sentence_at: int = 0  # index in `tags` before which the sentence sits

    def render(self) -> str:
        if not self.sentence and KEEP_SEPARATOR not in self.tags:
            return ", ".join(self.tags)
        items: list[str | None] = list(self.tags)  # None stands for the sentence
        if self.sentence:
            items.insert(min(self.sentence_at, len(items)), None)
        out: list[str] = []
        for i, item in enumerate(items):
            if i:
                prev = items[i - 1]
                # the sentence ends in its own full stop; `|||` is spaced, as sd-scripts docs write it
                out.append(" " if prev is None or KEEP_SEPARATOR in (prev, item) else ", ")
            out.append(self.sentence if item is None else item)  # type: ignore[arg-type]
        return "".join(out)

    def is_empty(self) -> bool:
        return not self.tags and not self.sentence

    def plain_tags(self) -> list[str]:
        """Tags without the keep separator."""
        return [t for t in self.tags if t != KEEP_SEPARATOR]

    def fixed_count(self, keep_tokens: int = 0) -> int:
        """How many leading items of `tags` shuffling/sorting must not move: everything up to and
        including the first `|||` if there is one, else the first `keep_tokens` tags."""
        if KEEP_SEPARATOR in self.tags:
            return self.tags.index(KEEP_SEPARATOR) + 1
        return min(max(keep_tokens, 0), len(self.tags))


def make_caption(tags: list[str], sentence: str | None = None, sentence_at: int = 0) -> Caption:
    """A Caption in canonical form (so that equal captions compare equal)."""
    if not sentence:
        return Caption(tags, None, 0)
    return Caption(tags, sentence, max(0, min(sentence_at, len(tags))))


_SPLIT = re.compile(r"(\|\|\|)|[,\n\r]")
_TERMINATOR = re.compile(r"(?<=[^\W_]|[)\]\"'’”])[.!?…]+(?=\s|,|$)")
_PIECE_START = re.compile(r"(?:^|[,\n\r]|\|\|\|)\s*(?=[^\W\d_])")
_MIN_SENTENCE_WORDS = 3
_MAYBE_PROSE = re.compile(r"[.!?…]")


def split_tags(text: str) -> list[str]:
    """Tags of tag-only text, whitespace collapsed, empty ones dropped (`|||` kept as an item)."""
    tags = []
    for piece in _SPLIT.split(text):
        if piece:
            tag = " ".join(piece.split())
            if tag:
                tags.append(tag)
    return tags


def _find_sentence(text: str) -> tuple[int, int] | None:
    """Span of the natural-language sentence(s), if the caption has one.

    A sentence starts a comma piece with a capital letter, runs across commas, and ends at a
    full stop/!/? followed by a comma, `|||`, the end, or a word that is not capitalised (the
    first tag after it). A capitalised word after a full stop continues the prose. Its last
    clause must have at least three words, so tags like `ms. fortune` or `k-on!` are not
    mistaken for prose."""
    for start in _PIECE_START.finditer(text):
        begin = start.end()
        if not text[begin].isupper():
            continue
        stop = text.find(KEEP_SEPARATOR, begin)
        limit = len(text) if stop < 0 else stop
        end = fallback = -1
        for term in _TERMINATOR.finditer(text, begin, limit):
            rest = text[term.end():limit].lstrip()
            if not rest or rest[0] in ",\n\r" or not rest[0].isupper():
                end = term.end()
                break
            fallback = term.end()
        if end < 0:
            end = fallback
        if end < 0:
            continue
        clause_start = max(text.rfind(",", begin, end), text.rfind("\n", begin, end)) + 1
        if len(text[max(clause_start, begin):end].split()) >= _MIN_SENTENCE_WORDS:
            return begin, end
    return None


def parse_caption(text: str) -> Caption:
    """Tags (and the sentence, if any) of a caption's text. Newlines separate like commas."""
    span = _find_sentence(text) if _MAYBE_PROSE.search(text) else None
    if span is None:
        return Caption(split_tags(text))
    head = split_tags(text[:span[0]])
    sentence = " ".join(text[span[0]:span[1]].split())
    return Caption(head + split_tags(text[span[1]:]), sentence, len(head))


@functools.lru_cache(maxsize=1 << 16)
def tag_key(tag: str) -> str:
    """One spelling for "is this the same tag": case, underscores and escaped parentheses do not
    matter (`Long_Hair` = `long hair`, `\\(cosplay\\)` = `(cosplay)`)."""
    return " ".join(tag.replace("\\(", "(").replace("\\)", ")").replace("_", " ").split()).casefold()


def dedupe_tags(tags: list[str]) -> list[str]:
    """First spelling of each tag kept, in order (`|||` items are structure, never dropped)."""
    seen: set[str] = set()
    out = []
    for tag in tags:
        if tag == KEEP_SEPARATOR:
            out.append(tag)
            continue
        key = tag_key(tag)
        if key not in seen:
            out.append(tag)
            seen.add(key)
    return out


def merge_tags(existing: Caption | None, new_tags: list[str], mode: str) -> Caption | None:
    """Combine a caption with freshly predicted tags, without duplicates (by `tag_key`).

    overwrite: the new tags only (the old caption, sentence included, is replaced);
    append/prepend: old tags and sentence kept, new tags after/before them;
    skip: None when the caption has content (leave it), else the new tags."""
    if mode not in MERGE_MODES:
        raise ValueError(f"unknown merge mode {mode!r}: choose one of {', '.join(MERGE_MODES)}")
    new_tags = [t for t in new_tags if t != KEEP_SEPARATOR]
    if existing is None or existing.is_empty() or mode == "overwrite":
        return make_caption(dedupe_tags(new_tags))
    if mode == "skip":
        return None
    old = existing.tags
    if mode == "append":
        have = {tag_key(t) for t in old}
        return make_caption(old + dedupe_tags([t for t in new_tags if tag_key(t) not in have]),
                            existing.sentence, existing.sentence_at)
    front = dedupe_tags(new_tags)
    taken = {tag_key(t) for t in front}
    kept = [t for t in old[:existing.sentence_at] if tag_key(t) not in taken]
    rest = [t for t in old[existing.sentence_at:] if tag_key(t) not in taken]
    return make_caption(front + kept + rest, existing.sentence, len(front) + len(kept))


# --- where captions live --------------------------------------------------------------------------

def check_caption_ext(ext: str) -> str:
    """Refuse an extension that is no file extension, or one that would overwrite images."""
    if not ext.startswith(".") or len(ext) < 2 or "/" in ext or "\\" in ext:
        raise ValueError(f"caption extension must look like '.txt', got {ext!r}")
    if ext.lower() in IMAGE_EXTENSIONS:
        raise ValueError(f"caption extension {ext!r} is an image extension; it would overwrite images")
    return ext


def caption_path(image: Path, ext: str = ".txt") -> Path:
    """`x.png` -> `x.txt` (the name sd-scripts and kohya_ss look for)."""
    return Path(os.path.splitext(os.fspath(image))[0] + check_caption_ext(ext))


def same_file_key(path: str) -> str:
    """Paths with equal keys name the same file on this platform."""
    # Windows and macOS file systems are case-insensitive by default: A.png and a.jpg share a.txt
    key = os.path.normcase(path)
    return key.casefold() if sys.platform == "darwin" else key


def stem_collisions(images: list[Path], ext: str = ".txt") -> dict[Path, list[Path]]:
    """Caption files that two or more images would share (`x.png` + `x.jpg` -> `x.txt`)."""
    check_caption_ext(ext)
    groups: dict[str, list[Path]] = {}
    first: dict[str, str] = {}
    for image in images:
        cap = os.path.splitext(os.fspath(image))[0] + ext
        key = same_file_key(cap)
        groups.setdefault(key, []).append(image)
        first.setdefault(key, cap)
    return {Path(first[k]): v for k, v in groups.items() if len(v) > 1}


# --- a dataset's captions -------------------------------------------------------------------------

@dataclass(frozen=True)
class CaptionProblem:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


Stamp = tuple[int, int]  # (size, mtime_ns) of a file when it was read; tells a later edit apart


def file_stamp(st: os.stat_result) -> Stamp:
    return st.st_size, st.st_mtime_ns


@dataclass(slots=True)
class CaptionFile:
    image: Path
    path: Path  # the caption file (may not exist yet)
    data: bytes | None  # its bytes on disk; None when there is no caption file
    caption: Caption  # empty when there is no caption file
    fmt: TextFormat
    stamp: Stamp | None = None  # when `data` was read; None when there was no file


@dataclass
class CaptionSet:
    """Every image of a dataset with its caption. Captions that cannot be edited safely (not UTF-8,
    several lines, unreadable) are in `problems`, not in `files`, and are never written."""
    root: Path
    ext: str
    files: list[CaptionFile]
    problems: list[CaptionProblem] = field(default_factory=list)
    collisions: dict[Path, list[Path]] = field(default_factory=dict)
    scan_problems: list[ImageProblem] = field(default_factory=list)
    keep_tokens: int = 0

    def default_format(self) -> TextFormat:
        """The dataset's most common format, for captions created from scratch."""
        counts = Counter(f.fmt for f in self.files if f.data is not None)
        return counts.most_common(1)[0][0] if counts else TextFormat()


def _read(path: str | os.PathLike[str]) -> tuple[bytes | None, Stamp | None]:
    try:
        with open(path, "rb") as f:
            return f.read(), file_stamp(os.fstat(f.fileno()))
    except FileNotFoundError:
        return None, None
    except IsADirectoryError:
        raise CaptionEncodingError(Path(path), "is a folder, not a caption file") from None
    except OSError as e:
        raise CaptionEncodingError(Path(path), f"cannot read: {e.strerror or e}") from None


def _decode(data: bytes | None, path: str | os.PathLike[str]) -> tuple[Caption, TextFormat]:
    if data is None:
        return Caption([]), TextFormat()
    try:
        text, fmt = decode_caption(data)
    except CaptionEncodingError as e:
        raise CaptionEncodingError(Path(path), e.reason) from None
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) > 1:
        raise CaptionEncodingError(
            Path(path), f"has {len(lines)} lines (sd-scripts reads only the first, or one at random "
                        "with enable_wildcard); LoRA Lab edits one-line captions only and left it untouched")
    return parse_caption(text), fmt


def read_caption(path: str | os.PathLike[str]) -> tuple[bytes | None, Caption, TextFormat]:
    """Bytes, caption and format of one caption file (None/empty/default when it does not exist).
    Raises CaptionEncodingError for anything that must not be edited."""
    data, _ = _read(path)
    return (data, *_decode(data, path))


def load_captions(root: Path, recursive: bool = False, ext: str = ".txt",
                  keep_tokens: int = 0) -> CaptionSet:
    """Pair every image under root with its caption file and read them all."""
    check_caption_ext(ext)
    root = Path(root).resolve()
    scan = find_images(root, recursive)
    files: list[CaptionFile] = []
    problems: list[CaptionProblem] = []
    for image in scan.images:
        cap = os.path.splitext(os.fspath(image))[0] + ext
        try:
            data, stamp = _read(cap)
            caption, fmt = _decode(data, cap)
        except CaptionEncodingError as e:
            problems.append(CaptionProblem(Path(cap), e.reason))
            continue
        files.append(CaptionFile(image, Path(cap), data, caption, fmt, stamp))
    return CaptionSet(root, ext, files, problems, stem_collisions(scan.images, ext), scan.problems,
                      keep_tokens)
