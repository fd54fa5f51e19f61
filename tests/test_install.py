"""install.py against a stand-in `launch` module that records pip calls: the one place a WebUI
stand-in is right, since the real `launch.run_pip` would change this machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lora_lab import install_plan

ROOT = Path(__file__).resolve().parents[1]

FAKE_LAUNCH = '''
import json, os, pathlib, re

class args:
    skip_install = False

def run_pip(command, desc=None, live=False):
    constraints = re.search(r'-c "([^"]+)"', command)
    record = {"command": command, "desc": desc,
              "constraints": pathlib.Path(constraints.group(1)).read_text() if constraints else None}
    with open(os.environ["FAKE_PIP_LOG"], "a") as log:
        log.write(json.dumps(record) + "\\n")
    site = pathlib.Path(os.environ["FAKE_SITE"])
    for name in re.findall(r'"([A-Za-z0-9_.-]+?)[<>=!]', command):  # what pip would have installed
        info = site / f"{name.replace('-', '_')}-9.9.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\\nName: {name}\\nVersion: 9.9\\n")
'''


def fake_dist(site: Path, name: str, version: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


@pytest.fixture
def webui_env(tmp_path: Path) -> dict[str, Path]:
    launch_dir, site = tmp_path / "webui", tmp_path / "site"
    launch_dir.mkdir()
    site.mkdir()
    (launch_dir / "launch.py").write_text(FAKE_LAUNCH)
    return {"launch_dir": launch_dir, "site": site, "log": tmp_path / "pip.log"}


def run_install(env: dict[str, Path], isolated: bool, extra_args: tuple[str, ...] = (),
                extra_env: dict[str, str] | None = None) -> list[dict]:
    # isolated: `python -S` with only the stand-in site on the path, i.e. a venv lacking our packages
    paths = [str(env["launch_dir"])] + ([str(env["site"])] if isolated else [])
    environment = {k: v for k, v in os.environ.items() if k not in ("COMMANDLINE_ARGS", "LORA_LAB_SKIP_INSTALL")}
    environment.update({"PYTHONPATH": os.pathsep.join(paths), "FAKE_PIP_LOG": str(env["log"]),
                        "FAKE_SITE": str(env["site"]), **(extra_env or {})})
    command = [sys.executable, *(["-S"] if isolated else []), str(ROOT / "install.py"), *extra_args]
    subprocess.run(command, check=True, env=environment, cwd=env["launch_dir"])
    if not env["log"].exists():
        return []
    return [json.loads(line) for line in env["log"].read_text().splitlines()]


def test_second_run_makes_no_pip_call(webui_env: dict[str, Path]) -> None:
    first = run_install(webui_env, isolated=True)
    assert len(first) == 1
    assert '"onnxruntime>=1.17"' in first[0]["command"]
    assert '"dynamicprompts' in first[0]["command"]
    assert run_install(webui_env, isolated=True) == first  # nothing new logged


def test_satisfied_venv_makes_no_pip_call(webui_env: dict[str, Path]) -> None:
    assert run_install(webui_env, isolated=False) == []  # the test venv has both packages


def test_any_onnxruntime_flavour_counts_and_pins_are_held(webui_env: dict[str, Path]) -> None:
    for name, version in [("onnxruntime-gpu", "1.17.1"), ("torch", "2.1.2+cu121"), ("numpy", "1.26.2"),
                          ("gradio", "3.41.2"), ("protobuf", "3.20.0")]:
        fake_dist(webui_env["site"], name, version)
    (call,) = run_install(webui_env, isolated=True)
    assert "onnxruntime" not in call["command"]
    assert set(call["constraints"].split()) == {
        "torch==2.1.2+cu121", "numpy==1.26.2", "gradio==3.41.2", "protobuf==3.20.0"}


def test_cuda_torch_gets_the_gpu_runtime(webui_env: dict[str, Path]) -> None:
    fake_dist(webui_env["site"], "torch", "2.1.2+cu121")
    (call,) = run_install(webui_env, isolated=True)
    assert '"onnxruntime-gpu>=1.17"' in call["command"]


@pytest.mark.parametrize("how", ["argument", "commandline_args", "env"])
def test_skip_install_is_honoured(webui_env: dict[str, Path], how: str) -> None:
    args = ("--skip-install",) if how == "argument" else ()
    extra = {"commandline_args": {"COMMANDLINE_ARGS": "--api --skip-install"},
             "env": {"LORA_LAB_SKIP_INSTALL": "1"}}.get(how, {})
    assert run_install(webui_env, isolated=True, extra_args=args, extra_env=extra) == []


def test_never_asks_for_a_protected_package() -> None:
    for installed in ({}, {"torch": "2.1.2+cu121"}, {"onnxruntime-directml": "1.17"}):
        for spec in install_plan.missing_requirements(installed):
            name = install_plan.normalize(spec.split(">")[0].split("=")[0].split("<")[0])
            assert name not in install_plan.PROTECTED
