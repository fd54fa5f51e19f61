"""Finding and opening a user's images without ever crashing on one of them.

Every failure becomes an `ImageProblem` with a reason a person understands; whatever can be
normalised (EXIF rotation, alpha, palette transparency, CMYK, 16-bit, animation) is.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

# every image a dataset may hold: one that cannot be decoded is listed with its reason, never ignored
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jfif", ".webp", ".bmp", ".gif", ".tif", ".tiff",
                              ".avif", ".heic", ".heif", ".jxl"})
MAX_PIXELS = 12_000 * 12_000  # refuse before decoding; 20000x20000 would need 1.2 GB as RGB
STATE_DIR = ".lora_lab"  # LoRA Lab's own folder inside a dataset; never scanned as data


class ImageProblem(Exception):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    width: int  # after EXIF orientation
    height: int
    format: str
    mode: str
    frames: int = 1
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class ScanResult:
    images: list[Path]
    problems: list[ImageProblem]


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def find_images(root: Path, recursive: bool = False) -> ScanResult:
    """Image files under root, sorted; symlink loops and unreadable folders are reported, not fatal."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"not a folder: {root}")
    images: list[Path] = []
    problems: list[ImageProblem] = []
    seen_dirs: set[tuple[int, int]] = set()

    def walk(folder: Path) -> None:
        try:
            st = folder.stat()
        except OSError as e:
            problems.append(ImageProblem(folder, f"cannot read folder: {e.strerror or e}"))
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            problems.append(ImageProblem(folder, "symlink loop: folder already visited, skipped"))
            return
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            problems.append(ImageProblem(folder, f"cannot list folder: {e.strerror or e}"))
            return
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir():
                    if recursive and entry.name != STATE_DIR and not entry.name.startswith("."):
                        walk(path)
                elif is_image_name(path):
                    images.append(path)
            except OSError as e:  # e.g. a dangling or looping symlink
                problems.append(ImageProblem(path, f"cannot stat: {e.strerror or e}"))

    walk(root)
    return ScanResult(images, problems)


def _open(path: Path, max_pixels: int) -> Image.Image:
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ImageProblem(path, f"cannot read: {e.strerror or e}") from None
    if size == 0:
        raise ImageProblem(path, "empty file (0 bytes)")
    try:
        im = Image.open(path)  # reads the header only
    except Image.DecompressionBombError:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0) // 1_000_000
        raise ImageProblem(path, f"too large to load safely (over {limit} megapixels)") from None
    except UnidentifiedImageError:
        if _has_image_signature(path):
            raise ImageProblem(path, "corrupt image (damaged header or checksum error)") from None
        raise ImageProblem(path, "not an image (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageProblem(path, f"unreadable image header: {e}") from None
    if im.width * im.height > max_pixels:
        im.close()
        raise ImageProblem(path, f"too large to load safely: {im.width}x{im.height} "
                                 f"(limit {max_pixels // 1_000_000} megapixels)")
    return im


_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


def _has_image_signature(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(12)
    return head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _orientation(im: Image.Image) -> int:
    # Pillow's PNG getexif() decodes the whole image to look for a late eXIf chunk (~170x slower
    # than the header); an orientation stored after the pixel data is rare enough to ignore.
    if im.format == "PNG" and "exif" not in im.info:
        return 1
    try:
        return int(im.getexif().get(0x0112, 1))
    except Exception:
        return 1


def inspect_image(path: Path, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Size (after EXIF rotation), format and mode from the header, without decoding pixels."""
    path = Path(path)
    with _open(path, max_pixels) as im:
        w, h = im.size
        notes: list[str] = []
        if _orientation(im) in (5, 6, 7, 8):
            w, h = h, w
            notes.append("EXIF-rotated")
        frames = int(getattr(im, "n_frames", 1) or 1)
        if frames > 1:
            notes.append(f"animated ({frames} frames): the first frame is used")
        return ImageInfo(path, w, h, im.format or "?", im.mode, frames, tuple(notes))


def _to_8bit(im: Image.Image) -> Image.Image:
    import numpy as np

    arr = np.asarray(im)
    if arr.dtype == np.uint8:
        return im
    arr = arr.astype(np.float64)
    peak = 65535.0 if arr.max() > 255 or im.mode.startswith("I;16") else 255.0
    return Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


def load_rgb(path: Path, max_pixels: int = MAX_PIXELS,
             background: tuple[int, int, int] = (255, 255, 255),
             draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Decode fully to 8-bit RGB: EXIF orientation applied, any transparency composited on
    `background`, first frame of an animation. Raises ImageProblem with the reason.

    `draft_size`: a JPEG may be decoded at a reduced DCT scale (1/2, 1/4, 1/8) that still leaves
    it at least this size; other formats ignore it."""
    path = Path(path)
    source = im = _open(path, max_pixels)
    try:
        im.seek(0)
        if draft_size is not None:
            im.draft(None, draft_size)
        im.load()
        if _orientation(im) != 1:
            im = ImageOps.exif_transpose(im)
        if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            im = _to_8bit(im)
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        if im.mode in ("LA", "La", "PA"):
            im = im.convert("RGBA")
        if im.mode == "RGBa":
            im = im.convert("RGBA")
        if im.mode == "RGBA":
            canvas = Image.new("RGB", im.size, background)
            canvas.paste(im, mask=im.getchannel("A"))
            return canvas
        if im.mode != "RGB":
            return im.convert("RGB")
        return im.copy() if im is source else im
    except ImageProblem:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        reason = str(e) or type(e).__name__
        if "truncated" in reason:
            reason = f"truncated or corrupt file: {reason}"
        elif "crc" in reason.lower() or "broken" in reason.lower():
            reason = f"corrupt file (checksum error): {reason}"
        else:
            reason = f"cannot decode: {reason}"
        raise ImageProblem(path, reason) from None
    finally:
        source.close()


def check_decodes(path: Path, max_pixels: int = MAX_PIXELS) -> None:
    """Decode the whole file (a JPEG at its smallest DCT scale, which still reads every byte) and
    raise ImageProblem when it cannot be: a header can be fine while the data is truncated."""
    load_rgb(path, max_pixels, draft_size=(1, 1)).close()


def scan_problems(paths: Iterable[Path]) -> list[ImageProblem]:
    """Header-level problems of each path (cheap); decoding problems surface in load_rgb."""
    found = []
    for path in paths:
        try:
            inspect_image(path)
        except ImageProblem as p:
            found.append(p)
    return found
