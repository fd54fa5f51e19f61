"""Setting the swept LoRA's `<lora:…>` tag in a prompt, leaving everything else as written.

How the WebUI reads `<lora:NAME:A:B:C:te=…:unet=…:dyn=…>` (extensions-builtin/Lora): the TE
multiplier is A (default 1) unless `te=` is given; the UNet multiplier is B, else `unet=`, else the
TE multiplier (after `te=`); C or `dyn=` is the DyLoRA rank. Items with one `=` are named, the rest
positional, in any order.

A cell's weight is the LoRA weight: it replaces A and so drives both TE and UNet, unless the
prompt's tag pins one of them. A pinned TE (`te=x`) stays x and the UNet follows the cell weight
(written as `unet=w`, since otherwise the UNet would copy the pinned TE). A pinned UNet (B or
`unet=`) stays as written and the TE follows the cell weight. A tag that pins both would make the
sweep change nothing and is refused. Other items (`dyn`, `lbw=`, `start=`, …) are kept verbatim.
A missing tag is appended; weight None (the no-LoRA baseline) removes the tag.
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from .weights import format_weight

# The WebUI's extra-network pattern, limited to the two names the Lora extension registers.
_TAG = re.compile(r"<(lora|lyco):([^>]+)>")


class PromptError(ValueError):
    """A prompt whose LoRA tag cannot be set; the message says what to change."""


@dataclass(frozen=True)
class LoraTag:
    start: int
    end: int
    kind: str  # "lora" or "lyco"
    positional: tuple[str, ...]  # [0] is the name
    named: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        return self.positional[0] if self.positional else ""


def find_tags(prompt: str) -> list[LoraTag]:
    tags = []
    for m in _TAG.finditer(prompt):
        positional: list[str] = []
        named: list[tuple[str, str]] = []
        for item in m[2].split(":"):
            parts = item.split("=", 2)
            if len(parts) == 2:
                named.append((parts[0], parts[1]))
            else:
                positional.append(item)
        tags.append(LoraTag(m.start(), m.end(), m[1], tuple(positional), tuple(named)))
    return tags


def family_tags(prompt: str, names: Collection[str]) -> list[LoraTag]:
    """The tags in `prompt` whose name is one of `names` (compared case-insensitively)."""
    wanted = {n.lower() for n in names}
    return [tag for tag in find_tags(prompt) if tag.name.strip().lower() in wanted]


def cell_tag(lora: str, weight: float, template: LoraTag | None = None) -> str:
    """The tag that loads file `lora` at `weight`, keeping the template tag's other settings."""
    w = format_weight(weight)
    if template is None:
        return f"<lora:{lora}:{w}>"
    named = dict(template.named)
    unet_pinned = len(template.positional) > 2 or "unet" in named
    if "te" in named and unet_pinned:
        raise PromptError(
            f"<{template.kind}:{template.name}:…> sets both te= and unet=, so a weight sweep would "
            "change nothing; remove one of them"
        )
    items = [lora, w, *template.positional[2:]]
    items += [f"{k}={v}" for k, v in template.named]
    if "te" in named:
        items.append(f"unet={w}")
    return f"<{template.kind}:{':'.join(items)}>"


def _cut(prompt: str, start: int, end: int) -> str:
    """`prompt` without [start:end], tidying the comma and spaces the tag leaves behind."""
    left, right = prompt[:start].rstrip(" \t"), prompt[end:].lstrip(" \t")
    if right.startswith(",") and (not left or left.endswith(",")):
        right = right[1:].lstrip(" \t")
    if not right:
        left = left.rstrip(",").rstrip(" \t")
    if not left or not right or left.endswith("\n") or right.startswith(("\n", ",")):
        return left + right
    return f"{left} {right}"


def set_lora_tag(prompt: str, names: Collection[str], lora: str | None, weight: float | None) -> str:
    """`prompt` with the tag of the LoRA known by `names` set to file `lora` at `weight`.

    Only that LoRA's tag changes; other tags and text stay. `lora`/`weight` None removes it."""
    tags = family_tags(prompt, names)
    if len(tags) > 1:
        found = ", ".join(t.name for t in tags)
        raise PromptError(f"the prompt has {len(tags)} tags for this LoRA ({found}); keep one")
    if lora is None or weight is None:
        return _cut(prompt, tags[0].start, tags[0].end) if tags else prompt
    if tags:
        tag = tags[0]
        return prompt[: tag.start] + cell_tag(lora, weight, tag) + prompt[tag.end:]
    head = prompt.rstrip()
    return f"{head} {cell_tag(lora, weight)}" if head else cell_tag(lora, weight)


def multipliers(tag: LoraTag) -> tuple[float, float]:
    """(text encoder, UNet) multipliers of a tag, by the WebUI's rules (module docstring)."""
    named = dict(tag.named)

    def number(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise PromptError(f"<{tag.kind}:{':'.join(tag.positional)}>: {text!r} is not a number") from None

    te = number(named["te"]) if "te" in named else \
        number(tag.positional[1]) if len(tag.positional) > 1 else 1.0
    unet = number(tag.positional[2]) if len(tag.positional) > 2 else \
        number(named["unet"]) if "unet" in named else te
    return te, unet


def without_lora_tags(prompt: str) -> str:
    """`prompt` with every `<lora:…>`/`<lyco:…>` tag cut out."""
    for tag in reversed(find_tags(prompt)):
        prompt = _cut(prompt, tag.start, tag.end)
    return prompt
