"""The settings of the "LoRA Lab grid" script: the order `ui()` returns its inputs in, which is
the order `/sdapi/v1/txt2img` takes them as `script_args`, and how they read back from infotext.

No WebUI import here: the API docs, the review and the tests use it outside the WebUI.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

TITLE = "LoRA Lab grid"  # the script's name; the API's script_name is it in lower case
MAX_SEEDS = 100
MAX_SHOWCASE = 100  # = sweep.showcase.MAX_PROMPTS


class GridArgsError(ValueError):
    """A script argument of the wrong type or out of range; the message names it."""


@dataclass(frozen=True)
class GridArgs:
    family: str = ""  # a family key, output name or file stem in the Lora folder
    epochs: tuple[str, ...] = ()  # file stems to sweep; empty: every file of the family
    weights: str = "0.4-1.0 [4]"
    checkpoints: tuple[str, ...] = ()  # empty: the current checkpoint
    baseline: bool = True  # add a "no LoRA" column
    seeds: int = 2  # images per prompt in every cell: seed, seed+1, …
    showcase: str = ""  # Dynamic Prompts templates, one a line; empty: the prompt as written
    showcase_count: int = 1  # how many prompts to expand from the templates
    showcase_seed: int = -1  # -1: the image seed
    wildcards: str = ""  # folder of wildcard files for the templates


ARG_NAMES: tuple[str, ...] = tuple(f.name for f in fields(GridArgs))

# Infotext key of each setting (grid pages carry them; "paste" restores the script's inputs).
INFOTEXT_KEYS: dict[str, str] = {
    "family": "LoRA Lab family", "epochs": "LoRA Lab epochs", "weights": "LoRA Lab weights",
    "checkpoints": "LoRA Lab checkpoints", "baseline": "LoRA Lab baseline", "seeds": "LoRA Lab seeds",
    "showcase": "LoRA Lab showcase", "showcase_count": "LoRA Lab showcase count",
    "showcase_seed": "LoRA Lab showcase seed", "wildcards": "LoRA Lab wildcards",
}


def _text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise GridArgsError(f"{name} must be text, not {value!r:.60}")
    return value


def _names(name: str, value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):  # one name, or a JSON list pasted from infotext
        value = json.loads(value) if value.lstrip().startswith("[") else [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise GridArgsError(f"{name} must be a list of names, not {value!r:.60}")
    return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))


def _integer(name: str, value: Any, low: int, high: int | None) -> int:
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value):
        raise GridArgsError(f"{name} must be a whole number, not {value!r:.60}")
    number = int(value)
    if number < low or (high is not None and number > high):
        limit = f"{low} to {high}" if high is not None else f"at least {low}"
        raise GridArgsError(f"{name} must be {limit}, not {number}")
    return number


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise GridArgsError(f"{name} must be true or false, not {value!r:.60}")
    return value


def parse_args(values: tuple[Any, ...] | list[Any]) -> GridArgs:
    """`GridArgs` from the script's positional arguments (missing trailing ones take defaults)."""
    if len(values) > len(ARG_NAMES):
        raise GridArgsError(f"the script takes {len(ARG_NAMES)} arguments ({', '.join(ARG_NAMES)}), "
                            f"not {len(values)}")
    v = {**asdict(GridArgs()), **dict(zip(ARG_NAMES, values))}
    return GridArgs(
        family=_text("family", v["family"]).strip(),
        epochs=_names("epochs", v["epochs"]),
        weights=_text("weights", v["weights"]),
        checkpoints=_names("checkpoints", v["checkpoints"]),
        baseline=_flag("baseline", v["baseline"]),
        seeds=_integer("seeds", v["seeds"], 1, MAX_SEEDS),
        showcase=_text("showcase", v["showcase"]),
        showcase_count=_integer("showcase_count", v["showcase_count"], 1, MAX_SHOWCASE),
        showcase_seed=_integer("showcase_seed", v["showcase_seed"], -1, None),
        wildcards=_text("wildcards", v["wildcards"]).strip(),
    )

def showcase_templates(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def infotext_fields(args: GridArgs) -> dict[str, str]:
    """The settings as infotext entries; lists as JSON so names with commas survive."""
    values: dict[str, Any] = {
        "family": args.family, "epochs": json.dumps(list(args.epochs)) if args.epochs else "",
        "weights": args.weights,
        "checkpoints": json.dumps(list(args.checkpoints)) if args.checkpoints else "",
        "baseline": args.baseline, "seeds": args.seeds, "showcase": args.showcase.strip(),
        "showcase_count": args.showcase_count if args.showcase.strip() else None,
        "showcase_seed": args.showcase_seed if args.showcase.strip() else None,
        "wildcards": args.wildcards,
    }
    return {INFOTEXT_KEYS[k]: str(v) for k, v in values.items() if v not in ("", None)}


def from_infotext(params: dict[str, str], name: str) -> Any:
    """The value of setting `name` in pasted infotext `params` as its input takes it; None (leave
    the input alone) when the infotext is not from this script."""
    if INFOTEXT_KEYS["family"] not in params:
        return None
    default = getattr(GridArgs(), name)
    raw = params.get(INFOTEXT_KEYS[name])
    try:
        if raw is None:
            value = default
        elif isinstance(default, tuple):
            value = _names(name, raw)
        elif isinstance(default, bool):
            value = _flag(name, raw)
        elif isinstance(default, int):
            value = _integer(name, raw, -1, None)
        else:
            value = raw
    except (GridArgsError, ValueError):
        value = default
    return list(value) if isinstance(value, tuple) else value
