"""Run by the WebUI at every start (also with the extension disabled). Installs only what LoRA Lab
needs and is missing — onnxruntime (unless any flavour is present) and dynamicprompts — and pins
every package the WebUI pins while doing so. Makes no pip call when nothing is missing."""
import os
import shlex
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lora_lab import install_plan  # noqa: E402


def _skip_requested() -> bool:
    if os.environ.get("LORA_LAB_SKIP_INSTALL"):
        return True
    argv = sys.argv[1:] + shlex.split(os.environ.get("COMMANDLINE_ARGS", ""))
    if "--skip-install" in argv:
        return True
    return False


def _write_constraints(lines):
    handle = tempfile.NamedTemporaryFile("w", suffix="-lora-lab-constraints.txt", delete=False)
    with handle:
        handle.write("\n".join(lines) + "\n")
    return handle.name


def main() -> None:
    if _skip_requested():
        return
    if not install_plan.missing_requirements(install_plan.installed_names()):
        return  # the common case, at every WebUI start: no pip, not even `import launch`
    installed = install_plan.installed_distributions()
    import launch

    if getattr(getattr(launch, "args", None), "skip_install", False):
        return
    install_plan.run(launch.run_pip, installed, _write_constraints)


if __name__ == "__main__":
    main()
