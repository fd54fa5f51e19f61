"""A folder of everything that goes wrong with real datasets: every bad file is listed with its
reason, every good (if odd) one is tagged, nothing crashes and nothing is lost."""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lora_lab.host.progress import RecordingProgress
from lora_lab.hosts.standalone.host import StandaloneHost
from lora_lab.tagging import TagRunOptions, tag_folder


def noise(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.RandomState(seed)
    return Image.fromarray(rng.randint(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB").convert(mode)


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header for a huge image, with almost no pixel data behind it (a few bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def build_corpus(root: Path) -> tuple[dict[str, str], set[str]]:
    """Writes the corpus; returns {bad file: words its reason must contain} and the good files."""
    sub = root / "sub"
    sub.mkdir(parents=True)
    bad: dict[str, str] = {}
    good: set[str] = set()

    (root / "zero.png").write_bytes(b"")
    bad["zero.png"] = "empty file"
    jpeg = io.BytesIO()
    noise((200, 150)).save(jpeg, "JPEG", quality=90)
    (root / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    bad["truncated.jpg"] = "truncated"
    data = bytearray(png_bytes(noise((40, 40))))
    data[data.index(b"IHDR") + 4 + 13] ^= 0xFF  # the IHDR chunk's CRC
    (root / "bad_crc.png").write_bytes(bytes(data))
    bad["bad_crc.png"] = "corrupt"
    data = bytearray(png_bytes(noise((40, 40))))
    data[data.index(b"IDAT") + 12] ^= 0xFF  # damaged compressed pixels
    (root / "bad_pixels.png").write_bytes(bytes(data))
    bad["bad_pixels.png"] = "corrupt"
    (root / "huge.png").write_bytes(png_claiming(20000, 20000))
    bad["huge.png"] = "too large"
    (root / "notes.jpg").write_text("these are my notes, not a picture\n", encoding="utf-8")
    bad["notes.jpg"] = "not an image"

    noise((80, 60), "CMYK").save(root / "cmyk.jpg", quality=90)
    good.add("cmyk.jpg")
    gray16 = (np.arange(70 * 50, dtype=np.uint16).reshape(50, 70) * 18)
    Image.fromarray(gray16, "I;16").save(root / "gray16.png")
    good.add("gray16.png")
    palette = noise((60, 60)).quantize(16)
    palette.info["transparency"] = 0
    palette.save(root / "palette_transparent.png", transparency=0)
    good.add("palette_transparent.png")
    frames = [noise((50, 40), seed=i) for i in range(3)]
    frames[0].save(root / "animated_gif.gif", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(root / "animated_webp.webp", save_all=True, append_images=frames[1:], duration=100)
    good |= {"animated_gif.gif", "animated_webp.webp"}
    exif = Image.Exif()
    exif[0x0112] = 8
    noise((90, 30)).save(root / "exif_rotated.jpg", exif=exif)
    good.add("exif_rotated.jpg")
    noise((64, 64), "RGBA").save(root / "ünïcode name with spaces.png")
    good.add("ünïcode name with spaces.png")
    noise((40, 40)).save(sub / "nested.png")
    good.add("nested.png")
    os.symlink("..", sub / "loop")
    bad["loop"] = "symlink loop"

    noise((30, 30)).save(root / "read_only.png")
    caption = root / "read_only.txt"
    caption.write_bytes(b"my own caption")
    caption.chmod(0o444)
    bad["read_only.png"] = "read-only"
    return bad, good


@pytest.mark.skipif(os.name != "posix", reason="symlinks and permission bits")
def test_every_bad_file_is_listed_with_its_reason_and_the_rest_is_tagged(tmp_path: Path,
                                                                         tiny_tagger_dir: Path) -> None:
    root = tmp_path / "dataset"
    bad, good = build_corpus(root)
    host = StandaloneHost(home=tmp_path / "home", progress=RecordingProgress())
    result = tag_folder(host, root, tiny_tagger_dir, TagRunOptions(recursive=True, mode="overwrite"))

    reasons = {p.path.name: p.reason for p in result.problems}
    assert set(reasons) == set(bad), reasons
    for name, words in bad.items():
        assert words in reasons[name], (name, reasons[name])
    tagged = {p.name for p in result.written}
    assert tagged == good
    for name in good:
        image = next(root.rglob(name))
        assert image.with_suffix(".txt").read_text(encoding="utf-8").strip(), name
    for name in bad:
        if name != "read_only.png" and name != "loop":
            assert not (root / name).with_suffix(".txt").exists(), name
    assert (root / "read_only.txt").read_bytes() == b"my own caption"
    assert not result.interrupted and result.not_done == []
