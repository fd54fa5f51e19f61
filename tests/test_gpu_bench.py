"""bench/gpu.py --dry: the GPU bench's code paths (trainer vs floor, half-precision and merge checks,
standalone txt2img with and without a LoRA, tagging) on tiny models on the CPU, so the command
cannot rot before a GPU is lent (docs/gpu.md)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "gpu.py"


def _env(request: pytest.FixtureRequest) -> tuple[dict[str, str], bool]:
    """The environment for the bench, with LORA_LAB_SGM from the session's sgm when there is one."""
    env = dict(os.environ)
    try:
        sgm = request.getfixturevalue("sgm")
    except pytest.skip.Exception:
        return env, False
    env.setdefault("LORA_LAB_SGM", str(Path(sgm.__file__).resolve().parents[1]))
    return env, True


def test_dry_run_measures_every_section(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    env, have_sgm = _env(request)
    proc = subprocess.run([sys.executable, str(BENCH), "--dry", "--out", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    data = json.loads((tmp_path / "gpu.json").read_text(encoding="utf-8"))
    assert data["meta"]["dry"] is True and data["meta"]["torch"]
    sections = data["sections"]
    expected = ["sd15 training", "correctness", "rendering", "sdxl training", "tagging"]
    assert list(sections) == expected
    for key in expected:
        assert not sections[key].get("error"), sections[key]
        if have_sgm or key != "sdxl training":  # without sgm SDXL is skipped, with the reason
            assert not sections[key].get("skipped"), sections[key]
    rows = data["rows"]

    def values(section: str, measure: str) -> list:
        return [r["value"] for r in rows if r["section"] == section and r["measure"] == measure]

    ratios = values("train SD1.5", "ratio (median of pairs)")
    assert len(ratios) == 2 and all(r > 0 and math.isfinite(r) for r in ratios)
    assert all(values("train SD1.5", "losses finite (3 steps)"))
    if not sections["sdxl training"].get("skipped"):
        assert len(values("train SDXL", "ratio (median of pairs)")) == 3
    checks = [r for r in rows if r["section"] == "correctness"]
    assert len(checks) >= 12 and all(r["ok"] for r in checks), [r for r in checks if not r["ok"]]
    assert len([r for r in rows if r["section"] == "sweep rendering"]) == 4
    assert len(values("tagging", "images/s at batch 32")) >= 1
    table = (tmp_path / "gpu.md").read_text(encoding="utf-8")
    assert "| section | case | measure | value | goal |" in table
    assert table.strip() in proc.stdout  # the table is printed too


def test_says_in_one_line_what_is_missing(tmp_path: Path) -> None:
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import gpu_parts; "
            "gpu_parts.NEEDED += ('lora_lab_no_such_module',); import gpu; "
            "sys.exit(gpu.main(['--out', sys.argv[2]]))")
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "bench"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "missing lora_lab_no_such_module" in lines[0] and "gpu_pack.sh" in lines[0]
    assert not (tmp_path / "gpu.json").exists()
