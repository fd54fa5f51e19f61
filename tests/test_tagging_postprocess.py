"""Scores to caption tags: the arithmetic users pick options for."""
from __future__ import annotations

import numpy as np
import pytest

from lora_lab.dataset.captions import TextFormat, parse_caption
from lora_lab.devtools.tiny_tagger import tag_rows
from lora_lab.tagging import Labels, TagOptions, caption_bytes, format_tag, mcut_threshold, select_tags

LABELS = Labels(tuple(r[1] for r in tag_rows()), np.array([r[2] for r in tag_rows()]))


def scores(**named: float) -> np.ndarray:
    out = np.full(len(LABELS), 0.01, np.float32)
    for name, value in named.items():
        out[LABELS.names.index(name)] = value
    return out


def raw(s: np.ndarray, label: str, value: float) -> np.ndarray:
    s[LABELS.names.index(label)] = value
    return s


def tags(s: np.ndarray, **options: object) -> list[str]:
    return [t.tag for t in select_tags(s, LABELS, TagOptions(**options)).tags]


def test_general_and_character_thresholds_are_separate() -> None:
    s = raw(scores(smile=0.5, solo=0.3, kirby=0.8, pikachu=0.9), "saber_(fate)", 0.86)
    assert tags(s) == ["pikachu", "saber (fate)", "smile"]  # general 0.35, character 0.85
    assert tags(s, general_threshold=0.25, character_threshold=0.95) == ["smile", "solo"]
    assert tags(s, general_threshold=0.6, character_threshold=0.75) == ["pikachu", "saber (fate)", "kirby"]


def test_a_score_equal_to_the_threshold_is_kept() -> None:
    assert tags(scores(smile=0.5), general_threshold=0.5) == ["smile"]


def test_mcut_cuts_at_the_largest_gap() -> None:
    assert mcut_threshold(np.array([0.9, 0.85, 0.3, 0.2, 0.1])) == pytest.approx((0.85 + 0.3) / 2)
    assert mcut_threshold(np.array([0.1, 0.95, 0.9, 0.05])) == pytest.approx((0.9 + 0.1) / 2)


def test_mcut_per_category_with_character_floor() -> None:
    s = scores(smile=0.9, solo=0.8, hat=0.2, kirby=0.12, pikachu=0.1)
    picked = select_tags(s, LABELS, TagOptions(general_mcut=True, character_mcut=True))
    # general gap 0.8 -> 0.2; characters all low: MCut would take kirby, the 0.15 floor refuses it
    assert [t.label for t in picked.tags] == ["smile", "solo"]
    assert picked.general_threshold == pytest.approx(0.5)
    assert picked.character_threshold == pytest.approx(0.15)
    s = scores(smile=0.9, kirby=0.6, pikachu=0.02)
    assert tags(s, character_mcut=True) == ["smile", "kirby"]  # fixed 0.85 would miss kirby


def test_rating_off_first_last_is_the_most_likely_rating() -> None:
    s = raw(raw(scores(smile=0.9), "sensitive", 0.7), "general", 0.2)
    assert tags(s) == ["smile"]
    assert tags(s, rating="first") == ["sensitive", "smile"]
    assert tags(s, rating="last") == ["smile", "sensitive"]


def test_excluded_tags_match_any_spelling() -> None:
    s = raw(scores(freckles=0.9, smile=0.8, long_hair=0.7, pikachu=0.9), "saber_(fate)", 0.95)
    picked = select_tags(s, LABELS, TagOptions(exclude=("freckles", "Long Hair", r"saber \(fate\)")))
    assert [t.tag for t in picked.tags] == ["pikachu", "smile"]
    assert sorted(picked.excluded) == ["freckles", "long_hair", "saber_(fate)"]


def test_underscores_become_spaces_except_in_kaomoji() -> None:
    s = raw(raw(scores(long_hair=0.9), "^_^", 0.8), "o_o", 0.7)
    assert tags(s) == ["long hair", "^_^", "o_o"]
    assert tags(s, replace_underscores=False) == ["long_hair", "^_^", "o_o"]
    assert format_tag("saber_(fate)") == "saber (fate)"
    assert format_tag(">_<") == ">_<"


def test_escaping_parentheses_is_optional() -> None:
    s = raw(scores(), "saber_(fate)", 0.9)
    assert tags(s) == ["saber (fate)"]
    assert tags(s, escape_parentheses=True) == [r"saber \(fate\)"]


def test_sort_by_confidence_or_model_order() -> None:
    s = scores(smile=0.5, solo=0.9, **{"1girl": 0.7}, pikachu=0.95)
    assert tags(s) == ["pikachu", "solo", "1girl", "smile"]
    assert tags(s, sort="model") == ["1girl", "solo", "smile", "pikachu"]


def test_trigger_comes_first_once() -> None:
    s = scores(smile=0.9, freckles=0.8)
    selection = select_tags(s, LABELS, TagOptions())
    assert selection.caption_tags("zkw woman") == ["zkw woman", "smile", "freckles"]
    assert selection.caption_tags("Freckles") == ["Freckles", "smile"]


@pytest.mark.parametrize("bad", [dict(general_threshold=1.5), dict(character_threshold=-0.1),
                                 dict(rating="top"), dict(sort="alpha")])
def test_bad_options_are_refused_with_a_message(bad: dict) -> None:
    with pytest.raises(ValueError, match="must be"):
        TagOptions(**bad)


def test_caption_modes_merge_without_duplicates() -> None:
    existing = parse_caption("zkw, smile, red hair")
    new = ["zkw", "smile", "hat"]

    def merged(mode: str) -> bytes | None:
        return caption_bytes(existing, TextFormat(), new, mode, trigger="zkw")

    assert merged("overwrite") == b"zkw, smile, hat"
    assert merged("append") == b"zkw, smile, red hair, hat"
    assert merged("prepend") == b"zkw, smile, hat, red hair"
    assert merged("skip") is None


def test_trigger_leads_after_append_and_format_is_kept() -> None:
    existing = parse_caption("A woman standing in a field. red hair")
    data = caption_bytes(existing, TextFormat(bom=True, newline="\r\n", final_newline=True),
                         ["zkw", "smile"], "append", trigger="zkw")
    assert data == "\ufeffzkw, A woman standing in a field. red hair, smile\r\n".encode()
