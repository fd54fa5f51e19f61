"""Tier 2: a real A1111 v1.10.1 checkout named by LORA_LAB_WEBUI, started once per session."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lora_lab.devtools.webui_runner import WebUI, unexpected_tracebacks, webui_checkout


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/webui/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.tier2)


@pytest.fixture(scope="session")
def webui(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Iterator[WebUI]:
    checkout = webui_checkout()
    if checkout is None and os.environ.get("LORA_LAB_WEBUI"):
        pytest.fail(f"LORA_LAB_WEBUI={os.environ['LORA_LAB_WEBUI']} has no webui.py and venv/ "
                    "(build one with: bash dev/webui.sh DIR)")
    if checkout is None:
        pytest.skip("tier 2 needs LORA_LAB_WEBUI=<A1111 v1.10.1 folder>: bash dev/webui.sh DIR builds one")
    with WebUI(checkout, tmp_path_factory.mktemp("webui-data"), tiny_checkpoint) as running:
        # the tests' folders live outside the WebUI's data folder: allow them the way a user would
        # (and offline, the SDXL live preview's "Approx NN" model would be downloaded: use the cheap one)
        running.post("/sdapi/v1/options", {"lora_lab_api_roots": str(tmp_path_factory.getbasetemp()),
                                           "show_progress_type": "Approx cheap"})
        yield running
    # teardown: a traceback in the WebUI's log is a failure even when every request answered
    found = unexpected_tracebacks(running.log.read_text(errors="replace"))
    assert not found, f"{len(found)} unexpected traceback(s) in {running.log}:\n\n" + "\n\n".join(found)
