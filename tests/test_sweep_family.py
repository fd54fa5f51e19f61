from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from lora_lab.sweep.family import FamilyError, find_family, list_families, read_safetensors_metadata
from lora_lab.sweep.plan import build_plan


def write_lora(path: Path, **metadata: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"lora_unet_down.weight": np.zeros((4, 4), np.float16)}, str(path), metadata=metadata or None)
    return path


def run_meta(name: str, epoch: int, session: str = "111", started: str = "1700000000") -> dict[str, str]:
    return {"ss_output_name": name, "ss_session_id": session, "ss_training_started_at": started,
            "ss_epoch": str(epoch)}


def test_epoch_files_are_ordered_numerically_with_the_final_file_last(tmp_path: Path) -> None:
    for epoch in (10, 2, 4, 8, 6):
        write_lora(tmp_path / f"alice-{epoch:06d}.safetensors", **run_meta("alice", epoch))
    write_lora(tmp_path / "alice.safetensors", **run_meta("alice", 12))

    family = find_family(tmp_path, "alice")

    assert [f.name for f in family.files] == [
        "alice-000002", "alice-000004", "alice-000006", "alice-000008", "alice-000010", "alice",
    ]
    assert [f.epoch for f in family.files] == [2, 4, 6, 8, 10, 12]
    assert family.files[-1].label == "final (epoch 12)"
    assert family.files[0].label == "epoch 2"


def test_files_without_metadata_are_found_by_name_pattern(tmp_path: Path) -> None:
    write_lora(tmp_path / "bob.safetensors")
    write_lora(tmp_path / "bob-000003.safetensors")
    write_lora(tmp_path / "bob-000001.safetensors")
    (tmp_path / "bob-000002.pt").write_bytes(b"not read")

    family = find_family(tmp_path, "bob")

    assert [f.name for f in family.files] == ["bob-000001", "bob-000002", "bob-000003", "bob"]
    assert family.files[-1].label == "final"
    assert family.files[1].path.suffix == ".pt"


def test_renamed_epoch_file_stays_with_its_run_and_keeps_its_stem_as_tag_name(tmp_path: Path) -> None:
    write_lora(tmp_path / "alice-000001.safetensors", **run_meta("alice", 1))
    write_lora(tmp_path / "best_alice_e2.safetensors", **run_meta("alice", 2))
    write_lora(tmp_path / "alice.safetensors", **run_meta("alice", 3))

    family = find_family(tmp_path, "alice")

    assert [f.name for f in family.files] == ["alice-000001", "best_alice_e2", "alice"]
    assert family.files[1].epoch == 2
    assert "best_alice_e2" in family.tag_names


def test_two_runs_with_one_name_in_subfolders_are_separate_families(tmp_path: Path) -> None:
    for epoch in (1, 2):
        for run, started in (("1", "1000"), ("2", "2000")):
            write_lora(tmp_path / f"v{run}" / f"carol-{epoch:06d}.safetensors",
                       **run_meta("carol", epoch, run, started))

    families = [f for f in list_families(tmp_path) if f.name == "carol"]

    assert len(families) == 2
    assert all(len(f.files) == 2 for f in families)
    newest = find_family(tmp_path, "carol")
    assert newest.run == "2" and all("v2" in f.path.parts for f in newest.files)
    assert find_family(tmp_path, "carol@1").run == "1"
    # The same stem twice in the Lora folder: the WebUI loads only one of them, so say so.
    assert newest.files[0].name_clash
    assert any("another file" in w for w in newest.warnings())


def test_family_is_found_by_any_of_its_file_names_and_case_insensitively(tmp_path: Path) -> None:
    write_lora(tmp_path / "Dana-000001.safetensors", **run_meta("Dana", 1))
    write_lora(tmp_path / "Dana.safetensors", **run_meta("Dana", 2))

    assert find_family(tmp_path, "dana").name == "Dana"
    assert find_family(tmp_path, "Dana-000001").name == "Dana"


def test_list_families_offers_every_lora_once_per_run(tmp_path: Path) -> None:
    write_lora(tmp_path / "x-000001.safetensors", **run_meta("x", 1, "9"))
    write_lora(tmp_path / "x.safetensors", **run_meta("x", 2, "9"))
    write_lora(tmp_path / "sub" / "y.safetensors")
    write_lora(tmp_path / "Z2.safetensors")
    write_lora(tmp_path / "z10.safetensors")

    families = list_families(tmp_path)

    assert [f.name for f in families] == ["x", "y", "Z2", "z10"]
    assert families[0].key == "x@9"
    assert json.dumps([f.to_json() for f in families])


def test_only_the_json_header_is_read(tmp_path: Path) -> None:
    path = write_lora(tmp_path / "e.safetensors", ss_output_name="e")
    # Corrupt every byte after the header: metadata must still come back.
    (length,) = struct.unpack("<Q", path.read_bytes()[:8])
    data = bytearray(path.read_bytes())
    data[8 + length:] = b"\xff" * (len(data) - 8 - length)
    path.write_bytes(bytes(data))

    assert read_safetensors_metadata(path) == {"ss_output_name": "e"}


def test_broken_files_are_listed_with_a_reason_instead_of_failing_discovery(tmp_path: Path) -> None:
    write_lora(tmp_path / "f-000001.safetensors", **run_meta("f", 1))
    (tmp_path / "f-000002.safetensors").write_bytes(b"\x05\x00")

    family = find_family(tmp_path, "f")

    assert [f.name for f in family.files] == ["f-000001", "f-000002"]
    assert family.files[1].problem and "too short" in family.files[1].problem
    assert any("f-000002.safetensors" in w for w in family.warnings())


def test_unknown_name_and_missing_folder_give_clear_errors(tmp_path: Path) -> None:
    write_lora(tmp_path / "known.safetensors")
    with pytest.raises(FamilyError, match="no LoRA named 'nope'.*found: known"):
        find_family(tmp_path, "nope")
    with pytest.raises(FamilyError, match="does not exist"):
        list_families(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FamilyError, match="no LoRA files"):
        find_family(tmp_path / "empty", "x")


def test_per_epoch_output_names_form_one_family(tmp_path: Path) -> None:
    # LoRA Lab's trainer gives each epoch file its own ss_output_name (no WebUI alias clash)
    for stem, epoch in [("hero-000001", 1), ("hero-000002", 2), ("hero", 3)]:
        write_lora(tmp_path / f"{stem}.safetensors", **{**run_meta(stem, epoch), "ss_output_name": stem})
    (family,) = list_families(tmp_path)
    assert family.name == "hero"
    assert [f.name for f in family.files] == ["hero-000001", "hero-000002", "hero"]
    assert [f.kind for f in family.files] == ["epoch", "epoch", "final"]


def test_files_trained_for_another_base_model_are_warned_about(tmp_path: Path) -> None:
    write_lora(tmp_path / "mix-000001.safetensors", ss_output_name="mix", ss_v2="True",
               ss_base_model_version="sd_v2_v")
    write_lora(tmp_path / "mix.safetensors", ss_output_name="mix", ss_v2="False",
               ss_base_model_version="sd_v1")
    write_lora(tmp_path / "xl.safetensors", ss_base_model_version="sdxl_base_v1-0")
    family = find_family(tmp_path, "mix")
    assert [f.base_model for f in family.files] == ["sd2", "sd1"]
    assert family.warnings() == []  # no model to compare with
    assert family.warnings("sd1") == ["mix-000001.safetensors: trained on SD2, but the loaded model "
                                      "is SD1; the WebUI will apply it wrongly or not at all"]
    assert len(family.warnings("sd2")) == 1 and len(family.warnings("sdxl")) == 2
    assert find_family(tmp_path, "xl").files[0].base_model == "sdxl"
    plan = build_plan(family, [1.0], ["a cat"], [1], model_base="sd2")
    assert plan.warnings == ("mix.safetensors: trained on SD1, but the loaded model is SD2; the WebUI "
                             "will apply it wrongly or not at all",)
