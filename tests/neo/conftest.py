"""Tier 3: a real Forge Neo 2.26 build named by LORA_LAB_NEO (`bash dev/forge-neo.sh DIR`), started
once per session on its neo-sdxl checkpoint (Neo recognises only full-width models: see
dev/forge-neo-models.py)."""
from __future__ import annotations

import os
from collections.abc import Iterator
import pytest

from lora_lab.devtools.neo_runner import Neo, neo_checkout
from lora_lab.devtools.webui_runner import unexpected_tracebacks

CHECKPOINT = "neo-sdxl.safetensors"
T2I = {"prompt": "ohwx, red square", "negative_prompt": "", "seed": 7, "steps": 2, "width": 64, "height": 64,
       "sampler_name": "Euler", "cfg_scale": 7}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/neo/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.tier3)


@pytest.fixture(scope="session")
def neo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo]:
    checkout = neo_checkout()
    if checkout is None and os.environ.get("LORA_LAB_NEO"):
        pytest.fail(f"LORA_LAB_NEO={os.environ['LORA_LAB_NEO']} has no modules_forge/ and venv/ "
                    "(build one with: bash dev/forge-neo.sh DIR)")
    if checkout is None:
        pytest.skip("tier 3 needs LORA_LAB_NEO=<Forge Neo 2.26 folder>: bash dev/forge-neo.sh DIR builds one")
    models = checkout / "models" / "Stable-diffusion"
    if not (models / CHECKPOINT).is_file():
        pytest.fail(f"{models / CHECKPOINT} is missing: run bash dev/forge-neo.sh {checkout} again")
    with Neo(checkout, tmp_path_factory.mktemp("neo-data"), models) as running:
        running.post("/sdapi/v1/options", {"sd_model_checkpoint": CHECKPOINT,
                                           "lora_lab_api_roots": str(tmp_path_factory.getbasetemp())})
        # Neo's first generation settles its own state (its text encoders' embedding wrappers):
        # every fingerprint below is taken after it
        running.post("/sdapi/v1/txt2img", T2I)
        yield running
    found = unexpected_tracebacks(running.log.read_text(errors="replace"))
    assert not found, f"{len(found)} unexpected traceback(s) in {running.log}:\n\n" + "\n\n".join(found)
