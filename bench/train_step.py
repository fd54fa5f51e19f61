"""Benchmark: a LoRA training step of our trainer against a bare forward+backward of the same UNet.

    .venv/bin/python bench/train_step.py [--steps 6] [--warmup 2] [--resolution 256] [--batch 1]
                                         [--dim 16] [--threads N] [--device cuda --fp16]
                                         [--family sd1|sd2|sdxl]
    ~/lora-lab-neo/venv/bin/python bench/train_step.py --neo ~/lora-lab-neo [--threads 1]

Model: an SD1.5-size ldm UNet (320 channels, mult 1-2-4-4, context 768) and a CLIP-L-size text
encoder, random weights, fp32 (fp16 autocast with --fp16). `--family sd2`: SD2.1's UNet (linear
projections, 64-channel heads, context 1024, v-prediction) and its OpenCLIP ViT-H text transformer
(24 layers of fused nn.MultiheadAttention, run to the penultimate layer). The VAE is a small one with
SD's 8× downsampling: latents are cached before the timed steps, so its size does not matter.
`--family sdxl`: sgm's SDXL base UNet (2.6 B), CLIP-L (hidden state 11) and OpenCLIP bigG (32 layers,
pooled output), conditioned with context and y as the trainer builds them; "with the text encoder"
trains both. `--neo DIR` (run with that Forge Neo build's own Python): Neo's SDXL UNet,
`backend.nn.unet.IntegratedUNet2DConditionModel` at SDXL base size built with Neo's operations
(`ForgeOperations.Linear`), its transformer blocks' residuals out of place as LoRA Lab runs them in Neo
(both sides), UNet only; what a Neo run adds once (ordinary copies of the weights) is not a step cost.

Floor: `unet(x, t, context)` with frozen weights, the attention through torch's SDPA as the trainer
runs it, and `x.requires_grad_()` — the activation
gradients any LoRA step must compute, nothing more — plus a backward into the text encoder's token
embedding when the text encoder is trained. It runs on an untouched copy of the same weights,
interleaved with our steps: after each of the trainer's progress reports one floor step runs, so
every pair of steps sees the same machine load (a shared machine's load drifts by ±15 % over
minutes). Our step is the time between the end of that floor step and the next report: data, loss,
backward, clipping, optimizer and reporting included.

Prints median step times and minor page faults per step (fresh pages the allocator took from the
kernel: allocation churn), the ratio ours / floor (median of the per-pair ratios; goal ≤ 1.05) and
the peak memory of a short floor-only and trainer-only run (CPU: RSS growth during the run, which
includes the allocator's own growth; CUDA: allocator peak).
"""
from __future__ import annotations

import argparse
import copy
import importlib
import dataclasses
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lora_lab.devtools.sample_dataset import build_sample_dataset  # noqa: E402
from lora_lab.hosts.standalone.families import family_config  # noqa: E402
from lora_lab.hosts.standalone.ldm_import import import_ldm, import_open_clip  # noqa: E402
from lora_lab.files.clip_files import clip_tokenizer  # noqa: E402
from lora_lab.host.progress import InterruptEvent, ReentrantExclusive  # noqa: E402
from lora_lab.host.protocol import Host, HostInfo, ModelParts  # noqa: E402
from lora_lab.train import TrainConfig, train  # noqa: E402
from lora_lab.train.sdpa import sdpa_attention  # noqa: E402
from lora_lab.train.text import SdxlText, encode_text, size_vector  # noqa: E402


def clock() -> float:
    """The step clock: wall time, or this thread's CPU time when torch runs single-threaded on the
    CPU (then all the math runs in this thread, and other jobs on a shared machine barely move it)."""
    return _CLOCK[0]()


_CLOCK: list[Callable[[], float]] = [time.perf_counter]


def minor_faults() -> int:
    """This thread's minor page faults so far (fresh pages the allocator asked the kernel for)."""
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


class StepClock:
    """A progress sink that times each training step and runs `between` (untimed for us) after it."""

    def __init__(self, between: Callable[[], None] | None = None) -> None:
        self.between = between
        self.job = ""
        self.steps: list[float] = []
        self.faults: list[int] = []
        self._mark = 0.0
        self._faults = 0

    def begin(self, job: str, total: int) -> None:
        self.job = job
        self._mark, self._faults = clock(), minor_faults()

    def update(self, step: int, total: int | None = None, text: str = "", image: Any = None) -> None:
        if self.job != "Training":
            return
        self.steps.append(clock() - self._mark)
        self.faults.append(minor_faults() - self._faults)
        if self.between is not None:
            self.between()
        self._mark, self._faults = clock(), minor_faults()

    def end(self) -> None:
        pass


class BenchHost(Host):
    name = "bench"
    # The CLI's case: LoRA Lab's own process, so the trainer holds glibc's heap steady for the run
    # (train/allocator.py) — and the floor's steps, run inside it, get the same heap. Without it
    # both sides fault hundreds of thousands of fresh pages per step, a count that swings ±50 %
    # from run to run and drowned the ratio (--churning-heap measures that case).
    owns_process = True

    def __init__(self, parts: ModelParts, folder: Path, progress: StepClock) -> None:
        self.parts, self.folder = parts, folder
        self.progress = progress
        self.interrupt = InterruptEvent()
        self._exclusive = ReentrantExclusive()

    def info(self) -> HostInfo:
        return HostInfo(self.name, "0", self.parts.family, self.parts.checkpoint_name)

    def model_parts(self) -> ModelParts:
        return self.parts

    def exclusive(self) -> Any:
        return self._exclusive()

    def render_preview(self, request: Any) -> Any:
        raise RuntimeError("no previews in the benchmark")

    def lora_dir(self) -> Path:
        return self.folder

    def models_dir(self) -> Path:
        return self.folder


def _reinit_zeros(model: torch.nn.Module) -> None:
    """ldm zero-initialises output convs and proj_outs; a random UNet would then pass no gradient."""
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and not module.weight.any():
            module.reset_parameters()


def clip_l() -> tuple[torch.nn.Module, Any]:
    from transformers import CLIPTextConfig, CLIPTextModel

    from lora_lab.files.clip_files import CLIP_L_TEXT, text_config

    c = CLIP_L_TEXT
    te = CLIPTextModel(CLIPTextConfig(**text_config(c["hidden_size"], c["intermediate_size"],
                                                    c["num_attention_heads"], c["num_hidden_layers"],
                                                    c["projection_dim"])))
    return te, clip_tokenizer()


def open_clip_text(width: int, heads: int, layers: int, embed_dim: int) -> torch.nn.Module:
    """An OpenCLIP text tower (the image tower is built tiny and dropped, as ldm and sgm drop it):
    SD2's ViT-H (1024, 16, 24) or SDXL's bigG (1280, 20, 32)."""
    open_clip = import_open_clip()
    model = open_clip.model.CLIP(
        embed_dim=embed_dim, text_cfg={"context_length": 77, "vocab_size": 49408, "width": width,
                                       "heads": heads, "layers": layers},
        vision_cfg={"image_size": 32, "layers": 1, "width": 64, "patch_size": 16})
    del model.visual
    return model


def build_sdxl_parts(device: torch.device) -> ModelParts:
    """SDXL base: sgm's UNet (2.6 B), CLIP-L read at hidden state 11, OpenCLIP bigG, and sgm's
    size embedders; needs sgm (LORA_LAB_SGM or LORA_LAB_WEBUI)."""
    import_ldm()
    from ldm.models.autoencoder import AutoencoderKL

    from lora_lab.hosts.standalone.sgm_import import import_sgm

    import_sgm()
    from sgm.modules.diffusionmodules.openaimodel import UNetModel
    from sgm.modules.encoders.modules import ConcatTimestepEmbedderND

    torch.manual_seed(0)
    unet = UNetModel(**family_config("sdxl")["model"]["params"]["network_config"]["params"])
    _reinit_zeros(unet)
    te1, tokenizer = clip_l()
    te2 = open_clip_text(1280, 20, 32, 1280)
    sd1 = family_config("sd1")["model"]["params"]
    ddconfig = dict(sd1["first_stage_config"]["params"]["ddconfig"], ch=32, ch_mult=[1, 1, 2, 2])
    vae = AutoencoderKL(ddconfig=ddconfig, lossconfig={"target": "torch.nn.Identity"}, embed_dim=4)
    sizes = []
    for key in ("original_size_as_tuple", "crop_coords_top_left", "target_size_as_tuple"):
        embedder = ConcatTimestepEmbedderND(256)
        embedder.input_key = key
        sizes.append(embedder)
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    for m in (unet, te1, te2, vae):
        m.eval().requires_grad_(False).to(device)
    unet.requires_grad_(True)
    return ModelParts(unet=unet, text_encoder=te1, tokenizer=tokenizer, vae=vae,
                      alphas_cumprod=torch.cumprod(1 - betas, 0).float(), parameterization="eps",
                      family="sdxl", latent_scale=0.13025, device=device, dtype=torch.float32,
                      checkpoint_name="random-sdxl", text_encoder_2=te2,
                      tokenizer_2=import_open_clip().tokenize, te1_hidden_index=11, size_embedders=sizes)


def _random_weights(model: torch.nn.Module) -> None:
    """torch's default initialisation, by hand: Neo's operations skip it (their layers are made to be
    loaded into), leaving whatever memory held."""
    with torch.no_grad():
        for module in model.modules():
            weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
            if isinstance(weight, torch.Tensor) and weight.dim() >= 2:
                torch.nn.init.kaiming_uniform_(weight, a=5 ** 0.5)
            elif isinstance(weight, torch.Tensor):
                weight.fill_(1.0)  # norms
            if isinstance(bias, torch.Tensor):
                bias.zero_()


def neo_backend(neo_dir: Path, device: torch.device) -> None:
    """Make a Forge Neo build's `backend` importable here (this must be its venv's Python)."""
    sys.path[:0] = [str(neo_dir), str(neo_dir / "modules_forge" / "packages")]
    argv = sys.argv
    sys.argv = [argv[0], *(["--cpu"] if device.type == "cpu" else [])]  # backend.args parses sys.argv
    try:
        importlib.import_module("backend.args")
    finally:
        sys.argv = argv


def build_neo_sdxl_parts(device: torch.device, neo_dir: Path) -> ModelParts:
    """Forge Neo's own SDXL UNet at SDXL base size; the text encoders are not timed here (their
    outputs are fixed tensors of SDXL's shapes), the VAE is a small one of Neo's class."""
    neo_backend(neo_dir, device)
    from backend import operations
    from backend.nn.unet import IntegratedUNet2DConditionModel, Timestep
    from backend.nn.vae import IntegratedAutoencoderKL

    from lora_lab.hosts.neo.text import PairEmbedder
    from lora_lab.hosts.neo.training import _out_of_place

    torch.manual_seed(0)
    with operations.using_forge_operations(device=device, dtype=torch.float32):
        unet = IntegratedUNet2DConditionModel(
            in_channels=4, model_channels=320, out_channels=4, num_res_blocks=[2, 2, 2], channel_mult=[1, 2, 4],
            num_classes="sequential", adm_in_channels=2816, num_head_channels=64, use_spatial_transformer=True,
            transformer_depth=[0, 0, 2, 2, 10, 10], transformer_depth_output=[0, 0, 0, 2, 2, 2, 10, 10, 10],
            transformer_depth_middle=10, context_dim=2048, use_linear_in_transformer=True)
    _random_weights(unet)
    for block in unet.modules():  # Neo's in-place residuals cannot be differentiated: both sides run these
        if type(block).__name__ == "BasicTransformerBlock":
            block._forward = _out_of_place(type(block)).__get__(block)
    vae = IntegratedAutoencoderKL(block_out_channels=(32, 32, 64, 64), layers_per_block=1, latent_channels=4)
    embedder = Timestep(256)
    placeholder = torch.nn.Linear(1, 1)  # the frozen text encoders' outputs come from encode_te1/2

    def te1(captions: list[str], clip_skip: int) -> torch.Tensor:
        return torch.zeros(len(captions), 77, 768, device=device)

    def te2(captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(len(captions), 77, 1280, device=device), torch.zeros(len(captions), 1280, device=device)

    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    for m in (unet, vae, placeholder):
        m.eval().requires_grad_(False).to(device)
    return ModelParts(unet=unet, text_encoder=placeholder, tokenizer=None, vae=vae,
                      alphas_cumprod=torch.cumprod(1 - betas, 0).float(), parameterization="eps",
                      family="sdxl", latent_scale=0.13025, device=device, dtype=torch.float32,
                      checkpoint_name="random-neo-sdxl", text_encoder_2=placeholder,
                      size_embedders=[PairEmbedder(embedder) for _ in range(3)], encode_te1=te1, encode_te2=te2)


def build_parts(device: torch.device, family: str, neo_dir: Path | None = None) -> ModelParts:
    if neo_dir is not None:
        return build_neo_sdxl_parts(device, neo_dir)
    if family == "sdxl":
        return build_sdxl_parts(device)
    import_ldm()
    from ldm.models.autoencoder import AutoencoderKL
    from ldm.modules.diffusionmodules.openaimodel import UNetModel

    torch.manual_seed(0)
    sd1 = family_config("sd1")["model"]["params"]
    unet = UNetModel(**family_config(family)["model"]["params"]["unet_config"]["params"])
    _reinit_zeros(unet)
    if family == "sd1":
        te, tokenizer = clip_l()
    else:
        te, tokenizer = open_clip_text(1024, 16, 24, 1024), import_open_clip().tokenize
    ddconfig = dict(sd1["first_stage_config"]["params"]["ddconfig"], ch=32, ch_mult=[1, 1, 2, 2])
    vae = AutoencoderKL(ddconfig=ddconfig, lossconfig={"target": "torch.nn.Identity"}, embed_dim=4)
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, 0).float()
    for m in (unet, te, vae):
        m.eval().requires_grad_(False).to(device)
    unet.requires_grad_(True)  # as the WebUI leaves it: the trainer must freeze it
    sd2 = family != "sd1"
    return ModelParts(unet=unet, text_encoder=te, tokenizer=tokenizer, vae=vae,
                      alphas_cumprod=alphas_cumprod, parameterization="v" if sd2 else "eps",
                      family="sd2-v" if sd2 else "sd1", latent_scale=0.18215, device=device,
                      dtype=torch.float32, clip_skip=2 if sd2 else 1,
                      checkpoint_name="random-sd21" if sd2 else "random-sd15")


@contextmanager
def peak_memory(device: torch.device) -> Iterator[dict[str, float]]:
    """Peak memory during the block, in MiB: CUDA allocator peak, or RSS sampled every 2 ms."""
    result: dict[str, float] = {}
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        yield result
        torch.cuda.synchronize()
        result["peak_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
        return
    page = os.sysconf("SC_PAGE_SIZE")

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page

    base, peak, stop = rss(), [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss())
            stop.wait(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        result["peak_mib"] = max(0, peak[0] - base) / 2**20


class Floor:
    """Bare forward+backward steps on frozen copies of the UNet and text encoder."""

    def __init__(self, parts: ModelParts, args: argparse.Namespace, with_te: bool) -> None:
        # module copies that share the weights: the trainer's injected forwards live on its own
        # module objects, and SDXL's 2.6 B + 0.8 B parameters would not fit twice
        self.unet = shared_copy(parts.unet)
        self.te = shared_copy(parts.text_encoder)
        self.te2 = shared_copy(parts.text_encoder_2) if parts.text_encoder_2 is not None else None
        self.parts = dataclasses.replace(parts, unet=self.unet, text_encoder=self.te, text_encoder_2=self.te2)
        self.args, self.with_te, self.device = args, with_te, parts.device
        self.captions = ["ohwx, red circle, white background"] * args.batch
        with torch.no_grad():
            self.cached = self.encode()
        self.times: list[float] = []
        self.faults: list[int] = []

    def encode(self) -> dict[str, torch.Tensor]:
        """The text encoders' plain forward (no LoRA), as the trainer runs them."""
        if not self.parts.is_sdxl:
            return {"context": encode_text(self.parts, self.captions, self.parts.clip_skip)}
        context, pooled = SdxlText(self.parts, True, True)(self.captions)
        size = torch.tensor([[self.args.resolution] * 2] * len(self.captions))
        return {"context": context, "y": size_vector(self.parts, pooled, size, torch.zeros_like(size), size)}

    def embeddings(self) -> list[torch.Tensor]:
        first = getattr(self.te, "text_model", self.te)
        out = [getattr(first, "embeddings", first).token_embedding.weight]
        if self.te2 is not None:
            out.append(self.te2.token_embedding.weight)
        return out

    def step(self) -> None:
        args, side = self.args, self.args.resolution // 8
        embeddings = self.embeddings() if self.with_te else []
        start, faults = clock(), minor_faults()
        x = torch.randn(args.batch, 4, side, side, device=self.device, requires_grad=not self.with_te)
        noise = torch.randn_like(x)
        t = torch.randint(0, 1000, (args.batch,), device=self.device)
        with torch.enable_grad(), torch.autocast("cuda", enabled=args.fp16):
            if self.with_te:
                for embedding in embeddings:
                    embedding.requires_grad_(True)
                cond = self.encode()
            else:
                cond = self.cached
            with sdpa_attention(self.unet):  # the trainer's attention: the floor is the fast one too
                loss = F.mse_loss(self.unet(x, t, **cond).float(), noise)
                loss.backward()
        for embedding in embeddings:
            embedding.requires_grad_(False)
            embedding.grad = None
        _sync(self.device)
        self.times.append(clock() - start)
        self.faults.append(minor_faults() - faults)


def shared_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of the module objects whose parameters and buffers are the original tensors."""
    memo = {id(t): t for t in [*module.parameters(), *module.buffers()]}
    return copy.deepcopy(module, memo).requires_grad_(False)


def run_trainer(parts: ModelParts, args: argparse.Namespace, with_te: bool, work: Path, steps: int,
                progress: StepClock) -> None:
    data = build_sample_dataset(work / f"data-{with_te}-{steps}", images=1,
                                repeats=steps * args.batch, side=args.resolution)
    config = TrainConfig(dataset_dir=data, name=f"bench-{with_te}", overwrite=True, dim=args.dim, alpha=args.dim,
                         unet_lr=1e-4, te_lr=5e-5 if with_te else 0.0, epochs=1,
                         batch_size=args.batch, resolution=args.resolution,
                         min_bucket_reso=min(256, args.resolution),
                         max_bucket_reso=max(1024, args.resolution),
                         mixed_precision="fp16" if args.fp16 else "no",
                         validation=False)  # its end-of-epoch report would be timed as a step
    result = train(BenchHost(parts, work / "out", progress), config)
    if result.state != "finished":
        raise RuntimeError(result.message)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def compare(parts: ModelParts, args: argparse.Namespace, with_te: bool, work: Path) -> None:
    floor = Floor(parts, args, with_te)
    with peak_memory(parts.device) as floor_mem:
        for _ in range(2):
            floor.step()
    with peak_memory(parts.device) as ours_mem:
        run_trainer(parts, args, with_te, work, 2, StepClock())
    floor.times.clear()
    floor.faults.clear()
    clock_ = StepClock(between=floor.step)
    run_trainer(parts, args, with_te, work, args.warmup + args.steps, clock_)
    ours, floors = clock_.steps[args.warmup:], floor.times[args.warmup:]
    faults = {"floor": floor.faults[args.warmup:], "ours": clock_.faults[args.warmup:]}
    ratios = [o / f for o, f in zip(ours, floors)]
    for label, times, mem in (("floor", floors, floor_mem), ("ours", ours, ours_mem)):
        print(f"  {label:6} median {statistics.median(times) * 1000:9.1f} ms  "
              f"(min {min(times) * 1000:.1f}, {len(times)} steps)  peak +{mem['peak_mib']:.0f} MiB  "
              f"{statistics.median(faults[label]):,.0f} minor faults/step")
    print(f"  ratio ours / floor: {statistics.median(ratios):.3f}  (pairs: "
          f"{', '.join(f'{r:.3f}' for r in ratios)}; goal <= 1.05)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="timed step pairs")
    parser.add_argument("--warmup", type=int, default=2, help="untimed step pairs first")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--family", choices=["sd1", "sd2", "sdxl"], default="sd1",
                        help="sd1: SD1.5 UNet + CLIP-L; sd2: SD2.1 UNet + OpenCLIP ViT-H (768-v); sdxl: "
                             "SDXL's UNet + CLIP-L + OpenCLIP bigG (needs sgm: LORA_LAB_SGM or LORA_LAB_WEBUI)")
    parser.add_argument("--neo", type=Path, default=None,
                        help="a Forge Neo build: time its own SDXL UNet (run with its venv's Python)")
    parser.add_argument("--fp16", action="store_true", help="fp16 autocast + GradScaler (CUDA)")
    parser.add_argument("--separate-downs", action="store_true",
                        help="q/k/v adapters each make their own down projection (what the one GEMM "
                             "per shared input in LoRANetwork.projections saves)")
    parser.add_argument("--churning-heap", action="store_true",
                        help="leave glibc's heap to its defaults (as in a host process that does not "
                             "preload tcmalloc): both sides then take fresh pages every step")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's); 1 times steps in CPU time, "
                             "steady on a busy machine")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.churning_heap:
        BenchHost.owns_process = False
    if args.separate_downs:
        from lora_lab.train.network import LoRANetwork
        LoRANetwork.projections = lambda self, attention: None  # type: ignore[method-assign]
    cpu_time = args.device == "cpu" and torch.get_num_threads() == 1
    if cpu_time:
        _CLOCK[0] = time.thread_time
    device = torch.device(args.device)
    if args.fp16 and device.type != "cuda":
        parser.error("--fp16 needs --device cuda")
    parts = build_parts(device, args.family, args.neo)
    size = {"sd1": "SD1.5-size UNet + CLIP-L", "sd2": "SD2.1-size UNet + OpenCLIP ViT-H",
            "sdxl": "SDXL-size UNet (2.6 B) + CLIP-L + OpenCLIP bigG"}[args.family]
    if args.neo is not None:
        size = "Forge Neo's SDXL UNet (IntegratedUNet2DConditionModel, 2.6 B)"
    print(f"{size}, {args.resolution} px, batch {args.batch}, LoRA dim {args.dim}, "
          f"{'fp16 autocast' if args.fp16 else 'fp32'} on {device} ({torch.get_num_threads()} threads; "
          f"{'thread CPU time' if cpu_time else 'wall time'})")
    with tempfile.TemporaryDirectory() as tmp:
        variants = ((False, "UNet only, text encoder frozen"), (True, "UNet + text encoder"))
        for with_te, name in variants[:1] if args.neo is not None else variants:
            print(name)
            compare(parts, args, with_te, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
