"""The epoch × weight × checkpoint sweep and its hit-rate review, free of any WebUI import.

A run, as the WebUI script drives it: `find_family` → `parse_weights` → `expand_showcase` →
`build_plan` → `new_manifest`; per cell, render `cell.prompts` × `cell.seeds` and
`record_image` + `save()`; then `layout_pages` / `render_page` / `add_page`. Review:
`load_manifest` → `load_ratings` / `set_ratings` → `hit_rates` → `recommend` → `promote`.
"""
from .family import EpochFile, FamilyError, LoraFamily, find_family, list_families, read_safetensors_metadata
from .manifest import ManifestError, SweepManifest, load_manifest, new_manifest
from .pages import PageError, PageLayout, layout_pages, page_title, render_page
from .plan import Cell, PlanError, SweepPlan, build_plan, eta_seconds, format_duration
from .prompts import PromptError, set_lora_tag
from .review import (
    HIT, MISS, HitRates, Recommendation, ReviewError, Tally, hit_rates, load_ratings, promote, recommend,
    set_ratings,
)
from .showcase import ShowcaseError, disable_dynamic_prompts, expand_showcase, is_fixed_point, seeds_from
from .weights import WeightError, format_weight, parse_weights

__all__ = [
    "Cell", "EpochFile", "FamilyError", "HIT", "HitRates", "LoraFamily", "MISS", "ManifestError",
    "PageError", "PageLayout", "PlanError", "PromptError", "Recommendation", "ReviewError", "ShowcaseError",
    "SweepManifest", "SweepPlan", "Tally", "WeightError", "build_plan", "disable_dynamic_prompts",
    "eta_seconds", "expand_showcase", "find_family", "format_duration", "format_weight", "hit_rates",
    "is_fixed_point", "layout_pages", "list_families", "load_manifest", "load_ratings", "new_manifest",
    "page_title", "parse_weights", "promote", "read_safetensors_metadata", "recommend", "render_page",
    "seeds_from", "set_lora_tag", "set_ratings",
]
