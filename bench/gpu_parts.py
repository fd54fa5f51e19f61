"""Pieces of bench/gpu.py that need no model: what the machine lacks, the report (JSON + Markdown,
rewritten after every section), peak-memory marks, and the on-device correctness checks (one LoRA
layer in fp16/bf16 against fp32; a saved LoRA file applied as LoRA Lab applies it and merged into
the weights as the WebUI's Lora extension does)."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CARRY_SITE = ROOT / "build" / "gpu-carry" / "site"  # what bench/gpu_pack.sh stages (docs/gpu.md)

# what the run imports beyond LoRA Lab itself; the device image has torch and most of these, the
# rest travel in build/gpu-carry/site
NEEDED = ("torch", "numpy", "PIL", "safetensors", "transformers", "pytorch_lightning", "omegaconf",
          "einops", "ldm", "open_clip", "ftfy", "dynamicprompts", "onnxruntime")


def use_carried_packages() -> None:
    """Put the staged packages (if any) on sys.path, after the repo and before the rest, and point
    LORA_LAB_SGM at the staged sgm."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if CARRY_SITE.is_dir():
        sys.path.insert(1, str(CARRY_SITE))
        if (CARRY_SITE / "sgm" / "__init__.py").is_file():
            os.environ.setdefault("LORA_LAB_SGM", str(CARRY_SITE))


def lightning_compat() -> None:
    """ldm's ddpm imports `pytorch_lightning.utilities.distributed.rank_zero_only`, which Lightning 2
    moved to `utilities.rank_zero` (the device image has Lightning 2): alias it when missing."""
    try:
        importlib.import_module("pytorch_lightning.utilities.distributed")
        return
    except ImportError:
        pass
    try:
        from pytorch_lightning.utilities.rank_zero import rank_zero_only
    except ImportError:
        return
    shim = types.ModuleType("pytorch_lightning.utilities.distributed")
    shim.rank_zero_only = rank_zero_only  # type: ignore[attr-defined]
    sys.modules[shim.__name__] = shim


def missing_packages() -> list[str]:
    """The modules from NEEDED that cannot be found, and `sgm` when no sgm root is configured."""
    missing = []
    for name in NEEDED:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    if "torch" not in missing:
        from lora_lab.hosts.standalone.sgm_import import sgm_root

        if sgm_root() is None:
            missing.append("sgm")
    return missing


# --- the report -----------------------------------------------------------------------------------

class Skip(Exception):
    """A section that cannot run here (e.g. no sgm for SDXL): recorded as skipped, not failed."""

@dataclass
class Row:
    section: str
    case: str
    measure: str
    value: Any
    goal: str = ""
    ok: bool | None = None


@dataclass
class Report:
    folder: Path
    meta: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {"meta": self.meta, "sections": self.sections, "rows": [asdict(r) for r in self.rows]}
        tmp = self.folder / "gpu.json.tmp"
        tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
        tmp.replace(self.folder / "gpu.json")
        (self.folder / "gpu.md").write_text(self.markdown(), encoding="utf-8")

    def markdown(self) -> str:
        m = self.meta
        lines = [f"# LoRA Lab on {m.get('device_name', '?')}", "",
                 f"driver {m.get('driver', '?')} · torch {m.get('torch', '?')} (CUDA {m.get('cuda', '-')}) · "
                 f"Python {m.get('python', '?')} · {'dry run (tiny models, CPU)' if m.get('dry') else 'full size'}"
                 f" · {m.get('started', '')}", "",
                 "| section | case | measure | value | goal |", "| --- | --- | --- | --- | --- |"]
        for r in self.rows:
            mark = "" if r.ok is None else (" ✓" if r.ok else " ✗")
            lines.append(f"| {r.section} | {r.case} | {r.measure} | {fmt(r.value)} | {r.goal}{mark} |")
        notes = [(k, s) for k, s in self.sections.items() if s.get("error") or s.get("skipped") or s.get("notes")]
        if notes:
            lines += ["", "Notes:"]
            for key, s in notes:
                for what in ("skipped", "error"):
                    if s.get(what):
                        lines.append(f"- {key}: {what}: {str(s[what]).splitlines()[-1]}")
                lines += [f"- {key}: {n}" for n in s.get("notes", [])]
        return "\n".join(lines) + "\n"

    def section(self, key: str, need_s: float, deadline: float, body: Callable[[list[str]], list[Row]]) -> None:
        """Run one section if the budget leaves `need_s` seconds; its rows, or why not, are written
        at once, so a run stopped later keeps them."""
        left = deadline - time.monotonic()
        start = time.monotonic()
        record: dict[str, Any] = {"notes": []}
        if left < need_s:
            record["skipped"] = f"{left:.0f} s of the budget left, the section needs about {need_s:.0f} s"
        else:
            print(f"== {key} ({left:.0f} s of the budget left)", flush=True)
            try:
                self.rows += body(record["notes"])
            except Skip as e:
                record["skipped"] = str(e)
            except Exception as e:  # one section's failure must not cost the others' numbers
                record["error"] = f"{type(e).__name__}: {e}\n" + traceback.format_exc(limit=8)
                print(f"   {key} failed: {type(e).__name__}: {e}", flush=True)
        record["seconds"] = round(time.monotonic() - start, 1)
        self.sections[key] = record
        self.write()


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value or math.isinf(value):
            return str(value)
        if value == 0:
            return "0"
        return f"{value:.3g}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def machine_info(device: Any, dry: bool) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"dry": dry, "torch": torch.__version__, "cuda": torch.version.cuda,
                            "python": platform.python_version(), "device": str(device),
                            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                            "tf32_cudnn": torch.backends.cudnn.allow_tf32}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(device_name=props.name, memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count)
        try:
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError) as e:
            info["driver"] = f"unknown ({e})"
    else:
        info.update(device_name=f"CPU ({os.cpu_count()} cores)", driver="-")
    for name in ("transformers", "pytorch_lightning", "open_clip", "onnxruntime", "numpy"):
        try:
            info[f"{name}_version"] = getattr(importlib.import_module(name), "__version__", "?")
        except Exception as e:
            info[f"{name}_version"] = f"unavailable: {e}"
    return info


# --- memory -------------------------------------------------------------------------------------

class Peaks:
    """Peak CUDA memory of alternating sides: `mark(side)` books the peak since the last mark to
    `side` and starts a new interval. On the CPU it records nothing."""

    def __init__(self, device: Any) -> None:
        import torch

        self.torch = torch
        self.cuda = device.type == "cuda"
        self.peaks: dict[str, tuple[int, int]] = {}
        self.base = 0
        if self.cuda:
            torch.cuda.synchronize()
            self.base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()

    def mark(self, side: str) -> None:
        if not self.cuda:
            return
        cuda = self.torch.cuda
        cuda.synchronize()
        old = self.peaks.get(side, (0, 0))
        self.peaks[side] = (max(old[0], cuda.max_memory_allocated()), max(old[1], cuda.max_memory_reserved()))
        cuda.reset_peak_memory_stats()

    def gib(self, side: str) -> dict[str, float] | None:
        if side not in self.peaks:
            return None
        allocated, reserved = self.peaks[side]
        return {"allocated": allocated / 2**30, "reserved": reserved / 2**30,
                "above_model": (allocated - self.base) / 2**30}


# --- correctness on the device ------------------------------------------------------------------

@contextmanager
def exact_math() -> Iterator[None]:
    """fp32 without TF32 for the block (the checks compare fp32 results to each other)."""
    import torch

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def rel_err(a: Any, b: Any) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30))


LAYER_TOL = {"fp16": 5e-3, "bf16": 3e-2}  # relative L2 error against fp32: a few units of the format's rounding


def layer_check(device: Any, width: int, tokens: int, batch: int, dim: int) -> dict[str, dict[str, float]]:
    """One attention-sized Linear with a LoRA adapter injected the trainer's way: its output and the
    gradients of input, down and up under fp16 and bf16 autocast, as relative L2 errors against the
    same computation in fp32."""
    import torch

    from lora_lab.train.keys import Target
    from lora_lab.train.network import LoRANetwork, inject

    gen = torch.Generator().manual_seed(3)
    layer = torch.nn.Linear(width, width)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(width, width, generator=gen) / width ** 0.5)
        layer.bias.copy_(torch.randn(width, generator=gen) * 0.1)
    layer = layer.to(device).requires_grad_(False)
    network = LoRANetwork([Target("lora_unet_check", "check", layer, "linear", False)], dim, dim, 0, 1.0,
                          device, seed=0)
    lora = network.loras["lora_unet_check"]
    with torch.no_grad():
        lora.up.copy_(torch.randn(lora.up.shape, generator=gen).to(device) * 0.2)
    x = torch.randn(batch, tokens, width, generator=gen).to(device)
    weights = torch.randn(batch, tokens, width, generator=gen).to(device)

    def run(dtype: Any) -> list[Any]:
        network.zero_grad(set_to_none=True)
        xx = x.clone().requires_grad_(True)
        with exact_math(), inject(network), torch.autocast(device.type, dtype=dtype or torch.float32,
                                                          enabled=dtype is not None):
            y = layer(xx)
            (y.float() * weights).sum().backward()
        return [y.detach(), xx.grad, lora.down.grad, lora.up.grad]

    reference = run(None)
    out: dict[str, dict[str, float]] = {}
    for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        low = run(dtype)
        out[name] = {what: rel_err(a, b) for what, a, b in zip(("output", "grad x", "grad down", "grad up"),
                                                                 low, reference)}
    return out


def random_lora_file(parts: Any, path: Path, dim: int, seed: int = 5, scale: float = 0.02) -> Path:
    """A LoRA over every UNet and text-encoder layer LoRA Lab can adapt, with random (non-zero) up
    weights, saved by the trainer's own save path in fp16."""
    import torch

    from lora_lab.train.applied import model_targets
    from lora_lab.train.network import LoRANetwork
    from lora_lab.train.save import save_lora

    targets = [t for t in model_targets(parts).values() if t.part is None]
    network = LoRANetwork(targets, dim, dim / 2, dim, dim / 2, parts.device, seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for lora in network.loras.values():
            lora.up.copy_(torch.randn(lora.up.shape, generator=gen) * scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_lora(path, network.state_dict_for_file(torch.float16), {"ss_network_dim": str(dim)})
    return path


@contextmanager
def merged_into_weights(parts: Any, path: Path, multiplier: float = 1.0) -> Iterator[int]:
    """The file merged into the model's weights for the block, as the WebUI's Lora extension does
    (`W += multiplier * alpha / dim * up @ down`, weights backed up and put back); yields how many
    modules were merged."""
    import torch
    from safetensors.torch import load_file

    from lora_lab.train.applied import model_targets

    targets = model_targets(parts)
    modules: dict[str, dict[str, Any]] = {}
    for key, tensor in load_file(str(path)).items():
        name, _, part = key.partition(".")
        modules.setdefault(name, {})[part] = tensor
    backups = []
    try:
        with torch.no_grad():
            for name, found in modules.items():
                target = targets.get(name)
                if target is None or target.part is not None:
                    continue
                weight = target.module.weight
                down = found["lora_down.weight"].to(weight.device, torch.float32)
                up = found["lora_up.weight"].to(weight.device, torch.float32)
                alpha = float(found["alpha"]) if "alpha" in found else float(down.shape[0])
                delta = (up.flatten(1) @ down.flatten(1)).view(weight.shape) * (multiplier * alpha / down.shape[0])
                backups.append((weight, weight.detach().clone()))
                weight.add_(delta.to(weight.dtype))
        yield len(backups)
    finally:
        with torch.no_grad():
            for weight, saved in backups:
                weight.copy_(saved)
