"""The core never imports the WebUI, gradio or the web stack: only lora_lab/glue/ may."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lora_lab"
HOST_ONLY = {"modules", "gradio", "gradio_client", "fastapi", "starlette", "uvicorn"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_glue_imports_host_packages() -> None:
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        if "glue" in path.relative_to(PACKAGE).parts:
            continue
        bad = imported_roots(path) & HOST_ONLY
        if bad:
            offenders[str(path.relative_to(PACKAGE))] = sorted(bad)
    assert offenders == {}


def test_glue_is_used_by_the_webui_scripts() -> None:
    scripts = Path(__file__).resolve().parents[1] / "scripts"
    for path in scripts.glob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) < 100, f"{path.name} is not thin"
