"""`selected_tags.csv`: one row per model output column (tag_id,name,category,count)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATING, GENERAL, CHARACTER = 9, 0, 4
CATEGORY_NAMES = {RATING: "rating", GENERAL: "general", CHARACTER: "character"}


class LabelsError(ValueError):
    pass


@dataclass(frozen=True)
class Labels:
    names: tuple[str, ...]
    categories: np.ndarray  # int per column

    def __len__(self) -> int:
        return len(self.names)

    def indices(self, category: int) -> np.ndarray:
        return np.flatnonzero(self.categories == category)


def read_labels(path: Path) -> Labels:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LabelsError(f"{path}: missing (a tagger folder needs model.onnx and "
                          "selected_tags.csv)") from None
    except UnicodeDecodeError:
        raise LabelsError(f"{path}: not UTF-8 text") from None
    rows = csv.DictReader(text.splitlines())
    if not rows.fieldnames or not {"name", "category"} <= set(rows.fieldnames):
        raise LabelsError(f"{path}: expected a header with 'name' and 'category' columns, "
                          f"found {rows.fieldnames}")
    names: list[str] = []
    categories: list[int] = []
    for line, row in enumerate(rows, start=2):
        try:
            categories.append(int(row["category"]))
        except (TypeError, ValueError):
            raise LabelsError(f"{path}, line {line}: category {row['category']!r} is not a number") from None
        names.append((row["name"] or "").strip())
    if not names:
        raise LabelsError(f"{path}: no tags")
    return Labels(tuple(names), np.array(categories, dtype=np.int64))
