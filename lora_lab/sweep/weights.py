"""The weight list of a sweep: `0.4-1.0 [4]` (inclusive, 4 values), `0-1 (+0.25)` (step),
`0.5, 0.8, 1` and any mix of these, separated by commas, semicolons or new lines."""
from __future__ import annotations

import re

MAX_WEIGHTS = 100
DECIMALS = 4

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_SINGLE = re.compile(rf"^{_NUM}$")
_COUNT = re.compile(rf"^({_NUM})\s*-\s*({_NUM})\s*\[\s*(\d+)\s*\]$")
_STEP = re.compile(rf"^({_NUM})\s*-\s*({_NUM})\s*\(\s*([+-]?)\s*(\d+(?:\.\d*)?|\.\d+)\s*\)$")
_BARE_RANGE = re.compile(rf"^({_NUM})\s*-\s*({_NUM})$")
_HELP = "write a number, a range with a count like 0.4-1.0 [4] or a range with a step like 0-1 (+0.25)"


class WeightError(ValueError):
    """A weight list that cannot be read; the message names the part and how to write it."""


def _round(x: float) -> float:
    return round(x, DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def format_weight(weight: float) -> str:
    """`1`, `0.25`, `-0.5`: how a weight appears in a tag and in labels."""
    text = f"{_round(weight):.{DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _count_range(start: float, end: float, count: int, item: str) -> list[float]:
    if count < 1:
        raise WeightError(f"{item!r}: the count in [ ] must be at least 1")
    if count > MAX_WEIGHTS:
        raise WeightError(f"{item!r}: {count} weights is more than the {MAX_WEIGHTS} a sweep allows")
    if count == 1:
        return [start]
    return [start + (end - start) * i / (count - 1) for i in range(count)]


def _step_range(start: float, end: float, step: float, item: str) -> list[float]:
    if step == 0:
        raise WeightError(f"{item!r}: the step must not be zero")
    if (end - start) * step < 0:
        direction = "-" if step > 0 else "+"
        raise WeightError(f"{item!r}: the step goes away from {end:g}; use ({direction}{abs(step):g})")
    count = int(abs(end - start) / abs(step) + 1e-9) + 1
    if count > MAX_WEIGHTS:
        raise WeightError(f"{item!r}: {count} weights is more than the {MAX_WEIGHTS} a sweep allows")
    return [start + step * i for i in range(count)]


def _parse_item(item: str) -> list[float]:
    if _SINGLE.match(item):
        return [float(item)]
    if m := _COUNT.match(item):
        return _count_range(float(m[1]), float(m[2]), int(m[3]), item)
    if m := _STEP.match(item):
        step = float(m[4])
        return _step_range(float(m[1]), float(m[2]), -step if m[3] == "-" else step, item)
    if m := _BARE_RANGE.match(item):
        span = f"{m[1]}-{m[2]}"
        raise WeightError(f"{item!r}: a range needs a count or a step, e.g. {span} [4] or {span} (+0.25)")
    raise WeightError(f"can't read {item!r}: {_HELP}")


def parse_weights(text: str) -> list[float]:
    """The weights in the order written, rounded to 4 decimals, each once."""
    items = [part.strip() for part in re.split(r"[,;\n]", text)]
    items = [part for part in items if part]
    if not items:
        raise WeightError(f"no weights given: {_HELP}")
    out: list[float] = []
    for item in items:
        for weight in _parse_item(item):
            weight = _round(weight)
            if weight not in out:
                out.append(weight)
        if len(out) > MAX_WEIGHTS:
            raise WeightError(f"{len(out)} weights is more than the {MAX_WEIGHTS} a sweep allows")
    return out
