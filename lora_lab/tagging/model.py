"""WD14-style ONNX taggers: finding them, reading their contract from the graph, running them.

A tagger is any folder holding `model.onnx` and `selected_tags.csv`. Everything about the tensors
(names, input side, whether the batch axis is fixed) is read from the graph. onnxruntime is imported
only when a model is loaded, so nothing here costs the WebUI anything at startup.
"""
from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..host.threads import usable_cpus
from .labels import Labels, read_labels

if TYPE_CHECKING:
    import onnxruntime

MODEL_FILE = "model.onnx"
TAGS_FILE = "selected_tags.csv"
GPU_PROVIDERS = ("CUDAExecutionProvider",)
CPU_PROVIDER = "CPUExecutionProvider"


class TaggerError(RuntimeError):
    """A model that cannot be used, with the reason."""
    refusal = True  # said to the person, not a bug (no traceback)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    size_bytes: int


def is_model_dir(folder: Path) -> bool:
    return (folder / MODEL_FILE).is_file() and (folder / TAGS_FILE).is_file()


def taggers_dir(models_dir: Path) -> Path:
    return Path(models_dir) / "taggers"


def find_models(folder: Path) -> list[ModelInfo]:
    """Tagger folders directly inside `folder` (e.g. `host.models_dir()/"taggers"`), by name."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for child in sorted(folder.iterdir(), key=lambda p: p.name.lower()):
        if child.is_dir() and not child.name.startswith(".") and is_model_dir(child):
            found.append(ModelInfo(child.name, child, (child / MODEL_FILE).stat().st_size))
    return found


def resolve_model(model: str | Path, models_dir: Path | None = None) -> Path:
    """A tagger folder from a path, or from a name under `models_dir/taggers`."""
    candidates = [Path(model)]
    if models_dir is not None and not Path(model).is_absolute():
        candidates.append(taggers_dir(models_dir) / model)
    for folder in candidates:
        if folder.is_dir() and is_model_dir(folder):
            return folder
    for folder in candidates:
        if folder.is_dir():
            missing = [f for f in (MODEL_FILE, TAGS_FILE) if not (folder / f).is_file()]
            raise TaggerError(f"{folder} is not a tagger folder: missing {', '.join(missing)}")
    hint = ""
    if models_dir is not None:
        where = taggers_dir(models_dir)
        known = [m.name for m in find_models(where)]
        hint = (f"; models in {where}: {', '.join(known)}" if known
                else f"; put a tagger folder ({MODEL_FILE} + {TAGS_FILE}) in {where}")
    raise TaggerError(f"no tagger model {str(model)!r}{hint}")


def choose_providers(requested: Sequence[str] | None = None) -> list[str]:
    """The requested execution providers (checked), or CUDA when available, then CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested:
        names = [_provider_name(p) for p in requested]
        missing = [p for p in names if p not in available]
        if missing:
            raise TaggerError(f"onnxruntime provider(s) {', '.join(missing)} not available; "
                              f"this onnxruntime has {', '.join(available)}")
        return names
    return [p for p in GPU_PROVIDERS if p in available] + [CPU_PROVIDER]


def _provider_name(name: str) -> str:
    short = {"cuda": "CUDAExecutionProvider", "cpu": CPU_PROVIDER}
    return short.get(name.strip().lower(), name.strip())


def session_options(threads: int | None = None) -> onnxruntime.SessionOptions:
    """Throughput settings for a machine shared with the WebUI, a trainer and our decode threads:
    an explicit thread count (ORT's default 0 pins one thread per core), no spin-waiting
    between operators (on a busy 2-core box spinning cost 15-25% more CPU per image for no
    speed), and no pre-planned memory block that buys nothing on CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or usable_cpus()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The memory pattern's pre-planned block costs ~60 MB of peak RSS on a ConvNeXt-Base tagger
    # and bought no speed at batch 1 on CPU (bench/tagging.py). Prepacked GEMM weights cost
    # ~150 MB but are worth ~5 % speed, so they stay.
    options.enable_mem_pattern = False
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class Tagger:
    """One loaded model. `predict` takes `[n, side, side, 3]` float32 BGR 0-255, returns `[n, tags]`."""

    def __init__(self, folder: Path, providers: Sequence[str] | None = None,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        self.folder = Path(folder)
        self.name = self.folder.name
        self.labels: Labels = read_labels(self.folder / TAGS_FILE)
        try:
            self.session = ort.InferenceSession(os.fspath(self.folder / MODEL_FILE),
                                                sess_options=session_options(threads),
                                                providers=choose_providers(providers))
        except TaggerError:
            raise
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise TaggerError(f"{self.folder / MODEL_FILE}: cannot load with onnxruntime "
                              f"{ort.__version__} (WD v3 taggers need 1.17 or newer): {e}") from None
        self.providers: list[str] = self.session.get_providers()
        self._read_contract()

    def _read_contract(self) -> None:
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise TaggerError(f"{self.name}: expected one input, the graph has {len(inputs)}")
        shape = list(inputs[0].shape)
        if (len(shape) != 4 or shape[3] != 3 or not isinstance(shape[1], int)
                or shape[1] != shape[2] or shape[1] <= 0):
            raise TaggerError(f"{self.name}: input {inputs[0].name} has shape {shape}; "
                              "expected NHWC [batch, side, side, 3]")
        if inputs[0].type != "tensor(float)":
            raise TaggerError(f"{self.name}: input type {inputs[0].type}; expected float32")
        self.input_name: str = inputs[0].name
        self.side: int = shape[1]
        batch = shape[0]
        self.fixed_batch: int | None = batch if isinstance(batch, int) and batch > 0 else None
        outputs = self.session.get_outputs()
        matching = [o for o in outputs if o.shape and o.shape[-1] == len(self.labels)]
        if not matching:
            raise TaggerError(f"{self.name}: no output has {len(self.labels)} columns (one per row of "
                              f"{TAGS_FILE}); outputs: {[(o.name, o.shape) for o in outputs]}")
        self.output_name: str = matching[0].name

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "side": self.side, "tags": len(self.labels),
                "fixed_batch": self.fixed_batch, "providers": self.providers,
                "input": self.input_name, "output": self.output_name}

    @property
    def on_gpu(self) -> bool:
        return self.providers[0] != CPU_PROVIDER

    def default_batch_size(self) -> int:
        # On CPU, batching buys no throughput and costs ~1.5 GB per 8 images of activations.
        if self.fixed_batch is not None:
            return self.fixed_batch
        return 8 if self.on_gpu else 1

    def predict(self, images: np.ndarray) -> np.ndarray:
        n = len(images)
        step = self.fixed_batch or n
        out: list[np.ndarray] = []
        for start in range(0, n, step):
            chunk = images[start:start + step]
            if self.fixed_batch is not None and len(chunk) < step:
                pad = np.zeros((step - len(chunk), *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            scores = self.session.run([self.output_name], {self.input_name: chunk})[0]
            out.append(np.asarray(scores, dtype=np.float32)[: min(step, n - start)])
        return np.concatenate(out) if len(out) > 1 else out[0]


_loaded: dict[tuple[str, tuple[str, ...], int | None], Tagger] = {}
_lock = threading.Lock()


def load_tagger(folder: Path, providers: Sequence[str] | None = None,
                threads: int | None = None) -> Tagger:
    """A loaded tagger, shared while loaded (see `unload_taggers`)."""
    key = (os.path.realpath(folder), tuple(providers or ()), threads)
    with _lock:
        tagger = _loaded.get(key)
        if tagger is None:
            tagger = _loaded[key] = Tagger(Path(folder), providers, threads)
        return tagger


def unload_taggers(folder: Path | None = None) -> int:
    """Forget loaded taggers (all, or those of one folder); returns how many. A run still using one
    finishes with it and then frees it."""
    with _lock:
        keys = [k for k in _loaded if folder is None or k[0] == os.path.realpath(folder)]
        for key in keys:
            del _loaded[key]
        return len(keys)


def loaded_taggers() -> list[str]:
    with _lock:
        return sorted({Path(k[0]).name for k in _loaded})


KNOWN_MODELS = {name: f"SmilingWolf/{name}" for name in (
    "wd-eva02-large-tagger-v3", "wd-vit-large-tagger-v3", "wd-vit-tagger-v3",
    "wd-convnext-tagger-v3", "wd-swinv2-tagger-v3", "wd-v1-4-moat-tagger-v2",
    "wd-v1-4-swinv2-tagger-v2", "wd-v1-4-convnextv2-tagger-v2", "wd-v1-4-convnext-tagger-v2",
    "wd-v1-4-vit-tagger-v2")}


def download_model(name: str, models_dir: Path, revision: str | None = None) -> Path:
    """Fetch a SmilingWolf tagger (a name from KNOWN_MODELS or an `owner/repo` id) into
    `models_dir/taggers/<name>/`. The folder only appears once both files are complete."""
    repo = KNOWN_MODELS.get(name, name)
    if "/" not in repo:
        raise TaggerError(f"unknown tagger {name!r}; known: {', '.join(KNOWN_MODELS)} "
                          "(or give a Hugging Face repo id like owner/name)")
    target = taggers_dir(models_dir) / repo.rsplit("/", 1)[1]
    if is_model_dir(target):
        return target
    manual = (f"download {MODEL_FILE} and {TAGS_FILE} from https://huggingface.co/{repo} "
              f"into {target}")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise TaggerError(f"huggingface_hub is not installed; {manual}") from None
    partial = target.with_name(f".{target.name}.partial")
    partial.mkdir(parents=True, exist_ok=True)
    for filename in (MODEL_FILE, TAGS_FILE):
        try:
            hf_hub_download(repo, filename, revision=revision, local_dir=partial)
        except Exception as e:  # network, auth, missing file: hub raises many types
            raise TaggerError(f"could not download {filename} from {repo} ({type(e).__name__}: {e}); "
                              f"if this machine is offline, {manual}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.mkdir(exist_ok=True)
    for filename in (TAGS_FILE, MODEL_FILE):  # model last: is_model_dir needs both
        os.replace(partial / filename, target / filename)
    shutil.rmtree(partial, ignore_errors=True)
    return target
