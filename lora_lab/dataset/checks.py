"""One pass over a dataset that finds what would spoil training, before training.

Per image: can it be decoded (reason from images.py if not), is it too small for the resolution,
which bucket it lands in, does it have a non-empty caption. Across images: exact duplicates (same
bytes) and near duplicates (128-bit dHash within a Hamming distance; catches resized or
recompressed copies), and images whose captions collide (`a.png` and `a.jpg` share `a.txt`).

Each image is decoded once, at a small scale where the format allows it (JPEG `draft` decodes at
1/2–1/8 size directly); that still reads the whole stream, so truncated and corrupt files are found.
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..host.protocol import InterruptFlag, ProgressSink
from .buckets import DEFAULT_MIN_SIDE, Size, grid
from .images import ImageProblem, find_images, inspect_image, load_rgb

# of 128 dHash bits: copies resized to 30 % and recompressed at JPEG q50 measured 0–12 apart,
# different pictures 30 and more
NEAR_DUPLICATE_DISTANCE = 20
# RMS difference (0-255) of two images' 8×8 colour thumbnails above which they are not copies; a
# resized, JPEG-70 copy differs by ~2-6, different flat pictures by 40+
COLOUR_RMS_LIMIT = 24.0
HASH_SIDE = 8
HASH_BITS = 2 * HASH_SIDE * HASH_SIDE
_DRAFT_SIDE = 64  # JPEG draft target: plenty for a 9×8 hash
_WORKERS = 2  # decoding releases the GIL; more threads only contend on small machines

# errors break training or train the wrong thing; warnings weaken it
ERROR_KINDS = ("unreadable", "caption_collision")
KINDS = ERROR_KINDS + ("exact_duplicate", "near_duplicate", "too_small", "missing_caption",
                       "empty_caption", "unreadable_caption")


@dataclass(frozen=True)
class Issue:
    kind: str  # one of KINDS
    path: Path
    message: str
    related: Path | None = None  # the other image of a duplicate or collision

    @property
    def is_error(self) -> bool:
        return self.kind in ERROR_KINDS


@dataclass
class ImageEntry:
    path: Path
    width: int
    height: int
    format: str
    bucket: Size
    scale: float  # resize factor into the bucket (above 1: upscaled)
    caption: str  # "ok", "missing", "empty" or "unreadable"
    notes: tuple[str, ...] = ()


@dataclass
class CheckReport:
    folder: Path
    resolution: int
    caption_ext: str
    images: list[ImageEntry] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    files_seen: int = 0
    interrupted: bool = False

    @property
    def buckets(self) -> dict[Size, int]:
        return dict(sorted(Counter(e.bucket for e in self.images).items()))

    def counts(self) -> dict[str, int]:
        found = Counter(i.kind for i in self.issues)
        return {kind: found[kind] for kind in KINDS}

    @property
    def has_errors(self) -> bool:
        return any(i.is_error for i in self.issues)

    def to_dict(self) -> dict:
        return {
            "folder": str(self.folder), "resolution": self.resolution,
            "caption_ext": self.caption_ext, "files_seen": self.files_seen,
            "readable": len(self.images), "interrupted": self.interrupted,
            "counts": self.counts(),
            "buckets": [{"width": w, "height": h, "count": n} for (w, h), n in self.buckets.items()],
            "issues": [{"kind": i.kind, "path": str(i.path), "message": i.message,
                        "related": str(i.related) if i.related else None, "error": i.is_error}
                       for i in self.issues],
            "images": [{"path": str(e.path), "width": e.width, "height": e.height,
                        "format": e.format, "bucket": list(e.bucket), "scale": round(e.scale, 4),
                        "caption": e.caption, "notes": list(e.notes)} for e in self.images],
        }

    def text(self) -> str:
        lines = [f"{self.files_seen} image file(s) in {self.folder}, {len(self.images)} readable"
                 + (" (interrupted: partial results)" if self.interrupted else "")]
        for issue in self.issues:
            tag = "error" if issue.is_error else "warn "
            lines.append(f"  {tag} {issue.kind:17} {self._rel(issue.path)}: {issue.message}")
        counts = {k: n for k, n in self.counts().items() if n}
        lines.append("issues: " + (", ".join(f"{k} {n}" for k, n in counts.items()) or "none"))
        if self.images:
            lines.append(f"buckets at {self.resolution}:")
            total = len(self.images)
            for (w, h), n in self.buckets.items():
                lines.append(f"  {w:5}×{h:<5} {n:5}  {'#' * max(1, round(30 * n / total))}")
        return "\n".join(lines)

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.folder))
        except ValueError:
            return str(path)


@dataclass
class _Scanned:
    path: Path
    digest: bytes = b""
    dhash: bytes = b""
    colours: np.ndarray | None = None  # 8×8 RGB thumbnail
    width: int = 0
    height: int = 0
    format: str = ""
    notes: tuple[str, ...] = ()
    problem: str | None = None


def check_dataset(folder: Path, resolution: int = 512, recursive: bool = False,
                  caption_ext: str = ".txt", near_distance: int = NEAR_DUPLICATE_DISTANCE,
                  min_short_side: int | None = None, progress: ProgressSink | None = None,
                  interrupt: InterruptFlag | None = None) -> CheckReport:
    """Check every image under folder. Reads only; never changes a file.

    Too small: shorter side below `min_short_side` (default resolution/2), or fewer pixels than
    a quarter of resolution² (the bucket would upscale it more than 2× per side)."""
    folder = Path(folder)
    if not caption_ext.startswith("."):
        raise ValueError(f"caption extension must start with '.' (got {caption_ext!r})")
    bucketer = grid(resolution, min_side=min(DEFAULT_MIN_SIDE, resolution))  # as the trainer's own default
    scan = find_images(folder, recursive)
    report = CheckReport(folder, resolution, caption_ext, files_seen=len(scan.images))
    report.issues += [Issue("unreadable", p.path, p.reason) for p in scan.problems]
    if progress:
        progress.begin("Checking images", len(scan.images))
    scanned: list[_Scanned] = []
    try:
        with ThreadPoolExecutor(_WORKERS) as pool:
            for item in pool.map(_scan, scan.images):
                scanned.append(item)
                if progress:
                    progress.update(len(scanned), text=item.path.name)
                if interrupt is not None and interrupt.is_set():
                    report.interrupted = True
                    pool.shutdown(cancel_futures=True)
                    break
    finally:
        if progress:
            progress.end()

    short_limit = min_short_side if min_short_side is not None else resolution // 2
    for item in scanned:
        if item.problem is not None:
            report.issues.append(Issue("unreadable", item.path, item.problem))
            continue
        fit = bucketer.fit(item.width, item.height)
        caption = _caption_state(item.path.with_suffix(caption_ext))
        report.images.append(ImageEntry(item.path, item.width, item.height, item.format,
                                        fit.bucket, fit.scale, caption, item.notes))
        small = _too_small(item.width, item.height, resolution, short_limit)
        if small:
            report.issues.append(Issue("too_small", item.path, (
                f"{small}; it is upscaled {fit.scale:.1f}× into the {fit.bucket[0]}×{fit.bucket[1]} "
                f"bucket and will look soft")))
        if caption != "ok":
            name = item.path.with_suffix(caption_ext).name
            message = {"missing": f"no caption file {name}", "empty": f"caption {name} is empty",
                       "unreadable": f"caption {name} cannot be read"}[caption]
            report.issues.append(Issue(f"{caption}_caption", item.path, message))
    readable = [s for s in scanned if s.problem is None]
    report.issues += _duplicates(readable, near_distance)
    report.issues += _caption_collisions((s.path for s in scanned), caption_ext)
    report.issues.sort(key=lambda i: (KINDS.index(i.kind), str(i.path)))
    return report


def _too_small(width: int, height: int, resolution: int, short_limit: int) -> str:
    reasons = []
    if min(width, height) < short_limit:
        reasons.append(f"shorter side {min(width, height)} px is below {short_limit}")
    if width * height * 4 < resolution * resolution:
        reasons.append(f"{width}×{height} is under a quarter of {resolution}×{resolution} pixels")
    return " and ".join(reasons)


def _caption_state(path: Path) -> str:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return "missing"
    except OSError:
        return "unreadable"
    # a caption of only separators and blanks gives the trainer nothing either
    text = data.removeprefix(b"\xef\xbb\xbf").replace(b",", b"")
    return "ok" if text.strip() else "empty"


def _scan(path: Path) -> _Scanned:
    item = _Scanned(path)
    try:
        info = inspect_image(path)
        item.digest = hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
        with load_rgb(path, draft_size=(_DRAFT_SIDE, _DRAFT_SIDE)) as im:
            item.dhash = _dhash(im)
            item.colours = _colours(im)
    except ImageProblem as e:
        item.problem = e.reason
        return item
    except OSError as e:
        item.problem = f"cannot read: {e.strerror or e}"
        return item
    item.width, item.height, item.format, item.notes = info.width, info.height, info.format, info.notes
    return item


def _dhash(im: Image.Image) -> bytes:
    """128-bit difference hash: is each pixel of a 9×8 grey thumbnail brighter than its right
    neighbour, and of an 8×9 one than the pixel below (two directions: steadier distances)."""
    wide = _grey(im, (HASH_SIDE + 1, HASH_SIDE))
    tall = _grey(im, (HASH_SIDE, HASH_SIDE + 1))
    bits = np.concatenate([(wide[:, 1:] > wide[:, :-1]).ravel(), (tall[1:] > tall[:-1]).ravel()])
    return np.packbits(bits).tobytes()


def _colours(im: Image.Image) -> np.ndarray:
    """An 8×8 RGB thumbnail. dHash sees only brightness steps, and flat images have almost none:
    a red circle and a green square hash alike. A copy keeps its colours and layout; they do not."""
    small = im.resize((HASH_SIDE, HASH_SIDE), Image.Resampling.BOX, reducing_gap=2.0).convert("RGB")
    return np.asarray(small, dtype=np.float32)


def _same_colours(a: _Scanned, b: _Scanned) -> bool:
    if a.colours is None or b.colours is None:
        return True
    return float(np.sqrt(np.mean((a.colours - b.colours) ** 2))) <= COLOUR_RMS_LIMIT


def _grey(im: Image.Image, size: tuple[int, int]) -> np.ndarray:
    small = im.resize(size, Image.Resampling.BOX, reducing_gap=2.0).convert("L")
    return np.asarray(small, dtype=np.int16)


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _duplicates(items: list[_Scanned], near_distance: int) -> list[Issue]:
    issues: list[Issue] = []
    first_by_digest: dict[bytes, _Scanned] = {}
    unique: list[_Scanned] = []
    for item in items:
        original = first_by_digest.setdefault(item.digest, item)
        if original is item:
            unique.append(item)
        else:
            issues.append(Issue("exact_duplicate", item.path,
                                f"same bytes as {original.path.name}", original.path))
    if near_distance < 0 or len(unique) < 2:
        return issues
    hashes = np.frombuffer(b"".join(u.dhash for u in unique), dtype=np.uint8).reshape(len(unique), -1)
    match: dict[int, tuple[int, int]] = {}  # later image -> (earliest similar image, distance)
    for i in range(len(unique) - 1):
        distances = _POPCOUNT[hashes[i + 1:] ^ hashes[i]].sum(axis=1, dtype=np.int32)
        for offset in np.flatnonzero(distances <= near_distance):
            j = i + 1 + int(offset)
            if j not in match and _same_colours(unique[i], unique[j]):
                match[j] = (i, int(distances[offset]))
    for j, (i, d) in sorted(match.items()):
        issues.append(Issue("near_duplicate", unique[j].path, (
            f"looks like {unique[i].path.name} (hash distance {d} of {HASH_BITS}): a resized, recompressed "
            f"or slightly edited copy"), unique[i].path))
    return issues


def _caption_collisions(paths: Iterable[Path], caption_ext: str) -> list[Issue]:
    by_caption: dict[Path, list[Path]] = defaultdict(list)
    for path in paths:
        by_caption[path.with_suffix(caption_ext)].append(path)
    issues = []
    for caption, images in by_caption.items():
        verb = "shares" if caption.exists() else "would share (once captioned)"
        for other in images[1:]:
            issues.append(Issue("caption_collision", other, (
                f"{verb} the caption {caption.name} with {images[0].name}: "
                f"one caption cannot describe both; rename one image"), images[0]))
    return issues
