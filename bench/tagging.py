"""Tagging throughput and memory: LoRA Lab's `tag` CLI against a plain-onnxruntime floor and, when a
checkout is given, toriato's tagger extension — same model, same images, same run.

Builds (in a temp dir, never in the repo) a random-weight ConvNeXt-Base-sized tagger with the WD14
contract (NHWC 448x448 BGR 0-255 in, 9,083 sigmoid scores out, dynamic batch) and a set of mixed
images (JPEG/PNG/WebP, some RGBA, 300-1500 px). Each configuration runs as its own process, in
round-robin order (each round starting one later) so background load hits them alike; each is
timed whole (start-up, model load, tagging, writing) and reports images/s, CPU-s per image and its
own peak RSS (VmHWM, see bench/peak_rss.py).

- floor: plain onnxruntime, batch 8, PIL decode + contract preprocessing in a thread pool, the
  session options LoRA Lab uses;
- ours: `python -m lora_lab tag DIR --mode overwrite` at its defaults (CPU: batch 1);
- toriato: the extension's batch loop at commit 3ba3a73 with its WebUI imports stubbed, run by the
  WebUI's Python (`--toriato DIR` or LORA_LAB_TORIATO; docs/tagging.md says how to get it).
  The driver also checks that both wrote the same tags for every image;
- model (not with --quick): the ceiling for any tagger on this graph and session — inference
  alone, batch 1, every image decoded beforehand and only the `run` calls timed. The share of it
  each tool reaches says how much of its time is anything but the model.

    .venv/bin/python bench/tagging.py [--images 200] [--repeat 1] [--quick] [--keep DIR]
                                      [--toriato DIR] [--peer-python PY]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lora_lab.devtools.onnx_proto import Graph, value_info  # noqa: E402

SIDE = 448
DEPTHS = (3, 3, 27, 3)
WIDTHS = (128, 256, 512, 1024)
N_RATING, N_GENERAL, N_CHARACTER = 4, 6951, 2128
THRESHOLD = 0.35
FLOOR_BATCH = 8


# --- the model --------------------------------------------------------------------------------

def _layer_norm(g: Graph, x: str, width: int, tag: str) -> str:
    scale = g.const(f"{tag}_ln_w", np.ones(width, np.float32))
    bias = g.const(f"{tag}_ln_b", np.zeros(width, np.float32))
    return g.node("LayerNormalization", [x, scale, bias], axis=-1, epsilon=1e-6)


def _channels_last(g: Graph, x: str) -> str:
    return g.node("Transpose", [x], perm=[0, 2, 3, 1])


def _channels_first(g: Graph, x: str) -> str:
    return g.node("Transpose", [x], perm=[0, 3, 1, 2])


def _gelu(g: Graph, x: str) -> str:
    inner = g.node("Erf", [g.node("Div", [x, "sqrt2"])])
    return g.node("Mul", [g.node("Mul", [x, g.node("Add", [inner, "one"])]), "half"])


def _block(g: Graph, rng: np.random.Generator, x: str, width: int, tag: str) -> str:
    def weights(name: str, shape: tuple[int, ...]) -> str:
        return g.const(f"{tag}_{name}", rng.standard_normal(shape, dtype=np.float32) * 0.02)

    y = g.node("Conv", [x, weights("dw_w", (width, 1, 7, 7)), weights("dw_b", (width,))],
               kernel_shape=[7, 7], pads=[3, 3, 3, 3], group=width)
    y = _layer_norm(g, _channels_last(g, y), width, tag)
    y = g.node("Add", [g.node("MatMul", [y, weights("fc1_w", (width, 4 * width))]),
                       weights("fc1_b", (4 * width,))])
    y = _gelu(g, y)
    y = g.node("Add", [g.node("MatMul", [y, weights("fc2_w", (4 * width, width))]),
                       weights("fc2_b", (width,))])
    y = g.node("Mul", [y, g.const(f"{tag}_gamma", np.full(width, 1e-6, np.float32))])
    return g.node("Add", [x, _channels_first(g, y)])


def convnext_tagger(n_tags: int, seed: int = 0) -> bytes:
    """ConvNeXt-Base (depths 3-3-27-3, widths 128-1024, ~88M params + head) behind the WD14 contract."""
    rng = np.random.default_rng(seed)
    g = Graph("convnext_base_wd14_standin")
    g.inputs.append(value_info("input_1:0", ["batch", SIDE, SIDE, 3]))
    g.outputs.append(value_info("predictions_sigmoid", ["batch", n_tags]))
    for name, value in (("sqrt2", np.sqrt(2.0)), ("one", 1.0), ("half", 0.5),
                        ("inv_127_5", 1 / 127.5)):
        g.const(name, np.array(value, np.float32))
    x = _channels_first(g, "input_1:0")
    x = g.node("Sub", [g.node("Mul", [x, "inv_127_5"]), "one"])
    stem_w = g.const("stem_w", rng.standard_normal((WIDTHS[0], 3, 4, 4), dtype=np.float32) * 0.02)
    x = g.node("Conv", [x, stem_w, g.const("stem_b", np.zeros(WIDTHS[0], np.float32))],
               kernel_shape=[4, 4], strides=[4, 4])
    x = _channels_first(g, _layer_norm(g, _channels_last(g, x), WIDTHS[0], "stem"))
    for stage, (depth, width) in enumerate(zip(DEPTHS, WIDTHS)):
        if stage:
            x = _channels_first(g, _layer_norm(g, _channels_last(g, x), WIDTHS[stage - 1], f"down{stage}"))
            w = g.const(f"down{stage}_w", rng.standard_normal((width, WIDTHS[stage - 1], 2, 2),
                                                              dtype=np.float32) * 0.02)
            x = g.node("Conv", [x, w, g.const(f"down{stage}_b", np.zeros(width, np.float32))],
                       kernel_shape=[2, 2], strides=[2, 2])
        for i in range(depth):
            x = _block(g, rng, x, width, f"s{stage}b{i}")
    x = g.node("ReduceMean", [x], axes=[2, 3], keepdims=0)
    x = _layer_norm(g, x, WIDTHS[-1], "head")
    head_w = g.const("head_w", rng.standard_normal((WIDTHS[-1], n_tags), dtype=np.float32) * 0.02)
    g.node("Sigmoid", [g.node("Gemm", [x, head_w, g.const("head_b", _head_bias(rng, n_tags))])],
           ["predictions_sigmoid"])
    return g.serialize()


def _head_bias(rng: np.random.Generator, n_tags: int) -> np.ndarray:
    """Most tags near 0; ~30 general tags and one character tag clear the usual thresholds."""
    bias = np.full(n_tags, -4.0, np.float32)
    bias[:N_RATING] = [1.0, 0.0, -1.0, -2.0]
    bias[rng.choice(np.arange(N_RATING, N_RATING + N_GENERAL), 30, replace=False)] = 0.6
    bias[N_RATING + N_GENERAL + 7] = 2.5
    return bias


def tag_names() -> list[tuple[str, int]]:
    kaomoji = ["^_^", "o_o", ">_<", "=_=", "x_x"]
    rows = [(r, 9) for r in ("general", "sensitive", "questionable", "explicit")]
    rows += [(kaomoji[i] if i < len(kaomoji) else f"tag_{i}" + ("_(object)" if i % 50 == 0 else ""), 0)
             for i in range(N_GENERAL)]
    rows += [(f"character_{i}_(series_{i % 40})", 4) for i in range(N_CHARACTER)]
    return rows


def build_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = tag_names()
    with open(folder / "selected_tags.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["tag_id", "name", "category", "count"])
        writer.writerows((i, name, cat, 1000) for i, (name, cat) in enumerate(rows))
    (folder / "model.onnx").write_bytes(convnext_tagger(len(rows)))
    return folder


# --- the images -------------------------------------------------------------------------------

def build_images(folder: Path, count: int, seed: int = 1) -> list[Path]:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        w, h = (int(v) for v in rng.integers(300, 1501, 2))
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * (200 / w) + rng.integers(0, 55)),
                         (yy * (200 / h) + rng.integers(0, 55)),
                         ((xx + yy) * (100 / (w + h)) + rng.integers(0, 155))], -1)
        base += rng.normal(0, 6, base.shape)
        im = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(im)
        for _ in range(12):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            box = (x0, y0, x0 + int(rng.integers(20, w // 2 + 21)), y0 + int(rng.integers(20, h // 2 + 21)))
            color = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=color)
        kind = ("jpg", "png", "webp")[int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
        if kind != "jpg" and rng.random() < 0.3:
            alpha = Image.fromarray(np.clip(xx * (255 / w) + 40, 0, 255).astype(np.uint8), "L")
            im.putalpha(alpha)
        path = folder / f"img_{i:04d}.{kind}"
        im.save(path, quality=90) if kind != "png" else im.save(path)
        paths.append(path)
    return paths


# --- the measured configurations (each in its own process) ------------------------------------

def _floor_load(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        rgba = im.convert("RGBA")
    rgb = Image.new("RGB", rgba.size, (255, 255, 255))
    rgb.paste(rgba, mask=rgba.getchannel("A"))
    edge = max(rgb.size)
    square = Image.new("RGB", (edge, edge), (255, 255, 255))
    square.paste(rgb, ((edge - rgb.width) // 2, (edge - rgb.height) // 2))
    square = square.resize((SIDE, SIDE), Image.Resampling.BICUBIC)
    return np.asarray(square, dtype=np.float32)[:, :, ::-1]


def _link_images(images: list[Path], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for path in images:
        os.link(path, out / path.name)


def _session(model_dir: Path) -> tuple[Any, list[str], str]:
    """LoRA Lab's CPU session on the model, the tag names and the input's name."""
    import onnxruntime as ort

    from lora_lab.tagging.model import session_options

    session = ort.InferenceSession(str(model_dir / "model.onnx"), sess_options=session_options(),
                                   providers=["CPUExecutionProvider"])
    with open(model_dir / "selected_tags.csv", encoding="utf-8") as f:
        names = [row["name"] for row in csv.DictReader(f)]
    return session, names, session.get_inputs()[0].name


def run_floor(model_dir: Path, images: list[Path], out: Path) -> None:
    session, names, input_name = _session(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(2) as pool:
        pending = deque(pool.submit(_floor_load, p) for p in images[:3 * FLOOR_BATCH])
        queue = iter(images[3 * FLOOR_BATCH:])
        done = 0
        while pending:
            batch = []
            while pending and len(batch) < FLOOR_BATCH:
                batch.append(pending.popleft().result())
                nxt = next(queue, None)
                if nxt is not None:
                    pending.append(pool.submit(_floor_load, nxt))
            scores = session.run(None, {input_name: np.stack(batch)})[0]
            for row in scores:
                _write_tags(names, row, out / f"{images[done].stem}.txt")
                done += 1


def _write_tags(names: list[str], row: np.ndarray, target: Path) -> None:
    keep = np.flatnonzero(row[N_RATING:] >= THRESHOLD) + N_RATING
    keep = keep[np.argsort(-row[keep])]
    target.write_text(", ".join(names[i].replace("_", " ") for i in keep), encoding="utf-8")


def run_model_alone(model_dir: Path, images: list[Path], out: Path) -> None:
    """The ceiling for any tagger on this graph: every image decoded first (untimed), then only
    LoRA Lab's session at batch 1, one `run` per image; its seconds go to `out/model.json`."""
    arrays = [np.ascontiguousarray(_floor_load(p)[None]) for p in images]
    session, names, input_name = _session(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    started, rows = time.perf_counter(), []
    for array in arrays:
        rows.append(session.run(None, {input_name: array})[0][0])
    seconds = time.perf_counter() - started
    for path, row in zip(images, rows):
        _write_tags(names, row, out / f"{path.stem}.txt")
    (out / "model.json").write_text(json.dumps({"seconds": seconds}))


def run_toriato(checkout: Path, model_dir: Path, images: list[Path], out: Path) -> None:
    """toriato's extension at 3ba3a73, its batch loop (tagger/ui.py) as the WebUI runs it, with the
    WebUI modules it imports stubbed and the Hugging Face download pointed at the local model."""
    import re
    import types

    from PIL import Image

    shared = types.ModuleType("modules.shared")
    shared.cmd_opts = types.SimpleNamespace(use_cpu=["all"], device_id=None)
    deepbooru = types.ModuleType("modules.deepbooru")
    deepbooru.re_special = re.compile(r"([\\()])")
    launch = types.ModuleType("launch")
    launch.is_installed = lambda name: True
    launch.run_pip = lambda *a, **k: None
    modules = types.ModuleType("modules")
    modules.shared, modules.deepbooru = shared, deepbooru
    sys.modules.update({"modules": modules, "modules.shared": shared,
                        "modules.deepbooru": deepbooru, "launch": launch})
    sys.path.insert(0, str(checkout))
    from tagger.interrogator import Interrogator, WaifuDiffusionInterrogator

    class Local(WaifuDiffusionInterrogator):
        def download(self):  # type: ignore[no-untyped-def]
            return model_dir / "model.onnx", model_dir / "selected_tags.csv"

    interrogator = Local("bench", repo_id="local/bench")
    _link_images(images, out)
    for path in sorted(out.iterdir()):
        image = Image.open(path)
        ratings, tags = interrogator.interrogate(image)
        processed = Interrogator.postprocess_tags(tags, THRESHOLD, replace_underscore=True)
        path.with_suffix(".txt").write_text(", ".join(processed), encoding="utf-8")


def worker(args: argparse.Namespace) -> None:
    images = sorted(p for p in args.images_dir.iterdir() if p.is_file())
    if args.worker == "floor":
        run_floor(args.model_dir, images, args.out)
    elif args.worker == "model":
        run_model_alone(args.model_dir, images, args.out)
    else:
        run_toriato(args.toriato, args.model_dir, images, args.out)


# --- driver -----------------------------------------------------------------------------------

def _cpu_ticks() -> tuple[int, int]:
    """Machine-wide (busy, total) jiffies from /proc/stat."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


@dataclass(frozen=True)
class Setup:
    model_dir: Path
    images_dir: Path
    work: Path
    toriato: Path | None
    peer_python: str


def command(config: str, setup: Setup, out: Path) -> list[str]:
    if config in ("floor", "model"):
        return [sys.executable, __file__, "--worker", config, "--model-dir", str(setup.model_dir),
                "--images-dir", str(setup.images_dir), "--out", str(out)]
    if config == "toriato":
        return [setup.peer_python, __file__, "--worker", "toriato", "--toriato", str(setup.toriato),
                "--model-dir", str(setup.model_dir), "--images-dir", str(setup.images_dir),
                "--out", str(out)]
    # ours: the CLI a person runs, start-up and imports included
    _, _, batch = config.partition("-bs")
    return ([sys.executable, "-m", "lora_lab", "tag", str(out), "--model", str(setup.model_dir),
             "--home", str(setup.work / "home"), "--threshold", str(THRESHOLD),
             "--character-threshold", str(THRESHOLD), "--mode", "overwrite"]
            + (["--batch-size", batch] if batch else []))


def general_tags(folder: Path) -> dict[str, frozenset[str]]:
    return {p.stem: frozenset(t.strip().replace("_", " ") for t in p.read_text("utf-8").split(",")
                              if t.strip())
            for p in folder.glob("*.txt")}


def measure(config: str, setup: Setup, run_id: int) -> tuple[dict, dict[str, frozenset[str]]]:
    """Whole-process wall time, CPU time and peak RSS (from wait4: nothing of the driver counted)."""
    out = setup.work / f"{config}-{run_id}"
    if config.startswith("ours"):
        _link_images(sorted(p for p in setup.images_dir.iterdir() if p.is_file()), out)
    busy0, started = _cpu_ticks()[0], time.perf_counter()
    python, *args = command(config, setup, out)
    peak_file = setup.work / f"{config}-{run_id}.peak.json"
    proc = subprocess.Popen([python, str(ROOT / "bench" / "peak_rss.py"), str(peak_file), *args],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    busy1 = _cpu_ticks()[0]
    stderr = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{config} failed:\n{stderr[-3000:]}")
    peak_rss_mb = json.loads(peak_file.read_text())["peak_rss_mb"]
    if config == "model":  # the ceiling counts inference alone
        wall = json.loads((out / "model.json").read_text())["seconds"]
    peak_file.unlink()
    cpu_s = usage.ru_utime + usage.ru_stime
    machine_cores = (busy1 - busy0) / os.sysconf("SC_CLK_TCK") / wall
    tags = general_tags(out)
    n_images = sum(1 for p in setup.images_dir.iterdir() if p.is_file())
    if len(tags) != n_images:
        raise SystemExit(f"{config}: {len(tags)} captions for {n_images} images\n{stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(setup.work / "home", ignore_errors=True)
    return ({"seconds": wall, "images": n_images, "cpu_s": cpu_s, "peak_rss_mb": peak_rss_mb,
             "foreign_cores": max(0.0, machine_cores - cpu_s / wall)}, tags)


def _default_peer_python() -> str:
    webui = os.environ.get("LORA_LAB_WEBUI")
    candidate = Path(webui) / "venv" / "bin" / "python" if webui else None
    return str(candidate) if candidate and candidate.exists() else sys.executable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1, help="round-robin rounds (median reported)")
    parser.add_argument("--quick", action="store_true", help="16 images, floor and ours only")
    parser.add_argument("--batch8", action="store_true", help="also run ours with batch 8")
    parser.add_argument("--toriato", type=Path, default=os.environ.get("LORA_LAB_TORIATO") or None,
                        help="a checkout of toriato/stable-diffusion-webui-wd14-tagger (3ba3a73) to "
                             "run as a peer (env LORA_LAB_TORIATO); see docs/tagging.md")
    parser.add_argument("--peer-python", default=None,
                        help="the Python that runs the peer: one with onnxruntime, opencv-python, "
                             "pandas, huggingface_hub, as the WebUI's venv has (default: "
                             "$LORA_LAB_WEBUI/venv/bin/python, else this one)")
    parser.add_argument("--keep", type=Path, default=None, help="build model/images here and keep them")
    parser.add_argument("--worker", choices=("floor", "model", "toriato"), help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--images-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    n_images = 16 if args.quick else args.images
    configs = ["floor", "ours"] + (["ours-bs8"] if args.batch8 and not args.quick else []) \
        + ([] if args.quick else ["model"])
    if args.toriato:
        if not (Path(args.toriato) / "tagger" / "interrogator.py").is_file():
            raise SystemExit(f"--toriato {args.toriato}: not a checkout of the tagger extension "
                             "(no tagger/interrogator.py)")
        configs.append("toriato")
    else:
        print("peer: skipped (no --toriato checkout given; docs/tagging.md says how to get one)")
    with tempfile.TemporaryDirectory(prefix="lora-lab-bench-") as tmp:
        work = args.keep or Path(tmp)
        setup = Setup(work / "model", work / f"images-{n_images}", work,
                      Path(args.toriato).resolve() if args.toriato else None,
                      args.peer_python or _default_peer_python())
        t0 = time.perf_counter()
        if not (setup.model_dir / "model.onnx").exists():
            build_model(setup.model_dir)
        if not setup.images_dir.is_dir():
            build_images(setup.images_dir, n_images)
        print(f"model {(setup.model_dir / 'model.onnx').stat().st_size / 1e6:.0f} MB, {n_images} "
              f"images, built in {time.perf_counter() - t0:.0f}s; cores {os.cpu_count()}", flush=True)
        results: dict[str, list[dict]] = {c: [] for c in configs}
        agreement: list[tuple[int, int]] = []
        for rep in range(args.repeat):
            outputs = {}
            # each round starts one configuration later, so none always follows the same one
            for config in configs[rep % len(configs):] + configs[:rep % len(configs)]:
                stats, outputs[config] = measure(config, setup, rep)
                results[config].append(stats)
                print(f"  round {rep + 1} {config:8s} {stats['seconds']:7.1f}s "
                      f"{stats['images'] / stats['seconds']:.3f} img/s  "
                      f"{stats['cpu_s'] / stats['images']:.2f} CPU-s/img  "
                      f"peak RSS {stats['peak_rss_mb']:.0f} MB  "
                      f"foreign load {stats['foreign_cores']:.2f} cores", flush=True)
            if "toriato" in outputs:
                ours, peer = outputs["ours"], outputs["toriato"]
                agreement.append((sum(ours[k] == peer.get(k) for k in ours), len(ours)))
        report(results, agreement)


def report(results: dict[str, list[dict]], agreement: list[tuple[int, int]]) -> None:
    def median(config: str, key: str) -> float:
        return statistics.median(r[key] for r in results[config])

    def rate(config: str) -> float:
        return median(config, "images") / median(config, "seconds")

    def cpu(config: str) -> float:
        return median(config, "cpu_s") / median(config, "images")

    print(f"\n{'config':10s} {'img/s':>7s} {'ratio':>6s} {'CPU-s/img':>10s} {'cpu ratio':>9s} "
          f"{'peak RSS MB':>12s} {'RSS ratio':>9s}")
    for config in results:
        print(f"{config:10s} {rate(config):7.3f} {rate(config) / rate('floor'):6.2f} {cpu(config):10.2f} "
              f"{cpu('floor') / cpu(config):9.2f} {median(config, 'peak_rss_mb'):12.0f} "
              f"{median(config, 'peak_rss_mb') / median('floor', 'peak_rss_mb'):9.2f}")
    print("ratio: images/s over the floor's (whole process: start-up, model load, tagging); "
          "RSS ratio: peak RSS over the floor's")
    if "model" in results:
        print("model: the ceiling — the same session's inference alone, one image per run, every "
              "image decoded beforehand; its img/s counts inference seconds only")
        print("share of the ceiling: " + ", ".join(f"{c} {rate(c) / rate('model'):.2f}"
                                                    for c in results if c != "model"))
    if "toriato" in results:
        speed = rate("ours") / rate("toriato")
        memory = median("ours", "peak_rss_mb") / median("toriato", "peak_rss_mb")
        same, total = agreement[-1]
        print(f"\nours / toriato: images/s {speed:.2f}x (goal >= 1.15), peak RSS {memory:.2f}x "
              f"(goal <= 1.00); identical tag sets on {same}/{total} images")


if __name__ == "__main__":
    main()
