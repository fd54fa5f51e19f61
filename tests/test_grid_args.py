"""The grid script's arguments (API order, checks, infotext round trip) and the X/Y/Z axis value
parsers; the parts of the WebUI side that run without the WebUI."""
from __future__ import annotations

import pytest

from lora_lab.sweep.grid_args import (
    ARG_NAMES, GridArgs, GridArgsError, from_infotext, infotext_fields, parse_args,
)
from lora_lab.hosts.webui.xyz_axes import AxisError, prepare_epochs, prepare_weights


def test_arguments_come_in_the_documented_order_with_defaults_for_the_rest() -> None:
    assert ARG_NAMES == ("family", "epochs", "weights", "checkpoints", "baseline", "seeds", "showcase",
                         "showcase_count", "showcase_seed", "wildcards")
    args = parse_args(["alice", ["alice-000002", "alice-000002"], "0.5, 1", None, False, 3.0])

    assert args == GridArgs(family="alice", epochs=("alice-000002",), weights="0.5, 1", baseline=False,
                            seeds=3)


@pytest.mark.parametrize(("values", "reason"), [
    (["a", [], "1", [], True, 0], "seeds must be 1 to 100, not 0"),
    (["a", [], "1", [], True, 2.5], "seeds must be a whole number"),
    (["a", "x", "1", [], "yes"], "baseline must be true or false"),
    (["a", [1], "1"], "epochs must be a list of names"),
    ([None] * 11, "takes 10 arguments"),
])
def test_bad_arguments_are_named(values: list[object], reason: str) -> None:
    with pytest.raises(GridArgsError, match=reason):
        parse_args(values)


def test_settings_survive_infotext_and_pasting_other_infotext_changes_nothing() -> None:
    args = GridArgs(family="alice", epochs=("a, b", "c"), checkpoints=("m1.safetensors",), seeds=4,
                    showcase="a {x|y}\nb", showcase_count=3)
    fields = infotext_fields(args)
    pasted = {name: from_infotext(fields, name) for name in ARG_NAMES}

    assert parse_args([pasted[name] for name in ARG_NAMES]) == args
    assert from_infotext({"Steps": "20"}, "weights") is None


def test_axis_values() -> None:
    assert prepare_epochs("1-7 (+3), final, 4") == ["1", "4", "7", "final"]
    assert prepare_weights("0.4-1.0 [4]") == ["0.4", "0.6", "0.8", "1"]
    with pytest.raises(AxisError, match="whole numbers"):
        prepare_epochs("1.5")
    with pytest.raises(ValueError, match="needs a count or a step"):
        prepare_weights("0-1")
