from __future__ import annotations

from pathlib import Path

import pytest

from lora_lab.sweep.family import EpochFile, FamilyError, LoraFamily
from lora_lab.sweep.plan import PlanError, build_plan, eta_seconds, format_duration


def family(name: str = "alice", epochs: tuple[int, ...] = (2, 4)) -> LoraFamily:
    files = [EpochFile(Path(f"/loras/{name}-{e:06d}.safetensors"), f"{name}-{e:06d}", "epoch", e, None, name,
                       "1", None) for e in epochs]
    files.append(EpochFile(Path(f"/loras/{name}.safetensors"), name, "final", None, None, name, "1", None))
    return LoraFamily(name, "1", tuple(files))


PROMPTS = ["photo of alice smiling, <lora:alice:1>", "alice in a forest <lora:style:0.4>"]


def test_cells_run_checkpoint_then_epoch_then_weight() -> None:
    plan = build_plan(family(), [0.5, 1.0], PROMPTS, [7, 8, 9],
                      checkpoints=["sd15.safetensors", "other.ckpt"])

    order = [(c.checkpoint, c.lora, c.weight) for c in plan.cells]
    assert order == [
        (ckpt, lora, w)
        for ckpt in ("sd15.safetensors", "other.ckpt")
        for lora in ("alice-000002", "alice-000004", "alice")
        for w in (0.5, 1.0)
    ]
    assert plan.images_per_cell == 2 * 3
    assert plan.total_images == 12 * 6
    assert [c.index for c in plan.cells] == list(range(12))


def test_every_cell_has_the_same_prompts_and_seeds_apart_from_its_tag() -> None:
    plan = build_plan(family(), [0.5, 1.0], PROMPTS, [7, 8], negative_prompt="blurry, <lora:alice:1>")
    cell = plan.cell_at("", 1, 1)

    assert cell.prompts == ("photo of alice smiling, <lora:alice-000004:1>",
                            "alice in a forest <lora:style:0.4> <lora:alice-000004:1>")
    assert all(c.seeds == (7, 8) for c in plan.cells)
    assert all(c.negative_prompt == "blurry, <lora:alice:1>" for c in plan.cells)
    assert plan.prompts == ("photo of alice smiling", "alice in a forest <lora:style:0.4>")
    assert cell.images == [(0, 7), (0, 8), (1, 7), (1, 8)]


def test_weight_zero_becomes_one_baseline_cell_per_checkpoint() -> None:
    plan = build_plan(family(), [0, 0.6, 1], PROMPTS[:1], [1], checkpoints=["a", "b"])

    assert [c.label for c in plan.columns] == ["no LoRA", "0.6", "1"]
    baseline = [c for c in plan.cells if c.is_baseline]
    assert [(c.checkpoint, c.row, c.col) for c in baseline] == [("a", None, 0), ("b", None, 0)]
    assert baseline[0].prompts == ("photo of alice smiling",)
    # the one baseline cell stands in every row of its checkpoint's grid
    assert plan.cell_at("a", 2, 0) is baseline[0]
    assert len(plan.cells) == 2 * (1 + 3 * 2)


def test_a_subset_of_epochs_and_duplicate_inputs() -> None:
    plan = build_plan(family(), [1, 1.0], PROMPTS[:1], [5, 5, 6], epochs=["alice", "alice-000002"],
                      checkpoints=["a", "a "])

    assert [r.lora for r in plan.rows] == ["alice-000002", "alice"]
    assert plan.seeds == (5, 6)
    assert plan.checkpoints == ("a",)
    with pytest.raises(FamilyError, match="not a file of LoRA"):
        build_plan(family(), [1], PROMPTS, [1], epochs=["bob"])


def test_plans_that_cannot_run_say_why() -> None:
    with pytest.raises(PlanError, match="no weights"):
        build_plan(family(), [], PROMPTS, [1])
    with pytest.raises(PlanError, match="no prompts"):
        build_plan(family(), [1], [], [1])
    with pytest.raises(PlanError, match="no seeds"):
        build_plan(family(), [1], PROMPTS, [])


def test_file_names_dynamic_prompts_would_mangle_are_flagged() -> None:
    plan = build_plan(family("my#lora"), [1], ["x"], [1])
    assert any("Dynamic Prompts" in w for w in plan.warnings)


def test_cell_keys_are_stable_and_unique() -> None:
    a = build_plan(family(), [0, 0.5], PROMPTS, [1], checkpoints=["x", "y"])
    b = build_plan(family(), [0, 0.5], PROMPTS, [1], checkpoints=["x", "y"])
    assert [c.key for c in a.cells] == [c.key for c in b.cells]
    assert len({c.key for c in a.cells}) == len(a.cells)


def test_eta_uses_recent_median_so_one_slow_load_does_not_dominate() -> None:
    assert eta_seconds([], 10) is None
    assert eta_seconds([30.0, 2.0, 2.0, 2.0], 10) == 20.0
    assert format_duration(20) == "20 s"
    assert format_duration(125) == "2 min 05 s"
    assert format_duration(3 * 3600 + 60) == "3 h 01 min"
