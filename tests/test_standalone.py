"""The standalone host and server: what `python -m lora_lab ui` and the CLI stand on."""
from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from lora_lab.cli import main
from lora_lab.host.progress import InterruptEvent, ReentrantExclusive
from lora_lab.host.protocol import Host, PreviewRequest
from lora_lab.hosts.standalone.host import StandaloneHost


def test_standalone_host_satisfies_the_protocol(standalone_host: StandaloneHost) -> None:
    assert isinstance(standalone_host, Host)
    info = standalone_host.info()
    assert (info.name, info.model_family, info.checkpoint) == ("standalone", "sd1", "tiny-sd1.safetensors")


def test_info_knows_the_family_without_loading(tiny_checkpoint: Path) -> None:
    host = StandaloneHost(tiny_checkpoint)
    assert host.info().model_family == "sd1"
    assert not host.loaded


def test_preview_is_deterministic_and_prompt_dependent(standalone_host: StandaloneHost) -> None:
    def render(prompt: str, seed: int) -> np.ndarray:
        request = PreviewRequest(prompt, seed=seed, steps=3, width=64, height=64)
        return np.asarray(standalone_host.render_preview(request), dtype=np.int16)

    first = render("a red house", 1)
    assert first.shape == (64, 64, 3)
    assert np.array_equal(first, render("a red house", 1))
    assert np.abs(first - render("a red house", 2)).mean() > 1
    assert np.abs(first - render("a blue cat", 1)).mean() > 0.1


def test_bad_checkpoints_get_a_clear_message(tmp_path: Path) -> None:
    from lora_lab.hosts.standalone.ldm_loader import CheckpointError

    with pytest.raises(CheckpointError, match="not found"):
        StandaloneHost(tmp_path / "missing.safetensors").model_parts()
    (tmp_path / "x.bin").write_bytes(b"nope")
    with pytest.raises(CheckpointError, match="expected a .safetensors"):
        StandaloneHost(tmp_path / "x.bin").model_parts()
    with pytest.raises(RuntimeError, match="no checkpoint"):
        StandaloneHost().model_parts()


def test_exclusive_is_reentrant_per_thread_and_exclusive_across_threads() -> None:
    exclusive = ReentrantExclusive()
    entered = threading.Event()
    with exclusive():
        with exclusive():  # same thread: no deadlock
            worker = threading.Thread(target=lambda: (exclusive().__enter__(), entered.set()))
            worker.start()
            assert not entered.wait(0.2)  # another thread waits
    assert entered.wait(5)


def test_interrupt_event() -> None:
    flag = InterruptEvent()
    assert not flag.is_set()
    flag.set()
    assert flag.is_set()
    flag.clear()
    assert not flag.is_set()


def test_dev_commands_build_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "tiny-tagger", str(tmp_path / "tagger"), "--side", "32"]) == 0
    assert (tmp_path / "tagger" / "model.onnx").is_file()
    assert (tmp_path / "tagger" / "selected_tags.csv").is_file()


def test_server_serves_the_tab_and_the_api(standalone_host: StandaloneHost) -> None:
    from lora_lab.hosts.standalone.app import Server

    server = Server(standalone_host).start()
    try:
        with urllib.request.urlopen(server.url + "lora-lab/v1/info", timeout=10) as r:
            info = json.load(r)
        assert info["host"] == "standalone" and info["model_family"] == "sd1"
        with urllib.request.urlopen(server.url + "config", timeout=10) as r:
            ids = {c["props"].get("elem_id") for c in json.load(r)["components"]}
        assert {"tab_lora_lab", "lora_lab_status", "lora_lab_tabs"} <= ids
    finally:
        server.stop()


def test_a_loaded_model_holds_exactly_the_checkpoints_weights(tiny_checkpoint: Path) -> None:
    """Loading skips drawing random weights first (seconds for a full-size model); every weight
    the file has must still arrive, bit for bit."""
    import torch
    from safetensors.torch import load_file

    from lora_lab.hosts.standalone.ldm_loader import load_ldm

    model, family = load_ldm(tiny_checkpoint)
    state = model.state_dict()
    saved = load_file(str(tiny_checkpoint))
    assert family == "sd1" and saved
    for key, tensor in saved.items():
        assert torch.equal(state[key], tensor.to(state[key].dtype)), key
