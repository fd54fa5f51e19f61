"""The epoch × weight × checkpoint sweep and its hit-rate review, free of any WebUI import.

A run, as the WebUI script drives it: `find_family` → `parse_weights` → `expand_showcase` →
`build_plan` → `new_manifest`; per cell, render `cell.prompts` × `cell.seeds` and
`record_image` + `save()`; then `layout_pages` / `render_page` / `add_page`. Review:
`load_manifest` → `load_ratings` / `set_ratings` → `hit_rates` → `recommend` → `promote`.
"""
from __future__ import annotations

import importlib
from typing import Any

# Imported on first use (PEP 562), so that `lora_lab.sweep.family` alone does not load
# dynamicprompts and Pillow: the WebUI imports parts of this at start-up.
_EXPORTS = {
    "EpochFile": "family", "FamilyError": "family", "LoraFamily": "family", "find_family": "family",
    "list_families": "family", "read_safetensors_metadata": "family", "ManifestError": "manifest",
    "SweepManifest": "manifest", "load_manifest": "manifest", "new_manifest": "manifest",
    "PageError": "pages", "PageLayout": "pages", "layout_pages": "pages", "page_title": "pages",
    "render_page": "pages", "Cell": "plan", "PlanError": "plan", "SweepPlan": "plan", "build_plan": "plan",
    "eta_seconds": "plan", "format_duration": "plan", "PromptError": "prompts", "set_lora_tag": "prompts",
    "HIT": "review", "MISS": "review", "HitRates": "review", "Recommendation": "review",
    "ReviewError": "review", "Tally": "review", "hit_rates": "review", "load_ratings": "review",
    "promote": "review", "recommend": "review", "set_ratings": "review", "ShowcaseError": "showcase",
    "disable_dynamic_prompts": "showcase", "expand_showcase": "showcase", "is_fixed_point": "showcase",
    "seeds_from": "showcase", "WeightError": "weights", "format_weight": "weights",
    "parse_weights": "weights",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
