"""Trigger words: CLIP token counts with the real BPE, and clashes with installed LoRAs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from lora_lab.cli import main
from lora_lab.dataset.trigger import check_trigger, count_tokens, read_safetensors_metadata


@pytest.mark.parametrize(("text", "ids"), [
    ("a", [320]),
    (",", [267]),
    ("ohwx", [47993]),
    ("Ohwx woman", [47993, 2308]),
])
def test_known_clip_ids(text: str, ids: list[int]) -> None:
    assert [p.id for p in count_tokens(text).pieces] == ids


def test_long_rare_words_take_several_pieces() -> None:
    tokens = count_tokens("supercalifragilistic")
    assert tokens.count >= 4
    assert "".join(p.text for p in tokens.pieces) == "supercalifragilistic"
    assert tokens.pieces[-1].token.endswith("</w>")


def test_notes_on_poor_triggers() -> None:
    assert check_trigger("ohwx").notes == []
    assert any("everyday word" in n for n in check_trigger("woman").notes)
    assert any("long" in n for n in check_trigger("supercalifragilistic").notes)
    assert any("commas" in n for n in check_trigger("ohwx, girl").notes)
    with pytest.raises(ValueError):
        check_trigger(" ,, ")


def lora(path: Path, metadata: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"lora_unet_x.lora_down.weight": np.zeros((4, 8), np.float16)}, str(path), metadata)
    return path


@pytest.fixture()
def lora_dir(tmp_path: Path) -> Path:
    root = tmp_path / "Lora"
    lora(root / "portrait_v1.safetensors", {"ss_output_name": "ohwx_v1"})
    lora(root / "people" / "anna.safetensors", {
        "ss_output_name": "anna",
        "ss_tag_frequency": json.dumps({"10_anna": {"ohwx woman": 20, "smile": 5}}),
        "ss_dataset_dirs": json.dumps({"10_anna": {"n_repeats": 10, "img_count": 20}}),
    })
    lora(root / "people" / "bob.safetensors")
    (root / "people" / "bob.json").write_text(json.dumps({"activation text": "ohwx, red coat"}),
                                              encoding="utf-8")
    lora(root / "style.safetensors", {
        "ss_output_name": "ohwxyz style",
        "ss_tag_frequency": json.dumps({"5_bohwx": {"bohwx": 3, "ohwxish": 1}}),
    })
    (root / "broken.safetensors").write_bytes(b"\x0a\x00\x00\x00\x00\x00\x00\x00{not json}")
    return root


def test_clashes_are_found_with_where(lora_dir: Path) -> None:
    report = check_trigger("ohwx", lora_dir)
    found = sorted((c.file.name, c.where, c.value) for c in report.clashes)
    assert found == [
        ("anna.safetensors", "ss_tag_frequency tag (20× in 10_anna)", "ohwx woman"),
        ("bob.safetensors", "activation text in bob.json", "ohwx, red coat"),
        ("portrait_v1.safetensors", "ss_output_name", "ohwx_v1"),
    ]
    assert report.files_scanned == 5
    assert [(p.name, "not JSON" in r) for p, r in report.problems] == [("broken.safetensors", True)]


def test_multi_word_trigger_and_folder_names(lora_dir: Path) -> None:
    wheres = {(c.file.name, c.where) for c in check_trigger("ohwx woman", lora_dir).clashes}
    assert wheres == {("anna.safetensors", "ss_tag_frequency tag (20× in 10_anna)")}
    wheres = {(c.file.name, c.where) for c in check_trigger("anna", lora_dir).clashes}
    assert wheres == {("anna.safetensors", w) for w in (
        "file name", "ss_output_name", "ss_tag_frequency folder", "ss_dataset_dirs folder")}


def test_only_the_header_is_read(tmp_path: Path) -> None:
    path = lora(tmp_path / "big.safetensors", {"ss_output_name": "ohwx"})
    data = path.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    path.write_bytes(data[:header_end])  # tensor data gone: loading it would fail
    assert read_safetensors_metadata(path) == {"ss_output_name": "ohwx"}
    assert [c.where for c in check_trigger("ohwx", tmp_path).clashes] == ["ss_output_name"]


def test_trigger_command(lora_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trigger", "ohwx", "--lora-dir", str(lora_dir)]) == 3
    text = capsys.readouterr().out
    assert "1 CLIP token(s)" in text and "portrait_v1.safetensors: ss_output_name: ohwx_v1" in text
    assert main(["trigger", "zqxv", "--lora-dir", str(lora_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["clashes"] == [] and out["tokens"] == len(out["pieces"]) >= 2
    assert main(["trigger", "ohwx", "--lora-dir", str(tmp_path / "nowhere")]) == 2


def test_check_command_with_trigger(lora_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir()
    Image.new("RGB", (512, 512)).save(data / "a.png")
    (data / "a.txt").write_text("ohwx", encoding="utf-8")
    assert main(["check", str(data), "--trigger", "ohwx", "--lora-dir", str(lora_dir), "--json"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["issues"] == [] and len(out["trigger"]["clashes"]) == 3


def test_a_fresh_home_without_a_lora_folder_still_gets_the_checks(tmp_path) -> None:
    """Dataset → Checks on a new install: the trigger's own checks, and a note that there is no LoRA
    to clash with — not an error instead of every check."""
    from lora_lab.dataset.trigger import check_trigger

    report = check_trigger("dog", lora_dir=tmp_path / "Lora")
    assert report.tokens.count == 1 and report.clashes == []
    assert any("everyday word" in n for n in report.notes)
    assert any("no LoRA folder yet" in n for n in report.notes)
