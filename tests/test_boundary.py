"""The shape of the house, kept by tests:
- only the host adapters import a WebUI, and only the WebUI adapters and the front ends import
  gradio or the web stack;
- every import between LoRA Lab's own parts points down the floors below (none runs back up into
  the host port or the pipeline), and a host adapter's room never imports another room;
- the whole host contract is one file, and the core reads no optional host member with getattr.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lora_lab"
WEBUI_PACKAGES = {"modules", "modules_forge", "backend"}
WEB_STACK = {"gradio", "gradio_client", "fastapi", "starlette", "uvicorn"}

# Floors, bottom up: a unit may import its own floor and the floors below, never above.
FLOORS: list[set[str]] = [
    {"lora_lab", "install_plan"},  # the package root (`__version__`) and install.py's plan
    {"files"},  # file formats and conventions
    {"host"},  # the port: what a host must give
    {"dataset"},
    {"tagging"},
    {"train"},
    {"sweep"},
    {"auto"},
    {"access", "jobs", "job_view"},  # host-free helpers of the front ends
    {"glue"},  # tab and API, mounted by every host
    {"hosts.sgm_parts"},  # shared by the two sgm-based adapters
    {"hosts.webui", "hosts.a1111", "hosts.neo", "hosts.standalone"},  # the adapters' rooms
    {"hosts.entry"},  # which WebUI is running
    {"devtools"},
    {"commands", "cli", "__main__"},
]
# Arrows allowed inside the rooms' floor: a WebUI adapter builds on what the WebUIs share.
ROOM_ARROWS = {("hosts.a1111", "hosts.webui"), ("hosts.neo", "hosts.webui")}
# Who may import a WebUI's own packages, and who the web stack.
MAY_IMPORT = {
    "modules": {"hosts.webui", "hosts.a1111", "hosts.neo"},
    "modules_forge": {"hosts.neo"},
    "backend": {"hosts.neo"},
    **{name: {"glue", "hosts.webui", "hosts.a1111", "hosts.neo", "hosts.standalone"} for name in WEB_STACK},
}


def unit_of(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts or parts[0] == "__version__":
        return "lora_lab"
    if parts[0] == "hosts" and len(parts) > 1:
        return f"hosts.{parts[1]}"
    return parts[0]


def floor_of(unit: str) -> int:
    for i, floor in enumerate(FLOORS):
        if unit in floor:
            return i
    raise AssertionError(f"{unit} has no floor in tests/test_boundary.py: give it one")


def module_name(path: Path) -> tuple[str, str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts), ".".join(package)


def imports(path: Path, package: str | None = None) -> list[tuple[str, int]]:
    """Every module `path` imports (at the top, in functions, under TYPE_CHECKING), absolute."""
    package = package if package is not None else module_name(path)[1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, node.lineno))
            out += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
    return out


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_only_adapters_import_a_webui_and_only_front_ends_the_web_stack() -> None:
    offenders = []
    for path in package_files():
        unit = unit_of(module_name(path)[0])
        for target, line in imports(path):
            root = target.split(".")[0]
            if root in MAY_IMPORT and unit not in MAY_IMPORT[root]:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {root}")
    assert offenders == []


def arrows_up(path: Path, module: str, package: str) -> list[str]:
    unit = unit_of(module)
    out = []
    for target, line in imports(path, package):
        if not target.startswith("lora_lab"):
            continue
        other = unit_of(target)
        if other == unit or (unit, other) in ROOM_ARROWS:
            continue
        if floor_of(other) > floor_of(unit) or (floor_of(other) == floor_of(unit) and other.startswith("hosts.")):
            out.append(f"{module}:{line} ({unit}) imports {target} ({other})")
    return out


def test_no_import_runs_back_up_a_floor() -> None:
    assert [o for path in package_files() for o in arrows_up(path, *module_name(path))] == []


def test_the_host_contract_is_one_file() -> None:
    """Every capability the core uses is declared on `Host`; no optional member is read with getattr."""
    from lora_lab.host.protocol import Host

    for path in package_files():
        if unit_of(module_name(path)[0]) == "host":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr") \
                    and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == "host":
                pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno} reads a host member with getattr")
    for capability in ("render_images", "checkpoint_problem", "checkpoint_file", "runs_dir", "sweep_roots",
                       "run_job", "interrogate", "conditioning_check", "lora_load_report"):
        assert callable(getattr(Host, capability)), capability
    for attribute in ("owns_process", "threads", "in_webui"):
        assert hasattr(Host, attribute), attribute


@pytest.mark.parametrize("module, source", [
    ("lora_lab.host.protocol", "from ..train.loop import train\n"),  # the port reaching into the trainer
    ("lora_lab.sweep.render", "def f():\n    from ..hosts.standalone.txt2img import render\n"),  # core into an adapter
    ("lora_lab.hosts.standalone.host", "from ..a1111.host import A1111Host\n"),  # one room into another
    ("lora_lab.hosts.a1111.host", "from ...hosts.neo import host\n"),
])
def test_the_floor_rule_finds_an_arrow_running_up(tmp_path: Path, module: str, source: str) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(source, encoding="utf-8")
    assert len(arrows_up(probe, module, module.rpartition(".")[0])) >= 1


def test_webui_scripts_are_thin() -> None:
    for path in (ROOT / "scripts").glob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) < 100, f"{path.name} is not thin"
