from __future__ import annotations

import pytest

from lora_lab.sweep.prompts import PromptError, find_tags, set_lora_tag

ALICE = {"alice", "alice-000002", "alice-000004"}


@pytest.mark.parametrize(("prompt", "expected"), [
    ("photo, <lora:alice:1>, smiling", "photo, <lora:alice-000004:0.6>, smiling"),
    ("photo <lora:alice-000002:0.9>", "photo <lora:alice-000004:0.6>"),
    ("photo <lora:ALICE:0.9>", "photo <lora:alice-000004:0.6>"),
    ("photo <lyco:alice:0.9>", "photo <lyco:alice-000004:0.6>"),
    ("photo of a cat", "photo of a cat <lora:alice-000004:0.6>"),
    ("photo of a cat,  ", "photo of a cat, <lora:alice-000004:0.6>"),
    ("", "<lora:alice-000004:0.6>"),
])
def test_the_family_tag_is_replaced_or_appended(prompt: str, expected: str) -> None:
    assert set_lora_tag(prompt, ALICE, "alice-000004", 0.6) == expected


def test_only_the_swept_lora_changes_when_several_are_in_the_prompt() -> None:
    others = "(smile:1.2) <lora:alice_outfit:0.7> <hypernet:h:1>"
    prompt = f"<lora:style:0.5> photo of alice <lora:alice:1> {others}"

    out = set_lora_tag(prompt, ALICE, "alice-000002", 0.8)

    assert out == f"<lora:style:0.5> photo of alice <lora:alice-000002:0.8> {others}"


@pytest.mark.parametrize(("tag", "expected"), [
    # te= pins the text encoder; without an explicit unet= the UNet would copy te, so it is written.
    ("<lora:alice:0.8:te=0.5>", "<lora:alice-000004:0.6:te=0.5:unet=0.6>"),
    # a third positional value pins the UNet; the cell weight drives the text encoder.
    ("<lora:alice:1:0.5>", "<lora:alice-000004:0.6:0.5>"),
    ("<lora:alice:1:unet=0.3>", "<lora:alice-000004:0.6:unet=0.3>"),
    ("<lora:alice:1:1:8>", "<lora:alice-000004:0.6:1:8>"),
    ("<lora:alice:1:dyn=8:lbw=OUTD>", "<lora:alice-000004:0.6:dyn=8:lbw=OUTD>"),
    ("<lora:alice>", "<lora:alice-000004:0.6>"),
])
def test_te_unet_and_extra_settings_are_kept(tag: str, expected: str) -> None:
    assert set_lora_tag(f"a {tag} b", ALICE, "alice-000004", 0.6) == f"a {expected} b"


def test_rewritten_tag_means_what_the_webui_will_load() -> None:
    # Read the result back the way extra_networks_lora.py does and check the multipliers.
    tag = find_tags(set_lora_tag("<lora:alice:0.8:te=0.5>", ALICE, "alice-000004", 0.6))[0]
    named = dict(tag.named)
    te = float(named.get("te", tag.positional[1]))
    unet = float(named.get("unet", tag.positional[2] if len(tag.positional) > 2 else te))
    assert (tag.name, te, unet) == ("alice-000004", 0.5, 0.6)


def test_a_tag_that_pins_both_multipliers_is_refused() -> None:
    with pytest.raises(PromptError, match="te= and unet="):
        set_lora_tag("<lora:alice:1:te=0.5:unet=0.5>", ALICE, "alice", 0.6)


def test_two_tags_of_the_same_lora_are_refused() -> None:
    with pytest.raises(PromptError, match="2 tags for this LoRA"):
        set_lora_tag("<lora:alice:1> <lora:alice-000002:1>", ALICE, "alice", 0.6)


@pytest.mark.parametrize(("prompt", "expected"), [
    ("photo, <lora:alice:1>, smiling", "photo, smiling"),
    ("<lora:alice:1>, photo", "photo"),
    ("photo, <lora:alice:1>", "photo"),
    ("photo <lora:alice:1>, smiling", "photo, smiling"),
    ("photo <lora:style:1> <lora:alice:1>", "photo <lora:style:1>"),
    ("no tag here", "no tag here"),
])
def test_baseline_removes_the_tag_and_tidies_the_commas(prompt: str, expected: str) -> None:
    assert set_lora_tag(prompt, ALICE, None, None) == expected
