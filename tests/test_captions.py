"""Caption files and the tag model: encodings survive, the sentence format round-trips, nothing
unreadable is ever touched."""
from __future__ import annotations

from pathlib import Path

import pytest

from lora_lab.dataset.captions import (Caption, CaptionEncodingError, TextFormat, caption_path,
                                       decode_caption, encode_caption, load_captions, merge_tags,
                                       parse_caption, stem_collisions, tag_key)

BYTES = [
    b"",
    b"1girl, solo",
    b"1girl, solo\n",
    b"1girl, solo\r\n",
    b"\xef\xbb\xbf1girl, solo",
    b"\xef\xbb\xbf1girl, solo\r\n",
    "caf\u00e9, \u5c11\u5973, \U0001f338 flower\n".encode(),
    b"a, b\r",
    b"line one\nline two\n",
    b"line one\r\nline two",
]


@pytest.mark.parametrize("data", BYTES)
def test_decode_encode_is_byte_exact(data: bytes) -> None:
    text, fmt = decode_caption(data)
    assert "\r" not in text
    assert encode_caption(text, fmt) == data


@pytest.mark.parametrize(("data", "fmt"), [
    (b"a\r\n", TextFormat(False, "\r\n", True)),
    (b"\xef\xbb\xbfa", TextFormat(True, "\n", False)),
    (b"a\n", TextFormat(False, "\n", True)),
    (b"a", TextFormat()),
])
def test_format_is_detected(data: bytes, fmt: TextFormat) -> None:
    assert decode_caption(data) == ("a", fmt)


def test_a_new_caption_keeps_the_old_files_format() -> None:
    _, fmt = decode_caption(b"\xef\xbb\xbfold, tags\r\n")
    assert encode_caption("new, tags", fmt) == b"\xef\xbb\xbfnew, tags\r\n"


@pytest.mark.parametrize(("data", "needle"), [
    (b"caf\xe9", "0xE9"),
    (b"\xff\xfea\x00", "UTF-16"),
    (b"ok, \x80", "not valid UTF-8"),
])
def test_invalid_utf8_is_an_error_with_reason(data: bytes, needle: str) -> None:
    with pytest.raises(CaptionEncodingError) as err:
        decode_caption(data, Path("x.txt"))
    assert needle in err.value.reason
    assert err.value.path == Path("x.txt")


ROUND_TRIPS = [
    ("trigger, A photo of a girl in a field. 1girl, solo",
     Caption(["trigger", "1girl", "solo"], "A photo of a girl in a field.", 1)),
    ("A photo of a girl, smiling, in a field. She waves! 1girl, solo",
     Caption(["1girl", "solo"], "A photo of a girl, smiling, in a field. She waves!", 0)),
    ("1girl, solo, A photo of a girl in a field.",
     Caption(["1girl", "solo"], "A photo of a girl in a field.", 2)),
    ("The woman is smiling.", Caption([], "The woman is smiling.", 0)),
    ("trig ||| 1girl, solo", Caption(["trig", "|||", "1girl", "solo"])),
    ("trig ||| A cat sits on the mat. cat, mat",
     Caption(["trig", "|||", "cat", "mat"], "A cat sits on the mat.", 2)),
    ("a, b ||| c ||| d", Caption(["a", "b", "|||", "c", "|||", "d"])),
    # tags that look a little like prose stay tags
    ("Hatsune Miku, 1girl, looking at viewer, ms. fortune (skullgirls)",
     Caption(["Hatsune Miku", "1girl", "looking at viewer", "ms. fortune (skullgirls)"])),
    ("ohwx, k-on!, !, ..., love live! school idol project",
     Caption(["ohwx", "k-on!", "!", "...", "love live! school idol project"])),
    ("", Caption([])),
    ("\u5c11\u5973, caf\u00e9", Caption(["\u5c11\u5973", "caf\u00e9"])),
]


@pytest.mark.parametrize(("text", "caption"), ROUND_TRIPS)
def test_parse_and_render_round_trip(text: str, caption: Caption) -> None:
    parsed = parse_caption(text)
    assert parsed == caption
    assert parsed.render() == text
    assert parse_caption(parsed.render()) == parsed


@pytest.mark.parametrize(("messy", "clean"), [
    ("  a ,, b   c,\tdd ,", "a, b c, dd"),
    ("a,b,c", "a, b, c"),
    ("a\nb", "a, b"),
    ("x,A photo of a dog on a sofa., y", "x, A photo of a dog on a sofa. y"),
])
def test_parse_tolerates_messy_separators(messy: str, clean: str) -> None:
    assert parse_caption(messy).render() == clean


def test_fixed_head_follows_keep_tokens_or_separator() -> None:
    assert parse_caption("a, b, c").fixed_count(2) == 2
    assert parse_caption("a, b ||| c").fixed_count(0) == 3
    assert parse_caption("a").fixed_count(5) == 1


def test_tag_key_ignores_case_underscores_and_escapes() -> None:
    assert tag_key("Long_Hair") == tag_key("long hair")
    assert tag_key("\\(cosplay\\)") == tag_key("(cosplay)")
    assert tag_key("girl") != tag_key("1girl")


MERGES = [
    (None, ["a", "b", "a"], "append", ["a", "b"]),
    ("x, a", ["a", "b"], "append", ["x", "a", "b"]),
    ("x, a", ["b", "a"], "prepend", ["b", "a", "x"]),
    ("x, a", ["b"], "overwrite", ["b"]),
    ("x, long_hair", ["long hair", "c"], "append", ["x", "long_hair", "c"]),
    ("", ["a"], "skip", ["a"]),
]


@pytest.mark.parametrize(("old", "new", "mode", "tags"), MERGES)
def test_merge_tags_never_duplicates(old: str | None, new: list[str], mode: str, tags: list[str]) -> None:
    existing = None if old is None else parse_caption(old)
    merged = merge_tags(existing, new, mode)
    assert merged is not None and merged.tags == tags


def test_merge_skip_leaves_a_caption_with_content() -> None:
    assert merge_tags(parse_caption("a"), ["b"], "skip") is None
    assert merge_tags(parse_caption("A photo of a cat on a mat."), ["b"], "skip") is None


def test_merge_keeps_the_sentence_in_place() -> None:
    old = parse_caption("trig, A photo of a girl in a field. 1girl")
    assert merge_tags(old, ["solo"], "append").render() == "trig, A photo of a girl in a field. 1girl, solo"
    assert merge_tags(old, ["solo"], "prepend").render() == "solo, trig, A photo of a girl in a field. 1girl"
    with pytest.raises(ValueError, match="merge mode"):
        merge_tags(old, ["a"], "merge")


def test_caption_path_and_collisions(tmp_path: Path) -> None:
    assert caption_path(tmp_path / "a.b.png") == tmp_path / "a.b.txt"
    assert caption_path(tmp_path / "a.png", ".caption") == tmp_path / "a.caption"
    with pytest.raises(ValueError):
        caption_path(tmp_path / "a.png", "txt")
    with pytest.raises(ValueError, match="image extension"):
        caption_path(tmp_path / "a.jpg", ".png")
    images = [tmp_path / "x.png", tmp_path / "x.jpg", tmp_path / "y.png"]
    assert stem_collisions(images) == {tmp_path / "x.txt": images[:2]}


def _dataset(root: Path, captions: dict[str, bytes | None]) -> None:
    root.mkdir(exist_ok=True)
    for name, data in captions.items():
        (root / name).write_bytes(b"")
        if data is not None:
            (root / name).with_suffix(".txt").write_bytes(data)


def test_load_captions_reports_what_it_cannot_edit(tmp_path: Path) -> None:
    _dataset(tmp_path, {"ok.png": b"a, b\n", "none.jpg": None, "latin.png": b"caf\xe9",
                        "multi.png": b"one, line\nanother, line\n", "x.png": b"x", "x.jpg": None})
    (tmp_path / "folder.png").write_bytes(b"")
    (tmp_path / "folder.txt").mkdir()
    captions = load_captions(tmp_path)
    by_name = {f.image.name: f for f in captions.files}
    assert sorted(by_name) == ["none.jpg", "ok.png", "x.jpg", "x.png"]
    assert by_name["ok.png"].caption.tags == ["a", "b"]
    assert by_name["ok.png"].fmt.final_newline
    assert by_name["none.jpg"].data is None and by_name["none.jpg"].caption.is_empty()
    reasons = {p.path.name: p.reason for p in captions.problems}
    assert "UTF-8" in reasons["latin.txt"]
    assert "2 lines" in reasons["multi.txt"]
    assert "folder" in reasons["folder.txt"]
    assert list(captions.collisions) == [tmp_path / "x.txt"]
    assert (tmp_path / "latin.txt").read_bytes() == b"caf\xe9"


def test_load_captions_recursive_skips_state_dir(tmp_path: Path) -> None:
    _dataset(tmp_path, {"a.png": b"a"})
    _dataset(tmp_path / "sub", {"b.png": b"b"})
    _dataset(tmp_path / ".lora_lab", {"c.png": b"c"})
    assert [f.image.name for f in load_captions(tmp_path).files] == ["a.png"]
    assert [f.image.name for f in load_captions(tmp_path, recursive=True).files] == ["a.png", "b.png"]
