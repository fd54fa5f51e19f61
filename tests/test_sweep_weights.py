from __future__ import annotations

import pytest

from lora_lab.sweep.weights import MAX_WEIGHTS, WeightError, format_weight, parse_weights


@pytest.mark.parametrize(("text", "expected"), [
    ("0.4-1.0 [4]", [0.4, 0.6, 0.8, 1.0]),
    ("0.5,0.8,1", [0.5, 0.8, 1.0]),
    ("0-1 (+0.25)", [0.0, 0.25, 0.5, 0.75, 1.0]),
    ("1-0 (-0.5)", [1.0, 0.5, 0.0]),
    ("0.2-0.4 (+0.1); 1\n0.3, 0.9", [0.2, 0.3, 0.4, 1.0, 0.9]),
    ("-1-0 [3]", [-1.0, -0.5, 0.0]),
    ("0.7-0.9 [1]", [0.7]),
    (" .5 , 1. ", [0.5, 1.0]),
])
def test_weight_forms(text: str, expected: list[float]) -> None:
    assert parse_weights(text) == expected


def test_duplicates_are_dropped_keeping_first_order_and_floats_are_rounded() -> None:
    assert parse_weights("1, 0.5, 1.0, 0.1-0.3 (+0.1), 0.30000001") == [1.0, 0.5, 0.1, 0.2, 0.3]
    assert parse_weights("0-1 [4]") == [0.0, 0.3333, 0.6667, 1.0]


@pytest.mark.parametrize(("text", "message"), [
    ("", "no weights given"),
    ("abc", "can't read 'abc'"),
    ("0.4-1.0", r"needs a count or a step, e.g. 0.4-1.0 \[4\]"),
    ("0-1 [0]", "at least 1"),
    ("0-1 (+0)", "must not be zero"),
    ("1-0 (+0.5)", r"use \(-0.5\)"),
    ("0-1 (+0.001)", f"more than the {MAX_WEIGHTS}"),
])
def test_bad_input_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(WeightError, match=message):
        parse_weights(text)


@pytest.mark.parametrize(("weight", "text"), [
    (1.0, "1"), (0.25, "0.25"), (-0.0, "0"), (0.30000000000000004, "0.3"), (-0.5, "-0.5"),
])
def test_format_weight(weight: float, text: str) -> None:
    assert format_weight(weight) == text
