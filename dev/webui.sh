#!/usr/bin/env bash
# Builds the real AUTOMATIC1111 WebUI v1.10.1 that tier 2 tests run against, CPU-only and offline:
#   bash dev/webui.sh DIR        DIR outside this checkout and not under a dot-folder, e.g. ~/lora-lab-webui
# Sources: the archives in ../shared/webui-src (checksums verified) when present, else the public
# git repositories at the commits v1.10.1 pins (needs git access). Then a venv at the WebUI's pins
# (torch 2.13.0 CPU), LoRA Lab's install.py run the WebUI's way, and the tiny SD1/SD2-v/SDXL checkpoints in
# DIR/models/Stable-diffusion. Each step keeps a stamp and is skipped while its inputs are unchanged;
# a step that fails removes its stamp first, so a re-run redoes it rather than trusting it.
#   env: PYTHON (3.10/3.11), TORCH_SPEC, TORCHVISION_SPEC, LORA_LAB_WEBUI_SRC (archive folder),
#        LORA_LAB_WEBUI_GIT (the WebUI's git URL for the fallback)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:?usage: bash dev/webui.sh DIR   (where the WebUI goes, outside this checkout)}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
case "$DIR/" in "$REPO"/*) echo "webui: $DIR is inside the checkout; choose a folder outside it" >&2; exit 2 ;; esac
# gradio 3.41 answers 403 for any file under a dot-folder: the WebUI's own javascript would not load
case "$DIR/" in */.*) echo "webui: $DIR has a folder starting with '.'; gradio refuses to serve files" \
  "from there (the WebUI's javascript would not load): choose another folder" >&2; exit 2 ;; esac
SRC=${LORA_LAB_WEBUI_SRC:-$(dirname "$REPO")/shared/webui-src}
SHIM=$(dirname "$SRC")/tools/torchvision-cpu-shim.sh
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
TORCHVISION_SPEC=${TORCHVISION_SPEC:-torchvision==0.28.0}  # the release that pairs with torch 2.13
WEBUI_GIT=${LORA_LAB_WEBUI_GIT:-https://github.com/AUTOMATIC1111/stable-diffusion-webui.git}
STAMPS=$DIR/.lora-lab-build
LOG=$STAMPS/build.log
mkdir -p "$STAMPS"
: > "$LOG"

STEP=start
trap 'echo "webui: step \"$STEP\" failed (exit $?); last lines of $LOG:" >&2; tail -n 25 "$LOG" >&2' ERR
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
SELF=$(hash_of "$REPO/dev/webui.sh")
fresh() { [ "$(cat "$STAMPS/$1" 2>/dev/null)" = "$2" ]; }
begin() { STEP=$1; rm -f "$STAMPS/$1"; echo "webui: $1 ..."; }
done_() { echo "$2" > "$STAMPS/$1"; }

# --- 1. sources -------------------------------------------------------------------------------
have_archives() { [ -f "$SRC/SHA256SUMS" ]; }
if have_archives; then
  sources_key="archives $(hash_of "$SRC/SHA256SUMS") $SELF"
else
  sources_key="git v1.10.1 $SELF"
fi
if ! fresh sources "$sources_key" || [ ! -f "$DIR/webui.py" ]; then
  begin sources
  STAGE=$DIR.partial
  rm -rf "$STAGE"; mkdir -p "$STAGE/repositories"
  if have_archives; then
    (cd "$SRC" && sha256sum --quiet -c SHA256SUMS) >>"$LOG" 2>&1 \
      || { echo "webui: checksums in $SRC do not match (see $LOG)" >&2; false; }
    tar -xzf "$SRC"/stable-diffusion-webui-v1.10.1.tar.gz -C "$STAGE" --strip-components=1
    for archive in generative-models-45c443b stablediffusion-cf1d67a k-diffusion-ab527a9 \
                   stable-diffusion-webui-assets-6f7db24; do
      tar -xzf "$SRC/$archive.tar.gz" -C "$STAGE/repositories"
    done
  else
    command -v git >/dev/null || { echo "webui: no $SRC and no git: cannot get the sources" >&2; false; }
    git clone -q --depth 1 --branch v1.10.1 "$WEBUI_GIT" "$STAGE.git" >>"$LOG" 2>&1
    cp -a "$STAGE.git/." "$STAGE/" && rm -rf "$STAGE.git"
    # the helper repositories at the URLs and commits the WebUI's own launch_utils.py names
    "$PYTHON" - "$STAGE" >>"$LOG" 2>&1 <<'EOF'
import re, subprocess, sys
stage = sys.argv[1]
text = open(f"{stage}/modules/launch_utils.py").read()
for key, folder in [("assets", "stable-diffusion-webui-assets"), ("stable_diffusion", "stable-diffusion-stability-ai"),
                    ("stable_diffusion_xl", "generative-models"), ("k_diffusion", "k-diffusion")]:
    url = re.search(rf"{key}_repo = os.environ.get\('\w+', [\"']([^\"']+)", text).group(1)
    commit = re.search(rf"{key}_commit_hash = os.environ.get\('\w+', [\"']([0-9a-f]+)", text).group(1)
    target = f"{stage}/repositories/{folder}"
    subprocess.run(["git", "clone", "-q", url, target], check=True)
    subprocess.run(["git", "-C", target, "checkout", "-q", commit], check=True)
EOF
  fi
  [ -f "$STAGE/webui.py" ] && [ -d "$STAGE/repositories/generative-models/sgm" ] \
    && [ -d "$STAGE/repositories/stable-diffusion-stability-ai/ldm" ]
  # keep what a previous build installed (venv, models, stamps); the path stays the same
  for keep in venv models .lora-lab-build; do
    [ -e "$DIR/$keep" ] && { rm -rf "$STAGE/$keep"; mv "$DIR/$keep" "$STAGE/$keep"; }
  done
  rm -rf "$DIR.old"; mv "$DIR" "$DIR.old"; mv "$STAGE" "$DIR"; rm -rf "$DIR.old"
  done_ sources "$sources_key"
fi

# --- 2. the WebUI's venv at its pins -------------------------------------------------------------
VPY=$DIR/venv/bin/python
venv_key="$(hash_of "$DIR/requirements_versions.txt") $TORCH_SPEC $TORCHVISION_SPEC $SELF"
if ! fresh venv "$venv_key" || [ ! -x "$VPY" ]; then
  begin venv
  "$PYTHON" -c 'import sys; assert sys.version_info[:2] in ((3, 10), (3, 11)), sys.version' 2>>"$LOG" \
    || { echo "webui: A1111 v1.10.1 needs Python 3.10 or 3.11 (set PYTHON=...)" >&2; false; }
  [ -x "$VPY" ] || "$PYTHON" -m venv "$DIR/venv"
  pip_() { "$VPY" -m pip install --disable-pip-version-check --progress-bar off "$@" >>"$LOG" 2>&1; }
  pip_ "$TORCH_SPEC"
  torch_version=$("$VPY" -c 'import importlib.metadata as m; print(m.version("torch"))')
  # the exact local build: '==2.13.0' alone lets pip backtrack into a CUDA torch
  printf 'torch==%s\n%s\n' "$torch_version" "$TORCHVISION_SPEC" > "$STAMPS/constraints.txt"
  # requirements_versions.txt as is, except: setuptools 69.5.1 conflicts with torch 2.13 (80.9 still
  # ships pkg_resources, which the WebUI imports), and `import clip` comes from PyPI's clip-anytorch
  sed 's/^setuptools==69\.5\.1.*/setuptools==80.9.0/' "$DIR/requirements_versions.txt" > "$STAMPS/requirements.txt"
  echo 'clip-anytorch==2.6.0' >> "$STAMPS/requirements.txt"
  pip_ -r "$STAMPS/requirements.txt" -c "$STAMPS/constraints.txt"
  if grep -qi 'nvidia-' "$LOG"; then echo "webui: pip pulled CUDA packages (see $LOG)" >&2; false; fi
  if ! "$VPY" -c 'import torchvision.ops' >>"$LOG" 2>&1; then
    # PyPI's torchvision is a CUDA build that cannot load beside a CPU torch
    [ -f "$SHIM" ] || { echo "webui: torchvision does not import and $SHIM is missing" >&2; false; }
    bash "$SHIM" "$DIR/venv" >>"$LOG" 2>&1
  fi
  "$VPY" -m pip check >>"$LOG" 2>&1
  done_ venv "$venv_key"
fi

# --- 3. LoRA Lab's own requirements, installed the way the WebUI does at start ---------------------
ext_key="$(hash_of "$REPO/install.py" "$REPO/lora_lab/install_plan.py") $(cat "$STAMPS/venv")"
if ! fresh extension "$ext_key"; then
  begin extension
  (cd "$DIR" && PYTHONPATH=$DIR "$VPY" "$REPO/install.py") >>"$LOG" 2>&1
  "$VPY" -c 'import onnxruntime, dynamicprompts' >>"$LOG" 2>&1
  done_ extension "$ext_key"
fi

# --- 4. tiny checkpoints, built by project code (byte-identical on rebuild) ------------------------
PROJECT_PY=$REPO/.venv/bin/python
models_key="$(cd "$REPO" && find lora_lab/devtools lora_lab/host lora_lab/hosts/standalone lora_lab/files -name '*.py' | sort | xargs cat | sha256sum | cut -c1-16) $SELF"
if ! fresh models "$models_key"; then
  begin models
  [ -x "$PROJECT_PY" ] || bash "$REPO/dev/setup.sh" >>"$LOG" 2>&1
  for family in sd1 sd2-v sdxl; do  # sdxl is built with the sgm of this WebUI
    (cd "$REPO" && "$PROJECT_PY" -m lora_lab dev tiny-model "$DIR/models/Stable-diffusion" --family "$family" \
       --sgm "$DIR") >>"$LOG" 2>&1
  done
  done_ models "$models_key"
fi
trap - ERR
echo "WebUI v1.10.1 ready: $DIR (LORA_LAB_WEBUI=$DIR)"
