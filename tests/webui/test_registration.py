"""The extension inside a real WebUI: tab, settings section, API router and txt2img script."""
from __future__ import annotations


def test_api_router_reports_the_webui_and_its_model(webui) -> None:
    info = webui.get("/lora-lab/v1/info")
    assert info["name"] == "LoRA Lab" and info["host"] == "webui"
    # "v1.10.1" from git describe, "1.10.1" from CHANGELOG.md in a build from source archives
    assert info["host_version"].lstrip("v").startswith("1.10.1")
    assert info["model_family"] == "sd1" and info["checkpoint"].startswith("tiny-sd1")


def test_tab_and_settings_section_are_in_the_ui(webui) -> None:
    components = webui.get("/config")["components"]
    ids = {c["props"].get("elem_id") for c in components}
    assert {"tab_lora_lab", "lora_lab_status", "settings_lora_lab"} <= ids
    options = webui.get("/sdapi/v1/options")
    assert {"lora_lab_tagger_dir", "lora_lab_onnx_providers", "lora_lab_keep_tagger_loaded"} <= set(options)


def test_txt2img_script_is_registered(webui) -> None:
    scripts = webui.get("/sdapi/v1/scripts")
    assert "lora lab grid" in scripts["txt2img"]
    assert "lora lab grid" not in scripts["img2img"]


def test_extension_loaded_without_errors(webui) -> None:
    log = webui.log.read_text(errors="replace")
    # a symlinked dev checkout has no 'origin' remote; the WebUI reports that for any such extension
    blocks = [b for b in log.split("***") if "Failed reading extension data from Git" not in b]
    assert "Error loading script" not in log
    assert not [b for b in blocks if "Traceback" in b], log[-3000:]


def test_the_api_refuses_folders_outside_the_allowed_ones(webui, tmp_path_factory) -> None:
    import urllib.error

    import pytest

    outside = tmp_path_factory.getbasetemp().parent / "not-allowed"
    outside.mkdir(exist_ok=True)
    with pytest.raises(urllib.error.HTTPError) as refused:
        webui.post("/lora-lab/v1/dataset/captions/stats", {"folder": str(outside)})
    assert refused.value.code == 403
    assert "lora_lab_api_roots" in refused.value.read().decode()
