"""Showcase prompts: templates in dynamicprompts syntax expanded once, with a fixed seed, into the
prompts every cell of a sweep uses identically.

`{a|b}` variants, `{2::a|b}` weights and `__name__` wildcards from a folder are expanded by
`RandomPromptGenerator`, prompt i with seed `seed + i` (the generator reseeds before each prompt),
so the same templates, seed and wildcard files give the same prompts on every run. Wildcard values
are sorted and de-duplicated by the library, so file order does not matter.

dynamicprompts has no escape syntax: a literal `{`, `#`, `$` or `%` cannot survive a pass. So
the expanded prompts are checked to be fixed points (a second pass returns them unchanged), which
holds because an expansion can only emit literal text; missing wildcards, which the library would
leave as `__name__`, are reported as errors instead.

The sd-dynamic-prompts extension still runs its `process()` hook in every cell; the glue switches
it off there with `disable_dynamic_prompts`, or it would rewrite `p.all_seeds` and `p.n_iter`.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from dynamicprompts.generators import RandomPromptGenerator
from dynamicprompts.wildcards import WildcardManager
from dynamicprompts.wildcards.values import WildcardValues

MAX_PROMPTS = 100
# sd-dynamic-prompts: Script.title() is f"Dynamic Prompts v{VERSION}" and the first component
# ui() returns (so the first of its script args) is the "Dynamic Prompts enabled" checkbox.
DYNAMIC_PROMPTS_TITLE = "dynamic prompts"


class ShowcaseError(ValueError):
    """Templates that cannot be expanded; the message names the template and the problem."""


class _RecordingWildcards(WildcardManager):
    """Notes the wildcards that had no values; the library would leave them in the prompt."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(path)
        self.missing: list[str] = []

    def get_values(self, wildcard: str) -> WildcardValues:
        values = super().get_values(wildcard)
        if len(values) == 0 and wildcard not in self.missing:
            self.missing.append(wildcard)
        return values


def _expand(generator: RandomPromptGenerator, template: str, seed: int) -> str:
    # The library logs missing wildcards as warnings; we raise them as errors instead.
    logger = logging.getLogger("dynamicprompts")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return generator.generate(template, 1, seeds=[seed])[0]
    finally:
        logger.setLevel(level)


def is_fixed_point(prompt: str) -> bool:
    """Whether a dynamicprompts pass (as the extension would run in a cell) leaves `prompt` as is."""
    try:
        return _expand(RandomPromptGenerator(_RecordingWildcards(None), seed=0), prompt, 0) == prompt
    except Exception:  # any parse error means the extension would not pass it through
        return False


def expand_showcase(
    templates: str | Sequence[str], count: int, seed: int, wildcard_dir: Path | None = None,
) -> list[str]:
    """Up to `count` distinct prompts; prompt i comes from template i mod len(templates).

    Identical expansions are kept once: with the same seeds they would only repeat images."""
    if isinstance(templates, str):
        templates = [templates]
    if not templates:
        raise ShowcaseError("no prompt template given")
    if not 1 <= count <= MAX_PROMPTS:
        raise ShowcaseError(f"the number of showcase prompts must be 1 to {MAX_PROMPTS}, not {count}")
    if wildcard_dir is not None and not Path(wildcard_dir).is_dir():
        raise ShowcaseError(f"wildcard folder {wildcard_dir} does not exist")
    wildcards = _RecordingWildcards(Path(wildcard_dir) if wildcard_dir is not None else None)
    generator = RandomPromptGenerator(wildcards, seed=seed)
    prompts: list[str] = []
    for i in range(count):
        which = i % len(templates)
        where = f"template {which + 1}" if len(templates) > 1 else "the prompt"
        try:
            prompt = _expand(generator, templates[which], seed + i)
        except Exception as e:  # pyparsing and generator errors carry the position in the text
            raise ShowcaseError(f"{where} is not valid dynamic-prompts syntax: {e}") from None
        if wildcards.missing:
            names = ", ".join(f"__{name}__" for name in wildcards.missing)
            source = f"in {wildcard_dir}" if wildcard_dir is not None else "(no wildcard folder set)"
            raise ShowcaseError(f"{where} uses wildcards with no values {source}: {names}")
        if not is_fixed_point(prompt):
            raise ShowcaseError(
                f"{where} expands to text that a second dynamic-prompts pass would change: {prompt!r}"
            )
        if prompt not in prompts:
            prompts.append(prompt)
    return prompts


def seeds_from(seed: int, count: int) -> list[int]:
    """`count` consecutive image seeds from `seed`, as a WebUI batch would use them."""
    if seed < 0:
        raise ValueError("resolve a random seed (-1) to a fixed one before planning a sweep")
    if count < 1:
        raise ValueError("a sweep needs at least one seed")
    return [seed + i for i in range(count)]


class AlwaysOnScript(Protocol):
    args_from: int

    def title(self) -> str: ...


def disable_dynamic_prompts(script_args: Sequence[Any],
                            alwayson_scripts: Sequence[AlwaysOnScript]) -> tuple[Any, ...]:
    """`script_args` with the sd-dynamic-prompts extension switched off (unchanged if absent).

    For a per-cell copy of `p`: `pc.script_args = disable_dynamic_prompts(p.script_args,
    p.scripts.alwayson_scripts)`; the user's own setting is untouched."""
    args = list(script_args)
    for script in alwayson_scripts:
        if script.title().lower().startswith(DYNAMIC_PROMPTS_TITLE) and script.args_from < len(args):
            args[script.args_from] = False
    return tuple(args)
