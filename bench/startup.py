"""What LoRA Lab adds to WebUI start-up: A1111 (needs LORA_LAB_WEBUI, see docs/webui-tier.md) or,
with `--host neo`, Forge Neo (needs LORA_LAB_NEO, built by dev/forge-neo.sh).

Starts the real WebUI N times with and N times without the extension, alternating, and prints the
median wall time to "Startup time:", the WebUI's own per-phase records, and the entries it
attributes to LoRA Lab's scripts. Goal: the extension adds under 0.2 s.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lora_lab.devtools.neo_runner import Neo, neo_checkout  # noqa: E402
from lora_lab.devtools.webui_runner import WebUI, webui_checkout  # noqa: E402


def flatten(records: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in records.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--host", choices=["a1111", "neo"], default="a1111")
    args = parser.parse_args()
    runner = Neo if args.host == "neo" else WebUI
    checkout = neo_checkout() if args.host == "neo" else webui_checkout()
    if checkout is None:
        print("set LORA_LAB_NEO to a Forge Neo 2.26 build (bash dev/forge-neo.sh DIR)" if args.host == "neo" else
              "set LORA_LAB_WEBUI to an A1111 v1.10.1 checkout with venv/ (docs/webui-tier.md)")
        return 2
    walls: dict[bool, list[float]] = {True: [], False: []}
    ours: list[dict[str, float]] = []
    phases: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for with_ext in (False, True):
                data = Path(tmp) / f"data-{with_ext}"
                with runner(checkout, data, None, with_extension=with_ext) as webui:
                    records = flatten(webui.get("/internal/profile-startup")["records"])
                walls[with_ext].append(webui.startup_seconds)
                phases[with_ext].append(records)
                if with_ext:
                    ours.append({k: v for k, v in records.items() if "lora_lab" in k or "lora-lab" in k})
                print(f"run {run + 1} {'with' if with_ext else 'without'} extension: "
                      f"{webui.startup_seconds:.2f} s", flush=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    print(f"\nmedian start-up without: {med[False]:.2f} s   with: {med[True]:.2f} s   "
          f"difference: {med[True] - med[False]:+.2f} s   ratio: {med[True] / med[False]:.3f}")
    for phase in ("load scripts", "create ui", "add APIs", "app_started_callback"):
        a = statistics.median(p.get(phase, 0.0) for p in phases[False])
        b = statistics.median(p.get(phase, 0.0) for p in phases[True])
        print(f"  {phase:22s} without {a:6.3f} s  with {b:6.3f} s  ({b - a:+.3f} s)")
    keys = sorted({k for o in ours for k in o})
    total = statistics.median(sum(o.values()) for o in ours) if ours else 0.0
    print("LoRA Lab's own entries (median s):",
          {k: round(statistics.median(o.get(k, 0.0) for o in ours), 4) for k in keys})
    print(f"LoRA Lab's recorded start-up cost: {total:.3f} s (goal < 0.2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
