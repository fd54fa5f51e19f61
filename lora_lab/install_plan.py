"""What `install.py` may install into a WebUI venv: only what is missing, never the WebUI's pins.

Pure stdlib (it runs at every WebUI start, before anything else is imported), and fast: a handful
of metadata look-ups, no imports of the packages themselves.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping

# The WebUI pins these (requirements_versions.txt); an extension that moves them breaks the venv.
PROTECTED = ("torch", "torchvision", "gradio", "transformers", "numpy", "pillow", "protobuf",
             "pydantic", "fastapi")
ONNXRUNTIME_MIN = "1.17"  # WD14 v3 taggers need it
DYNAMICPROMPTS_SPEC = "dynamicprompts>=0.29,<1"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_names() -> set[str]:
    """Normalised names of installed distributions, from the `*.dist-info` folder names alone
    (parsing every METADATA file of a WebUI venv costs ~0.15 s at each start)."""
    names: set[str] = set()
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        for item in listing:
            if item.endswith((".dist-info", ".egg-info")):
                names.add(normalize(item.rsplit(".", 1)[0].split("-")[0]))
    return names


def installed_distributions(names: Iterable[str] | None = None) -> dict[str, str]:
    """name -> version for the given names (default: all installed), reading only their metadata."""
    found: dict[str, str] = {}
    for name in installed_names() if names is None else names:
        try:
            found[normalize(name)] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return found


def wants_gpu_onnxruntime(installed: Mapping[str, str]) -> bool:
    """A CUDA 12 torch means onnxruntime-gpu (its PyPI builds are CUDA 12) can run the tagger on GPU."""
    torch_version = installed.get("torch", "")
    return "+cu12" in torch_version or any(n.startswith("nvidia-cuda-runtime-cu12") for n in installed)


def missing_requirements(installed: Mapping[str, str] | Iterable[str]) -> list[str]:
    wanted: list[str] = []
    if not any(name.startswith("onnxruntime") for name in installed):  # -gpu, -directml, -silicon...
        versions = installed if isinstance(installed, Mapping) else installed_distributions(installed)
        flavour = "onnxruntime-gpu" if wants_gpu_onnxruntime(versions) else "onnxruntime"
        wanted.append(f"{flavour}>={ONNXRUNTIME_MIN}")
    if "dynamicprompts" not in installed:
        wanted.append(DYNAMICPROMPTS_SPEC)
    return wanted


def protected_constraints(installed: dict[str, str]) -> list[str]:
    """Pins for every protected package present, so pip can neither upgrade nor downgrade them."""
    return [f"{name}=={installed[name]}" for name in PROTECTED if name in installed]


def pip_commands(installed: dict[str, str], constraints_file: str) -> list[str]:
    """The `pip` argument strings to run (quoted for the shell `launch.run_pip` uses); [] if satisfied."""
    wanted = missing_requirements(installed)
    if not wanted:
        return []
    specs = " ".join(f'"{spec}"' for spec in wanted)
    return [f'install {specs} -c "{constraints_file}"']


def run(run_pip: Callable[[str, str], object], installed: dict[str, str],
        write_constraints: Callable[[Iterable[str]], str]) -> list[str]:
    wanted = missing_requirements(installed)
    if not wanted:
        return []
    commands = pip_commands(installed, write_constraints(protected_constraints(installed)))
    for command in commands:
        run_pip(command, f"LoRA Lab requirements: {', '.join(wanted)}")
    return commands
