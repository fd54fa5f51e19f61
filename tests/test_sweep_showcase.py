from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from dynamicprompts.generators import RandomPromptGenerator
from dynamicprompts.wildcards import WildcardManager

from lora_lab.sweep.showcase import (
    ShowcaseError, disable_dynamic_prompts, expand_showcase, is_fixed_point, seeds_from,
)

TEMPLATE = "photo of alice, {smiling|serious|laughing}, __place__, {3::red|blue} dress, <lora:alice:1>"


@pytest.fixture
def wildcards(tmp_path: Path) -> Path:
    folder = tmp_path / "wildcards"
    folder.mkdir()
    values = "beach\n# not a value\nforest\ncity street\nkitchen\n"
    (folder / "place.txt").write_text(values, encoding="utf-8")
    return folder


def test_same_templates_and_seed_give_the_same_prompts(wildcards: Path) -> None:
    first = expand_showcase(TEMPLATE, 6, seed=1234, wildcard_dir=wildcards)
    again = expand_showcase(TEMPLATE, 6, seed=1234, wildcard_dir=wildcards)

    assert first == again
    assert len(first) > 1
    assert all("{" not in p and "__" not in p and "<lora:alice:1>" in p for p in first)
    assert all(any(place in p for place in ("beach", "forest", "city street", "kitchen")) for p in first)


def test_another_seed_gives_another_selection(wildcards: Path) -> None:
    runs = {tuple(expand_showcase(TEMPLATE, 6, seed=s, wildcard_dir=wildcards)) for s in range(5)}
    assert len(runs) > 1


def test_a_second_dynamic_prompts_pass_changes_nothing(wildcards: Path) -> None:
    prompts = expand_showcase(TEMPLATE, 6, seed=7, wildcard_dir=wildcards)

    # What the sd-dynamic-prompts extension would do in a cell: expand again, with the cell's seed
    # and the same wildcard folder.
    generator = RandomPromptGenerator(WildcardManager(wildcards), seed=99)
    assert [generator.generate(p, 1, seeds=[99])[0] for p in prompts] == prompts


def test_templates_are_used_in_turn_and_repeats_are_kept_once() -> None:
    prompts = expand_showcase(["a plain prompt", "a {cat|dog}"], 8, seed=3)

    assert prompts[0] == "a plain prompt"
    assert prompts.count("a plain prompt") == 1
    assert set(prompts[1:]) <= {"a cat", "a dog"}
    assert len(prompts) == len(set(prompts))


def test_missing_wildcards_and_bad_syntax_are_errors(wildcards: Path) -> None:
    with pytest.raises(ShowcaseError, match="__hair__"):
        expand_showcase("alice, __hair__", 2, seed=1, wildcard_dir=wildcards)
    with pytest.raises(ShowcaseError, match="no wildcard folder"):
        expand_showcase("alice, __place__", 2, seed=1)
    with pytest.raises(ShowcaseError, match="template 2 is not valid"):
        expand_showcase(["fine", "broken { brace"], 2, seed=1)
    with pytest.raises(ShowcaseError, match="1 to 100"):
        expand_showcase("x", 0, seed=1)
    with pytest.raises(ShowcaseError, match="does not exist"):
        expand_showcase("x", 1, seed=1, wildcard_dir=wildcards / "nope")


def test_fixed_point_check() -> None:
    assert is_fixed_point("photo, <lora:alice-000002:0.8>, (smile:1.2), [a|b]")
    assert not is_fixed_point("photo {a|b}")
    assert not is_fixed_point("<lora:my#lora:1>")  # '#' starts a comment for dynamicprompts


def test_seeds_are_consecutive_and_random_seed_must_be_resolved_first() -> None:
    assert seeds_from(100, 3) == [100, 101, 102]
    with pytest.raises(ValueError, match="-1"):
        seeds_from(-1, 3)


@dataclass
class _Script:
    """The two members of a WebUI always-on script that disable_dynamic_prompts reads."""

    name: str
    args_from: int

    def title(self) -> str:
        return self.name


def test_dynamic_prompts_is_switched_off_in_its_own_slot_only() -> None:
    args = (0, "controlnet", True, True, False, 5)
    scripts = [_Script("ControlNet v1.1", 1), _Script("Dynamic Prompts v2.17.1", 2)]

    out = disable_dynamic_prompts(args, scripts)

    assert out == (0, "controlnet", False, True, False, 5)
    assert args[2] is True  # the user's own arguments are not changed
    assert disable_dynamic_prompts(args, scripts[:1]) == args
