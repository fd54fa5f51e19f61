"""The host's model comes out of every run exactly as it went in (weights, requires_grad, train/eval
modes, forwards, hooks) — after a finished run, an exception mid-step and an interrupt — and bad
input is refused before the model is touched."""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from lora_lab.devtools.sample_dataset import build_sample_dataset
from lora_lab.host.progress import RecordingProgress
from lora_lab.train import TrainConfig, TrainConfigError, TrainingBusy, train


def model_state(host: Any) -> tuple[Any, ...]:
    parts = host.model_parts()
    models = [m for m in (parts.unet, parts.text_encoder, parts.text_encoder_2, parts.vae) if m is not None]
    digest = hashlib.sha256()
    for model in models:
        for key, value in model.state_dict().items():
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    modules = [m for model in models for m in model.modules()]
    params = [p for model in models for p in model.parameters()]
    return (digest.hexdigest(),
            tuple(p.requires_grad for p in params),
            tuple(p.grad is None for p in params),
            tuple(m.training for m in modules),
            tuple(m.__dict__.get("forward") for m in modules),
            tuple((len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
                  for m in modules))


class CountingHost:
    """The session host, recording whether the trainer asked for the model."""

    def __init__(self, host: Any) -> None:
        self._host = host
        self.model_requests = 0

    def model_parts(self) -> Any:
        self.model_requests += 1
        return self._host.model_parts()

    def exclusive(self) -> AbstractContextManager[None]:
        self.model_requests += 1
        return self._host.exclusive()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._host, name)


class StopAt(RecordingProgress):
    """Progress that does something (interrupt, wait) when a training step is reported."""

    def __init__(self, step: int, action: Any) -> None:
        super().__init__()
        self.at, self.action = step, action

    def update(self, step: int, total: int | None = None, text: str = "", image: Any = None) -> None:
        super().update(step, total, text, image)
        if self.job == "Training" and step == self.at:
            self.action()


@contextmanager
def progress_of(host: Any, progress: Any) -> Iterator[None]:
    previous = host.progress
    host.progress = progress
    try:
        yield
    finally:
        host.progress = previous


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sample_dataset(tmp_path_factory.mktemp("safety") / "data", images=3, repeats=2)


def small(dataset: Path, out: Path, **kw: Any) -> TrainConfig:
    values = {"name": "safe", "output_dir": out, "dim": 2, "alpha": 2, "unet_lr": 1e-3, "te_lr": 1e-4,
              "epochs": 2, "resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128}
    return TrainConfig(dataset_dir=dataset, **{**values, **kw})  # type: ignore[arg-type]


@pytest.fixture
def webui_like_patch(standalone_host) -> Iterator[list[int]]:
    """An instance forward on one target layer, as the WebUI's patches leave them: the run must call
    through it and put the very same function back."""
    layer = standalone_host.model_parts().unet.input_blocks[1][1].transformer_blocks[0].attn1.to_q
    original = layer.forward
    calls = [0]

    def patched(x: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return original(x)

    layer.forward = patched
    try:
        yield calls
    finally:
        del layer.forward


def test_a_finished_run_leaves_the_model_as_it_was(standalone_host, dataset, tmp_path,
                                                    webui_like_patch) -> None:
    parts = standalone_host.model_parts()
    parts.unet.train()  # a mode the run must not keep
    parts.unet.out[2].weight.grad = torch.zeros_like(parts.unet.out[2].weight)
    try:
        before = model_state(standalone_host)
        result = train(standalone_host, small(dataset, tmp_path, gradient_checkpointing=True,
                                              conv_dim=2, cache_latents_to_disk=True))
        assert result.state == "finished", result.message
        assert model_state(standalone_host) == before
        assert webui_like_patch[0] >= result.steps_done  # the LoRA chained to the patched forward
        with safe_open(str(result.final_file), framework="pt") as f:
            assert f.get_tensor(next(iter(f.keys()))).dtype == torch.float16
        assert any((dataset / ".lora_lab" / "latents").iterdir())
    finally:
        parts.unet.eval()
        parts.unet.out[2].weight.grad = None


def test_an_exception_mid_step_restores_the_model_and_keeps_the_last_good_state(
        standalone_host, dataset, tmp_path) -> None:
    unet = standalone_host.model_parts().unet
    calls = [0]

    def out_of_memory(module: torch.nn.Module, args: Any) -> None:
        calls[0] += 1
        if calls[0] == 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")

    before = model_state(standalone_host)
    hook = unet.middle_block.register_forward_pre_hook(out_of_memory)
    try:
        result = train(standalone_host, small(dataset, tmp_path))
    finally:
        hook.remove()
    assert model_state(standalone_host) == before
    assert result.state == "failed"
    assert "out of memory" in result.message and "batch size" in result.message
    assert "failed at step 4" in result.message and "the model is restored" in result.message
    assert result.steps_done == 3 and result.final_file is None  # never under the finished LoRA's name
    assert [p.name for p in result.files] == ["safe-step00000003.safetensors"]
    assert "saved step 3 as safe-step00000003.safetensors (not a finished LoRA)" in result.message
    with safe_open(str(result.files[0]), framework="pt") as f:
        assert f.metadata()["ss_steps"] == "3"
        assert f.metadata()["lora_lab_stopped"] == "failed at step 4 (epoch 1)"
    assert "not a finished LoRA" in (tmp_path / "safe-step00000003.json").read_text()
    assert not (tmp_path / "safe.safetensors").exists()


def test_an_interrupt_stops_after_the_step_and_restores_the_model(standalone_host, dataset,
                                                                   tmp_path) -> None:
    before = model_state(standalone_host)
    progress = StopAt(2, standalone_host.interrupt.set)
    with progress_of(standalone_host, progress):
        result = train(standalone_host, small(dataset, tmp_path, preview_every_n_epochs=1))
    standalone_host.interrupt.clear()
    assert model_state(standalone_host) == before
    assert (result.state, result.steps_done) == ("interrupted", 2)
    assert "interrupted at step 2" in result.message
    assert [p.name for p in result.files] == ["safe-step00000002.safetensors"]
    assert progress.updates[-1][2].startswith("epoch 1/2 · loss ")


def test_bad_input_is_refused_before_the_model_is_touched(standalone_host, dataset, tmp_path) -> None:
    empty = tmp_path / "empty"
    (empty / "3_x").mkdir(parents=True)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"\x80\x02}q\x00.")
    cases = {
        "no images to train on": small(empty, tmp_path),
        "dataset folder not found": small(tmp_path / "missing", tmp_path),
        "dim must be > 0": small(dataset, tmp_path, dim=0),
        "learning rates must be >= 0": small(dataset, tmp_path, unet_lr=-1.0),
        "resolution must be a multiple of 64": small(dataset, tmp_path, resolution=520),
        "cannot be created": small(dataset, a_file / "out"),
        "only .safetensors": small(dataset, tmp_path, resume_from=ckpt),
        "resume file not found": small(dataset, tmp_path, resume_from=tmp_path / "none.safetensors"),
    }
    before = model_state(standalone_host)
    for words, config in cases.items():
        host = CountingHost(standalone_host)
        with pytest.raises(TrainConfigError, match=words):
            train(host, config)
        assert host.model_requests == 0, words
    assert model_state(standalone_host) == before
    assert not list(tmp_path.glob("safe*"))


def test_resume_checks_shapes_and_continues_from_the_file(standalone_host, dataset, tmp_path) -> None:
    first = train(standalone_host, small(dataset, tmp_path / "a", epochs=1))
    assert first.final_file is not None
    before = model_state(standalone_host)
    progress = RecordingProgress()
    with progress_of(standalone_host, progress):
        with pytest.raises(TrainConfigError, match="other shapes"):
            train(standalone_host, small(dataset, tmp_path / "b", dim=4, resume_from=first.final_file))
        with pytest.raises(TrainConfigError, match="this network does not have"):
            train(standalone_host, small(dataset, tmp_path / "b", te_lr=0.0, resume_from=first.final_file))
        bad_alpha = tmp_path / "alpha.safetensors"
        tensors = {k: v.float() for k, v in _tensors(first.final_file).items()}
        tensors = {k: (torch.tensor(7.0) if k.endswith(".alpha") else v) for k, v in tensors.items()}
        save_file(tensors, str(bad_alpha))
        with pytest.raises(TrainConfigError, match="alpha 7"):
            train(standalone_host, small(dataset, tmp_path / "b", resume_from=bad_alpha))
    assert progress.updates == []  # no caching, no training began
    assert not list((tmp_path / "b").glob("*"))
    assert model_state(standalone_host) == before

    again = train(standalone_host, small(dataset, tmp_path / "c", epochs=1, unet_lr=1e-12, te_lr=1e-12,
                                         weight_decay=0.0, resume_from=first.final_file))
    old, new = _tensors(first.final_file), _tensors(again.final_file)
    assert old.keys() == new.keys()
    assert all(torch.allclose(old[k].float(), new[k].float(), atol=1e-3) for k in old)
    assert any(old[k].abs().max() > 0 for k in old if "lora_up" in k)


def _tensors(path: Path | None) -> dict[str, torch.Tensor]:
    assert path is not None
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_a_second_run_is_refused_while_one_is_active(standalone_host, dataset, tmp_path) -> None:
    reached, release = threading.Event(), threading.Event()

    def hold() -> None:
        reached.set()
        release.wait(60)

    results: list[Any] = []
    with progress_of(standalone_host, StopAt(1, hold)):
        worker = threading.Thread(target=lambda: results.append(
            train(standalone_host, small(dataset, tmp_path / "first", epochs=1))))
        worker.start()
        try:
            assert reached.wait(60)
            counting = CountingHost(standalone_host)
            with pytest.raises(TrainingBusy, match="already active"):
                train(counting, small(dataset, tmp_path / "second"))
            assert counting.model_requests == 0
        finally:
            release.set()
            worker.join(60)
    assert results and results[0].state == "finished"


def test_a_run_whose_loss_diverges_stops_and_says_what_to_change(standalone_host, dataset, tmp_path) -> None:
    """A learning rate far too high turns the LoRA into NaNs: the run stops at that step instead of
    finishing and saving NaN files, names the rates to lower, and leaves the model as it was."""
    before = model_state(standalone_host)
    result = train(standalone_host, small(dataset, tmp_path, unet_lr=1e12, te_lr=0.0, epochs=3))
    assert result.state == "failed" and "lower the learning rates" in result.message, result.message
    assert result.final_file is None
    assert model_state(standalone_host) == before


def test_a_name_in_use_is_refused_unless_replacing_it_was_chosen(standalone_host, dataset, tmp_path) -> None:
    """Training twice under one name must not silently rewrite the first LoRA: the second run is
    refused before the model is touched, naming the files, and runs when replacing was chosen."""
    first = train(standalone_host, small(dataset, tmp_path, epochs=1))
    assert first.state == "finished"
    kept = first.final_file.read_bytes()
    before = model_state(standalone_host)
    with pytest.raises(TrainConfigError, match="already in .*safe.safetensors.*allow replacing it"):
        train(standalone_host, small(dataset, tmp_path, epochs=1, seed=7))
    assert first.final_file.read_bytes() == kept and model_state(standalone_host) == before
    again = train(standalone_host, small(dataset, tmp_path, epochs=1, seed=7, overwrite=True))
    assert again.state == "finished" and again.final_file.read_bytes() != kept
