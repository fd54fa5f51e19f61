"""LoRA Lab on a GPU, in one command: training speed against the bare forward+backward floor, peak
VRAM, correctness in half precision, sweep rendering and tagging — written as one JSON and one
Markdown table.

    python bench/gpu.py [--out DIR] [--budget 420]     # on a lent GPU machine (docs/gpu.md)
    python bench/gpu.py --dry [--out DIR]               # the same code paths, tiny models, CPU, < 1 min

Full size (random weights, nothing downloaded; models from bench/train_step.py):
1. SD1.5, 512 px, batch 4, fp16 autocast, LoRA dim 16, UNet only and UNet + text encoder: s/step of
   LoRA Lab's trainer against a bare forward+backward of the same UNet (train_step.Floor, one floor
   step after each trainer step; goal <= 1.05x), peak VRAM (allocated and reserved), every loss of
   the run finite.
2. SDXL, 1024 px, batch 1, bf16, UNet only with and without gradient checkpointing (the floor
   checkpoints the same blocks), and UNet + TE1 + TE2: the same numbers, and whether UNet-only
   training fits in 12 GB beside the fp16 model the WebUI holds (estimate: fp16 weights of the real
   SDXL parts + the run's peak above its own weights).
3. Correctness: one attention-sized LoRA layer's output and gradients under fp16/bf16 autocast vs
   fp32 (tolerances in gpu_parts.LAYER_TOL); a saved LoRA file applied by `train.applied` vs merged
   into the weights the WebUI's way, UNet and text-encoder outputs (fp32, TF32 off).
4. Sweep rendering: the standalone host's txt2img (`hosts.standalone.txt2img.render`) at 512 px,
   20 Euler steps, with `<lora:…:1>` and without (goal: <= 5 % overhead), and a sweep cell's
   batched-seeds path (4 seeds in one `render` call: one load of the file for all).
5. Tagging: onnxruntime on a ConvNeXt-Base-sized WD14 tagger (bench/tagging.py), images/s at batch
   1/8/32 on CUDA (when onnxruntime has its CUDA provider) and on the CPU.

Every section runs inside a time budget (skipped with a note when too little is left), and the
report is rewritten after each one, so a run stopped at its limit keeps what it measured. A failing
section records its error and the others go on. Without the packages it needs (build/gpu-carry,
made by bench/gpu_pack.sh) it says in one line what is missing.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_parts as gp  # noqa: E402

gp.use_carried_packages()


@dataclasses.dataclass(frozen=True)
class Case:
    key: str
    label: str
    resolution: int
    batch: int
    precision: str  # the trainer's mixed_precision: "fp16", "bf16"
    te: bool = False
    checkpointing: bool = False
    steps: int = 30
    warmup: int = 5
    dim: int = 16


@dataclasses.dataclass(frozen=True)
class Sizes:
    sd1: tuple[Case, ...]
    sdxl: tuple[Case, ...]
    render_side: int
    render_steps: int
    render_repeats: int
    seeds: int
    layer: tuple[int, int, int]  # width, tokens, batch
    tag_batches: tuple[int, ...]
    need: dict[str, float]  # seconds each section needs at least


def sizes(dry: bool) -> Sizes:
    if dry:
        res, batch, steps, warm, xl_steps = 64, 1, 3, 1, 2
    else:
        res, batch, steps, warm, xl_steps = 512, 4, 30, 5, 12
    sd1 = (Case("sd15-unet", "SD1.5 UNet only", res, batch, "fp16", steps=steps, warmup=warm),
           Case("sd15-unet-te", "SD1.5 UNet + TE", res, batch, "fp16", te=True, steps=steps, warmup=warm))
    xl_res = 64 if dry else 1024
    sdxl = (Case("sdxl-unet", "SDXL UNet only", xl_res, 1, "bf16", steps=xl_steps, warmup=1 if dry else 3),
            Case("sdxl-unet-gc", "SDXL UNet only, checkpointing", xl_res, 1, "bf16", checkpointing=True,
                 steps=xl_steps, warmup=1 if dry else 3),
            Case("sdxl-unet-te12", "SDXL UNet + TE1 + TE2", xl_res, 1, "bf16", te=True, steps=xl_steps,
                 warmup=1 if dry else 3))
    need = {"sd15 training": 90, "correctness": 30, "rendering": 50, "sdxl training": 150, "tagging": 30}
    if dry:
        need = {k: 1.0 for k in need}
    return Sizes(sd1, sdxl, 64 if dry else 512, 2 if dry else 20, 1 if dry else 2, 2 if dry else 4,
                 (64, 64, 2) if dry else (320, 4096, 2), (1, 8, 32), need)


# --- models ---------------------------------------------------------------------------------------

_LOADED: dict[str, Any] = {}  # one family at a time, shared by the sections (each leaves it as found)


def load_parts(family: str, device: Any, dry: bool) -> Any:
    """Full size: bench/train_step.py's random models. Dry: the tiny checkpoints, loaded by the
    standalone host. Loading one family drops the other (its VRAM would count in the peaks)."""
    if family not in _LOADED:
        _LOADED.clear()
        free(device)
        _LOADED[family] = _build_parts(family, device, dry)
    return _LOADED[family]


def _build_parts(family: str, device: Any, dry: bool) -> Any:
    if not dry:
        import train_step

        return train_step.build_parts(device, family)
    from lora_lab.devtools.tiny_model import tiny_checkpoint
    from lora_lab.host.progress import RecordingProgress
    from lora_lab.hosts.standalone.host import StandaloneHost

    host = StandaloneHost(tiny_checkpoint(family), device=str(device), progress=RecordingProgress(),
                          home=Path(tempfile.mkdtemp(prefix="lora-lab-gpu-home-")))
    return host.model_parts()


def free(device: Any) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# --- 1 and 2: training against the floor ---------------------------------------------------------

def trainer_run(parts: Any, case: Case, work: Path, progress: Any) -> Any:
    import train_step

    from lora_lab.devtools.sample_dataset import build_sample_dataset
    from lora_lab.train import TrainConfig, train

    data = build_sample_dataset(work / f"data-{case.key}", images=1, repeats=case.steps * case.batch,
                                side=case.resolution)
    config = TrainConfig(dataset_dir=data, name=case.key, output_dir=work / f"out-{case.key}", overwrite=True,
                         dim=case.dim,
                         alpha=case.dim, unet_lr=1e-4, te_lr=5e-5 if case.te else 0.0, epochs=1,
                         batch_size=case.batch, resolution=case.resolution,
                         min_bucket_reso=min(256, case.resolution), max_bucket_reso=max(1024, case.resolution),
                         mixed_precision=case.precision, gradient_checkpointing=case.checkpointing,
                         validation=False)  # its end-of-epoch pass would be timed as a step
    return train(train_step.BenchHost(parts, work / "loras", progress), config)


def compare(parts: Any, case: Case, work: Path, section: str) -> tuple[list[gp.Row], float | None]:
    """Our steps and the floor's, interleaved (one floor step after each of ours), with the peak
    memory of each side booked between them; also our peak above the model's weights (GiB, CUDA)."""
    import torch
    import train_step

    from lora_lab.train.checkpointing import block_forwards

    device = parts.device
    cuda = device.type == "cuda"
    args = argparse.Namespace(batch=case.batch, resolution=case.resolution, fp16=cuda)
    floor = train_step.Floor(parts, args, case.te)
    # Floor autocasts to the dtype autocast is set to: bf16 when an outer bf16 autocast is active
    low = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and case.precision == "bf16" \
        else contextlib.nullcontext()
    peaks = gp.Peaks(device)

    def between() -> None:
        peaks.mark("ours")
        with low:
            floor.step()
        peaks.mark("floor")

    clock = train_step.StepClock(between=between)
    with block_forwards(floor.unet, case.checkpointing):
        result = trainer_run(parts, case, work, clock)
    if result.state != "finished":
        raise RuntimeError(f"{case.label}: the run {result.state}: {result.message}")
    ours, floors = clock.steps[case.warmup:], floor.times[case.warmup:]
    ratios = [o / f for o, f in zip(ours, floors)]
    losses = result.loss_history
    finite = len(losses) == case.steps and all(math.isfinite(v) for v in losses)
    ratio = statistics.median(ratios)
    rows = [gp.Row(section, case.label, "s/step LoRA Lab", statistics.median(ours)),
            gp.Row(section, case.label, "s/step floor", statistics.median(floors)),
            gp.Row(section, case.label, "ratio (median of pairs)", ratio, "<= 1.05", ratio <= 1.05),
            gp.Row(section, case.label, f"losses finite ({len(losses)} steps)", finite, "all", finite)]
    for side in ("ours", "floor"):
        mem = peaks.gib(side)
        if mem:
            rows += [gp.Row(section, case.label, f"peak GiB {side}: allocated / reserved / above weights",
                            f"{mem['allocated']:.2f} / {mem['reserved']:.2f} / {mem['above_model']:.2f}")]
    print(f"   {case.label}: ours {statistics.median(ours):.4f} s, floor {statistics.median(floors):.4f} s, "
          f"ratio {ratio:.3f}, losses finite: {finite}", flush=True)
    ours_mem = peaks.gib("ours")
    return rows, ours_mem["above_model"] if ours_mem else None


def train_section(family: str, cases: tuple[Case, ...], device: Any, dry: bool, work: Path,
                  section: str, notes: list[str]) -> list[gp.Row]:
    if family == "sdxl":
        from lora_lab.hosts.standalone.sgm_import import HOW_TO_POINT, sgm_root

        if sgm_root() is None:
            raise gp.Skip(f"no sgm: {HOW_TO_POINT}")
    parts = load_parts(family, device, dry)
    rows: list[gp.Row] = []
    above: dict[str, float] = {}
    for case in cases:
        case_rows, peak_above = compare(parts, case, work, section)
        rows += case_rows
        free(device)  # the floor's copies and the run's leftovers, before the next case
        if peak_above is not None:
            above[case.key] = peak_above
    if family == "sdxl":
        rows += fits_12gb(parts, above, section, notes, dry)
    return rows


# the real SDXL base's parameter counts where ours differ (its VAE; ours is a small stand-in)
SDXL_VAE_PARAMS = 83_653_863


def fits_12gb(parts: Any, above: dict[str, float], section: str, notes: list[str], dry: bool) -> list[gp.Row]:
    """UNet-only training beside the model the WebUI holds in fp16: its weights (UNet, both text
    encoders, the real VAE's size) plus what the run needed above its own weights. Our weights are
    fp32 and autocast casts them per use, so this is an upper bound."""
    held = sum(p.numel() for m in (parts.unet, parts.text_encoder, parts.text_encoder_2)
               for p in m.parameters()) + (0 if dry else SDXL_VAE_PARAMS)
    held_gib = held * 2 / 2**30
    rows = [gp.Row(section, "WebUI's fp16 model", "weights GiB", held_gib)]
    for key, label in (("sdxl-unet", "UNet only"), ("sdxl-unet-gc", "UNet only, checkpointing")):
        if key in above:
            total = held_gib + above[key]
            fits = total <= 12.0  # a "12 GB" card has 12 GiB; the CUDA context takes some of it too
            rows.append(gp.Row(section, label, "fits a 12 GB card beside the WebUI's model (GiB needed)",
                               f"{'yes' if fits else 'no'} ({total:.2f})", "<= 12 GiB", fits))
    if not above:
        notes.append("no CUDA peak memory on this device: the 12 GB question is answered on a GPU only")
    return rows


# --- 3: correctness ---------------------------------------------------------------------------------

def correctness_section(device: Any, dry: bool, work: Path, sz: Sizes, notes: list[str]) -> list[gp.Row]:
    import torch

    from lora_lab.train.applied import LoraUse, applied_loras
    from lora_lab.train.text import encode_text

    section = "correctness"
    rows: list[gp.Row] = []
    width, tokens, batch = sz.layer
    for precision, errors in gp.layer_check(device, width, tokens, batch, 16).items():
        tol = gp.LAYER_TOL[precision]
        for what, err in errors.items():
            rows.append(gp.Row(section, f"LoRA layer {width}x{width}, {precision} vs fp32", f"rel. error {what}",
                               err, f"<= {tol:g}", err <= tol))
    parts = load_parts("sd1", device, dry)
    path = gp.random_lora_file(parts, work / "check-lora" / "gpu-check.safetensors", 16)
    gen = torch.Generator().manual_seed(11)
    side = 64 if dry else 512
    x = torch.randn(1, 4, side // 8, side // 8, generator=gen).to(device)
    t = torch.tensor([500], device=device)
    captions = ["ohwx, red circle, white background"]

    def outputs() -> tuple[Any, Any]:
        context = encode_text(parts, captions, parts.clip_skip)
        return parts.unet(x, t, context=context), context

    with torch.no_grad(), gp.exact_math():
        plain_unet, plain_te = outputs()
        with applied_loras(parts, [LoraUse(path)]) as unmatched:
            applied_unet, applied_te = outputs()
        with gp.merged_into_weights(parts, path) as merged_count:
            merged_unet, merged_te = outputs()
        restored_unet, _ = outputs()
    notes += unmatched
    tol = 1e-4
    for label, a, b in (("UNet", merged_unet, applied_unet), ("text encoder", merged_te, applied_te)):
        err = gp.rel_err(a, b)
        rows.append(gp.Row(section, f"saved file, {label}", "rel. error merged (WebUI way) vs applied", err,
                           f"<= {tol:g}", err <= tol))
    effect = gp.rel_err(applied_unet, plain_unet)
    rows += [gp.Row(section, "saved file, UNet", "rel. change the LoRA makes (must not be ~0)", effect,
                    "> 1e-3", effect > 1e-3),
             gp.Row(section, "saved file", "modules merged / unmatched", f"{merged_count} / {len(unmatched)}",
                    "0 unmatched", not unmatched),
             gp.Row(section, "saved file", "weights restored after the merge",
                    gp.rel_err(restored_unet, plain_unet) == 0.0, "exactly", gp.rel_err(restored_unet, plain_unet) == 0.0)]
    return rows


# --- 4: sweep rendering -----------------------------------------------------------------------------

def render_section(device: Any, dry: bool, work: Path, sz: Sizes, notes: list[str]) -> list[gp.Row]:
    from lora_lab.host.protocol import PreviewRequest
    from lora_lab.hosts.standalone.txt2img import render

    section = "sweep rendering"
    parts = load_parts("sd1", device, dry)
    lora_dir = work / "render-loras"
    gp.random_lora_file(parts, lora_dir / "gpu-sweep.safetensors", 16)
    base = PreviewRequest(prompt="ohwx, red circle, white background", negative_prompt="blurry", seed=1,
                          steps=sz.render_steps, cfg_scale=7.0, width=sz.render_side, height=sz.render_side)
    with_lora = dataclasses.replace(base, prompt=base.prompt + " <lora:gpu-sweep:1>")

    def timed(requests: list[Any]) -> float:
        start = time.perf_counter()
        images = render(parts, lora_dir, requests, notes)
        assert len(images) == len(requests)
        return (time.perf_counter() - start) / len(requests)

    timed([base])
    timed([with_lora])  # warm-up of both paths
    plain, lora = [], []
    for _ in range(sz.render_repeats):  # interleaved: both see the same clocks and load
        plain.append(timed([base]))
        lora.append(timed([with_lora]))
    seeds = [dataclasses.replace(with_lora, seed=s) for s in range(sz.seeds)]
    batched = timed(seeds)
    p, q = statistics.median(plain), statistics.median(lora)
    overhead = q / p - 1
    label = f"SD1.5 {sz.render_side} px, {sz.render_steps} steps, CFG (fp32, as the standalone host loads)"
    rows = [gp.Row(section, label, "s/image without LoRA", p),
            gp.Row(section, label, "s/image with <lora:…:1>", q),
            gp.Row(section, label, "LoRA overhead", f"{overhead * 100:.1f} %", "<= 5 %", overhead <= 0.05),
            gp.Row(section, label, f"s/image, {sz.seeds} seeds in one render call (one file load)", batched)]
    print(f"   render: {p:.3f} s/image plain, {q:.3f} with LoRA ({overhead * 100:+.1f} %), "
          f"{batched:.3f} batched seeds", flush=True)
    return rows


# --- 5: tagging ------------------------------------------------------------------------------------

def tagging_section(device: Any, dry: bool, work: Path, sz: Sizes, notes: list[str]) -> list[gp.Row]:
    import numpy as np

    from lora_lab.tagging.model import Tagger, TaggerError

    section = "tagging"
    if dry:
        from lora_lab.devtools.tiny_tagger import build_tiny_tagger

        folder, label = build_tiny_tagger(work / "tagger"), "tiny tagger (64 px)"
    else:
        import tagging

        folder, label = tagging.build_model(work / "tagger"), "ConvNeXt-Base-size WD14 (448 px)"
    taggers = []
    try:
        taggers.append(("CUDA", Tagger(folder, ("cuda",))))
    except TaggerError as e:
        notes.append(f"no onnxruntime CUDA provider here ({e}); onnxruntime-gpu is some 300 MB, over the "
                     "64 MiB a device call can carry: CPU numbers only")
    taggers.append(("CPU", Tagger(folder, ("cpu",))))
    rng = np.random.default_rng(0)
    rows = []
    for where, tagger in taggers:
        for batch in sz.tag_batches:
            images = rng.uniform(0, 255, (batch, tagger.side, tagger.side, 3)).astype(np.float32)
            tagger.predict(images[:1])  # warm-up
            start, done = time.perf_counter(), 0
            while done < max(batch, 4 if dry or where == "CUDA" else 1):
                tagger.predict(images)
                done += batch
            rate = done / (time.perf_counter() - start)
            rows.append(gp.Row(section, f"{label}, {where}", f"images/s at batch {batch}", rate))
            print(f"   tagging {where} batch {batch}: {rate:.1f} images/s", flush=True)
    return rows


# --- the command ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry", action="store_true", help="tiny models on the CPU: the same code paths, < 1 min")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for gpu.json and gpu.md (default: $OUT, else build/gpu-results)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for all sections (default 420 on a GPU; 300 dry, where nothing should "
                             "be skipped); a section that no longer fits is skipped with a note")
    parser.add_argument("--only", default="", help="comma-separated section keys to run (default: all)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    missing = gp.missing_packages()
    if args.dry and missing == ["sgm"]:
        missing = []  # the SDXL section says so; the rest runs
    if missing:
        print(f"bench/gpu.py: missing {', '.join(missing)}: run `bash bench/gpu_pack.sh` where the venv is "
              "and carry build/gpu-carry (docs/gpu.md)", flush=True)
        return 2
    gp.lightning_compat()
    import torch

    if not args.dry and not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA device here; `--dry` runs the same code paths on the CPU", flush=True)
        return 2
    device = torch.device("cpu" if args.dry else "cuda")
    if args.dry:
        torch.set_num_threads(1)  # tiny ops: thread hand-offs cost more than the math (tests/conftest.py)
    out = args.out or Path(os.environ.get("OUT") or gp.ROOT / "build" / "gpu-results")
    budget = args.budget if args.budget is not None else (300.0 if args.dry else 420.0)
    deadline = started + budget
    sz = sizes(args.dry)
    report = gp.Report(out, gp.machine_info(device, args.dry))
    report.meta["budget_s"] = budget
    report.write()
    print(f"LoRA Lab GPU bench on {report.meta['device_name']} (torch {torch.__version__}), "
          f"budget {budget:.0f} s, writing {out}", flush=True)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    with tempfile.TemporaryDirectory(prefix="lora-lab-gpu-") as tmp:
        work = Path(tmp)
        sections = [
            ("sd15 training", lambda n: train_section("sd1", sz.sd1, device, args.dry, work, "train SD1.5", n)),
            ("correctness", lambda n: correctness_section(device, args.dry, work, sz, n)),
            ("rendering", lambda n: render_section(device, args.dry, work, sz, n)),
            ("sdxl training", lambda n: train_section("sdxl", sz.sdxl, device, args.dry, work, "train SDXL", n)),
            ("tagging", lambda n: tagging_section(device, args.dry, work, sz, n)),
        ]
        for key, body in sections:
            if only and key not in only:
                continue
            report.section(key, sz.need[key], deadline, body)
            free(device)  # the section's models are gone with its frame
    report.meta["seconds"] = round(time.monotonic() - started, 1)
    report.write()
    print()
    print(report.markdown())
    failed = [k for k, s in report.sections.items() if s.get("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
