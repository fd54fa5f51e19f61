#!/usr/bin/env bash
# Builds the real Forge Neo 2.26 that tier 3 tests run against, CPU-only and offline:
#   bash dev/forge-neo.sh DIR    DIR outside this checkout and not under a dot-folder, e.g. ~/lora-lab-neo
# Sources: the archive in ../shared/forge-neo-src (checksum verified). Then a Python 3.13 venv with
# torch 2.11 + torchvision 0.26 from PyPI (PyPI has no CPU build for Linux x86_64: its wheels pull the
# nvidia-* CUDA 13 packages, ~6 GB; CUDA is never used, Neo starts with --cpu), gradio 4.40 and Neo's
# requirements.txt, LoRA Lab's install.py run the WebUI's way, a data folder whose config.json carries
# Neo's VERSION_UID (so start-up never waits on "Press Enter to Continue"), and checkpoints in
# DIR/models/Stable-diffusion: neo-sd1/neo-sdxl from dev/forge-neo-models.py (Neo does not recognise
# the project's tiny-sd1/tiny-sdxl: its model detection needs full-width networks). Each step keeps a
# stamp and is skipped while its inputs are unchanged; a step that fails removes its stamp first, so a re-run redoes it rather than trusting it.
# Start it (always on loopback; the process does not exit when the bind fails: kill it when done):
#   cd DIR && venv/bin/python launch.py --skip-prepare-environment --skip-install --skip-python-version-check \
#     --skip-torch-cuda-test --skip-version-check --cpu --api --data-dir DIR/data \
#     --ckpt-dirs DIR/models/Stable-diffusion --server-name 127.0.0.1 --port N
#   env: PYTHON (3.13), TORCH_SPEC, TORCHVISION_SPEC, LORA_LAB_NEO_SRC (archive folder),
#        LORA_LAB_NEO_HOST_MODELS=0 (skip neo-sd1/neo-sdxl)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:?usage: bash dev/forge-neo.sh DIR   (where Forge Neo goes, outside this checkout)}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
case "$DIR/" in "$REPO"/*) echo "neo: $DIR is inside the checkout; choose a folder outside it" >&2; exit 2 ;; esac
# gradio answers 403 for any file under a dot-folder: Neo's own javascript would not load
case "$DIR/" in */.*) echo "neo: $DIR has a folder starting with '.'; gradio refuses to serve files" \
  "from there (Neo's javascript would not load): choose another folder" >&2; exit 2 ;; esac
SRC=${LORA_LAB_NEO_SRC:-$(dirname "$REPO")/shared/forge-neo-src}
ARCHIVE=sd-webui-forge-neo-2.26.tar.gz
SHIM=$(dirname "$SRC")/tools/torchvision-cpu-shim.sh
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3.13
  # a pyenv shim that is not the active version answers "command not found": use the install itself
  if ! "$PYTHON" -c '' 2>/dev/null && command -v pyenv >/dev/null; then
    v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$' | tail -n 1 || true)
    [ -n "$v" ] && PYTHON=$(pyenv root)/versions/$v/bin/python3.13
  fi
fi
TORCH_SPEC=${TORCH_SPEC:-torch==2.11.0}
TORCHVISION_SPEC=${TORCHVISION_SPEC:-torchvision==0.26.0}  # the release that pairs with torch 2.11
GRADIO_SPEC="gradio==4.40.0 gradio_rangeslider==0.0.8"    # what Neo's launch_utils installs itself
STAMPS=$DIR/.lora-lab-build
LOG=$STAMPS/build.log
mkdir -p "$STAMPS"
: > "$LOG"

STEP=start
trap 'echo "neo: step \"$STEP\" failed (exit $?); last lines of $LOG:" >&2; tail -n 25 "$LOG" >&2' ERR
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
SELF=$(hash_of "$REPO/dev/forge-neo.sh")
fresh() { [ "$(cat "$STAMPS/$1" 2>/dev/null)" = "$2" ]; }
begin() { STEP=$1; rm -f "$STAMPS/$1"; STARTED=$SECONDS; echo "neo: $1 ..."; echo "=== $1" >>"$LOG"; }
done_() { echo "$2" > "$STAMPS/$1"; echo "neo: $1 done in $((SECONDS - STARTED))s"; }

# --- 1. sources -------------------------------------------------------------------------------
[ -f "$SRC/SHA256SUMS" ] && [ -f "$SRC/$ARCHIVE" ] \
  || { echo "neo: no $SRC/$ARCHIVE with its SHA256SUMS (set LORA_LAB_NEO_SRC)" >&2; exit 2; }
sources_key="$(hash_of "$SRC/SHA256SUMS") $SELF"
if ! fresh sources "$sources_key" || [ ! -f "$DIR/launch.py" ]; then
  begin sources
  STAGE=$DIR.partial
  rm -rf "$STAGE"; mkdir -p "$STAGE"
  (cd "$SRC" && sha256sum --quiet -c SHA256SUMS) >>"$LOG" 2>&1 \
    || { echo "neo: checksums in $SRC do not match (see $LOG)" >&2; false; }
  tar -xzf "$SRC/$ARCHIVE" -C "$STAGE" --strip-components=1
  [ -f "$STAGE/launch.py" ] && [ -d "$STAGE/backend/huggingface" ] \
    && grep -q 'release = "2.26"' "$STAGE/modules_forge/forge_version.py"
  # keep what a previous build installed (venv, models, data, stamps); the path stays the same
  for keep in venv models data .lora-lab-build; do
    [ -e "$DIR/$keep" ] && { rm -rf "${STAGE:?}/$keep"; mv "$DIR/$keep" "$STAGE/$keep"; }
  done
  rm -rf "$DIR.old"; mv "$DIR" "$DIR.old"; mv "$STAGE" "$DIR"; rm -rf "$DIR.old"
  done_ sources "$sources_key"
fi

# --- 2. Neo's venv: torch, gradio, requirements.txt ------------------------------------------------
VPY=$DIR/venv/bin/python
venv_key="$(hash_of "$DIR/requirements.txt") $TORCH_SPEC $TORCHVISION_SPEC $GRADIO_SPEC $SELF"
if ! fresh venv "$venv_key" || [ ! -x "$VPY" ]; then
  begin venv
  "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 13), sys.version' 2>>"$LOG" \
    || { echo "neo: Forge Neo 2.26 needs Python 3.13 (set PYTHON=...)" >&2; false; }
  [ -x "$VPY" ] || "$PYTHON" -m venv "$DIR/venv"
  pip_() { "$VPY" -m pip install --disable-pip-version-check --progress-bar off "$@" >>"$LOG" 2>&1; }
  pip_ --upgrade pip
  pip_ "$TORCH_SPEC" "$TORCHVISION_SPEC"
  torch_version=$("$VPY" -c 'import importlib.metadata as m; print(m.version("torch"))')
  tv_version=$("$VPY" -c 'import importlib.metadata as m; print(m.version("torchvision"))')
  # the exact builds: later installs must not swap torch for another one
  printf 'torch==%s\ntorchvision==%s\n' "$torch_version" "$tv_version" > "$STAMPS/constraints.txt"
  # gradio first, then requirements.txt, in the order Neo's prepare_environment installs them
  # shellcheck disable=SC2086
  pip_ $GRADIO_SPEC -c "$STAMPS/constraints.txt"
  pip_ -r "$DIR/requirements.txt" -c "$STAMPS/constraints.txt"
  # gradio's resolve takes huggingface-hub 2.x (with httpx2/httpcore2); requirements.txt then pins 0.36,
  # leaving those two behind, unused, and pip check complaining (httpcore2 wants h11>=0.16)
  for orphan in httpx2 httpcore2; do
    if "$VPY" -m pip show "$orphan" 2>/dev/null | grep -qx 'Required-by: *'; then
      "$VPY" -m pip uninstall -y "$orphan" >>"$LOG" 2>&1
    fi
  done
  if ! "$VPY" -c 'import torchvision.ops' >>"$LOG" 2>&1; then
    # a CUDA torchvision beside a CPU torch (TORCH_SPEC=...+cpu) cannot load its _C.so
    [ -f "$SHIM" ] || { echo "neo: torchvision does not import and $SHIM is missing" >&2; false; }
    bash "$SHIM" "$DIR/venv" >>"$LOG" 2>&1
  fi
  # the one known complaint: gradio 4.40 asks for pillow<11, Neo pins Pillow 12 (harmless; upstream
  # gets the same state). Anything else is an error.
  "$VPY" -m pip check > "$STAMPS/pip-check.txt" 2>&1 || true
  cat "$STAMPS/pip-check.txt" >>"$LOG"
  if grep -v -e '^gradio 4\.40\.0 has requirement pillow' -e '^No broken requirements' "$STAMPS/pip-check.txt" | grep -q .; then
    echo "neo: pip check found broken requirements (see $STAMPS/pip-check.txt)" >&2; false
  fi
  "$VPY" -c 'import torch, torchvision, gradio; print("torch", torch.__version__, "torchvision",
torchvision.__version__, "gradio", gradio.__version__)' >>"$LOG" 2>&1
  echo "venv: $(du -sh "$DIR/venv" | cut -f1), $("$VPY" -m pip list 2>/dev/null | grep -c '^nvidia-') nvidia-* packages" >>"$LOG"
  done_ venv "$venv_key"
fi

# --- 3. LoRA Lab's own requirements, installed the way Neo does at start -----------------------------
# (launch_utils.run_extension_installer: `python install.py` with the Neo folder on PYTHONPATH)
ext_key="$(hash_of "$REPO/install.py" "$REPO/lora_lab/install_plan.py") $(cat "$STAMPS/venv")"
if ! fresh extension "$ext_key"; then
  begin extension
  (cd "$DIR" && PYTHONPATH=$DIR "$VPY" "$REPO/install.py") >>"$LOG" 2>&1
  "$VPY" -c 'import onnxruntime, dynamicprompts' >>"$LOG" 2>&1
  done_ extension "$ext_key"
fi

# --- 4. a data folder Neo starts from without asking anything ----------------------------------------
# launch_utils.verify_version blocks on input() when config.json lacks VERSION_UID "PY313"
data_key="$SELF"
if ! fresh data "$data_key" || ! grep -q '"VERSION_UID": *"PY313"' "$DIR/data/config.json" 2>/dev/null; then
  begin data
  mkdir -p "$DIR/data/extensions"
  if [ -f "$DIR/data/config.json" ] && ! grep -q '"VERSION_UID": *"PY313"' "$DIR/data/config.json"; then
    mv "$DIR/data/config.json" "$DIR/data/config.json.old"
  fi
  [ -f "$DIR/data/config.json" ] || echo '{"VERSION_UID": "PY313"}' > "$DIR/data/config.json"
  done_ data "$data_key"
fi

# --- 5. checkpoints Neo recognises --------------------------------------------------------------
# Neo's model detection (modules_forge/packages/huggingface_guess) wants full-width networks:
# dev/forge-neo-models.py builds neo-sd1 (~0.5 GB) and neo-sdxl (~2 GB) with Neo's own classes. LORA_LAB_NEO_HOST_MODELS=0 skips them.
if [ "${LORA_LAB_NEO_HOST_MODELS:-1}" != 0 ]; then
  host_models_key="$(hash_of "$REPO/dev/forge-neo-models.py") $(cat "$STAMPS/venv") $SELF"
  if ! fresh host-models "$host_models_key" || [ ! -f "$DIR/models/Stable-diffusion/neo-sdxl.safetensors" ]; then
    begin host-models
    (cd "$DIR" && "$VPY" "$REPO/dev/forge-neo-models.py" "$DIR/models/Stable-diffusion") >>"$LOG" 2>&1
    done_ host-models "$host_models_key"
  fi
fi
trap - ERR
echo "Forge Neo 2.26 ready: $DIR (LORA_LAB_NEO=$DIR)"
