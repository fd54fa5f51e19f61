#!/usr/bin/env bash
# Stage what bench/gpu.py needs beyond the GPU machine's own image (Python 3.12, torch, numpy,
# transformers, onnxruntime, pytorch_lightning, … — see docs/gpu.md) into build/gpu-carry/site:
# the pure-Python packages ldm (stable-diffusion-sdkit), open_clip, dynamicprompts, omegaconf,
# antlr4, ftfy and wcwidth copied from this checkout's .venv, and sgm (SDXL) from LORA_LAB_SGM,
# LORA_LAB_WEBUI's repositories/generative-models, ~/lora-lab-webui, or the generative-models
# archive in ../shared/webui-src. build/ is ignored by git; carry `build/gpu-carry` with the call.
#
#     bash bench/gpu_pack.sh            # prints the staged size; must stay well under 64 MiB
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
out="$root/build/gpu-carry/site"
rm -rf "$out"
mkdir -p "$out"

copy() {  # copy() NAME…: packages or dist-info folders from the venv, without bytecode
  for name in "$@"; do
    for path in "$site"/$name; do
      [ -e "$path" ] || { echo "gpu_pack: $name not in $site (run dev/setup.sh first)" >&2; exit 1; }
      cp -R "$path" "$out/"
    done
  done
}
copy ldm stable_diffusion_sdkit-*.dist-info open_clip open_clip_torch-*.dist-info \
     dynamicprompts dynamicprompts-*.dist-info omegaconf omegaconf-*.dist-info \
     antlr4 antlr4_python3_runtime-*.dist-info ftfy ftfy-*.dist-info wcwidth wcwidth-*.dist-info

sgm=""
for candidate in "${LORA_LAB_SGM:-}" "${LORA_LAB_WEBUI:+$LORA_LAB_WEBUI/repositories/generative-models}" \
                 "$HOME/lora-lab-webui/repositories/generative-models"; do
  if [ -n "$candidate" ] && [ -f "$candidate/sgm/__init__.py" ]; then sgm="$candidate"; break; fi
done
if [ -n "$sgm" ]; then
  cp -R "$sgm/sgm" "$out/"
else
  archive="$(ls "$root"/../shared/webui-src/generative-models-*.tar.gz 2>/dev/null | head -1 || true)"
  [ -n "$archive" ] || { echo "gpu_pack: no sgm: set LORA_LAB_SGM or LORA_LAB_WEBUI" >&2; exit 1; }
  tmp="$(mktemp -d)"
  tar -xzf "$archive" -C "$tmp"
  cp -R "$(dirname "$(find "$tmp" -path '*/sgm/__init__.py' | head -1)")" "$out/"
  rm -rf "$tmp"
fi
find "$out" -name __pycache__ -type d -prune -exec rm -rf {} +
find "$out" -name '*.so' ! -name '*.abi3.so' -print | sed 's/^/gpu_pack: warning: compiled file (built for this Python): /' >&2
du -sh "$root/build/gpu-carry"
