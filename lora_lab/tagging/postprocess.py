"""From one image's scores to caption tags: thresholds, MCut, rating, exclusions, formatting."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..dataset.captions import tag_key
from .labels import CATEGORY_NAMES, CHARACTER, GENERAL, RATING, Labels

# Emoticons whose underscores are the face, not word separators.
KAOMOJI = frozenset({
    "0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3", "6_9",
    ">_o", "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||", "-_-", ";_;", "^_-"})
MCUT_CHARACTER_FLOOR = 0.15
RATING_PLACES = ("off", "first", "last")
SORTS = ("confidence", "model")


@dataclass(frozen=True)
class TagOptions:
    general_threshold: float = 0.35
    character_threshold: float = 0.85
    general_mcut: bool = False
    character_mcut: bool = False
    rating: str = "off"  # off | first | last: the most likely rating tag
    exclude: tuple[str, ...] = ()  # in any spelling: "long_hair", "long hair", "saber \\(fate\\)"
    replace_underscores: bool = True
    escape_parentheses: bool = False
    sort: str = "confidence"  # or "model": the order of selected_tags.csv
    trigger: str = ""  # placed first

    def __post_init__(self) -> None:
        for name in ("general_threshold", "character_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name.replace('_', ' ')} must be between 0 and 1, got {value}")
        if self.rating not in RATING_PLACES:
            raise ValueError(f"rating must be one of {', '.join(RATING_PLACES)}, got {self.rating!r}")
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, got {self.sort!r}")
        object.__setattr__(self, "exclude", tuple(t.strip() for t in self.exclude if t.strip()))
        object.__setattr__(self, "trigger", self.trigger.strip())


@dataclass(frozen=True)
class ScoredTag:
    tag: str  # as written into the caption
    label: str  # as in selected_tags.csv
    score: float
    category: str  # rating | general | character


@dataclass
class Selection:
    tags: list[ScoredTag]
    general_threshold: float  # the thresholds actually used (MCut's, when on)
    character_threshold: float
    excluded: list[str] = field(default_factory=list)

    def caption_tags(self, trigger: str = "") -> list[str]:
        tags = [t.tag for t in self.tags]
        if not trigger:
            return tags
        return [trigger] + [t for t in tags if tag_key(t) != tag_key(trigger)]


def mcut_threshold(scores: np.ndarray) -> float:
    """Maximum Cut Thresholding (Largeron et al. 2012): the midpoint of the largest gap between
    consecutive sorted scores."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if len(ordered) < 2:
        return float(ordered[0]) if len(ordered) else 1.0
    gaps = ordered[:-1] - ordered[1:]
    t = int(np.argmax(gaps))
    return float((ordered[t] + ordered[t + 1]) / 2)


def format_tag(label: str, replace_underscores: bool = True, escape_parentheses: bool = False) -> str:
    tag = label
    if replace_underscores and label not in KAOMOJI:
        tag = tag.replace("_", " ")
    if escape_parentheses:
        tag = tag.replace("(", "\\(").replace(")", "\\)")
    return tag


def select_tags(scores: np.ndarray, labels: Labels, options: TagOptions) -> Selection:
    """The tags one image gets (without the trigger), in caption order."""
    scores = np.asarray(scores, dtype=np.float32)
    general = labels.indices(GENERAL)
    character = labels.indices(CHARACTER)
    general_threshold = options.general_threshold
    if options.general_mcut and len(general):
        general_threshold = mcut_threshold(scores[general])
    character_threshold = options.character_threshold
    if options.character_mcut and len(character):
        character_threshold = max(mcut_threshold(scores[character]), MCUT_CHARACTER_FLOOR)
    picked = np.concatenate([general[scores[general] >= general_threshold],
                             character[scores[character] >= character_threshold]])
    picked.sort()
    if options.sort == "confidence":
        picked = picked[np.argsort(-scores[picked], kind="stable")]

    excluded_keys = {tag_key(t) for t in options.exclude}
    chosen: list[ScoredTag] = []
    excluded: list[str] = []
    for i in picked:
        label = labels.names[i]
        if tag_key(label) in excluded_keys:
            excluded.append(label)
            continue
        chosen.append(_scored(label, float(scores[i]), int(labels.categories[i]), options))

    ratings = labels.indices(RATING)
    if options.rating != "off" and len(ratings):
        best = ratings[int(np.argmax(scores[ratings]))]
        rating = _scored(labels.names[best], float(scores[best]), RATING, options)
        chosen = [rating] + chosen if options.rating == "first" else chosen + [rating]
    return Selection(chosen, general_threshold, character_threshold, excluded)


def _scored(label: str, score: float, category: int, options: TagOptions) -> ScoredTag:
    return ScoredTag(format_tag(label, options.replace_underscores, options.escape_parentheses),
                     label, score, CATEGORY_NAMES.get(category, str(category)))
