"""`[LoRA Lab] epoch` and `[LoRA Lab] weight` axes for the WebUI's built-in X/Y/Z plot.

Both change one `<lora:…>` tag in the prompt: the only one, or else the first whose name is a
LoRA in the Lora folder. Epoch values are epoch numbers (`1-10 (+3)`, `2, 4, final`) of that
LoRA's family; weight values take LoRA Lab's weight syntax (`0.4-1.0 [4]`, `0-1 (+0.25)`).
Added from `on_before_ui`, after every script has loaded and before X/Y/Z builds its UI.
"""
from __future__ import annotations

from typing import Any

from ...sweep.family import EpochFile, FamilyError, LoraFamily, find_family
from ...sweep.prompts import LoraTag, family_tags, find_tags, set_lora_tag
from ...sweep.weights import format_weight, parse_weights

EPOCH_LABEL = "[LoRA Lab] epoch"
WEIGHT_LABEL = "[LoRA Lab] weight"
FINAL = "final"
XYZ_MODULE = "xyz_grid.py"  # the WebUI loads scripts by file name, not as importable modules

# Tag name (lower case) → family, filled when an axis is confirmed: X/Y/Z confirms every axis
# before its first cell, and the cells would otherwise rescan the Lora folder each.
_families: dict[str, LoraFamily] = {}


class AxisError(RuntimeError):
    """A prompt or value the axis cannot use; X/Y/Z shows the message before rendering."""


def _lora_dir() -> str:
    from .current import get_host

    return str(get_host().lora_dir())


def _family(name: str) -> LoraFamily:
    key = name.strip().lower()
    if key not in _families:
        _families[key] = find_family(_lora_dir(), name)
    return _families[key]


def _swept(prompt: str, need_family: bool) -> tuple[LoraTag, LoraFamily | None]:
    tags = [tag for tag in find_tags(prompt) if tag.name.strip()]
    if not tags:
        raise AxisError("the LoRA Lab axes change a <lora:NAME:weight> tag, and the prompt has none")
    problems = []
    for tag in tags:
        try:
            return tag, _family(tag.name)
        except FamilyError as e:
            problems.append(str(e))
    if len(tags) == 1 and not need_family:
        return tags[0], None
    raise AxisError("; ".join(problems))


def _epoch_file(family: LoraFamily, value: str) -> EpochFile:
    if value == FINAL:
        finals = [f for f in family.files if f.kind == "final"]
        return finals[-1] if finals else family.files[-1]
    matches = [f for f in family.files if f.epoch == int(value)]
    if not matches:
        have = ", ".join(str(e) for e in dict.fromkeys(f.epoch for f in family.files if f.epoch is not None))
        raise AxisError(f"LoRA {family.name!r} has no epoch {value} (it has {have or 'no numbered epochs'})")
    rank = {"epoch": 0, "final": 1}
    return min(matches, key=lambda f: rank.get(f.kind, 2))


def _rename(prompt: str, tag: LoraTag, name: str) -> str:
    inner = prompt[tag.start + len(tag.kind) + 2: tag.end - 1].split(":")
    at = next(i for i, item in enumerate(inner) if len(item.split("=", 2)) != 2)
    inner[at] = name
    return f"{prompt[:tag.start]}<{tag.kind}:{':'.join(inner)}>{prompt[tag.end:]}"


def _hr_prompt(p: Any) -> str:
    """The hires-fix prompt when it is set apart from the prompt (else it follows the prompt)."""
    hr_prompt = getattr(p, "hr_prompt", "")
    return hr_prompt if isinstance(hr_prompt, str) else ""


def prepare_epochs(text: str) -> list[str]:
    """`1-10 (+3), final` → ["1", "4", "7", "10", "final"]."""
    out: list[str] = []
    for item in text.replace(";", ",").split(","):
        item = item.strip()
        if item.lower() in (FINAL, "last"):
            out.append(FINAL)
        elif item:
            numbers = parse_weights(item)
            if any(n != int(n) or n < 0 for n in numbers):
                raise AxisError(f"{item!r}: epochs are whole numbers (or 'final')")
            out += [str(int(n)) for n in numbers]
    if not out:
        raise AxisError("no epochs given: write numbers like 1-10 (+3), or final")
    return list(dict.fromkeys(out))


def prepare_weights(text: str) -> list[str]:
    return [format_weight(w) for w in parse_weights(text)]


def confirm_epochs(p: Any, values: list[str]) -> None:
    _families.clear()
    _, family = _swept(p.prompt, need_family=True)
    for value in values:
        _epoch_file(family, value)  # type: ignore[arg-type]


def confirm_weights(p: Any, values: list[float]) -> None:
    _families.clear()
    tag, family = _swept(p.prompt, need_family=False)
    set_lora_tag(p.prompt, family.tag_names if family else {tag.name}, tag.name, 1.0)  # refuses te= + unet=


def apply_epoch(p: Any, value: str, values: list[str]) -> None:
    tag, family = _swept(p.prompt, need_family=True)
    name = _epoch_file(family, value).name  # type: ignore[arg-type]
    p.prompt = _rename(p.prompt, tag, name)
    hr_tags = family_tags(_hr_prompt(p), family.tag_names)  # type: ignore[union-attr]
    if hr_tags:
        p.hr_prompt = _rename(p.hr_prompt, hr_tags[0], name)


def apply_weight(p: Any, value: float, values: list[float]) -> None:
    tag, family = _swept(p.prompt, need_family=False)
    names = family.tag_names if family else frozenset({tag.name})
    p.prompt = set_lora_tag(p.prompt, names, tag.name, value)
    if family_tags(_hr_prompt(p), names):
        p.hr_prompt = set_lora_tag(p.hr_prompt, names, tag.name, value)


def _label_epoch(p: Any, option: Any, value: str) -> str:
    return "final" if value == FINAL else f"epoch {value}"


def _label_weight(p: Any, option: Any, value: float) -> str:
    return f"weight {format_weight(value)}"


def add_axes(xyz_grid: Any) -> None:
    """Append the two axes to `xyz_grid.axis_options` (once)."""
    if any(option.label in (EPOCH_LABEL, WEIGHT_LABEL) for option in xyz_grid.axis_options):
        return
    xyz_grid.axis_options.extend([
        xyz_grid.AxisOption(EPOCH_LABEL, str, apply_epoch, format_value=_label_epoch, confirm=confirm_epochs,
                            cost=0.5, prepare=prepare_epochs),
        xyz_grid.AxisOption(WEIGHT_LABEL, float, apply_weight, format_value=_label_weight,
                            confirm=confirm_weights, prepare=prepare_weights),
    ])


def on_before_ui() -> None:
    from modules import scripts

    found = [d.module for d in scripts.scripts_data if d.script_class.__module__ == XYZ_MODULE]
    if found:
        add_axes(found[0])
