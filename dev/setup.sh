#!/usr/bin/env bash
# Creates/updates .venv with LoRA Lab's dependencies at the WebUI's pins (A1111 v1.10.1).
#   bash dev/setup.sh          runtime: torch, gradio, onnxruntime, dynamicprompts, ldm, ...
#   bash dev/setup.sh --test   + pytest/selenium, and Debian's chromium + chromedriver when root
# Re-running is fast: nothing is installed when the requirement files have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
WANT_TEST=0
for arg in "$@"; do
  case "$arg" in
    --test) WANT_TEST=1 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PY=.venv/bin/python
# quiet, but a resolver conflict fails the setup: the venv must match what the WebUI resolves
pip_q() {
  local out
  out=$("$PY" -m pip install -q --disable-pip-version-check "$@" 2>&1) || { echo "$out" >&2; return 1; }
  echo "$out" | grep -v "is ignored: it is neither" || true
  if echo "$out" | grep -q "dependency conflicts"; then echo "setup: pip reported conflicts" >&2; return 1; fi
}

stamp=.venv/.lora-lab-setup
files=(dev/requirements.txt pyproject.toml)
[ "$WANT_TEST" = 1 ] && files+=(dev/requirements-test.txt)
want="$(cat "${files[@]}" dev/setup.sh | sha256sum | cut -c1-16) test=$WANT_TEST"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  pip_q "$TORCH_SPEC"
  torch_version=$("$PY" -c 'import importlib.metadata as m; print(m.version("torch"))')
  # keep the torch we have: a bare 'torch' requirement elsewhere must not pull another build
  echo "torch==$torch_version" > .venv/constraints.txt
  # one resolve for runtime and test requirements, so neither moves a pin the other relies on
  reqs=(-r dev/requirements.txt)
  [ "$WANT_TEST" = 1 ] && reqs+=(-r dev/requirements-test.txt)
  pip_q "${reqs[@]}" -c .venv/constraints.txt
  # ldm as the WebUI has it (stable-diffusion-sdkit) and open_clip (SD2's text encoder, CLIP's BPE
  # vocabulary): their declared dependencies conflict with the WebUI's pins; torchvision, which
  # both import but never use for LoRA Lab, gets an import-time stand-in (lora_lab/hosts/standalone/ldm_import.py)
  pip_q --no-deps stable-diffusion-sdkit==2.1.5 open-clip-torch==2.20.0
  # LoRA Lab itself, editable: `python -m lora_lab` / `lora-lab` from any folder
  pip_q --no-deps --no-build-isolation -e .
  "$PY" -c "import torch, gradio, onnxruntime, dynamicprompts, safetensors, transformers" \
    || { echo "setup: imports failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
if [ "$WANT_TEST" = 1 ] && ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      chromium chromium-driver >/dev/null
  else
    echo "note: Debian chromium + chromium-driver are missing; the browser test will be skipped" >&2
  fi
fi
echo "LoRA Lab environment ready: .venv ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
